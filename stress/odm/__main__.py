"""``python -m stress.odm [--quick] [--backend NAME …] [--cache URI] [--out STEM]``.

Backends: ``mongomock``, ``ferretdb`` (repeatable; both by default).

``--cache memory://`` (or ``redis://host:port/db``) runs the privata alternatives with the
cache of identity rows and wrapped keys on (``docs/cache.md``); results then carry each task's
cache hit rate, and go to ``odm-<mode>-cache`` unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from stress.odm import report, run, tasks


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m stress.odm", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts: under two minutes")
    parser.add_argument("--smoke", action="store_true", help="one iteration, tiny counts (tests)")
    parser.add_argument(
        "--backend", action="append", choices=("mongomock", "ferretdb"), help="repeatable"
    )
    parser.add_argument(
        "--out", type=Path, help="results stem (default stress/results/odm[-quick])"
    )
    parser.add_argument(
        "--cache", help="run the privata alternatives with configure(cache=URI), e.g. memory://"
    )
    args = parser.parse_args()
    logging.getLogger("privata_mongo").setLevel(logging.ERROR)  # the development key warning
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    counts = {"smoke": tasks.SMOKE, "quick": tasks.QUICK, "full": tasks.FULL}[mode]
    results = run.run(args.backend or ["mongomock", "ferretdb"], counts, mode, cache=args.cache)
    suffix = "-cache" if args.cache else ""
    stem = args.out or run.ROOT / "stress" / "results" / f"odm-{mode}{suffix}"
    for path in report.write(results, stem):
        print(f"wrote {path}")
    if results["machine"]["shared"]:
        print(f"note: the machine was shared (load {results['machine']['loadavg']})")


if __name__ == "__main__":
    main()

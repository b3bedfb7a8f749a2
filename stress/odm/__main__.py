"""``python -m stress.odm [--quick] [--backend mongomock --backend ferretdb] [--out STEM]``."""

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
    args = parser.parse_args()
    logging.getLogger("privata_mongo").setLevel(logging.ERROR)  # the development key warning
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    counts = {"smoke": tasks.SMOKE, "quick": tasks.QUICK, "full": tasks.FULL}[mode]
    results = run.run(args.backend or ["mongomock", "ferretdb"], counts, mode)
    stem = args.out or run.ROOT / "stress" / "results" / f"odm-{mode}"
    for path in report.write(results, stem):
        print(f"wrote {path}")
    if results["machine"]["shared"]:
        print(f"note: the machine was shared (load {results['machine']['loadavg']})")


if __name__ == "__main__":
    main()

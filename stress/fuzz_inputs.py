"""Random and adversarial inputs through both facades; no identity value may leak.

Throws documents (random field values, types and sizes for identity and clinical fields) and
filters, updates, projections, sorts and pipelines (``$regex``, ``$where``, ``$exists``,
``$in``, ``$expr``, dotted paths, ``$``-prefixed keys, NUL bytes, huge strings, deep nesting)
at ``privata_mongo.mongoengine`` and ``privata_mongo.beanie``, captures every exception text,
log record (root logger at DEBUG), pymongo command event (with ``--uri``) and audit record, and
reports the inputs tried, the exception types, and how many identity values appeared in the
captured text (``testkit/fuzz.py`` defines each). Exits 1 when any did.

    python stress/fuzz_inputs.py                                   # 3,000 inputs on mongomock
    python stress/fuzz_inputs.py --examples 500 --seed 7
    python stress/fuzz_inputs.py --uri mongodb://127.0.0.1:27017/  # a server (FerretDB, MongoDB)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.fuzz import FuzzReport, run_fuzz


def _print(report: FuzzReport, seconds: float) -> None:
    print(f"inputs tried: {report.inputs} in {seconds:.1f} s")
    print("inputs per operation:")
    for name, count in sorted(report.operations.items()):
        print(f"  {name:32} {count:6}")
    print(f"inputs that raised: {sum(report.exceptions.values())}")
    for name, count in report.exceptions.most_common():
        mark = "  (not a typed error)" if name in report.untyped else ""
        print(f"  {name:50} {count:6}{mark}")
        for origin, times in report.origins[name].most_common(3):
            print(f"      {times:5} raised at {origin}")
    print(f"identity strings written: {len(report.written)}, only offered: {len(report.offered)}")
    print(f"captured texts searched: {report.texts} (audit records: {report.audit_records})")
    print(f"audit chains verify: {report.chain_ok}")
    print(f"written identity values found in captured text: {len(report.leaked_written)}")
    print(f"offered identity values found in captured text: {len(report.leaked_offered)}")
    for source, count in report.leak_sources.most_common():
        print(f"  found in {count} {source} text(s)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=3000, help="inputs to try")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed")
    parser.add_argument("--uri", default=None, help="a server instead of mongomock")
    args = parser.parse_args()
    start = time.perf_counter()
    report = run_fuzz(
        args.examples,
        seed_value=args.seed,
        uri=args.uri,
        progress=lambda n: print(f"  {n} inputs", file=sys.stderr),
    )
    _print(report, time.perf_counter() - start)
    if report.leaked_written or report.leaked_offered or not report.chain_ok:
        sys.exit(1)


if __name__ == "__main__":
    main()

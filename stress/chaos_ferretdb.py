"""Real faults on a real server: a write loop through the library while FerretDB is killed.

Starts a FerretDB of its own (v1.24, SQLite, loopback; built by ``scripts/ferretdb.sh``) and
runs N sequential operations through ``privata_mongo.mongoengine`` (``--facade beanie``: through
``privata_mongo.beanie`` on ``AsyncMongoClient``) — creates, identity + clinical updates,
identity-only updates, deletes, reads — each recorded in a client-side ledger. Every
``--fault-every`` operations one fault fires, round-robin over ``--faults``:

- ``kill``: SIGKILL, then a restart on the same port and SQLite files 0.5-5 s later;
- ``stop``: SIGSTOP for 0.5-4 s (pymongo's socket timeout is 2 s), then SIGCONT;
- ``proxy``: through toxiproxy (``scripts/toxiproxy.sh``, between pymongo and FerretDB) one of
  latency, reset_peer, timeout (stalled streams) and limit_data (a reply cut mid-stream) for
  0.3-2 s.

A fault fires a few milliseconds into an operation, or right after the server acknowledged the
next identity or clinical insert / update / delete of the library: the points where a write
across two collections can be cut. After the loop the library's recovery sweep runs if it
has one, and the stored state is read with raw pymongo (``testkit/chaos.py`` says how each
figure is counted). FerretDB v1.24 loses concurrent ``$inc``s, so the loop is sequential: it
tests crash safety, not atomicity.

    python stress/chaos_ferretdb.py                              # 2,000 operations, kill + stop
    python stress/chaos_ferretdb.py --ops 500 --faults kill,stop,proxy --seed 7
    python stress/chaos_ferretdb.py --facade beanie
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

# Run as `python stress/chaos_ferretdb.py` from a checkout: the test kit sits beside privata_mongo.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
from testkit.chaos import FACADES, FAULT_KINDS, ChaosResult, Ledger, run_chaos

ROWS = (
    ("attempted", "operations attempted"),
    ("succeeded", "succeeded"),
    ("failed_typed", "failed with a typed error"),
    ("failed_untyped", "failed with an untyped error"),
    ("lost", "lost (acknowledged, effect missing)"),
    ("orphan_identity", "orphan identity rows"),
    ("orphan_clinical", "orphan clinical rows"),
    ("duplicates", "duplicates"),
    ("missing_audit", "missing audit records"),
    ("audit_unverifiable", "applied changes of unknown subject"),
    ("failed_but_applied", "failed, yet applied"),
    ("bad_reads", "reads of a state never written"),
    ("unreadable_identity", "identity rows whose data key is gone"),
    ("unreadable_documents", "  of them linked (whole documents)"),
    ("leases_left", "write leases left"),
    ("torn_versions", "halves with unequal versions"),
)


def report(result: ChaosResult, args: argparse.Namespace) -> None:
    """Print the table, then one JSON line with everything."""
    counts = result.counts
    print(f"\nfaults fired: {dict(result.fault_counts())}")
    print(f"fault points skipped (a fault still undoing): {result.skipped_faults}")
    print(f"faults armed whose write never came: {result.unfired_faults}")
    print(f"recovery: {result.recovery}")
    print(f"loop: {result.seconds:.1f} s\n")
    width = max(len(label) for _, label in ROWS)
    for name, label in ROWS:
        print(f"{label:<{width}}  {counts[name]:>6}")
    print(f"\n{'errors by type':<{width}}")
    for error, number in counts["errors"].items():
        print(f"  {error:<{width - 2}}  {number:>6}")
    for name in ("lost_by_kind", "missing_audit_by_kind", "untyped_errors"):
        if counts[name]:
            print(f"{name}: {counts[name]}")
    line = {
        "ops": args.ops,
        "facade": args.facade,
        "faults": args.faults,
        "fault_every": args.fault_every,
        "seed": args.seed,
        "fired": result.fault_counts(),
        "recovery": result.recovery,
        "seconds": round(result.seconds, 1),
        **counts,
    }
    print(json.dumps(line, sort_keys=True))


def main() -> None:
    """Parse the options, run the loop, print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", type=int, default=2000, help="operations in the loop")
    parser.add_argument(
        "--faults", default="kill,stop", help=f"comma-separated, from {','.join(FAULT_KINDS)}"
    )
    parser.add_argument("--fault-every", type=int, default=50, help="operations between faults")
    parser.add_argument("--seed", type=int, default=1, help="seeds the mix and the schedule")
    parser.add_argument(
        "--facade",
        choices=sorted(FACADES),
        default="mongoengine",
        help="the facade to write through",
    )
    parser.add_argument("--keep", type=Path, help="keep the server's files and logs here")
    args = parser.parse_args()
    kinds = tuple(k for k in args.faults.split(",") if k)
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())

    def progress(index: int, ledger: Ledger) -> None:
        if (index + 1) % 250 == 0:
            done = ledger.outcomes
            failed = sum(1 for o in done if not o.ok)
            print(f"  {index + 1:>6} operations, {failed} failed", flush=True)

    with tempfile.TemporaryDirectory(prefix="chaos-") as scratch:
        state_dir = args.keep or Path(scratch)
        result = run_chaos(
            state_dir,
            ops=args.ops,
            kinds=kinds,
            fault_every=args.fault_every,
            seed=args.seed,
            facade=args.facade,
            progress=progress,
        )
    report(result, args)


if __name__ == "__main__":
    main()

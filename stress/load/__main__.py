"""``python -m stress.load --level N [--target wrapped|native|both] [--duration S]``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from stress.load.report import markdown
from stress.load.run import RESULTS, run_level


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m stress.load", description=__doc__)
    parser.add_argument("--level", type=int, choices=range(1, 6), required=True)
    parser.add_argument("--target", choices=("wrapped", "native", "both"), default="both")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (levels 1-3, 5)")
    parser.add_argument("--cache", choices=("memory", "redis"), help="privata's cache, if any")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the workers (a separate, slower pass)"
    )
    parser.add_argument(
        "--p95-limit", type=float, help="level 4's p95 limit in ms (default 200: the issue's)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.p95_limit is not None:
        os.environ["LOAD_P95_LIMIT_MS"] = str(args.p95_limit)
    targets = ("wrapped", "native") if args.target == "both" else (args.target,)
    for target in targets:
        result = run_level(args.level, target, args.duration, args.cache, args.profile, args.out)
        stem = args.out / result["stem"]
        stem.with_suffix(".md").write_text(markdown(result))
        total = result["summary"]["total"]
        audit = result.get("audit")
        print(
            f"L{args.level} {target}: {total['throughput']:.1f} req/s, p50 {total['p50_ms']} ms, "
            f"p95 {total['p95_ms']} ms, p99 {total['p99_ms']} ms, errors "
            f"{total['error_rate']:.2%}"
            + (f", audit {'holds' if audit['holds'] else 'FAILS'}" if audit else "")
        )


if __name__ == "__main__":
    main()

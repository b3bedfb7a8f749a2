"""The library at an earlier commit against the library now, in one run of the ODM benchmark.

``python -m stress.odm.before_after --before REV [--after REV] [--quick] [--backend NAME …]
[--rounds N]``

A change to the library is judged by the ratios it moves, so both commits run the same
benchmark (this checkout's ``stress/odm``, its tasks and its alternatives) on the same machine
in one run. Each side is an export of the repository at ``--after`` (default ``HEAD``), and the
before side has its ``privata_mongo`` package replaced by the one at ``--before``: only the
library differs. The sides alternate, in ``--rounds`` rounds, starting with the other side in
every other round, so a change in the machine's load falls on both.

Each round of a side is one ``python -m stress.odm`` process, which measures the native ODMs
next to the wrapped ones (interleaved per iteration). The figure compared is the wrapped/native
ratio of each task, median over the rounds, and the round trips per operation; the change is
the after ratio over the before ratio (below 1: faster than before). Results:
``stress/results/before-after[-quick].{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stress.odm.run import GIT, ROOT, machine

SIDES = ("before", "after")
TIMES = "\u00d7"
EXCLUDED = ("stress/results",)
"""Paths of the repository the benchmark does not need (large result files)."""


def _git(*args: str) -> bytes:
    return subprocess.run(  # noqa: S603 - git with this module's own arguments
        [GIT, "-C", str(ROOT), *args], check=True, capture_output=True
    ).stdout


def resolve(rev: str) -> str:
    """The full commit id of ``rev`` (a branch, tag or abbreviated id)."""
    return _git("rev-parse", "--verify", f"{rev}^{{commit}}").decode().strip()


def export(commit: str, target: Path, paths: Sequence[str] = ()) -> None:
    """Write the tree of ``commit`` (or only ``paths`` of it) into ``target``."""
    archive = _git("archive", "--format=tar", commit, *paths)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = [m for m in tar.getmembers() if not any(m.name.startswith(p) for p in EXCLUDED)]
        tar.extractall(target, members=members, filter="data")


def prepare(before: str, after: str, work: Path) -> dict[str, Path]:
    """One directory per side: the tree at ``after``, with the library at ``before`` or not.

    Both get this checkout's ``stress`` package, so the benchmark is the one being run.
    """
    trees = {side: work / side for side in SIDES}
    for tree in trees.values():
        tree.mkdir()
        export(after, tree)
        shutil.rmtree(tree / "stress")
        shutil.copytree(
            ROOT / "stress",
            tree / "stress",
            ignore=shutil.ignore_patterns("results", "__pycache__"),
        )
        (tree / "stress" / "results").mkdir()
    shutil.rmtree(trees["before"] / "privata_mongo")
    export(before, trees["before"], ["privata_mongo"])
    return trees


def run_side(tree: Path, stem: Path, mode: str, backends: Sequence[str]) -> dict[str, Any]:
    """One benchmark process in ``tree`` (its ``privata_mongo`` is first on the path)."""
    command = [sys.executable, "-m", "stress.odm", "--out", str(stem)]
    if mode != "full":
        command.append(f"--{mode}")
    for name in backends:
        command += ["--backend", name]
    subprocess.run(command, cwd=tree, check=True)  # noqa: S603 - this repository's module
    result: dict[str, Any] = json.loads(stem.with_suffix(".json").read_text())
    return result


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def compare(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per backend, task and ODM: each side's median ratio and round trips, and the change."""
    out: dict[str, Any] = {}
    first = rounds["after"][0]
    for backend, tasks in first["backends"].items():
        per_task: dict[str, Any] = {}
        for task, result in tasks.items():
            per_pair: dict[str, Any] = {}
            for pair in result["ratios"]:
                wrapped = pair.split("/")[0]
                sides: dict[str, Any] = {}
                for side in SIDES:
                    runs = [r["backends"][backend][task] for r in rounds[side]]
                    sides[side] = {
                        "ratio": _median([r["ratios"][pair] for r in runs]),
                        "ratios": [r["ratios"][pair] for r in runs],
                        "wrapped_ms": _median(
                            [r["alternatives"][wrapped]["median_per_op_ms"] for r in runs]
                        ),
                        "round_trips": _median(
                            [r["alternatives"][wrapped]["round_trips_per_op"] for r in runs]
                        ),
                    }
                per_pair[pair] = {
                    **sides,
                    "change": sides["after"]["ratio"] / sides["before"]["ratio"],
                }
            per_task[task] = {"title": result["title"], "pairs": per_pair}
        out[backend] = per_task
    return out


def markdown(result: dict[str, Any]) -> str:
    """The comparison as a page: per backend, one row per task and ODM."""
    lines = [
        f"# Before and after ({result['mode']})",
        "",
        f"Before: library at `{result['before'][:12]}`; after: `{result['after'][:12]}`; "
        f"the same benchmark (`stress/odm` at the after commit) for both, {result['rounds']} "
        f"rounds per side, alternating; started {result['started']}, {result['seconds']:.0f} s; "
        f"load average {result['machine']['loadavg']} at the start and "
        f"{result['machine']['loadavg_end']} at the end.",
        "",
        "Each figure is the median over the rounds of the wrapped/native ratio measured in one "
        "process (native and wrapped interleaved); **change** is after / before (below 1 is "
        "faster than before); round trips are per operation, before → after.",
    ]
    for backend, tasks in result["backends"].items():
        lines += [
            "",
            f"## {backend}",
            "",
            "| task | ODM | before | after | **change** | wrapped ms before → after "
            "| round trips before → after |",
            "|---|---|---|---|---|---|---|",
        ]
        for task in tasks.values():
            for pair, row in task["pairs"].items():
                b, a = row["before"], row["after"]
                wrapped, native = pair.split("/")
                odm = native if wrapped.startswith("privata") else f"{wrapped} (no privata code)"
                lines.append(
                    f"| {task['title']} | {odm} | {b['ratio']:.2f}{TIMES} "
                    f"| {a['ratio']:.2f}{TIMES} | **{row['change']:.2f}** "
                    f"| {b['wrapped_ms']:.3f} → {a['wrapped_ms']:.3f} "
                    f"| {b['round_trips']:.2f} → {a['round_trips']:.2f} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stress.odm.before_after", description=__doc__)
    parser.add_argument("--before", required=True, help="commit of the library before")
    parser.add_argument("--after", default="HEAD", help="commit of the library after (HEAD)")
    parser.add_argument("--quick", action="store_true", help="the benchmark's quick counts")
    parser.add_argument("--smoke", action="store_true", help="tiny counts (tests)")
    parser.add_argument(
        "--backend", action="append", choices=("mongomock", "ferretdb"), help="repeatable"
    )
    parser.add_argument("--rounds", type=int, default=3, help="benchmark processes per side")
    parser.add_argument("--out", type=Path, help="results stem")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    before, after = resolve(args.before), resolve(args.after)
    backends = args.backend or ["mongomock", "ferretdb"]
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    started = datetime.datetime.now(datetime.timezone.utc)
    load = machine()
    rounds: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="before-after-") as scratch:
        trees = prepare(before, after, Path(scratch))
        for number in range(args.rounds):
            order = SIDES if number % 2 == 0 else SIDES[::-1]
            for side in order:
                print(f"round {number + 1}/{args.rounds}: {side}", flush=True)
                stem = trees[side] / "stress" / "results" / f"round-{number}"
                rounds[side].append(run_side(trees[side], stem, mode, backends))
    result = {
        "mode": mode,
        "before": before,
        "after": after,
        "rounds": args.rounds,
        "started": started.isoformat(timespec="seconds"),
        "seconds": (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds(),
        "machine": {**load, "loadavg_end": machine()["loadavg"]},
        "backends": compare(rounds),
        "raw": rounds,
    }
    stem = args.out or ROOT / "stress" / "results" / f"before-after-{mode}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {stem.with_suffix('.md')}")


if __name__ == "__main__":
    main()

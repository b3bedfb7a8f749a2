"""Results as JSON, a Markdown table (ratios first) and a plot of the ratios."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stress.odm.alternatives import PAIRS

TARGETS = {
    "insert_one": 2.0,
    "get_by_id": 1.5,
    "get_by_id_cold": 3.0,
    "list_100": 1.5,
    "list_1000": 1.5,
    "update_identity": 2.5,
    "clinical_only": 1.05,
    "find_by_email": 1.5,
}
"""The issue's targets, wrapped / native (the same backend, the same run)."""


def _ms(result: dict[str, Any], name: str) -> str:
    return f"{result['alternatives'][name]['median_per_op_ms']:.3f}"


def _trips(result: dict[str, Any], a: str, b: str) -> str:
    def fmt(x: float) -> str:
        return f"{x:.0f}" if x == int(x) else f"{x:.2f}"

    alts = result["alternatives"]
    return f"{fmt(alts[a]['round_trips_per_op'])} → {fmt(alts[b]['round_trips_per_op'])}"


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    load = ", ".join(f"{x:.2f}" for x in machine["loadavg"])
    end = ", ".join(f"{x:.2f}" for x in machine.get("loadavg_end", machine["loadavg"]))
    cache = results.get("cache")
    lines = [
        f"# ODM benchmark ({results['mode']}{', cache ' + cache if cache else ''})",
        "",
        f"Commit `{results['commit'][:12]}`{' (tree dirty)' if results['dirty'] else ''}, "
        f"started {results['started']}, {results['seconds']:.0f} s; {machine['cpus']} CPUs, "
        f"load average {load} at the start and {end} at the end.",
    ]
    if machine["shared"]:
        lines += [
            "",
            "**The machine was shared** (load average above half the CPUs): absolute times are "
            "noisy; the ratios are measured interleaved, so both sides of each took the same "
            "noise.",
        ]
    lines += [
        "",
        f"Iterations per task: {results['counts']['iterations']}; the score of each alternative "
        "is its median iteration; times below are median ms per operation; ratios are the "
        "medians' ratio; round trips are per operation (collection operations on mongomock, "
        "wire commands on a server), baseline → measured.",
    ]
    header = (
        "| task | ops | mongoengine | privata.mongoengine | **ratio** | beanie | privata.beanie | "
        "**ratio** | pymongo | pymongo+csfle | **ratio** | round trips me | beanie | pymongo |"
    )
    for backend, tasks in results["backends"].items():
        lines += ["", f"## {backend}", "", header, "|" + "---|" * 14]
        for result in tasks.values():
            cells = [result["title"], str(result["ops_per_iteration"])]
            for a, b in PAIRS:
                ratio = result["ratios"][f"{b}/{a}"]
                cells += [_ms(result, a), _ms(result, b), f"**{ratio:.2f}\u00d7**"]
            cells += [_trips(result, a, b) for a, b in PAIRS]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "MB/s (medians, 10^6 bytes of BSON documents per second):", ""]
        lines += ["| task | " + " | ".join(n for pair in PAIRS for n in pair) + " |"]
        lines += ["|---|" + "---|" * 6]
        for name, result in tasks.items():
            rates = [result["alternatives"][n]["stats"]["mb_per_s"] for pair in PAIRS for n in pair]
            lines.append(
                f"| {name} | " + " | ".join(f"{r:.3g}" if r else "-" for r in rates) + " |"
            )
    lines += ["", "## The issue's targets (wrapped / native)", ""]
    lines += [
        "| task | target | "
        + " | ".join(
            f"{odm} {backend}"
            for backend in results["backends"]
            for odm in ("mongoengine", "beanie")
        )
        + " |"
    ]
    lines += ["|---|---|" + "---|" * (2 * len(results["backends"]))]
    for task, target in TARGETS.items():
        cells = []
        for tasks in results["backends"].values():
            if task not in tasks:
                cells += ["-", "-"]
                continue
            for a, b in PAIRS[:2]:
                ratio = tasks[task]["ratios"][f"{b}/{a}"]
                cells.append(f"{ratio:.2f}\u00d7 {'holds' if ratio <= target else 'missed'}")
        lines.append(f"| {task} | ≤ {target}\u00d7 | " + " | ".join(cells) + " |")
    if cache:
        lines += [
            "",
            f"## Cache hit rate ({cache})",
            "",
            "| task | " + " | ".join(results["backends"]) + " |",
        ]
        lines += ["|---|" + "---|" * len(results["backends"])]
        for task in TARGETS:
            rates = [
                f"{tasks[task]['cache']['hit_rate']:.0%} of "
                f"{tasks[task]['cache']['hits'] + tasks[task]['cache']['misses']}"
                if task in tasks
                else "-"
                for tasks in results["backends"].values()
            ]
            lines.append(f"| {task} | " + " | ".join(rates) + " |")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> bool:
    """A bar chart of the ratios per task and backend; ``False`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    backends = list(results["backends"])
    figure, axes = plt.subplots(len(backends), 1, figsize=(12, 4.5 * len(backends)), squeeze=False)
    for axis, backend in zip(axes[:, 0], backends, strict=True):
        tasks = results["backends"][backend]
        names = list(tasks)
        width = 0.8 / len(PAIRS)
        for k, (a, b) in enumerate(PAIRS):
            values = [tasks[n]["ratios"][f"{b}/{a}"] for n in names]
            axis.bar([i + k * width for i in range(len(names))], values, width, label=f"{b} / {a}")
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_xticks([i + width for i in range(len(names))], names, rotation=30, ha="right")
        axis.set_yscale("log")
        axis.set_ylabel("median ratio (log)")
        axis.set_title(f"{backend}: measured / baseline, commit {results['commit'][:10]}")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write(results: dict[str, Any], stem: Path) -> list[Path]:
    """``stem``.json, ``stem``.md and (with matplotlib) ``stem``.png."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = [stem.with_suffix(".json"), stem.with_suffix(".md")]
    written[0].write_text(json.dumps(results, indent=1, default=str) + "\n")
    written[1].write_text(markdown(results))
    if plot(results, stem.with_suffix(".png")):
        written.append(stem.with_suffix(".png"))
    return written

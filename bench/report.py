"""The figures: targets, the printed table, the machine, the chart."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

# Key: (comparison, target). Ratios must reach their target, durations stay under theirs.
TARGETS: dict[str, tuple[str, float]] = {
    "p1_overhead_uvicorn": (">=", 0.99),
    "p2_runasgi_vs_daphne": (">=", 0.98),
    "p3_aiohttp_shared_vs_per_request": (">=", 1.4),
    "p3_httpx_shared_vs_per_request": (">=", 8.0),
    "p3_lifespan_vs_global": (">=", 0.98),
    "p6_clients_vs_state_key": (">=", 0.99),
    "p6_clients_vs_global": (">=", 0.99),
    "p7_request_threads_vs_django": (">=", 1.5),
    "p8_aiohttp_shared_vs_per_request_threads": (">=", 1.4),
    "p8_httpx_shared_vs_per_request_threads": (">=", 8.0),
    "p4_startup_ms_100_receivers": ("<=", 60.0),
    "p5_sigterm_exit_ms": ("<=", 1000.0),
    "p5_sigterm_exit_ms_lifespan_daphne": ("<=", 1000.0),
    "p9_lifespan_daphne_vs_daphne": (">=", 0.98),
    # bench/one_hop.py; p10 is a ratio of CPU per request (lower is better)
    "p7_one_hop_vs_django": (">=", 4.0),
    "p10_cpu_one_hop_vs_wsgi": ("<=", 2.0),
    "p11_one_hop_vs_gthread": (">=", 1.25),
    "p12_async_upstream_vs_gthread": (">=", 1.5),
}


@dataclass
class Row:
    """One line of the table: A and B (req/s, or ms for p5), the figure, and the CPU view."""

    key: str
    value: float
    a: str = ""
    b: str = ""
    by_cpu: float | None = None  # the same ratio from the servers' CPU time per request


def cpu_ticks() -> tuple[int, int]:
    """The machine's CPU time so far, in ticks: stolen by the hypervisor, and in all."""
    fields = [int(field) for field in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return fields[7], sum(fields)


def met(key: str, value: float) -> bool | None:
    if key not in TARGETS:
        return None
    op, target = TARGETS[key]
    return value >= target if op == ">=" else value <= target


def print_table(rows: list[Row]) -> None:
    print(f"\n{'scenario':34} {'A':>9} {'B':>9} {'value':>8} {'target':>9}  met?  by CPU")
    for row in sorted(rows, key=lambda row: row.key):
        op, target = TARGETS.get(row.key, ("", 0.0))
        aim = f"{op} {target:g}" if op else "-"
        ok = {True: "yes", False: "NO", None: "-"}[met(row.key, row.value)]
        by_cpu = "" if row.by_cpu is None else f"{row.by_cpu:.2f}"
        print(f"{row.key:34} {row.a:>9} {row.b:>9} {row.value:8.2f} {aim:>9}  {ok:4}  {by_cpu}")


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    packages = ["django", "uvicorn", "daphne", "aiohttp", "httpx", "asgiref", "twisted"]
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": os.cpu_count(),
        "cpu": model[1] if model else platform.processor(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1],
        "packages": {name: version(name) for name in packages},
        "loadavg": os.getloadavg(),
    }


def draw_chart(results: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Durations (keys with "_ms") on the right; ratios, p10's of CPU among them, on the left.
    ms_keys = [key for key in TARGETS if "_ms" in key]
    ratio_keys = [key for key in TARGETS if key not in ms_keys]
    ratio_keys.append("sample_home_runasgi_vs_uvicorn")
    colors = {True: "tab:green", False: "tab:red", None: "tab:gray"}
    figure, axes = plt.subplots(1, 2, figsize=(12, 5), width_ratios=[3, 1])
    for ax, keys, label, fmt in (
        (axes[0], ratio_keys, "ratio of req/s (A / B), log scale", "%.2f"),
        (axes[1], ms_keys, "milliseconds", "%.0f"),
    ):
        values = [results[key] for key in keys]
        bars = ax.bar(keys, values, color=[colors[met(key, results[key])] for key in keys])
        ax.bar_label(bars, fmt=fmt, label_type="center", color="white", fontweight="bold")
        for index, key in enumerate(keys):
            if key in TARGETS:
                ax.hlines(
                    TARGETS[key][1], index - 0.45, index + 0.45, colors="black", linestyles="--"
                )
        ax.set_ylabel(label)
        ax.tick_params(axis="x", labelrotation=35)
        plt.setp(ax.get_xticklabels(), ha="right")
    axes[0].set_yscale("log")
    axes[0].set_ylim(0.5, max(20.0, *(results[key] * 1.5 for key in ratio_keys)))
    axes[0].set_yticks([0.5, 1, 1.4, 2, 4, 8, 16], ["0.5", "1", "1.4", "2", "4", "8", "16"])
    axes[0].minorticks_off()
    figure.suptitle(
        "lifespan_signals bench: green = target met, red = missed, dashes = target "
        f"({os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')})"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def median_ratio(a: list[float], b: list[float]) -> float:
    """The median of the per-round ratios a/b."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def load_average(note: str) -> tuple[float, float, float]:
    """The load average now, printed with a warning when it is above one per core (figures
    quoted from such a run are not a quiet machine's)."""
    load = os.getloadavg()
    cores = os.cpu_count() or 1
    warning = f"  WARNING: load above one per core ({cores})" if load[0] > cores else ""
    print(f"  load average {note}: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}{warning}", flush=True)
    return load

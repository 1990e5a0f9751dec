"""Shared by the benchmarks: percentiles, the machine's description, doc/benchmarks.md,
the daemons' options a run sets (``--set``)."""

from __future__ import annotations

import datetime
import os
import pathlib
import platform
import re
import statistics
import subprocess
from collections.abc import Iterable
from typing import Any

DOC = pathlib.Path(__file__).resolve().parent.parent / "doc" / "benchmarks.md"
HEADER = """# Benchmarks

Each section is written by the benchmark named in it (`make bench` runs them
all) and says when and on what machine it was measured. Figures from one
section were measured side by side in one run; compare across sections with
care, these machines are noisy.
"""


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def latency_table(rows: list[tuple[str, list[float]]], *, decimals: int = 0) -> str:
    lines = [
        "| measured | n | p50 (ms) | p99 (ms) | mean (ms) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, samples in rows:
        lines.append(
            f"| {label} | {len(samples)} | {percentile(samples, 50) * 1000:.{decimals}f} | "
            f"{percentile(samples, 99) * 1000:.{decimals}f} | "
            f"{statistics.fmean(samples) * 1000:.{decimals}f} |"
        )
    return "\n".join(lines) + "\n"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A table of text cells; every column but the first two right-aligned."""
    align = ["---" if i < 2 else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    named = subprocess.run(["named", "-v"], capture_output=True, text=True, check=False).stdout
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, {named.strip() or 'named not found'}"
    )


def write_section(key: str, title: str, body: str) -> None:
    """Replace (or add) one benchmark's section of doc/benchmarks.md."""
    text = DOC.read_text() if DOC.exists() else HEADER
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- {key} -->\n## {title}\n\nMeasured {stamp} on {machine()}.\n\n{body}\n<!-- /{key} -->"
    )
    pattern = re.compile(rf"<!-- {key} -->.*?<!-- /{key} -->", re.S)
    text = (
        pattern.sub(lambda _: section, text)
        if pattern.search(text)
        else text + "\n" + section + "\n"
    )
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)


def apply_settings(conf: dict[str, dict[str, Any]], settings: Iterable[str]) -> None:
    """Add to ``conf`` (section -> option -> value) each ``--set section.option=value``."""
    for setting in settings:
        name, _, value = setting.partition("=")
        section, _, option = name.partition(".")
        if not (section and option and value):
            raise SystemExit(f"--set {setting}: give it as section.option=value")
        conf.setdefault(section, {})[option] = value

"""Write one section of benchmarks/RESULTS.md, leaving the other sections as they are."""

from __future__ import annotations

import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = (
    "# Benchmark results\n\nEach section says the command that produced it. "
    "Times are wall seconds on the machine named.\n"
)


def machine_line() -> str:
    """CPU model, cores and Python, for the record."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(__import__("os").sched_getaffinity(0))
    return f"{cpu}, {cores} cores, Python {platform.python_version()}"


def versions(*names: str) -> str:
    out = []
    for name in names:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(out)


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        return "?"


def section_commit(title: str) -> str | None:
    """The commit named in the header of the section ``## title`` of RESULTS.md, if any."""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    match = re.search(rf"^## {re.escape(title)}(?: \(partial: [^)\n]*\))?\n\s*Command: `[^`]*` "
                      r"\(commit (\w+)", text, re.M)
    return match.group(1) if match else None


def write_section(title: str, body: str, partial: str | None = None) -> None:
    """Replace the section headed ``## title`` (or append it). ``partial`` (e.g. ``"1 of 4
    rows"``) marks the heading ``## title (partial: 1 of 4 rows)``; a marked section is
    replaced like an unmarked one, so the final write removes the mark."""
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    heading = f"## {title}" + (f" (partial: {partial})" if partial else "")
    block = f"{heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}(?: \(partial: [^)\n]*\))?\n.*?(?=^## |\Z)",
                         re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: block + "\n", text)
    else:
        text = text.rstrip() + "\n\n" + block
    RESULTS.write_text(text.rstrip() + "\n")

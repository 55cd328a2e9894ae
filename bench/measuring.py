"""What every benchmark measures the same way: the rest of the machine's load, the code under
test, and how figures are summarised. One copy, so the benchmarks' figures mean the same thing.

Linux only (/proc), as the project's machine is.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BUSY_CORES = 0.25  # other processes using more than this during a measurement make it suspect


def machine_busy_s() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (idle, iowait and steal excluded)."""
    try:
        with open("/proc/stat") as fh:
            user, nice, system, _idle, _iowait, irq, softirq = map(int, fh.readline().split()[1:8])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process pid has used so far; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def wait_quiet(limit_s: float) -> None:
    """Wait (up to limit_s) until other processes use less than BUSY_CORES, sampled over 2 s."""
    if limit_s <= 0:
        return
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = machine_busy_s()
        if before is None:
            return
        time.sleep(2)
        if (machine_busy_s() - before) / 2 < BUSY_CORES:
            return
    print(f"  (the machine stayed busy for {limit_s:.0f} s; measuring anyway)", flush=True)


def code_version(*paths: str) -> str:
    """The commit under test, +dirty when any of paths (folders of the project) differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    """'median (min–max)' of repeated runs; the median alone for one."""
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}\u2013{fmt.format(max(values))})"


def pct(xs: list[float], p: float) -> float:
    """The p-quantile (0..1) of xs, linearly interpolated."""
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def free_port() -> int:
    """A port free on 127.0.0.1 now (a server started straight after takes it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

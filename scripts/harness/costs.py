"""What a process costs: peak memory, CPU time, and the CPU other processes use on a shared machine."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident set size of a live process (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a live process, its threads included."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return float("nan")
    return float(times.user + times.system)


class LoadMeter:
    """CPU used on this machine by processes outside this run, in CPUs: the machine may be shared."""

    def sample(self) -> tuple[float, float, float]:
        """(monotonic time, busy CPU seconds of the machine, CPU seconds of this process and its children)."""
        busy = sum(psutil.cpu_times()[:3])  # user, nice, system
        me = psutil.Process()
        own = sum(me.cpu_times()[:4])
        for child in me.children(recursive=True):
            try:
                own += sum(child.cpu_times()[:2])
            except psutil.Error:
                pass
        return time.monotonic(), busy, own

    @staticmethod
    def foreign(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
        """CPUs used by others between samples ``a`` and ``b``."""
        return max(0.0, (b[1] - a[1]) - (b[2] - a[2])) / max(1e-9, b[0] - a[0])


def cpus() -> int:
    """CPUs of this machine."""
    return os.cpu_count() or 1

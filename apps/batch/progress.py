"""Telling people how far a job is: a progress bar on a terminal, log lines otherwise.

A bar full of carriage returns makes a mess of a log file (cron, systemd, a CI log), so
the bar appears only when the output is a terminal; elsewhere a plain line every few
seconds says the same: how much is done, how fast, and how long is left.
"""

import sys
import time


class Progress:
    """Progress through ``total`` bytes of input, with the rows scored so far."""

    def __init__(self, total: int, stream=None, every: float = 5.0):
        self.stream = stream or sys.stderr
        self.total, self.every = max(total, 1), every
        self.position = self.rows = self.skipped = 0
        self.started = self.last = time.monotonic()
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=self.stream,
                desc="scoring",
            )

    def skip(self, size: int) -> None:
        """Count input that an earlier run already scored (it adds no rows per second)."""
        self.position += size
        self.skipped += size
        if self.bar is not None:
            self.bar.update(size)

    def advance(self, size: int, rows: int) -> None:
        """``size`` more bytes of input done, holding ``rows`` rows."""
        self.position += size
        self.rows += rows
        now = time.monotonic()
        speed = self.rows / max(now - self.started, 1e-9)
        if self.bar is not None:
            self.bar.set_postfix_str(f"{speed:,.0f} rows/s", refresh=False)
            self.bar.update(size)
        elif now - self.last >= self.every:
            self.last = now
            left = (
                (now - self.started)
                * (self.total - self.position)
                / max(self.position - self.skipped, 1)
            )
            print(
                f"scoring: {self.position / self.total:.0%} of the input, {self.rows:,} rows, "
                f"{speed:,.0f} rows/s, about {left:.0f} s left",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def peak_memory_mib() -> float | None:
    """The most memory (resident set) this process has used so far, in MiB.

    On Linux from ``VmHWM``: ``getrusage`` would also count the process that started
    this one, whose peak survives ``exec``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        try:
            import psutil
        except ImportError:
            return None
        return psutil.Process().memory_info().peak_wset / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS

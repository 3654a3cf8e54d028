"""A one-line progress bar on stderr for long work (only when stderr is a terminal)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, what: str, total: int, width: int = 30) -> None:
        self.what, self.total, self.width = what, max(total, 1), width
        self.count, self.start = 0, time.monotonic()
        self.live = sys.stderr.isatty()

    def step(self, note: str = "") -> None:
        self.count += 1
        if self.live:
            filled = self.width * self.count // self.total
            bar = "#" * filled + "." * (self.width - filled)
            elapsed = time.monotonic() - self.start
            sys.stderr.write(f"\r{self.what} [{bar}] {self.count}/{self.total} {elapsed:.0f}s {note}\x1b[K")
            sys.stderr.flush()

    def done(self) -> None:
        if self.live:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()

"""A small progress bar for long runs (stderr; a plain line per item when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


class Progress:
    """Wrap an iterable and report progress: ``for x in Progress(items, "analysing"): ...``.

    ``set_postfix(text)`` shows the current item's name or outcome; ``step()`` and ``close()``
    drive it by hand.
    """

    def __init__(self, items: Iterable[T], label: str, *, total: int | None = None, stream=None,
                 enabled: bool = True):
        self.items = items
        self.label = label
        self.total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.postfix = ""
        self.n = 0
        self.t0 = time.monotonic()

    def set_postfix(self, text: str) -> None:
        self.postfix = text
        self._draw()

    def _draw(self, final: bool = False) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.t0
        if self.total:
            frac = self.n / self.total
            bar = "#" * int(24 * frac) + "-" * (24 - int(24 * frac))
            eta = elapsed / self.n * (self.total - self.n) if self.n else 0.0
            line = f"{self.label} [{bar}] {self.n}/{self.total} {elapsed:5.1f}s eta {eta:5.1f}s {self.postfix}"
        else:
            line = f"{self.label} {self.n} {elapsed:5.1f}s {self.postfix}"
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(160) + ("\n" if final else ""))
        elif final or self.postfix:
            self.stream.write(line + "\n")
        self.stream.flush()

    def step(self, postfix: str = "") -> None:
        """Count one item done (for work that is not a simple loop, e.g. futures as they complete)."""
        self.n += 1
        self.postfix = postfix or self.postfix
        self._draw()

    def close(self) -> None:
        self.postfix = "done"
        self._draw(final=True)

    def __iter__(self) -> Iterator[T]:
        for item in self.items:
            yield item
            self.n += 1
            self._draw()
        self.postfix = "done"
        self._draw(final=True)

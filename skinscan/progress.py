"""Progress of long runs on stderr: a tqdm bar that fits the terminal, or plain lines when stderr is not one."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

from .discover import printable

T = TypeVar("T")

#: Plain lines (stderr not a terminal: a log file, a CI run) come at most this often, and at the end.
PLAIN_EVERY_S = 10.0


class Progress:
    """Wrap an iterable and report progress: ``for x in Progress(items, "analysing"): ...``.

    In a terminal the bar is tqdm's, as wide as the terminal (resized with it) and redrawn in place;
    otherwise a plain line every :data:`PLAIN_EVERY_S` seconds and one at the end, so a log reads
    like a log. ``step(name)`` and ``close()`` drive it by hand (futures as they complete).
    """

    def __init__(self, items: Iterable[T], label: str, *, total: int | None = None, stream=None,
                 enabled: bool = True):
        self.items = items
        self.label = label
        self.total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.n = 0
        self.t0 = time.monotonic()
        self._last_line = self.t0
        self._closed = False
        self._bar = None
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        if enabled and tty:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=label, file=self.stream, dynamic_ncols=True, leave=True,
                             unit="photo" if label == "analysing" else "it", mininterval=0.2)

    def step(self, postfix: str = "") -> None:
        """Count one item done; ``postfix`` names it (escaped for the terminal).

        Parameters
        ----------
        postfix : str
            The item's name, shown after the bar (its last 40 characters); not shown without a
            terminal, where a plain line with the count is written every 10 s at most instead.
        """
        self.n += 1
        if not self.enabled:
            return
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix_str(printable(postfix)[-40:], refresh=False)
            self._bar.update(1)
        elif time.monotonic() - self._last_line >= PLAIN_EVERY_S:
            self._line()

    def _line(self) -> None:
        self._last_line = time.monotonic()
        of = f"/{self.total}" if self.total else ""
        self.stream.write(f"{self.label}: {self.n}{of} ({self._last_line - self.t0:.0f} s)\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar (once): the bar's last state stays on screen, or one final plain line."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            self._line()

    def __iter__(self) -> Iterator[T]:
        for item in self.items:
            yield item
            self.step()
        self.close()

"""A progress callback drawing a tqdm bar on stderr, shared by the CLI and ``vltools demo``.

Kept import-light (tqdm is imported on first report) so ``vltools list`` stays fast.
"""

from __future__ import annotations

import sys
from typing import Any


class TqdmProgress:
    """Progress callback ``(done, total, note)`` drawing one tqdm bar per call on stderr."""

    def __init__(self, label: str, note_width: int = 60) -> None:
        self.label = label
        self.note_width = note_width
        self.bar: Any = None

    def __call__(self, done: float, total: float | None, note: str) -> None:
        from tqdm import tqdm

        if self.bar is None or (total is not None and self.bar.total != total):
            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=total, desc=self.label, file=sys.stderr, leave=False, dynamic_ncols=True)
        self.bar.n = done
        if note:
            self.bar.set_postfix_str(note[: self.note_width], refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

"""A progress bar for batches: tqdm's (terminal or notebook) when installed, else a line
on stderr that rewrites itself; nothing when disabled or when stderr is not a terminal
and tqdm is absent."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager


class _Plain:
    def __init__(self, total: int):
        self.total = total
        self.t0 = time.monotonic()
        self.shown = -1

    def update_to(self, done: int, failed: int, last: str):
        if done == self.shown:
            return
        self.shown = done
        rate = done / max(time.monotonic() - self.t0, 1e-9)
        msg = f"\raiaprep: {done}/{self.total} files ({failed} failed) {rate:.2f} files/s"
        sys.stderr.write(msg)
        sys.stderr.flush()

    def close(self):
        sys.stderr.write("\n")
        sys.stderr.flush()


class _Tqdm:
    def __init__(self, total: int):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="file", desc="aiaprep")
        self.n = 0

    def update_to(self, done: int, failed: int, last: str):
        if done != self.n:
            self.bar.update(done - self.n)
            self.n = done
            if failed:
                self.bar.set_postfix(failed=failed)

    def close(self):
        self.bar.close()


class _Off:
    def update_to(self, done: int, failed: int, last: str):
        pass

    def close(self):
        pass


@contextmanager
def progress_bar(total: int, enabled: bool = True):
    """A bar with ``update_to(done, failed, last_input)``."""
    bar = _Off()
    if enabled:
        try:
            bar = _Tqdm(total)
        except ImportError:
            bar = _Plain(total) if sys.stderr.isatty() else _Off()
    try:
        yield bar
    finally:
        bar.close()

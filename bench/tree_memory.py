"""Peak resident memory of a process tree, sampled while it runs (for the benchmarks)."""

from __future__ import annotations

import threading
import time

import psutil


class PeakTreeRss:
    """``with PeakTreeRss(pid) as peak: ...; peak.mib`` — the largest sum of RSS over the
    process ``pid`` (unless ``include_root`` is false) and all its descendants."""

    def __init__(self, pid: int, include_root: bool = True, interval: float = 0.1) -> None:
        self.pid, self.include_root, self.interval = pid, include_root, interval
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def mib(self) -> float:
        return self.peak / 2**20

    def _sample(self) -> None:
        while not self._done.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = root.children(recursive=True) + ([root] if self.include_root else [])
            except psutil.NoSuchProcess:
                return
            total = 0
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self) -> PeakTreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

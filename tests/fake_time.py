"""A clock and sleep that only move when a test sleeps: the follow loops' time without waiting."""

from __future__ import annotations


class FakeTime:
    """``clock``/``sleep`` for code that takes both; ``sleeps`` lists every sleep asked for."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

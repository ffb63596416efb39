"""Class balancing for one binary label: deterministic downsampling of the majority."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BalancePlan:
    """How many rows of each class to keep. ``fractions`` maps class value → sampling
    fraction (1.0 = keep all)."""

    negatives: int
    positives: int
    fractions: dict[int, float]


def plan_balance(negatives: int, positives: int, ratio: float) -> BalancePlan:
    """Keep every minority row and at most ``ratio`` majority rows per minority row.

    ``ratio <= 0`` disables balancing. Pure: the job samples with Spark's ``sampleBy``
    and a fixed seed, so the same data and seed give the same rows.
    """
    if ratio < 0:
        raise ValueError(f"balance ratio {ratio} is negative: use 0 (off) or a value >= 1")
    if ratio == 0 or negatives == 0 or positives == 0:
        return BalancePlan(negatives, positives, {0: 1.0, 1: 1.0})
    majority, minority = (0, 1) if negatives >= positives else (1, 0)
    n_major, n_minor = max(negatives, positives), min(negatives, positives)
    keep = min(1.0, ratio * n_minor / n_major)
    return BalancePlan(negatives, positives, {majority: keep, minority: 1.0})

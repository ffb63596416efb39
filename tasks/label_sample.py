"""One label's training and validation rows, cut from a batch's collected frame.

A batch job collects the dataset once (features, every label of the batch, the
validation flag) and then, per label, checks the label, balances the classes and splits
the rows here, in pandas: no Spark action per label. Pure (pandas and numpy only), so
it is tested without a JVM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tasks.balance import plan_balance
from tasks.engines.base import LABEL_COL
from tasks.row_hash import hash_order, label_draws

VALIDATION_COL = "__validation__"
#: The collected frame's column holding each row's ``xxhash64`` of all the dataset's
#: columns: the validation flag and each label's class-balancing draws come from it.
HASH_COL = "__row_hash__"


class JobInputError(RuntimeError):
    """Bad input found inside the job (missing column, single-class label, …)."""


@dataclass(frozen=True)
class Minimums:
    """Rows a label needs to be trained (``[fanout]`` settings, sent in the job spec):
    of each class among the training rows (before balancing), and of each class among
    the validation rows when there are any (``--test-fraction`` above 0)."""

    positives: int = 10
    negatives: int = 10
    validation_per_class: int = 1
    #: Warn when more than this share of a label's rows is null (they are left out).
    null_warning_share: float = 0.1

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Minimums:
        given = spec.get("label_minimums") or {}
        return cls(**{k: given[k] for k in ("positives", "negatives", "validation_per_class", "null_warning_share") if k in given})


def check_binary(label: str, counts: dict[float, int], nulls: int = 0) -> dict[int, int]:
    """Rows per class (0/1) of a label, from counts per non-null value (``nulls``: its
    null rows); refuses a label holding another value, no value or only one class."""
    odd = sorted(v for v in counts if v not in (0.0, 1.0))
    if odd:
        raise JobInputError(f"label {label!r} is not binary (value {odd[0]!r} is not 0 or 1): labels must hold 0/1")
    per_class = {0: counts.get(0.0, 0), 1: counts.get(1.0, 0)}
    if per_class[0] == 0 and per_class[1] == 0:
        raise JobInputError(f"label {label!r} is empty: all {nulls} rows are null; drop it from --labels")
    if per_class[0] == 0 or per_class[1] == 0:
        only = 0 if per_class[1] == 0 else 1
        raise JobInputError(f"label {label!r} has only class {only} ({per_class[only]} rows, {nulls} null): "
                            "nothing to learn; drop it from --labels")
    return per_class


def check_counts(label: str, train: dict[int, int], validation: dict[int, int], minimums: Minimums) -> None:
    """Refuse a label with fewer rows of a class than ``minimums`` asks, naming the counts:
    a model of a handful of positives learns the base rate, and a validation set without
    both classes has no AUC."""
    short = []
    if train[1] < minimums.positives:
        short.append(f"training positives < [fanout] min_positives = {minimums.positives}")
    if train[0] < minimums.negatives:
        short.append(f"training negatives < [fanout] min_negatives = {minimums.negatives}")
    if validation[0] + validation[1] > 0:
        for cls, name in ((1, "positives"), (0, "negatives")):
            if validation[cls] < minimums.validation_per_class:
                short.append(f"validation {name} < [fanout] min_validation_per_class = {minimums.validation_per_class}")
    if short:
        raise JobInputError(f"label {label!r} has {train[1]} positive / {train[0]} negative training rows and "
                            f"{validation[1]} / {validation[0]} validation rows, too few to learn from: {'; '.join(short)}; "
                            "drop it from --labels or lower the minimum")


def null_warning(label: str, rows: dict[str, Any], minimums: Minimums) -> str | None:
    """The warning for a label with more null rows than ``minimums`` allows, else ``None``."""
    nulls, total = rows["null_labels"], rows["total"]
    if not total or nulls / total <= minimums.null_warning_share:
        return None
    return (f"label {label!r}: {nulls} of {total} rows ({nulls / total:.0%}) are null and were left out of training and "
            f"validation (above [fanout] null_label_warning = {minimums.null_warning_share})")


def row_counts(*, total: int, per_class: dict[int, int], before: dict[int, int], after: dict[int, int],
               validation: int) -> dict[str, Any]:
    """The row counts an artifact's metadata records, whichever path trained it."""
    return {
        "total": int(total),
        "labelled": per_class[0] + per_class[1],
        "null_labels": int(total) - per_class[0] - per_class[1],  # left out of training and validation
        "train_before_balancing": before[0] + before[1],
        "train_after_balancing": after[0] + after[1],
        "validation": int(validation),
        "class_counts_before_balancing": {"0": before[0], "1": before[1]},
        "class_counts_after_balancing": {"0": after[0], "1": after[1]},
    }


@dataclass
class LabelSample:
    train: Any  # pandas frame: LABEL_COL and the feature columns, balanced
    validation: Any  # pandas frame: LABEL_COL and the feature columns
    rows: dict[str, Any]  # row counts for the artifact's metadata


def _balanced(in_train: Any, values: Any, plan: Any, draw: Any) -> Any:  # noqa: ANN401 - numpy arrays
    """The training rows kept by the balancing ``plan``: each row whose draw falls under its class's fraction."""
    import numpy as np

    if plan.fractions == {0: 1.0, 1: 1.0}:
        return in_train
    return in_train & (draw < np.where(values == 1, plan.fractions[1], plan.fractions[0]))


def label_sample(frame: Any, label: str, label_column: str, features: list[str], balance_ratio: float,
                 seed: int, minimums: Minimums | None = None) -> LabelSample:
    """Split ``frame`` (collected once for the batch; ``label_column`` holds this label,
    ``VALIDATION_COL`` the row's split flag, ``HASH_COL`` its hash) into balanced training rows and validation
    rows. Unlabelled rows (null) are left out of both (and counted); a label with too
    few rows of a class (``minimums``) is refused."""
    import numpy as np

    y = frame[label_column]
    labelled = y.notna().to_numpy()
    values = y.to_numpy()
    valid_flag = frame[VALIDATION_COL].to_numpy(dtype=bool)
    unique, counts = np.unique(values[labelled], return_counts=True)
    per_class = check_binary(label, {float(v): int(c) for v, c in zip(unique, counts, strict=True)},
                             nulls=int(len(values) - np.count_nonzero(labelled)))

    in_train = labelled & ~valid_flag
    before = {c: int(np.count_nonzero(in_train & (values == c))) for c in (0, 1)}
    in_validation = labelled & valid_flag
    check_counts(label, before, {c: int(np.count_nonzero(in_validation & (values == c))) for c in (0, 1)},
                 minimums or Minimums())
    # Rows by their hash, not their position: the same rows, in the same order, whatever
    # order the part files were read in, by Spark or by pyarrow (tasks.local_frame).
    row_hash = frame[HASH_COL].to_numpy()
    order, copies = hash_order(row_hash)
    keep = _balanced(in_train, values, plan_balance(before[0], before[1], float(balance_ratio)),
                     label_draws(row_hash, copies, seed, label))
    after = {c: int(np.count_nonzero(keep & (values == c))) for c in (0, 1)}

    def part(mask: Any) -> Any:
        rows = order[mask[order]]
        out = frame[features].iloc[rows]
        return out.assign(**{LABEL_COL: values[rows].astype("float64")})

    rows = row_counts(total=len(values), per_class=per_class, before=before, after=after,
                      validation=np.count_nonzero(labelled & valid_flag))
    return LabelSample(train=part(keep), validation=part(labelled & valid_flag), rows=rows)

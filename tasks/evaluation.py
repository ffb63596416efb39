"""One metric set for every engine, from scikit-learn: pure functions of labels and scores.

Every engine hands the validation rows' labels and positive-class probabilities here, so
a LightGBM booster and a Spark MLlib model are judged by the same code. The decision
threshold is the one that maximises F1 on the validation rows themselves (ties: the
lowest such threshold); F1, precision and recall are reported at it. Values that are
undefined (AUC with one class present) are ``None``, which JSON keeps.
"""

from __future__ import annotations

import math
from typing import Any

#: Metrics where larger is better; the others (log-loss, Brier) are losses.
HIGHER_IS_BETTER = {"auc_roc": True, "auc_test": True, "average_precision": True, "f1": True, "precision": True,
                    "recall": True, "log_loss": False, "brier": False}
#: Metrics a search can rank by; the default ranks.
RANKABLE = ("auc_roc", "average_precision", "log_loss", "brier", "f1")
DEFAULT_METRIC = "auc_roc"
#: The metrics that tables (leaderboard, report) show, in their order (``auc_test`` is
#: ``auc_roc`` under metadata format 1's name; ``rows_train`` is in metadata.json only).
METRIC_COLUMNS = ("auc_roc", "average_precision", "log_loss", "brier", "f1", "precision", "recall", "threshold",
                  "positives_train", "positives_validation", "rows_validation")
CURVE_POINTS = 200
CURVES_FILE = "curves.json"
_EPS = 1e-15


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def best_f1_threshold(y_true: Any, scores: Any) -> float:
    """The score threshold (predict positive when ``score >= threshold``) with the best F1
    on these rows; 0.5 when there is no positive row."""
    import numpy as np
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y_true, dtype=int)
    if y.sum() == 0:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y, np.asarray(scores, dtype=float))
    p, r = precision[:-1], recall[:-1]  # the last point has no threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return float(thresholds[int(np.argmax(f1))])


def binary_metrics(y_true: Any, scores: Any, *, train_counts: tuple[int, int] | None = None) -> dict[str, float | int | None]:
    """AUC-ROC, average precision, log-loss, Brier score, and F1/precision/recall at the
    validation-chosen threshold, plus validation rows and positives (and the training
    rows' ``(rows, positives)`` when given). ``scores`` are probabilities of class 1."""
    import numpy as np
    from sklearn.metrics import (
        average_precision_score,
        brier_score_loss,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y = np.asarray(y_true, dtype=int)
    s = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
    out: dict[str, float | int | None] = {"rows_validation": int(len(y)), "positives_validation": int(y.sum())}
    if train_counts is not None:
        out.update(rows_train=int(train_counts[0]), positives_train=int(train_counts[1]))
    if len(y) == 0:
        return out
    both_classes = 0 < y.sum() < len(y)
    auc = _finite(roc_auc_score(y, s)) if both_classes else None
    threshold = best_f1_threshold(y, s)
    predicted = (s >= threshold).astype(int)
    out.update(
        auc_roc=auc,
        auc_test=auc,  # the name metadata format 1 used; same value
        average_precision=_finite(average_precision_score(y, s)) if y.sum() > 0 else None,
        log_loss=_finite(log_loss(y, np.clip(s, _EPS, 1 - _EPS), labels=[0, 1])),
        brier=_finite(brier_score_loss(y, s, pos_label=1)),
        threshold=threshold,
        f1=_finite(f1_score(y, predicted, zero_division=0)),
        precision=_finite(precision_score(y, predicted, zero_division=0)),
        recall=_finite(recall_score(y, predicted, zero_division=0)),
    )
    return out


def _thin(n: int, max_points: int) -> list[int]:
    """At most ``max_points`` indices out of ``range(n)``, evenly spread, ends kept."""
    if n <= max_points:
        return list(range(n))
    step = (n - 1) / (max_points - 1)
    return sorted({round(i * step) for i in range(max_points)})


def curves(y_true: Any, scores: Any, max_points: int = CURVE_POINTS) -> dict[str, dict[str, list[float]]]:
    """ROC and precision-recall curve points, each thinned to at most ``max_points``
    (first and last point kept), as plain lists for ``curves.json``. Empty when the
    rows hold one class only (neither curve is defined)."""
    import numpy as np
    from sklearn.metrics import precision_recall_curve, roc_curve

    y = np.asarray(y_true, dtype=int)
    s = np.asarray(scores, dtype=float)
    if not 0 < y.sum() < len(y):
        return {}
    fpr, tpr, roc_t = roc_curve(y, s)
    precision, recall, pr_t = precision_recall_curve(y, s)
    pr_t = np.append(pr_t, np.nan)  # the (recall 0, precision 1) end point has no threshold
    keep_roc, keep_pr = _thin(len(fpr), max_points), _thin(len(recall), max_points)

    def pick(values: Any, keep: list[int]) -> list[float | None]:
        return [_finite(values[i]) for i in keep]

    return {
        "roc": {"fpr": pick(fpr, keep_roc), "tpr": pick(tpr, keep_roc), "threshold": pick(roc_t, keep_roc)},
        "pr": {"recall": pick(recall, keep_pr), "precision": pick(precision, keep_pr), "threshold": pick(pr_t, keep_pr)},
    }

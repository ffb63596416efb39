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
    return _best_f1(*precision_recall_curve(y, np.asarray(scores, dtype=float)))


def _best_f1(precision: Any, recall: Any, thresholds: Any) -> float:
    import numpy as np

    p, r = precision[:-1], recall[:-1]  # the last point has no threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return float(thresholds[int(np.argmax(f1))])


def binary_metrics(y_true: Any, scores: Any, *, train_counts: tuple[int, int] | None = None) -> dict[str, float | int | None]:
    """AUC-ROC, average precision, log-loss, Brier score, and F1/precision/recall at the
    validation-chosen threshold, plus validation rows and positives (and the training
    rows' ``(rows, positives)`` when given). ``scores`` are probabilities of class 1."""
    return metrics_and_curves(y_true, scores, train_counts=train_counts)[0]


def metrics_and_curves(y_true: Any, scores: Any, *, train_counts: tuple[int, int] | None = None,
                       max_points: int = CURVE_POINTS) -> tuple[dict[str, float | int | None], dict[str, Any]]:
    """:func:`binary_metrics` and :func:`curves` from one ROC and one precision-recall
    curve (scikit-learn's): AUC is the ROC curve's area and average precision the PR
    curve's step sum, as ``roc_auc_score`` and ``average_precision_score`` compute them;
    the rest are counts at the threshold. A label's evaluation then costs two curve
    computations instead of ten metric calls, each with its own input checks."""
    import numpy as np
    from sklearn.metrics import auc as area
    from sklearn.metrics import precision_recall_curve, roc_curve

    y = np.asarray(y_true, dtype=int)
    s = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
    out: dict[str, float | int | None] = {"rows_validation": int(len(y)), "positives_validation": int(y.sum())}
    if train_counts is not None:
        out.update(rows_train=int(train_counts[0]), positives_train=int(train_counts[1]))
    if len(y) == 0:
        return out, {}
    positives = int(y.sum())
    both_classes = 0 < positives < len(y)
    roc = roc_curve(y, s) if both_classes else None
    pr = precision_recall_curve(y, s) if positives else None
    threshold = _best_f1(*pr) if pr is not None else 0.5
    predicted = s >= threshold
    tp, fp = int(np.count_nonzero(predicted & (y == 1))), int(np.count_nonzero(predicted & (y == 0)))
    fn = positives - tp
    p, auc = np.clip(s, _EPS, 1 - _EPS), _finite(area(roc[0], roc[1])) if roc is not None else None
    out.update(
        auc_roc=auc,
        auc_test=auc,  # the name metadata format 1 used; same value
        average_precision=_finite(-np.sum(np.diff(pr[1]) * pr[0][:-1])) if pr is not None else None,
        log_loss=_finite(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        brier=_finite(np.mean((s - y) ** 2)),
        threshold=threshold,
        f1=_finite(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0,
        precision=_finite(tp / (tp + fp)) if tp + fp else 0.0,
        recall=_finite(tp / positives) if positives else 0.0,
    )
    return out, (_curve_points(roc, pr, max_points) if both_classes else {})


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
    return _curve_points(roc_curve(y, s), precision_recall_curve(y, s), max_points)


def _curve_points(roc: Any, pr: Any, max_points: int) -> dict[str, dict[str, list[float]]]:
    import numpy as np

    fpr, tpr, roc_t = roc
    precision, recall, pr_t = pr
    pr_t = np.append(pr_t, np.nan)  # the (recall 0, precision 1) end point has no threshold
    keep_roc, keep_pr = _thin(len(fpr), max_points), _thin(len(recall), max_points)

    def pick(values: Any, keep: list[int]) -> list[float | None]:
        return [_finite(values[i]) for i in keep]

    return {
        "roc": {"fpr": pick(fpr, keep_roc), "tpr": pick(tpr, keep_roc), "threshold": pick(roc_t, keep_roc)},
        "pr": {"recall": pick(recall, keep_pr), "precision": pick(precision, keep_pr), "threshold": pick(pr_t, keep_pr)},
    }

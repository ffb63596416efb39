"""The report's figures as PNG bytes (matplotlib, no display needed)."""

from __future__ import annotations

import io
import statistics
from collections.abc import Sequence
from typing import Any

from pipeline.data.labels import natural_key

MAX_CURVES = 5  # lines per ROC/PR plot: the best, the worst and ranks between stand for all labels
MAX_SWEEP_LINES = 12  # labels drawn in the sweep's plot; every one is in its table
MAX_TICK_LABELS = 40  # more labels on an axis are drawn without their names
MAX_TIMELINE_ROWS = 60  # taller than this, the timeline's bars lose their names and stay 12 in. high
_STATUS_COLOURS = {"reused": "#66bb6a", "failed": "#c62828", "interrupted": "#ef6c00"}
_SUCCESS_COLOUR = "#2e7d32"  # any other status is a kind's success ("trained", "scored", ...)


def _figure(width: float, height: float) -> Any:
    import matplotlib  # here, not at import: every luigi command imports the flows, few draw

    matplotlib.use("Agg", force=True)  # files only: no display, works headless and in forked processes
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def roc_pr(curves: Sequence[tuple[str, dict[str, Any], float | None]]) -> bytes | None:
    """ROC and precision-recall of up to MAX_CURVES labels: ``(label, curves.json, auc)``."""
    drawn = [(label, c, auc) for label, c, auc in curves if c.get("roc") and c.get("pr")][:MAX_CURVES]
    if not drawn:
        return None
    fig = _figure(10, 4.2)
    roc_ax, pr_ax = fig.subplots(1, 2)
    for label, c, auc in drawn:
        name = f"{label} ({auc:.3f})" if isinstance(auc, (int, float)) else label
        roc_ax.plot(c["roc"]["fpr"], c["roc"]["tpr"], label=name, linewidth=1.3)
        pr_ax.plot(c["pr"]["recall"], c["pr"]["precision"], label=label, linewidth=1.3)
    roc_ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (AUC)", xlim=(0, 1), ylim=(0, 1.01))
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall", xlim=(0, 1), ylim=(0, 1.01))
    roc_ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def distributions(values: Sequence[tuple[str, Sequence[float]]], title: str) -> bytes | None:
    """One histogram per metric across labels (``(metric name, values)``), median marked:
    what a run of hundreds of labels did, at a glance."""
    shown = [(name, list(v)) for name, v in values if v]
    if not shown:
        return None
    columns = min(3, len(shown))
    rows = -(-len(shown) // columns)
    fig = _figure(3.6 * columns, 2.6 * rows)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (name, v) in zip(axes, shown, strict=False):
        ax.hist(v, bins=min(30, max(5, len(v) // 4)), color="#1565c0", alpha=0.8)
        median = statistics.median(v)
        ax.axvline(median, color="#c62828", linewidth=1)
        ax.set_title(f"{name} (median {median:.3f}, {len(v)} labels)", fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def trials(rows: Sequence[dict[str, Any]], metric: str) -> bytes | None:
    """Every trial's metric per label (dots), the best one circled."""
    labels = sorted({r["label"] for r in rows}, key=natural_key)
    points = [(labels.index(r["label"]), (r.get("metrics") or {}).get(metric), r.get("rank") == 1) for r in rows]
    points = [p for p in points if isinstance(p[1], (int, float))]
    if not points:
        return None
    fig = _figure(min(2 + 0.6 * len(labels), 12), 3.6)
    ax = fig.subplots()
    ax.scatter([p[0] for p in points], [p[1] for p in points], s=14, alpha=0.6, color="#1565c0", label="trial")
    best = [p for p in points if p[2]]
    ax.scatter([p[0] for p in best], [p[1] for p in best], s=70, facecolors="none", edgecolors="#c62828", label="best")
    if len(labels) <= MAX_TICK_LABELS:
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    else:
        ax.set_xlabel(f"{len(labels)} labels, in natural order")
    ax.set(ylabel=metric, title=f"{metric} of every trial, per label")
    ax.legend(fontsize=7)
    return _png(fig)


def sweep(rows: Sequence[dict[str, Any]], metric: str) -> bytes | None:
    """Metric against the number of features, one line per label, the chosen N marked."""
    by_label: dict[str, list[tuple[int, float, bool]]] = {}
    for r in rows:
        value = r.get("value", (r.get("metrics") or {}).get(metric))
        if isinstance(value, (int, float)) and isinstance(r.get("n"), int):
            by_label.setdefault(r["label"], []).append((r["n"], value, bool(r.get("chosen"))))
    if not by_label:
        return None
    fig = _figure(7, 4)
    ax = fig.subplots()
    for label, pts in sorted(by_label.items(), key=lambda item: natural_key(item[0]))[:MAX_SWEEP_LINES]:
        pts.sort()
        line = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, label=label)[0]
        ax.scatter([p[0] for p in pts if p[2]], [p[1] for p in pts if p[2]], s=80, facecolors="none",
                   edgecolors=line.get_color())
    ax.set(xlabel="features (top N)", ylabel=metric, title=f"{metric} against N (circled: the N chosen)")
    ax.legend(fontsize=7)
    return _png(fig)


def timeline(spans: Sequence[dict[str, Any]]) -> bytes | None:
    """Gantt-like bars, one per job: start-up lighter, colour by status."""
    if not spans:
        return None
    t0 = min(s["start"] for s in spans)
    fig = _figure(10, min(12.0, 1.2 + 0.32 * len(spans)))
    ax = fig.subplots()
    for i, s in enumerate(spans):
        colour = _STATUS_COLOURS.get(s["status"], _SUCCESS_COLOUR)
        ax.barh(i, s["end"] - s["start"], left=s["start"] - t0, color=colour, height=0.6)
        if s["startup"]:
            ax.barh(i, s["startup"], left=s["start"] - t0, color="white", alpha=0.45, height=0.6)
    if len(spans) <= MAX_TIMELINE_ROWS:
        ax.set_yticks(range(len(spans)), [s["job"] for s in spans], fontsize=8)
    else:
        ax.set_ylabel(f"{len(spans)} jobs, by start")
    ax.invert_yaxis()
    ax.set(xlabel="seconds since the first job started (lighter: start-up until the data was read)",
           title=f"jobs of run {spans[0]['run_id']}")
    return _png(fig)

"""One self-contained HTML page: tables, PNG figures embedded as data: URIs, a few
lines of inline script to sort tables. Opens offline; nothing is fetched."""

from __future__ import annotations

import base64
import html
import json
import statistics
import time
from collections.abc import Iterable, Sequence
from typing import Any

from pipeline.data.labels import natural_key
from pipeline.data.leaderboard import best_per_label
from pipeline.report import plots
from pipeline.report.collect import FEW_POSITIVES, WORST_N, RunData, curve_picks, job_spans, metric, needs_attention
from tasks.engines import EngineParamError, get_engine
from tasks.evaluation import DEFAULT_METRIC, METRIC_COLUMNS

#: Metrics whose spread across labels the overview plots (the others are counts and cut-offs).
DISTRIBUTED = ("auc_roc", "average_precision", "log_loss", "brier", "f1")

HEADERS = {"auc_roc": "AUC", "average_precision": "avg. precision", "log_loss": "log-loss", "brier": "Brier",
           "f1": "F1", "positives_train": "positives (train)", "positives_validation": "positives (val.)",
           "rows_validation": "rows (val.)"}

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}h3{font-size:1em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3;cursor:pointer;user-select:none}td.n{text-align:right;font-variant-numeric:tabular-nums}
.failed{color:#c62828}.muted{color:#777}code{font-size:.9em}img{max-width:100%}
"""
# Click a column header to sort by it (numbers as numbers); a second click reverses.
_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){
var t=th.closest('table'),b=t.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th);
var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
var rows=Array.prototype.slice.call(b.rows);rows.sort(function(x,y){
var a=x.cells[i].textContent.trim(),c=y.cells[i].textContent.trim(),na=parseFloat(a),nc=parseFloat(c);
var r=(!isNaN(na)&&!isNaN(nc))?na-nc:a.localeCompare(c);return asc?r:-r;});
rows.forEach(function(r){b.appendChild(r);});});});
"""


#: Marks a page as ours: Report replaces only a page that carries it.
GENERATOR_META = '<meta name="generator" content="spark-fanout">'


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return _esc(value)
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.0f}"
    return _esc(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[bool] | None = None,
          row_class: Sequence[str] | None = None) -> str:
    numeric = numeric or [False] * len(headers)
    out = ['<div style="overflow-x:auto"><table class="sortable"><thead><tr>', *(f"<th>{_esc(h)}</th>" for h in headers), "</tr></thead><tbody>"]
    for k, row in enumerate(rows):
        cls = f' class="{row_class[k]}"' if row_class and row_class[k] else ""
        cells = (f'<td class="n">{_num(v)}</td>' if n else f"<td>{_esc(v)}</td>" for v, n in zip(row, numeric, strict=True))
        out.append(f"<tr{cls}>{''.join(cells)}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def image(png: bytes | None, alt: str) -> str:
    if png is None:
        return f'<p class="muted">{_esc(alt)}: nothing to plot.</p>'
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _params(params: Any) -> str:
    return json.dumps(params, sort_keys=True, separators=(", ", ": ")) if params else "{}"


def _engine_description(name: str) -> str:
    """What the engine record says of itself; an engine this installation lacks says so."""
    try:
        return get_engine(name).description
    except EngineParamError:
        return "an engine not installed here"


def configuration_section(conf: Any) -> str:
    arts = conf.artifacts
    engine = conf.config.get("engine", arts[0].metadata.get("engine") if arts else "")
    params = conf.config.get("params", arts[0].metadata.get("params") if arts else {})
    parts = [f"<h2>Configuration <code>{_esc(conf.name)}</code></h2>",
             f"<p>engine <b>{_esc(engine)}</b> ({_esc(_engine_description(engine))}), parameters <code>{_esc(_params(params))}</code>, "
             f"{len(conf.config.get('features') or [])} features, {len(arts)} labels trained</p>"]
    if not arts:
        return "".join(parts)
    headers = ["label", *(HEADERS.get(m, m) for m in METRIC_COLUMNS), "seconds", "application", "artifact folder"]
    rows = [[a.label, *((a.metadata.get("metrics") or {}).get(m) for m in METRIC_COLUMNS),
             a.metadata.get("job_seconds", a.metadata.get("training_seconds")), a.metadata.get("application_id"),
             a.path.rstrip("/").rsplit("/", 1)[-1]]
            for a in arts]
    picks = curve_picks(arts, plots.MAX_CURVES)
    curves = [(a.label, a.curves, metric(a, DEFAULT_METRIC)) for a in picks]
    drawable = sum(1 for a in arts if a.curves.get("roc") and a.curves.get("pr"))
    parts.append(image(plots.roc_pr(curves), f"ROC and precision-recall curves of {len(picks)} of the {len(arts)} "
                                            f"labels of {conf.name}"))
    if len(picks) < drawable:
        parts.append(f'<p class="muted">Curves of {len(picks)} labels that stand for all {drawable}: the best, the '
                     "worst and evenly spaced ranks between by AUC; every label is in the table below.</p>")
    parts.append(table(headers, rows, [False] + [True] * (len(METRIC_COLUMNS) + 1) + [False, False]))
    return "".join(parts)


def overview_section(data: RunData) -> str:
    """What a run of hundreds of labels did at a glance: each metric's spread across
    labels per configuration, and the labels that need attention."""
    parts = ["<h2>Overview</h2>"]
    for conf in data.configurations:
        if not conf.artifacts:
            continue
        values = [(HEADERS.get(m, m), [v for a in conf.artifacts if (v := metric(a, m)) is not None]) for m in DISTRIBUTED]
        rows = [[name, len(v), min(v), statistics.median(v), max(v)] for name, v in values if v]
        parts.append(f"<h3>Configuration <code>{_esc(conf.name)}</code>: {len(conf.artifacts)} labels</h3>")
        parts.append(table(["metric", "labels", "min", "median", "max"], rows, [False, True, True, True, True]))
        parts.append(image(plots.distributions(values, f"{conf.name}: each metric across its labels"),
                           f"distribution of each metric across the {len(conf.artifacts)} labels of {conf.name}"))
    attention = needs_attention(data)
    parts.append("<h3>Labels that need attention</h3>")
    if not attention:
        parts.append("<p>None: no job failed or was stopped, and no label's metrics look degenerate.</p>")
        return "".join(parts)
    parts.append(f"<p>Failed or stopped jobs, trained labels with no AUC or fewer than {FEW_POSITIVES} positive "
                 f"validation rows, and the worst by AUC (up to {WORST_N} per configuration, a quarter of its "
                 "labels at most).</p>")
    parts.append(table(["label", "why", "AUC", "positives (val.)", "configuration"],
                       [[r["label"], r["why"], r["auc_roc"], r["positives"], r["configuration"]] for r in attention],
                       [False, False, True, True, False],
                       row_class=["failed" if not r["configuration"] else "" for r in attention]))
    return "".join(parts)


def leaderboard_section(board: dict[str, Any]) -> str:
    search, rows = board.get("search", {}), board.get("rows", [])
    metric = search.get("metric", DEFAULT_METRIC)
    best = best_per_label(rows)
    study = search.get("study", "shared")
    studies = "one study per label, each told its own metric" if study == "per-label" else "one study shared by the labels"
    parts = [f"<h2>Search {_esc(search.get('id', ''))}: best configuration per label</h2>",
             f"<p>{_esc(search.get('search', ''))} search ({_esc(studies) if search.get('search') == 'optuna' else 'every trial on every label'}), "
             f"{len(rows)} finished (trial, label) pairs, ranked by "
             f"<b>{_esc(metric)}</b>; every row is in <code>leaderboard.csv</code>.</p>",
             table(["label", metric, "engine", "parameters", "trial", "study", "configuration"],
                   [[label, (r.get("metrics") or {}).get(metric), r.get("engine"), _params(r.get("params")), r.get("trial"),
                     r.get("study", "shared"), r.get("config")]
                    for label, r in sorted(best.items(), key=lambda kv: natural_key(kv[0]))],
                   [False, True, False, False, True, False, False]),
             image(plots.trials(rows, metric), "metric of every trial per label")]
    return "".join(parts)


def sweep_section(doc: dict[str, Any]) -> str:
    search, rows = doc.get("search", {}), doc.get("rows", [])
    metric = search.get("metric", DEFAULT_METRIC)
    chosen = sorted((r for r in rows if r.get("chosen")), key=lambda r: natural_key(str(r["label"])))
    return "".join([
        f"<h2>Feature sweep {_esc(search.get('id', ''))}: {_esc(metric)} against the number of features</h2>",
        f"<p>Chosen per label: the smallest N within {_esc(search.get('tolerance'))} of the best.</p>",
        table(["label", "chosen N", metric, "best", "configuration"],
              [[r["label"], r.get("n"), r.get("value"), r.get("best"), r.get("config")] for r in chosen],
              [False, True, True, True, False]),
        image(plots.sweep(rows, metric), "metric against the number of features"),
    ])


def failures_section(data: RunData) -> str:
    failed = data.failed()
    if not failed:
        return "<h2>Failed jobs</h2><p>None: every job's latest attempt succeeded.</p>"
    rows = [[r.name, r.status, r.error, r.log, path, _when(r.finished_at)] for path, r in failed]
    return ("<h2>Failed jobs</h2><p>The latest attempt of each of these did not succeed; rerun to retry "
            "only them.</p>" + table(["job", "status", "error", "log", "result", "finished"], rows,
                                     row_class=["failed"] * len(rows)))


def timeline_section(data: RunData) -> str:
    spans = job_spans([r for _, r in data.results])
    if not spans:
        return ""
    wall = max(s["end"] for s in spans) - min(s["start"] for s in spans)
    busy = sum(s["end"] - s["start"] for s in spans)
    return (f"<h2>Timeline</h2><p>{len(spans)} jobs in {wall:.0f} s of wall time, {busy:.0f} job-seconds "
            f"(on average {busy / wall if wall else 0:.1f} at once).</p>"
            + image(plots.timeline(spans), "timeline of the jobs of the last run"))


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else ""


def render(data: RunData, title: str = "spark-fanout report") -> str:
    """The whole page."""
    n_art = sum(len(c.artifacts) for c in data.configurations)
    body = [f"<h1>{_esc(title)}</h1>",
            f"<p>Artifacts under <code>{_esc(data.models)}</code>, results under <code>{_esc(data.log_dir)}</code>; "
            f"written {_esc(_when(time.time()))}. {len(data.configurations)} configurations, {n_art} artifacts, "
            f"{len(data.labels)} labels, {len(data.failed())} failed jobs.</p>",
            overview_section(data),
            failures_section(data)]
    if data.leaderboard:
        body.append(leaderboard_section(data.leaderboard))
    if data.sweep:
        body.append(sweep_section(data.sweep))
    body.append(timeline_section(data))
    body.extend(configuration_section(c) for c in data.configurations)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">" + GENERATOR_META +
            f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(body) + f"\n<script>{_SCRIPT}</script></body></html>\n")

"""See what a run did, from one small real run (local Spark, 3 labels, one failing on
purpose, one job per label, 2 workers) shared by the module: the HTML report, the notebook
API's progress bar and table, and MLflow tracking into a file store."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
from html.parser import HTMLParser

import luigi
import pandas as pd
import pyarrow.parquet as pq
import pytest
import tqdm.auto
from PIL import Image

from pipeline import api
from pipeline.data import leaderboard as board
from pipeline.data.labels import label_slug
from pipeline.flows.demo import make_demo_frame
from pipeline.flows.report import Report
from pipeline.report import collect

pytestmark = pytest.mark.spark

LABELS = ["label_00", "label_01", "label_02"]
FAILING = "label_02"


class RecordingBar(tqdm.auto.tqdm):
    """tqdm as the API makes it, remembering every state it showed."""

    shown: list[dict] = []

    def refresh(self, *args, **kwargs):
        if self.postfix:  # tqdm draws once before the first counts are set
            RecordingBar.shown.append({"n": self.n, "total": self.total, "postfix": self.postfix})
        return super().refresh(*args, **kwargs)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("observe")
    data = work / "data.parquet"
    data.mkdir()
    pq.write_table(make_demo_frame(rows=400, features=3, labels=3, seed=5), data / "part-00000.parquet")
    (data / "_SUCCESS").touch()
    settings = {"data": str(data), "models": str(work / "models"), "log_dir": str(work / "logs"),
                "params": {"num_iterations": 10}, "batch_size": "1"}
    config = luigi.configuration.get_config()
    config.set("mlflow", "tracking_uri", f"file:{work / 'mlruns'}")
    os.environ["FANOUT_FAIL_LABELS"] = FAILING
    original_bar, tqdm.auto.tqdm = tqdm.auto.tqdm, RecordingBar
    RecordingBar.shown = []
    try:
        report = api.train_all(workers=2, **settings)
    finally:
        tqdm.auto.tqdm = original_bar
        del os.environ["FANOUT_FAIL_LABELS"]
    out = work / "report" / "report.html"
    assert luigi.build([Report(models=settings["models"], log_dir=settings["log_dir"], out=str(out))], local_scheduler=True)
    yield {"work": work, "settings": settings, "report": report, "bar": list(RecordingBar.shown), "html": out}
    config.remove_option("mlflow", "tracking_uri")


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.text, self.external = [], [], []
        self.open = []
        self.tables: list[list[list[str]]] = []  # each table's rows (header row first), cells as text

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.open.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.tables[-1][-1].append("")
        if tag == "img":
            self.images.append(attrs)
        for key in ("src", "href"):
            if attrs.get(key) and not attrs[key].startswith("data:"):
                self.external.append(attrs[key])
        if tag in ("link", "iframe") or (tag == "script" and "src" in attrs):
            self.external.append(tag)

    def handle_data(self, data):
        self.text.append(data)
        if self.open and self.open[-1] in ("td", "th") and self.tables:
            self.tables[-1][-1][-1] += data

    def handle_endtag(self, tag):
        while self.open and self.open.pop() != tag:
            pass


def parse(path):
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page, " ".join(page.text)


def decode_images(page):
    sizes = []
    for img in page.images:
        head, _, b64 = img["src"].partition(",")
        assert head == "data:image/png;base64"
        with Image.open(io.BytesIO(base64.b64decode(b64, validate=True))) as im:
            im.load()  # decodes every pixel
            sizes.append(im.size)
    return sizes


def test_the_report_shows_every_label_and_every_failed_job_with_images_that_decode(run):
    page, text = parse(run["html"])
    sizes = decode_images(page)
    assert len(sizes) >= 2 and all(w > 100 and h > 100 for w, h in sizes)  # curves and timeline at least
    alts = [img["alt"] for img in page.images]
    assert any("ROC" in a for a in alts) and any("timeline" in a for a in alts)
    assert any(a.startswith("distribution of each metric across the 2 labels") for a in alts)
    assert text.index("Overview") < text.index("Labels that need attention") < text.index("Failed jobs")
    assert page.external == []  # opens offline: nothing to fetch
    for label in LABELS:
        assert label in text
    [failed] = [r for _, r in collect(run["settings"]["models"], run["settings"]["log_dir"]).failed()]
    assert failed.name == FAILING
    assert failed.error in text and failed.log in text
    assert "FANOUT_FAIL_LABELS" in failed.error
    before = run["html"].stat().st_mtime_ns
    assert luigi.build([Report(models=run["settings"]["models"], log_dir=run["settings"]["log_dir"], out=str(run["html"]))],
                       local_scheduler=True)  # written anew over the last one
    assert run["html"].stat().st_mtime_ns > before and parse(run["html"])[0].images


def test_the_report_shows_a_search_and_a_sweep_when_models_holds_them(run, tmp_path):
    """The leaderboard and sweep files as TuneAll/FeatureSweep write them, from the real artifacts."""
    data = collect(run["settings"]["models"], run["settings"]["log_dir"])
    [conf] = data.configurations
    rows = [{"label": a.label, "engine": a.metadata["engine"], "params": a.metadata["params"], "trial": t,
             "metrics": {**a.metadata["metrics"], "auc_roc": a.metadata["metrics"]["auc_roc"] - 0.01 * t},
             "config": conf.name, "artifact": a.path} for a in conf.artifacts for t in (0, 1)]
    models = tmp_path / "models"
    os.symlink(os.path.join(run["settings"]["models"], conf.name), models.mkdir() or models / conf.name)
    (models / "leaderboard.json").write_text(board.to_json(board.rank(rows, "auc_roc"), {"id": "s1", "metric": "auc_roc"}))
    sweep = [{"label": r["label"], "n": 1 + r["trial"], "value": r["metrics"]["auc_roc"], "best": 1.0,
              "chosen": r["trial"] == 0, "config": conf.name, "metrics": r["metrics"]} for r in rows]
    (models / "feature_sweep.json").write_text(json.dumps({"search": {"id": "w1", "metric": "auc_roc",
                                                                      "tolerance": 0.005}, "rows": sweep}))
    out = tmp_path / "r.html"
    assert luigi.build([Report(models=str(models), log_dir=run["settings"]["log_dir"], out=str(out))], local_scheduler=True)
    page, text = parse(out)
    decode_images(page)
    alts = " ".join(img["alt"] for img in page.images)
    assert "every trial" in alts and "number of features" in alts
    assert "best configuration per label" in text and "against the number of features" in text


def test_the_api_returns_one_row_per_label_with_what_ran(run):
    report = run["report"]
    frame = report.to_pandas()
    assert list(frame["name"]) == LABELS
    assert dict(zip(frame["name"], frame["status"], strict=True)) == {"label_00": "trained", "label_01": "trained",
                                                                      FAILING: "failed"}
    [config] = [p.name for p in (run["work"] / "models").iterdir() if p.is_dir()]
    assert set(frame["configuration"]) == {config}
    trained = frame[frame["status"] == "trained"]
    assert trained["artifact"].str.startswith(str(run["work"] / "models" / config)).all()
    for _, row in trained.iterrows():
        meta = api.load_artifact(run["settings"]["models"], row["name"])["metadata"]
        assert row["application_id"] == meta["application_id"] and row["application_id"].startswith("local-")
        assert row["auc_roc"] == meta["metrics"]["auc_roc"] and 0 <= row["auc_roc"] <= 1
    assert trained["seconds"].gt(0).all() and trained["error"].isna().all()
    bad = frame[frame["status"] == "failed"].iloc[0]
    assert "FANOUT_FAIL_LABELS" in bad["error"] and bad["log"].endswith("spark-submit.log") and pd.isna(bad["artifact"])


def test_the_progress_bar_counted_the_run(run):
    assert run["report"].progress == {"total": 3, "done": 2, "failed": 1, "running": 0, "remaining": 0}
    final = run["bar"][-1]
    assert (final["n"], final["total"]) == (3, 3)
    assert "done=2" in final["postfix"] and "failed=1" in final["postfix"] and "remaining=0" in final["postfix"]
    # Live: it showed jobs running (2 workers) before the end, and counts only grew.
    assert any("running=2" in s["postfix"] or "running=1" in s["postfix"] for s in run["bar"])
    assert [s["n"] for s in run["bar"]] == sorted(s["n"] for s in run["bar"])


def mlflow_client(run):
    from pipeline import tracking

    return tracking._client(f"file:{run['work'] / 'mlruns'}")  # as the controller makes it (file store allowed)


def mlflow_runs(run):
    client = mlflow_client(run)
    experiment = client.get_experiment_by_name("spark-fanout")
    return client, experiment, client.search_runs([experiment.experiment_id])


def test_every_trained_artifact_is_one_mlflow_run_with_its_metrics(run):
    client, _, runs = mlflow_runs(run)
    by_label = {r.data.tags["label"]: r for r in runs}
    assert sorted(by_label) == ["label_00", "label_01"]  # the failed label published nothing
    for label, mrun in by_label.items():
        meta = api.load_artifact(run["settings"]["models"], label)["metadata"]
        assert mrun.data.metrics["auc_roc"] == pytest.approx(meta["metrics"]["auc_roc"])
        assert mrun.data.params["param.num_iterations"] == "10" and mrun.data.params["engine"] == "lightgbm"
        assert mrun.data.tags["application_id"] == meta["application_id"]
        assert mrun.data.tags["configuration"] == api.load_artifact(run["settings"]["models"], label)["config"]
        assert "metadata.json" in [f.path for f in client.list_artifacts(mrun.info.run_id)]


def test_a_rerun_logs_nothing_twice(run):
    from pipeline import tracking
    from pipeline.flows.train import TrainModel

    _, experiment, before = mlflow_runs(run)
    report = api.train_all(workers=2, progress=False, labels=["label_00", "label_01"], **run["settings"])
    assert [r["status"] for r in report.rows] == ["done earlier", "done earlier"]
    # A task finishing again (a retry) finds its artifact's run and logs nothing either.
    [config] = [p.name for p in (run["work"] / "models").iterdir() if p.is_dir()]
    task = TrainModel(label="label_00", config=config, **{k: v for k, v in run["settings"].items() if k != "batch_size"})
    client = mlflow_client(run)
    assert tracking.log_artifact(client, experiment.experiment_id, task.output(), config) is None
    _, _, after = mlflow_runs(run)
    assert sorted(r.info.run_id for r in after) == sorted(r.info.run_id for r in before)


def test_the_report_of_hundreds_of_labels_opens_with_an_overview_in_natural_order(run, tmp_path):
    """200 labels: the run's two real artifacts, copied under the names label_0 ... label_199
    (only the label in metadata.json and the folder's slug change), beside the run's results."""
    [conf] = collect(run["settings"]["models"], run["settings"]["log_dir"]).configurations
    root = tmp_path / "models" / conf.name
    root.mkdir(parents=True)
    shutil.copy(os.path.join(run["settings"]["models"], conf.name, "config.json"), root / "config.json")
    names = [f"label_{i}" for i in range(200)]
    for i, name in enumerate(names):
        real = conf.artifacts[i % len(conf.artifacts)]
        shutil.copytree(real.path, root / label_slug(name))
        meta = json.loads((root / label_slug(name) / "metadata.json").read_text())
        (root / label_slug(name) / "metadata.json").write_text(json.dumps({**meta, "label": name, "slug": label_slug(name)}))
    out = tmp_path / "many.html"
    assert luigi.build([Report(models=str(tmp_path / "models"), log_dir=run["settings"]["log_dir"], out=str(out))],
                       local_scheduler=True)
    page, text = parse(out)
    sizes = decode_images(page)
    assert all(h <= 1300 for _, h in sizes), sizes  # no figure grows with the number of labels
    assert out.stat().st_size < 3_000_000
    alts = [img["alt"] for img in page.images]
    assert "distribution of each metric across the 200 labels of " + conf.name in alts
    assert f"ROC and precision-recall curves of 5 of the 200 labels of {conf.name}" in alts
    assert text.index("Overview") < text.index("Labels that need attention") < text.index("Failed jobs")
    [metrics] = [t for t in page.tables if t[0][:2] == ["label", "AUC"]]
    assert [row[0] for row in metrics[1:]] == names  # label_2 before label_10, not label_10 before label_2
    [attention] = [t for t in page.tables if t[0][:2] == ["label", "why"]]
    whys = {row[0]: row[1] for row in attention[1:]}
    assert whys[FAILING].startswith("failed: ") and "FANOUT_FAIL_LABELS" in whys[FAILING]
    worst = [row for row in attention[1:] if row[1].startswith("worst AUC #")]
    assert len(worst) == 10 and all(row[1].endswith("of 200") for row in worst)
    lowest = min(a.metadata["metrics"]["auc_roc"] for a in conf.artifacts)
    assert all(float(row[2]) == pytest.approx(lowest, abs=1e-4) for row in worst)

"""TuneAll end to end with real spark-submit in local mode (local[1], at most 2 workers)."""

from __future__ import annotations

import csv
import json
import signal

import pyarrow.parquet as pq
import pytest

from pipeline.flows.demo import make_demo_frame
from tests.spark_helpers import run_luigi, start_luigi, stop, wait_for

pytestmark = pytest.mark.spark

LABELS = ["label_00", "label_01"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data") / "tune.parquet"
    pq.write_table(make_demo_frame(rows=2000, features=5, labels=2, seed=3), folder)
    return folder


def _space(tmp_path, doc) -> str:
    path = tmp_path / "space.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_grid_over_two_engines_ranks_four_trained_rows(tmp_path, dataset):
    space = _space(tmp_path, {"lightgbm": {"num_iterations": [20]}, "mllib-logreg": {"max_iter": [10]}})
    args = ["TuneAll", "--space", space, "--search", "grid", "--workers", "2", "--local-scheduler",
            "--data", str(dataset), "--models", "models", "--labels", json.dumps(LABELS)]
    proc = run_luigi(args, cwd=tmp_path, timeout=560)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    board = json.loads((tmp_path / "models" / "leaderboard.json").read_text())
    rows = board["rows"]
    assert len(rows) == 4
    assert sorted((r["label"], r["engine"]) for r in rows) == sorted((la, e) for la in LABELS for e in ("lightgbm", "mllib-logreg"))
    for label in LABELS:
        mine = sorted((r for r in rows if r["label"] == label), key=lambda r: r["rank"])
        assert [r["rank"] for r in mine] == [1, 2]
        assert mine[0]["metrics"]["auc_roc"] >= mine[1]["metrics"]["auc_roc"]
        # both engines were judged on the same held-out rows
        assert len({(r["metrics"]["rows_validation"], r["metrics"]["positives_validation"]) for r in mine}) == 1
    for r in rows:
        m = r["metrics"]
        assert 0.6 < m["auc_roc"] <= 1 and 0 < m["average_precision"] <= 1 and 0 < m["brier"] < 0.25
        assert m["positives_validation"] > 0 and m["positives_train"] > 0 and 0 < m["f1"] <= 1
        artifact = tmp_path / "models" / r["config"] / r["artifact"].rsplit("/", 1)[1]
        meta = json.loads((artifact / "metadata.json").read_text())
        assert meta["metrics"] == m and meta["engine"] == r["engine"]
        curves = json.loads((artifact / "curves.json").read_text())
        assert len(curves["roc"]["fpr"]) > 10 and curves["pr"]["precision"][-1] == 1.0
    with open(tmp_path / "models" / "leaderboard.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 4
    # a rerun trains nothing: the search is complete
    submits = sorted((tmp_path / "logs").rglob("*-spark-submit.log"))
    again = run_luigi(args, cwd=tmp_path)
    assert again.returncode == 0, (again.stdout + again.stderr)[-2000:]
    assert sorted((tmp_path / "logs").rglob("*-spark-submit.log")) == submits  # no job started
    # the notebook API returns the same leaderboard as a DataFrame (nothing left to train)
    from pipeline.api import tune

    frame = tune(json.loads((tmp_path / "space.json").read_text()), data=str(dataset), models=str(tmp_path / "models"),
                 labels=LABELS, workers=1, log_dir=str(tmp_path / "logs"))
    assert frame.attrs["ok"] and len(frame) == 4
    assert sorted(frame["auc_roc"]) == sorted(r["metrics"]["auc_roc"] for r in rows)
    assert set(frame.columns) >= {"label", "rank", "engine", "params", "average_precision", "duration", "artifact"}


def _artifact_events(logs) -> int:
    return sum(f.read_text(errors="replace").count('"event": "artifact"') for f in logs.rglob("*-spark-submit.log"))


def test_optuna_search_stopped_then_rerun_ends_with_exactly_the_trials(tmp_path, dataset):
    space = _space(tmp_path, {"lightgbm": {"num_iterations": {"low": 5, "high": 40},
                                           "learning_rate": {"low": 0.02, "high": 0.3, "log": True}}})
    args = ["TuneAll", "--space", space, "--search", "optuna", "--trials", "3", "--parallel-trials", "1", "--workers", "1",
            "--local-scheduler", "--data", str(dataset), "--models", "models", "--labels", '["label_00"]']
    models = tmp_path / "models"
    proc = start_luigi(args, cwd=tmp_path)
    try:
        # stop while the second trial's job runs: the first is published, the second's job has started
        def second_running() -> bool:
            return (len(list(models.glob("lightgbm-*/label-00-*/_COMPLETE"))) >= 1
                    and sum('"started"' in f.read_text(errors="replace") for f in (tmp_path / "logs").rglob("*-spark-submit.log")) >= 2)

        assert wait_for(second_running, timeout=400, interval=0.2), proc.communicate()[0][-3000:]
        stop(proc, signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        stop(proc, signal.SIGKILL)
    assert proc.returncode != 0
    assert not (models / "leaderboard.json").exists()
    import optuna

    [journal] = (models / "_tune").glob("*.journal")

    def load():
        return optuna.load_study(study_name=journal.stem, storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(journal))))

    # the stop left one trial told and one asked whose job was killed: the rerun must resume that one
    assert sorted(t.state.name for t in load().trials) == ["COMPLETE", "RUNNING"]

    rerun = run_luigi(args, cwd=tmp_path, timeout=560)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    study = load()
    assert len(study.trials) == 3 and all(t.state.name == "COMPLETE" for t in study.trials)
    configs = {t.user_attrs["engine"] + json.dumps(t.user_attrs["params"], sort_keys=True) for t in study.trials}
    artifacts = list(models.glob("lightgbm-*/label-00-*/_COMPLETE"))
    assert len(configs) == 3 and len(artifacts) == 3  # three distinct trials, one artifact each
    assert _artifact_events(tmp_path / "logs") == 3  # each trained once, none again after the stop
    rows = json.loads((models / "leaderboard.json").read_text())["rows"]
    assert sorted(r["trial"] for r in rows) == [0, 1, 2]
    assert [r["metrics"]["auc_roc"] for r in sorted(rows, key=lambda r: r["rank"])] == \
        sorted((t.value for t in study.trials), reverse=True)

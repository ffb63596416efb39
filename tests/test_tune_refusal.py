"""A bad search space stops TuneAll while Luigi schedules it: no spark-submit ever starts."""

from __future__ import annotations

import json

import luigi
import pytest

import pipeline.runner.job as job_module
from pipeline.flows.tune import TuneAll


@pytest.fixture
def no_jobs(monkeypatch):
    started = []

    def refuse(argv, *args, **kwargs):
        started.append(argv)
        raise AssertionError(f"a job was started: {argv[:3]}")

    monkeypatch.setattr(job_module, "JobProcess", refuse)
    return started


@pytest.mark.parametrize("space, words", [
    ({"lightgbm": {"num_leaves": [15]}, "mllib-logreg": {"reg_parm": [0.1]}}, "mllib-logreg.reg_parm"),
    ({"lightgbm": {"num_leaves": []}}, "empty list"),
])
def test_bad_space_refused_before_any_job(tmp_path, no_jobs, caplog, space, words):
    import pyarrow.parquet as pq

    from pipeline.flows.demo import make_demo_frame

    data = tmp_path / "d.parquet"
    pq.write_table(make_demo_frame(rows=50, features=3, labels=2, seed=1), data)
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    task = TuneAll(space=str(path), data=str(data), models=str(tmp_path / "m"), log_dir=str(tmp_path / "logs"),
                   run_id="refusal")
    with caplog.at_level("WARNING"):
        ok = luigi.build([task], local_scheduler=True, workers=1)
    assert ok is False
    assert no_jobs == []
    assert words in caplog.text
    assert not (tmp_path / "m").exists()

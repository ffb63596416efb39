"""TuneAll and FeatureSweep plan their jobs as TrainAll plans its labels (no JVM here):
a batch holds one configuration's labels, each batch running at once gets its share of
this machine's cores, and ``--dry-run`` prints the plan and writes nothing."""

from __future__ import annotations

import json

import luigi
import pyarrow.parquet as pq
import pytest

from pipeline.flows.demo import make_demo_frame
from pipeline.flows.sweep import FeatureSweep
from pipeline.flows.tune import TuneAll
from tests.test_batching import _config_with

LABELS = ["label_00", "label_01", "label_02"]
CORES = 4  # [batching] local_cores: the same plan on any machine
HALF = 2  # two batches at once share them


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.setattr(luigi.configuration.get_config(), "get", _config_with({("batching", "local_cores"): str(CORES)}))
    pq.write_table(make_demo_frame(rows=200, features=3, labels=3, seed=1), tmp_path / "d.parquet")
    (tmp_path / "space.json").write_text(json.dumps({"lightgbm": {"num_leaves": [4, 8], "num_iterations": [5]}}))
    return tmp_path


def _common(work):
    return {"data": str(work / "d.parquet"), "models": str(work / "models"), "log_dir": str(work / "logs"),
            "labels": LABELS, "planned_workers": 2, "run_id": "plan-test"}


def _dry_run(task, capsys) -> list[str]:
    assert luigi.build([task], local_scheduler=True, log_level="ERROR")
    return [line for line in capsys.readouterr().out.splitlines() if " plan: " in line]


def test_a_grid_plans_one_batch_per_trial_each_on_its_share_of_the_cores(work, capsys):
    task = TuneAll(space=str(work / "space.json"), **_common(work))
    jobs = task.requires()
    assert len(jobs) == 6
    # each trial's three labels may go in one job; two trials at once, so half the cores each
    assert {(j.max_batch_size, j.master) for j in jobs} == {(3, f"local[{HALF}]")}
    # the plan changes no task id: a rerun (planned anew) finds the same tasks
    unplanned = [j for t in task.plan["trials"] for j in task.trial_jobs(t)]
    assert [j.task_id for j in jobs] == [j.task_id for j in unplanned]
    assert {j.batch_limit for j in unplanned} == {1}

    lines = _dry_run(TuneAll(space=str(work / "space.json"), dry_run=True, **_common(work)), capsys)
    assert lines == [f"TuneAll plan: 2 trials x 3 labels, 6 jobs to run: 6 labels of 2 configurations in 2 batch(es) "
                     f"of up to 3, 2 at once; each batch on local[{HALF}], fitting {HALF} labels at once "
                     "(1 core per fit); expected: unknown until a run of this configuration is measured"]
    assert not (work / "models").exists()


def test_per_label_studies_plan_one_label_a_job(work, capsys):
    task = TuneAll(space=str(work / "space.json"), search="optuna", study="per-label", trials=5, parallel_trials=2,
                   dry_run=True, **_common(work))
    [line] = _dry_run(task, capsys)
    assert line.startswith("TuneAll plan: optuna, 5 trials per study x 3 studies, 2 trials at once: each step 6 labels "
                           f"of 6 configurations in 6 batch(es) of up to 1, 2 at once; each batch on local[{HALF}]")
    shared = TuneAll(space=str(work / "space.json"), search="optuna", trials=5, parallel_trials=4, **_common(work))
    plan = shared.optuna_plan  # a shared study's trial trains every label: one configuration
    assert (plan.batch_size, plan.batches, plan.configurations) == (3, 4, 4)
    assert not (work / "models").exists()


def test_a_sweep_plans_its_baselines_then_its_jobs(work, capsys):
    lines = _dry_run(FeatureSweep(sizes=[1, 2], dry_run=True, **_common(work)), capsys)
    # the three baselines are one configuration: one job alone, on every core
    assert lines == [f"FeatureSweep plan: baselines: 3 labels in 1 batch(es) of up to 3, 1 at once; each batch on "
                     f"local[{CORES}], fitting 3 labels at once (1 core per fit); expected: unknown until "
                     "a run of this configuration is measured",
                     "FeatureSweep plan: then up to 6 (label, N) jobs, planned once the baselines have ranked the features"]
    # one ranking for every label: each N is one configuration of the three labels
    (work / "ranking.json").write_text(json.dumps(["f002", "f000", "f001"]))
    task = FeatureSweep(sizes=[1, 2], ranking=str(work / "ranking.json"), dry_run=True, **_common(work))
    [line] = _dry_run(task, capsys)
    assert line.startswith("FeatureSweep plan: (label, N) jobs: 6 labels of 2 configurations in 2 batch(es) of up to 3, "
                           f"2 at once; each batch on local[{HALF}]")
    assert not (work / "models").exists()

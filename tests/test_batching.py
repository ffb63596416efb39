"""Batches of labels: the size rule, the batched label parameter through Luigi's own
scheduler, and the per-label sample cut from a batch's collected frame (no JVM here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import luigi
import luigi.scheduler
import numpy as np
import pandas as pd
import pytest

from pipeline.errors import ConfigError
from pipeline.flows.train import TrainModel
from pipeline.runner.batching import (
    MemberParameter,
    auto_batch_size,
    configured_plan,
    fits_at_once,
    is_plain_local,
    members,
    parse_batch_size,
    plan_batches,
    planned_master,
)
from pipeline.runner.job_results import JobRecorder
from pipeline.runner.job_state import JobRun
from tasks.engines import LABEL_COL
from tasks.label_sample import HASH_COL, VALIDATION_COL, JobInputError, label_sample

RULE = {"max_size": 64, "startup_share": 0.2}


def test_auto_batch_size_without_measurements_gives_every_worker_one_batch():
    assert auto_batch_size(64, 2, startup_s=8, per_item_s=None, **RULE) == 32
    assert auto_batch_size(8, 2, startup_s=8, per_item_s=None, **RULE) == 4
    assert auto_batch_size(5, 2, startup_s=8, per_item_s=None, **RULE) == 3
    assert auto_batch_size(1, 4, startup_s=8, per_item_s=None, **RULE) == 1
    assert auto_batch_size(1000, 2, startup_s=8, per_item_s=None, **RULE) == 64  # capped


def test_auto_batch_size_keeps_startup_under_its_share_and_no_bigger():
    # S = 8 s, t = 0.5 s a label: 8*0.8/(0.2*0.5) = 64 labels keep start-up at 20 %
    assert auto_batch_size(200, 2, startup_s=8, per_item_s=0.5, **RULE) == 64
    # t = 10 s: 8*0.8/(0.2*10) = 3.2 -> 4; a bigger batch would only cost parallelism
    assert auto_batch_size(200, 2, startup_s=8, per_item_s=10, **RULE) == 4
    # labels that take minutes each: one job per label
    assert auto_batch_size(200, 2, startup_s=8, per_item_s=300, **RULE) == 1
    # share of 20 % is met by the chosen size, missed by one less
    b = auto_batch_size(200, 2, startup_s=30, per_item_s=7, **RULE)
    assert 30 / (30 + b * 7) <= 0.2 < 30 / (30 + (b - 1) * 7)


def test_batch_size_setting_is_auto_or_a_whole_number():
    assert parse_batch_size("auto") is None and parse_batch_size(" AUTO ") is None
    assert parse_batch_size("1") == 1 and parse_batch_size("16") == 16
    for bad in ("0", "-2", "many", "1.5"):
        with pytest.raises(ConfigError, match="batch-size .* auto or a whole number"):
            parse_batch_size(bad)


def test_a_batched_label_is_a_tuple_shown_as_a_json_list():
    p = MemberParameter()
    assert p._parse_list(["a", "b,c", '["x"]']) == ("a", "b,c", '["x"]')
    assert p.serialize(("a", "b,c")) == '["a", "b,c"]' and p.serialize("churn 30d") == "churn 30d"
    assert members(("a", "b")) == ("a", "b") and members("a") == ("a",)


def _task(label, **kw):
    return TrainModel(label=label, config="lightgbm-0123abcd", data="d.parquet", models="m", **kw)


def test_a_batch_task_names_its_labels_and_lists_their_artifacts():
    one = _task("label_00")
    batch = _task(("label_00", "odd, label", "label_02"), batch_limit=3)
    assert one.members == ("label_00",) and not one.is_batch
    assert batch.members == ("label_00", "odd, label", "label_02") and batch.is_batch
    assert [t.path for t in batch.output()] == [batch.member_output(m).path for m in batch.members]
    assert batch.member_output("odd, label").path.endswith("/m/lightgbm-0123abcd/odd-label-c94f4e91")
    assert "-3-labels-" in batch.name and batch.task_id != one.task_id
    assert json.loads(batch.to_str_params()["label"]) == list(batch.members)
    assert batch.max_batch_size == 3 and one.max_batch_size == 1
    # TrainAll's --batch-size ("auto") never reaches a TrainModel through clone()
    from pipeline.flows.train import TrainAll

    assert TrainAll(batch_size="auto").clone(TrainModel, label="x").max_batch_size == 1


def test_luigis_scheduler_batches_labels_up_to_the_batch_size(tmp_path):
    """Scheduling only: the real scheduler groups pending TrainModel tasks that differ in
    their label, and the worker builds one batch task from them."""
    sch = luigi.scheduler.Scheduler()
    labels = [f"label_{i:02d}" for i in range(5)]
    tasks = [_task(label, batch_limit=2) for label in labels]
    with luigi.worker.Worker(scheduler=sch, worker_processes=1) as worker:
        for task in tasks:
            worker.add(task)
        response = worker._get_work()
        batch = worker._scheduled_tasks[response.task_id]
    assert batch.is_batch and len(batch.members) == 2 and set(batch.members) <= set(labels)
    batch_running = sch.task_list("BATCH_RUNNING", "")
    assert sorted(t.label for t in tasks if t.task_id in batch_running) == sorted(batch.members)
    assert len(sch.task_list("PENDING", "")) == 3  # the others wait for the next batches


def test_batch_size_auto_follows_what_earlier_runs_of_the_configuration_recorded(tmp_path, monkeypatch):
    """TrainAll's --batch-size auto from result.json files in the log folder (no Spark):
    the medians of the trained labels' start-up and per-label seconds, only those of this
    configuration's artifacts and of successful attempts (the rule of a cluster, where
    each batch brings its own executors; here: a local master not widened)."""
    import luigi

    monkeypatch.setattr(luigi.configuration.get_config(), "get", _config_with({("batching", "widen_local"): "false"}))
    from pipeline.data import results
    from pipeline.data.artifacts import artifact_location
    from pipeline.flows.train import TrainAll
    from pipeline.storage.locations import parse_location

    logs = str(tmp_path / "logs")
    root = parse_location(str(tmp_path / "m" / "lightgbm-0123abcd"))
    other = parse_location(str(tmp_path / "m" / "lightgbm-99999999"))
    labels = [f"label_{i:02d}" for i in range(100)]
    task = TrainAll(batch_size="auto", log_dir=logs, planned_workers=2)
    # Nothing measured yet: every worker gets one batch.
    assert task.chosen_batch_size(100, labels, root) == 50

    def trained(label, startup, per_label, where=root, status="trained"):
        results.record(logs, results.JobResult(name=label, status=status, run_id="r1",
                                               artifact=str(artifact_location(where, label)),
                                               startup_seconds=startup, work_seconds=per_label))

    for label, startup, per_label in (("label_00", 20, 5), ("label_01", 30, 7), ("label_02", 40, 9)):
        trained(label, startup, per_label)
    # Not counted: another configuration's artifact, a failed attempt, a label not asked for.
    trained("label_03", 1000, 0.01, where=other)
    trained("label_04", 1000, 0.01, status="failed")
    trained("not_asked", 1000, 0.01)
    # Medians S = 30 s, t = 7 s: ceil(30 * 0.8 / (0.2 * 7)) = 18 labels keep start-up at 20 %.
    assert task.chosen_batch_size(100, labels, root) == 18
    assert TrainAll(batch_size="5", log_dir=logs, planned_workers=2).chosen_batch_size(100, labels, root) == 5


def _config_with(overrides):
    import luigi

    real = luigi.configuration.LuigiConfigParser.get

    def get(self, section, option, *args, **kwargs):
        if (section, option) in overrides:
            return overrides[(section, option)]
        return real(self, section, option, *args, **kwargs)

    return get.__get__(luigi.configuration.get_config())


def test_on_one_machine_auto_makes_the_fewest_batches_each_with_its_share_of_the_cores():
    """Issue 21: on 2 cores with --workers 2, one local[2] batch beat two of local[1]."""
    local = {"cluster_slots": None, "startup_s": 8, "per_item_s": None, **RULE}
    for labels in (8, 64):
        plan = plan_batches(labels, 2, local_cores=2, **local)
        assert (plan.batches, plan.batch_size, plan.at_once, plan.cores_per_batch, plan.fits_per_batch) == (1, labels, 1, 2, 2)
    # more labels than one batch holds: the batches running together share the cores
    plan = plan_batches(1000, 2, local_cores=2, **{**local, "max_size": 256})
    assert (plan.batches, plan.batch_size, plan.at_once, plan.cores_per_batch) == (4, 250, 2, 1)
    assert plan_batches(1000, 2, local_cores=2, **local).batches == 16  # max_size 64
    assert plan_batches(1000, 2, local_cores=16, **local).cores_per_batch == 8
    # a cluster: every worker gets a batch, each fits on its executors x cores
    plan = plan_batches(64, 2, local_cores=None, **{**local, "cluster_slots": 16})
    assert (plan.batches, plan.batch_size, plan.cores_per_batch, plan.fits_per_batch) == (2, 32, 0, 16)
    # --batch-size N is kept; measured times give an expected wall time
    plan = plan_batches(64, 2, local_cores=2, **{**local, "per_item_s": 0.5}, fixed_size=8)
    assert (plan.batches, plan.at_once, plan.cores_per_batch) == (8, 2, 1)
    assert plan.expected_s == 4 * (8 + 8 * 0.5)  # 4 rounds of 2 batches, 8 labels one after the other
    assert "8 batch(es) of up to 8, 2 at once" in plan.describe() and "about 48 s" in plan.describe()


def test_a_batch_never_mixes_configurations_so_a_search_plans_per_trial():
    """A search's jobs come in groups, one per configuration (a trial's labels): the batch
    size is planned for the largest group, every group makes its own batches."""
    local = {"cluster_slots": None, "startup_s": 8, "per_item_s": None, **RULE}
    # 10 trials x 8 labels, 2 workers, 2 cores: one batch per trial, two at once, local[1] each
    plan = plan_batches(80, 2, local_cores=2, groups=[8] * 10, **local)
    assert (plan.batch_size, plan.batches, plan.at_once, plan.cores_per_batch, plan.configurations) == (8, 10, 2, 1, 10)
    # one trial: exactly TrainAll's plan of its labels
    assert plan_batches(8, 2, local_cores=2, groups=[8], **local) == plan_batches(8, 2, local_cores=2, **local)
    # a trial of more labels than a batch holds: equal batches, a multiple of the workers, per trial
    plan = plan_batches(900, 2, local_cores=4, groups=[300] * 3, **{**local, "max_size": 256})
    assert (plan.batch_size, plan.batches, plan.at_once, plan.cores_per_batch) == (150, 6, 2, 2)
    # groups of unequal size (a sweep's configurations): sized for the largest
    plan = plan_batches(6, 2, local_cores=2, groups=[1, 4, 1], **local)
    assert (plan.batch_size, plan.batches, plan.at_once) == (4, 3, 2)
    # one label a configuration (per-label studies): one job each; one job alone gets every core
    assert plan_batches(16, 2, local_cores=2, groups=[1] * 16, **local).batch_size == 1
    assert plan_batches(1, 2, local_cores=2, groups=[1], **local).cores_per_batch == 2
    # a cluster: the start-up rule over every pending job, never more than a trial's labels
    plan = plan_batches(4, 2, local_cores=None, groups=[2, 2], **{**local, "cluster_slots": 4})
    assert (plan.batch_size, plan.batches, plan.cores_per_batch, plan.fits_per_batch) == (2, 2, 0, 4)
    plan = plan_batches(400, 2, local_cores=None, groups=[200, 200], **{**local, "per_item_s": 10})
    assert (plan.batch_size, plan.batches) == (4, 100)  # as auto_batch_size: 8*0.8/(0.2*10) -> 4
    # nothing missing
    empty = plan_batches(0, 2, local_cores=2, groups=[], **local)
    assert empty.batches == 0 and empty.describe() == "nothing to train (every label is complete)"
    assert "6 labels of 3 configurations in 3 batch(es) of up to 4, 2 at once" in plan_batches(
        6, 2, local_cores=2, groups=[1, 4, 1], **local).describe()


def test_only_a_plain_local_master_is_widened():
    for master in ("local", "local[1]", "local[*]", "local[16]"):
        assert is_plain_local(master) and planned_master(master, 3) == "local[3]"
        assert planned_master(master, 0) == master  # no width planned: as written
    for master in ("yarn", "local-cluster[2,1,1024]", "spark://host:7077", "local[2,3]", ""):
        assert not is_plain_local(master) and planned_master(master, 3) == master


def test_the_configured_plan_reads_the_master_the_cores_and_the_workers(monkeypatch):
    """configured_plan, which TrainAll and the searches call: a local master is widened to
    the cores ([batching] local_cores here) unless widen_local is false or a size is fixed;
    YARN plans with its own start-up default and the executors it asks for."""
    import luigi

    def plan_with(overrides, groups, **kwargs):
        monkeypatch.setattr(luigi.configuration.get_config(), "get", _config_with(overrides))
        return configured_plan(groups, **kwargs)

    local = {("spark", "master"): "local[1]", ("batching", "local_cores"): "4"}
    plan = plan_with(local, [3, 3], workers=2)
    assert (plan.batches, plan.at_once, plan.cores_per_batch, plan.fits_per_batch) == (2, 2, 2, 2)
    assert plan_with(local, [8], workers=2).cores_per_batch == 4
    assert plan_with({**local, ("batching", "widen_local"): "false"}, [8], workers=2).cores_per_batch == 0
    assert plan_with(local, [8], workers=2, fixed_size=3).cores_per_batch == 0
    yarn = {("spark", "master"): "yarn", ("spark", "num-executors"): "3", ("spark", "executor-cores"): "2"}
    plan = plan_with(yarn, [10, 10], workers=2, per_label=[30.0])
    # the YARN start-up default (45 s) and t = 30 s: ceil(45*0.8/(0.2*30)) = 6 labels a batch, 2 batches a trial
    assert (plan.batch_size, plan.batches, plan.cores_per_batch, plan.fits_per_batch) == (6, 4, 0, 6)
    assert plan.expected_s == 2 * (45 + 30)  # 2 rounds of 2 batches, each fitting its 6 labels at once


def test_fits_at_once_is_the_allocation_over_task_cpus():
    assert fits_at_once("yarn", "4", "4", {}) == 16
    assert fits_at_once("yarn", "4", "4", {"spark.task.cpus": "2"}) == 8
    assert fits_at_once("yarn", None, None, {"spark.executor.instances": "3", "spark.executor.cores": "2"}) == 6
    assert fits_at_once("yarn", "4", "4", {"spark.dynamicAllocation.enabled": "true"}) is None
    assert fits_at_once("local[3]", None, None, {}) == 3 and fits_at_once("local-cluster[2,1,1024]", None, None, {}) is None


def test_dry_run_prints_the_plan_and_trains_nothing(tmp_path, capsys):
    import luigi
    import pyarrow.parquet as pq

    from pipeline.flows.demo import make_demo_frame
    from pipeline.flows.train import TrainAll

    pq.write_table(make_demo_frame(rows=200, features=3, labels=8, seed=1), tmp_path / "d.parquet")
    task = TrainAll(data=str(tmp_path / "d.parquet"), models=str(tmp_path / "models"), log_dir=str(tmp_path / "logs"),
                    dry_run=True, planned_workers=2)
    assert luigi.build([task], local_scheduler=True, log_level="ERROR")
    out = capsys.readouterr().out
    cores = os.cpu_count()
    assert f"TrainAll plan: 8 labels in 1 batch(es) of up to 8, 1 at once; each batch on local[{cores}]" in out
    assert "expected: unknown until a run of this configuration is measured" in out
    assert not list((tmp_path / "models").rglob("*"))  # nothing written: no configuration, no artifact


# --------------------------------------------------------------------------- per-label sample


def _frame(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"f0": rng.normal(size=n), "f1": rng.normal(size=n)})
    frame["y0"] = (rng.random(n) < 0.1).astype(float)  # 10 % positives
    frame["y1"] = (rng.random(n) < 0.5).astype(float)
    frame.loc[::50, "y1"] = np.nan  # unlabelled rows
    frame[VALIDATION_COL] = rng.random(n) < 0.2
    frame[HASH_COL] = rng.integers(-(2**63), 2**63 - 1, size=n)
    return frame


def test_sample_balances_the_training_rows_and_keeps_validation_rows_whole():
    frame = _frame()
    s = label_sample(frame, "rare", "y0", ["f0", "f1"], balance_ratio=1.0, seed=7)
    counts = s.rows["class_counts_after_balancing"]
    assert abs(counts["0"] - counts["1"]) <= 0.3 * counts["1"]
    assert counts["1"] == s.rows["class_counts_before_balancing"]["1"], "every minority row is kept"
    assert len(s.validation) == int(frame[VALIDATION_COL].sum()) == s.rows["validation"]
    assert list(s.train.columns) == ["f0", "f1", LABEL_COL]
    assert not set(s.train.index) & set(s.validation.index)


def test_sample_of_a_label_is_the_same_in_any_batch():
    frame = _frame()
    alone = label_sample(frame[["f0", "f1", "y0", VALIDATION_COL, HASH_COL]], "rare", "y0", ["f0", "f1"], 1.0, seed=7)
    in_batch = label_sample(frame, "rare", "y0", ["f0", "f1"], 1.0, seed=7)
    other_seed = label_sample(frame, "rare", "y0", ["f0", "f1"], 1.0, seed=8)
    other_label = label_sample(frame, "rare too", "y0", ["f0", "f1"], 1.0, seed=7)
    assert alone.train.index.equals(in_batch.train.index)
    assert not other_seed.train.index.equals(in_batch.train.index)
    assert not other_label.train.index.equals(in_batch.train.index)


def test_sample_keeps_the_same_rows_whatever_order_they_were_read_in():
    """Part files come in no fixed order (Spark lists them as the file system does):
    the balancing draw follows each row's hash, not its position."""
    frame = _frame()
    shuffled = frame.sample(frac=1.0, random_state=3)
    as_read = label_sample(frame, "rare", "y0", ["f0", "f1"], 1.0, seed=7)
    reordered = label_sample(shuffled, "rare", "y0", ["f0", "f1"], 1.0, seed=7)
    pd.testing.assert_frame_equal(as_read.train, reordered.train)  # the same rows, in the same order
    pd.testing.assert_frame_equal(as_read.validation, reordered.validation)
    assert len(as_read.train) < int((~frame[VALIDATION_COL]).sum())  # some rows were left out


def test_exact_copies_of_a_row_are_balanced_as_separate_rows():
    """Rows that repeat (few distinct values) share a hash; drawn alike, they were kept or
    dropped all together and the classes came out 3x off the ratio."""
    rng = np.random.default_rng(5)
    distinct = pd.DataFrame({"f0": np.arange(27.0), "y0": (np.arange(27) % 9 == 0).astype(float),
                             HASH_COL: rng.integers(-(2**63), 2**63 - 1, size=27)})
    frame = distinct.iloc[rng.integers(0, 27, size=10_000)].reset_index(drop=True)
    frame[VALIDATION_COL] = False
    for seed in range(4):
        counts = label_sample(frame, "repeats", "y0", ["f0"], 1.0, seed=seed).rows["class_counts_after_balancing"]
        assert abs(counts["0"] - counts["1"]) <= 0.15 * counts["1"], counts


def test_sample_leaves_unlabelled_rows_out_and_refuses_bad_labels():
    frame = _frame()
    s = label_sample(frame, "half", "y1", ["f0"], balance_ratio=0, seed=1)
    assert s.rows["labelled"] == int(frame["y1"].notna().sum())
    assert s.rows["train_after_balancing"] + s.rows["validation"] == s.rows["labelled"]
    frame["y2"] = 0.0
    with pytest.raises(JobInputError, match="'const' has only class 0 .*drop it from --labels"):
        label_sample(frame, "const", "y2", ["f0"], 1.0, seed=1)
    frame["y3"] = frame.index % 3
    with pytest.raises(JobInputError, match=r"'three' is not binary \(value 2.0 is not 0 or 1\)"):
        label_sample(frame, "three", "y3", ["f0"], 1.0, seed=1)


def test_a_full_or_read_only_artifact_root_says_what_to_do():
    import errno

    from tasks.label_job import error_message

    full = OSError(errno.ENOSPC, "No space left on device", "/models/x/.tmp-a/model.txt")
    assert error_message(full) == ("OSError: No space left on device at /models/x/.tmp-a/model.txt: free space on the "
                                    "artifact root or fix its permissions, then rerun (finished labels are kept)")
    assert error_message(RuntimeError("boom\nmore")) == "RuntimeError: boom"


def test_a_failed_batch_is_one_line_naming_the_batch_and_its_log_once():
    task = TrainModel(label=("a", "b", "c", "d"), data="d.parquet", config="x")
    log = "logs/batches/a-3/1-spark-submit.log"
    state = JobRun(log_path=Path(log), member_errors={"a": "label 'a' has one class: pick another"})
    job_error = f"{task.title}: spark-submit exited with code 1 (log: {log})"  # as the job runner raises it
    assert JobRecorder(task, state).batch_failure(["a", "b"], job_error) == (
        "batch of 4 labels ('a', ...): 2 of 4 labels failed, the others are complete: "
        f"a: label 'a' has one class: pick another; b: spark-submit exited with code 1 (log: {log})")


def test_a_labels_failure_in_a_fitting_task_comes_back_as_a_value():
    """What a Spark task runs (tasks.fit_tasks), without Spark: a label refused for its
    data comes back as that JobInputError, an unexpected error as a TaskFailure carrying
    its traceback, a good label as its model and rows; the task itself never raises."""
    import pickle

    from tasks.engines.training import Options
    from tasks.fit_tasks import FitSettings, LabelWork, TaskFailure, fit_group, fit_label
    from tasks.label_sample import Minimums

    frame = _frame()
    frame["y2"] = 0.0  # one class only
    settings = FitSettings(engine="lightgbm", params={"num_iterations": 5, "num_threads": 1}, columns=["f0", "f1"],
                           seed=1, balance_ratio=1.0, options=Options(), minimums=Minimums())

    class Shipped:  # what a broadcast looks like to the task
        value = frame

    good, refused = fit_group(Shipped(), settings, [LabelWork("a", "y1"), LabelWork("b", "y2")])
    assert good["label"] == "a" and good["model"].files and good["rows"]["validation"] > 0
    assert good["model"].info["fitted_in"]["where"] == "spark task" and good["model"].info["fitted_in"]["executor"] == "driver"
    assert isinstance(refused["error"], JobInputError) and "only class 0" in str(refused["error"])
    broken = fit_label(frame, LabelWork("c", "no_such_column"), settings)["error"]
    assert isinstance(broken, TaskFailure) and str(broken).startswith("KeyError") and "Traceback" in broken.trace
    assert str(pickle.loads(pickle.dumps(broken))) == str(broken)  # it travels back to the driver

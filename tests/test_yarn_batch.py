"""A batch on the recorded YARN cluster path: Luigi's batching turns three TrainModel
tasks into ONE tagged cluster-mode application whose name says how many labels it
holds, followed through the RM replay; every label gets its own result."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq

from pipeline.data import results
from pipeline.flows.demo import make_demo_frame
from pipeline.flows.train import TrainAll
from tasks.jobspec import SPEC_FLAG, decode_spec
from tests.replay import Step, Timeline, recorded_reply
from tests.test_yarn_cluster_path import (  # noqa: F401 - cluster is the fixture
    APPS,
    FAILED,
    SUCCEEDED,
    RecordingScheduler,
    _fake,
    build,
    cluster,
)

LABELS = ["label_00", "label_01", "label_02"]


class ExplainingScheduler(RecordingScheduler):
    """Also keeps the failure explanations luigid would show."""

    def __init__(self) -> None:
        super().__init__()
        self.explanations: list[str] = []

    def add_task(self, *args, **kwargs):
        if kwargs.get("expl"):
            self.explanations.append(kwargs["expl"])
        return super().add_task(*args, **kwargs)


def _three_labels(c) -> str:
    table = make_demo_frame(rows=200, features=3, labels=3, seed=4)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    c["hdfs"].put_dir("/data/three.parquet")
    c["hdfs"].put_file("/data/three.parquet/part-00000.parquet", buf.getvalue())
    return c["data"].replace("/d.parquet", "/three.parquet")


def _writes(c, task, labels):
    """What the real batch does before YARN calls it finished: write these labels' artifacts."""

    def write() -> None:
        for label in labels:
            target = task.requires()[0].member_output(label)
            c["hdfs"].put_dir(target.location.path)
            c["hdfs"].put_file(f"{target.location.path}/{target.marker}", b"{}")

    return write


def test_a_batch_is_one_yarn_application_and_each_label_has_its_result(cluster, monkeypatch):  # noqa: F811
    c = cluster
    data = _three_labels(c)
    submissions = c["tmp"] / "argv.log"
    monkeypatch.setenv("FAKE_SPARK_SUBMIT_ARGV_LOG", str(submissions))
    _fake(monkeypatch, "spark-submit-succeeded.stderr", 0)
    task = TrainAll(data=data, models=c["models"], labels=LABELS, batch_size="3", log_dir=str(c["logs"]))
    root = task.plan["root"]
    c["rm"].route("GET", f"{APPS}/{SUCCEEDED}", Timeline([
        Step(recorded_reply("yarn/rm-rest-app-SUCCEEDED.json"), before=_writes(c, task, LABELS)),
    ]))
    ok, sch = build(task)
    assert ok
    [argv] = [json.loads(line) for line in submissions.read_text().splitlines()]  # one spark-submit
    assert argv[argv.index("--deploy-mode") + 1] == "cluster"
    name = argv[argv.index("--name") + 1]
    assert name.startswith("fanout-lightgbm-3-labels-"), name
    spec = decode_spec(argv[argv.index(SPEC_FLAG) + 1])
    assert sorted(spec["labels"]) == LABELS and spec["artifact_root"] == root.uri()
    conf = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--conf")
    tags = {conf["spark.yarn.tags"]}
    assert len(tags) == 1 and tags.pop().startswith("fanout-")
    for label in LABELS:
        res = results.latest(str(c["logs"]), label)
        assert res.status == "trained" and res.application_id == SUCCEEDED, res
        assert res.batch is not None and res.artifact.startswith(str(root))
    assert any(m.startswith("FINISHED") for m in sch.messages)


def test_a_failed_batch_application_fails_only_the_labels_without_an_artifact(cluster, monkeypatch):  # noqa: F811
    """The cluster-mode driver's events never reach the controller: what the batch
    finished is read from storage, and only the rest is failed, with the application's
    error and fetched log."""
    c = cluster
    data = _three_labels(c)
    _fake(monkeypatch, "spark-submit-failed.stderr", 1)
    task = TrainAll(data=data, models=c["models"], labels=LABELS, batch_size="3", log_dir=str(c["logs"]))
    c["rm"].route("GET", f"{APPS}/{FAILED}", Timeline([
        Step(recorded_reply("yarn/rm-rest-app-FAILED.json"), before=_writes(c, task, LABELS[:2])),
    ]))
    ok, sch = build(task, ExplainingScheduler())
    assert not ok
    statuses = {label: results.latest(str(c["logs"]), label) for label in LABELS}
    assert [statuses[label].status for label in LABELS] == ["trained", "trained", "failed"]
    error = statuses["label_02"].error
    assert FAILED in error and str(c["yarn_logs"]) in error and "\n" not in error
    # luigid's explanation of the failed batch task: one line naming the label that failed
    [expl] = [e for e in sch.explanations if "labels failed" in e]
    assert "1 of 3 labels failed, the others are complete: label_02:" in expl and "\n" not in expl.strip()


def test_a_batch_asks_yarn_for_its_executors_and_its_spec_says_how_many_labels_fit_at_once(cluster, monkeypatch):  # noqa: F811
    """Issue 21: a batch's labels fit as Spark tasks on its executors, so the batch's
    spark-submit asks for the executors ([spark] num-executors, executor-cores) and its
    job spec says how many labels fit at once (executors x cores / spark.task.cpus); the
    plan (--dry-run) says the same."""
    import luigi

    c = cluster
    data = _three_labels(c)
    config = luigi.configuration.get_config()
    config.set("spark", "num_executors", "2")  # the fixture restores the [spark] section
    config.set("spark", "executor_cores", "2")
    submissions = c["tmp"] / "argv.log"
    monkeypatch.setenv("FAKE_SPARK_SUBMIT_ARGV_LOG", str(submissions))
    _fake(monkeypatch, "spark-submit-succeeded.stderr", 0)
    task = TrainAll(data=data, models=c["models"], labels=LABELS, log_dir=str(c["logs"]), planned_workers=1)
    plan = task.plan["plan"]
    assert (plan.batches, plan.batch_size, plan.fits_per_batch, plan.cores_per_batch) == (1, 3, 4, 0)
    assert "each batch on its executors, fitting 4 labels at once" in plan.describe()
    c["rm"].route("GET", f"{APPS}/{SUCCEEDED}", Timeline([
        Step(recorded_reply("yarn/rm-rest-app-SUCCEEDED.json"), before=_writes(c, task, LABELS)),
    ]))
    ok, _ = build(task)
    assert ok
    [argv] = [json.loads(line) for line in submissions.read_text().splitlines()]  # one spark-submit
    assert argv[argv.index("--num-executors") + 1] == "2" and argv[argv.index("--executor-cores") + 1] == "2"
    spec = decode_spec(argv[argv.index(SPEC_FLAG) + 1])
    assert sorted(spec["labels"]) == LABELS
    assert spec["fit_place"] == "auto" and spec["fits_at_once"] == 4  # auto: tasks on YARN

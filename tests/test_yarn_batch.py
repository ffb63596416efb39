"""A batch on the recorded YARN cluster path: Luigi's batching turns three TrainModel
tasks into ONE tagged cluster-mode application whose name says how many labels it
holds, followed through the RM replay; every label gets its own result."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq

from pipeline.flows.demo import make_demo_frame
from pipeline.flows.train import TrainAll
from pipeline.runner import results
from tasks.jobspec import SPEC_FLAG, decode_spec
from tests.replay import Step, Timeline, recorded_reply
from tests.test_yarn_cluster_path import APPS, SUCCEEDED, _fake, build, cluster  # noqa: F401 - the fixture

LABELS = ["label_00", "label_01", "label_02"]


def test_a_batch_is_one_yarn_application_and_each_label_has_its_result(cluster, monkeypatch):  # noqa: F811
    c = cluster
    table = make_demo_frame(rows=200, features=3, labels=3, seed=4)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    c["hdfs"].put_dir("/data/three.parquet")
    c["hdfs"].put_file("/data/three.parquet/part-00000.parquet", buf.getvalue())
    data = c["data"].replace("/d.parquet", "/three.parquet")
    submissions = c["tmp"] / "argv.log"
    monkeypatch.setenv("FAKE_SPARK_SUBMIT_ARGV_LOG", str(submissions))
    _fake(monkeypatch, "spark-submit-succeeded.stderr", 0)
    task = TrainAll(data=data, models=c["models"], labels=LABELS, batch_size="3", log_dir=str(c["logs"]))
    root = task.plan["root"]

    def job_writes_every_artifact() -> None:  # what the real batch does before YARN calls it finished
        for label in LABELS:
            target = task.requires()[0].member_output(label)
            c["hdfs"].put_dir(target.location.path)
            c["hdfs"].put_file(f"{target.location.path}/{target.marker}", b"{}")

    c["rm"].route("GET", f"{APPS}/{SUCCEEDED}", Timeline([
        Step(recorded_reply("yarn/rm-rest-app-SUCCEEDED.json"), before=job_writes_every_artifact),
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

"""Spark's jars and the tasks zip published once on HDFS and named by every YARN job
(issue 13), on the recorded YARN path: spark-submit's recorded stderr (tests/fake_bin),
the ResourceManager replayed, HDFS the WebHDFS test server.

What is counted is what the server saw: CREATE and RENAME requests, from whichever of
Luigi's worker processes sent them. The Spark home is a small stand-in (two jars) so a
test does not zip 320 MB; which jars folder is used is part of what is tested.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import posixpath
import zipfile
from pathlib import Path

import luigi
import pytest

from pipeline.flows.scripts import RunScript, RunScripts
from pipeline.runner import spark_archive
from pipeline.runner.spark_archive import ensure_shared_files, publish, spark_jars_dir, spark_version
from pipeline.runner.submit import job_conf, tasks_zip
from pipeline.storage import storage_for
from pipeline.storage.locations import parse_location
from pipeline.storage.webhdfs import WebHdfsStorage, clear_webhdfs_cache
from tests.test_yarn_cluster_path import cluster as cluster  # noqa: F401 - the shared pytest fixture
from tests.webhdfs_server import WebHdfsServer

JOBS = ("a", "b", "c")
JARS = {"spark-core_2.12-3.5.7.jar": b"core classes" * 100, "hadoop-client-api-3.3.4.jar": b"hadoop" * 50}


def _spark_home(root: Path) -> Path:
    home = root / "spark-3.5.7"
    (home / "jars").mkdir(parents=True)
    for name, data in JARS.items():
        (home / "jars" / name).write_bytes(data)
    return home


@pytest.fixture
def jobs(cluster, tmp_path, monkeypatch):  # noqa: F811 - the imported fixture
    """Three RunScript jobs that each replay the recorded succeeded cluster submission;
    each leaves its spark-submit argv in ``argv/<job>.json``. A Spark home of two jars,
    a private cache folder and ``[yarn] archive_dir`` on the test server."""
    monkeypatch.setenv("SPARK_HOME", str(_spark_home(tmp_path)))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    base = cluster["models"].rsplit("/", 1)[0]  # webhdfs://127.0.0.1:<port>
    luigi.configuration.get_config().set("yarn", "archive_dir", f"{base}/shared/spark")
    script = tmp_path / "job.py"
    script.write_text("raise SystemExit('never run: spark-submit is the recorded fake')\n")
    cluster["hdfs"].put_dir("/out")
    entries = [{"name": n, "args": ["{output}"], "output": f"{base}/out/{n}"} for n in JOBS]
    (tmp_path / "jobs.json").write_text(json.dumps(entries))
    argv_dir = tmp_path / "argv"
    argv_dir.mkdir()
    environment = RunScript.program_environment

    def recorded_run(self):
        env = environment(self)
        env.update(FAKE_SPARK_SUBMIT_STDERR="spark-submit-succeeded.stderr", FAKE_SPARK_SUBMIT_RC="0",
                   FAKE_SPARK_SUBMIT_SLEEP="0", FAKE_SPARK_SUBMIT_ARGV=str(argv_dir / f"{self.job}.json"))
        return env

    publish = RunScript.after_success

    def job_wrote_its_output(self):
        # plays the script's part; over HTTP, since this runs in a forked worker process
        argv = json.loads((argv_dir / f"{self.job}.json").read_text())
        out = parse_location(argv[-1])
        storage_for(out).write_bytes(out.join("_SUCCESS"), b"")
        publish(self)

    monkeypatch.setattr(RunScript, "program_environment", recorded_run)
    monkeypatch.setattr(RunScript, "after_success", job_wrote_its_output)
    return {**cluster, "script": script, "jobs": tmp_path / "jobs.json", "argv_dir": argv_dir, "base": base}


def _run(c, workers: int, run_id: str = "first") -> bool:
    task = RunScripts(script=str(c["script"]), jobs=str(c["jobs"]), log_dir=str(c["logs"]), run_id=run_id)
    return luigi.build([task], local_scheduler=True, workers=workers, log_level="WARNING")


def _conf(argv: list[str]) -> dict[str, str]:
    return dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--conf")


def _writes(hdfs: WebHdfsServer, op: str, marker: str) -> list[str]:
    """Paths of NameNode ``op`` requests whose path holds ``marker``."""
    return [r.path for r in hdfs.requests if r.op == op and not r.datanode and marker in r.path]


def test_archive_is_uploaded_once_for_several_worker_processes_and_every_job_names_it(jobs, monkeypatch):
    builds = jobs["argv_dir"].parent / "zips-built"
    build_zip = spark_archive.build_jars_zip

    def counted(*args):
        with open(builds, "a") as fh:  # from whichever worker process builds one
            fh.write("1")
        return build_zip(*args)

    monkeypatch.setattr(spark_archive, "build_jars_zip", counted)
    assert _run(jobs, workers=3)
    assert builds.read_text() == "1"  # zipped once, not per job
    hdfs = jobs["hdfs"]
    archives = [p for p in hdfs.paths() if posixpath.basename(p).startswith("spark-libs-")]
    assert len(archives) == 1 and archives[0].startswith("/shared/spark/spark-libs-3.5.7-"), hdfs.paths()
    [archive] = archives
    # one upload (to a name of its own) and one rename into place, for three jobs in three processes
    assert len(_writes(hdfs, "CREATE", "spark-libs-")) == 1
    assert len(_writes(hdfs, "RENAME", "spark-libs-")) == 1
    assert not [p for p in hdfs.paths() if p.endswith(".tmp")], hdfs.paths()  # the loser's or a partial copy
    with zipfile.ZipFile(io.BytesIO(hdfs.node(archive).data)) as zf:
        assert {i.filename: zf.read(i) for i in zf.infolist()} == JARS  # jars at the root, as Spark expects
    [tasks] = [p for p in hdfs.paths() if posixpath.basename(p).startswith("tasks-")]
    assert posixpath.basename(tasks) == Path(tasks_zip()).name  # named by content
    assert len(_writes(hdfs, "CREATE", "tasks-")) == 1
    for job in JOBS:
        argv = json.loads((jobs["argv_dir"] / f"{job}.json").read_text())
        assert _conf(argv)["spark.yarn.archive"] == f"{jobs['base']}{archive}", job
        py_files = argv[argv.index("--py-files") + 1].split(",")
        assert f"{jobs['base']}{tasks}" in py_files, py_files
    # a later controller run, with other jobs, finds both in place: no upload at all
    hdfs.clear_log()
    clear_webhdfs_cache()
    entries = [{"name": n, "args": ["{output}"], "output": f"{jobs['base']}/out/{n}"} for n in ("d", "e")]
    jobs["jobs"].write_text(json.dumps(entries))
    assert _run(jobs, workers=2, run_id="second")
    assert not _writes(hdfs, "CREATE", "spark-libs-") and not _writes(hdfs, "CREATE", "tasks-")
    assert builds.read_text() == "1"  # and not even zipped locally again
    assert _conf(json.loads((jobs["argv_dir"] / "e.json").read_text()))["spark.yarn.archive"] == f"{jobs['base']}{archive}"


def test_a_user_set_spark_yarn_archive_wins_and_nothing_is_uploaded_for_it(jobs):
    config = luigi.configuration.get_config()
    conf = config.get("spark", "conf", "")
    config.set("spark", "conf", f"{conf}|spark.yarn.archive=hdfs:///apps/spark/mine.zip")
    assert _run(jobs, workers=1)
    assert not [p for p in jobs["hdfs"].paths() if "spark-libs-" in p]
    assert not _writes(jobs["hdfs"], "CREATE", "spark-libs-")
    for job in JOBS:
        argv = json.loads((jobs["argv_dir"] / f"{job}.json").read_text())
        archives = [a for a in argv if a.startswith("spark.yarn.archive=")]
        assert archives == ["spark.yarn.archive=hdfs:///apps/spark/mine.zip"], archives


def test_spark_yarn_archive_can_be_turned_off(jobs):
    luigi.configuration.get_config().set("yarn", "spark_archive", "false")
    assert _run(jobs, workers=1)
    argv = json.loads((jobs["argv_dir"] / "a.json").read_text())
    assert "spark.yarn.archive" not in _conf(argv)
    assert not _writes(jobs["hdfs"], "CREATE", "/shared/")


# --------------------------------------------------------------------------- concurrent first runs


def _publish_in_child(url: str, local: str, target: str, start, out) -> None:
    storage = WebHdfsStorage([url], user="alice")  # one per process, as on separate machines
    start.wait(10)
    out.put(publish(storage, Path(local), parse_location(target)))


def test_concurrent_first_publishers_leave_one_complete_archive(tmp_path):
    content = bytes(range(256)) * 4096  # 1 MiB: long enough for the uploads to overlap
    local = tmp_path / "spark-libs.zip"
    local.write_bytes(content)
    ctx = multiprocessing.get_context("fork")
    with WebHdfsServer() as nn:
        target = f"webhdfs://127.0.0.1:{nn.port}/shared/spark-libs-3.5.7-abc.zip"
        start, out = ctx.Barrier(4), ctx.Queue()
        children = [ctx.Process(target=_publish_in_child, args=(nn.url, str(local), target, start, out))
                    for _ in range(4)]
        for child in children:
            child.start()
        outcomes = sorted(out.get(timeout=30) for _ in children)
        for child in children:
            child.join(10)
        assert outcomes.count("uploaded") == 1, outcomes
        assert set(outcomes) <= {"uploaded", "present", "lost race"}
        assert nn.node("/shared/spark-libs-3.5.7-abc.zip").data == content
        assert nn.paths() == ["/", "/shared", "/shared/spark-libs-3.5.7-abc.zip"]  # no temporaries left


def test_the_jars_folder_and_version_of_the_spark_that_runs(tmp_path):
    home = _spark_home(tmp_path)
    dist_submit = home / "bin" / "spark-submit"
    dist_submit.parent.mkdir()
    dist_submit.write_text("#!/bin/sh\n")
    other = _spark_home(tmp_path / "other")
    assert spark_jars_dir(str(dist_submit), {}, None) == home / "jars"
    assert spark_jars_dir(str(dist_submit), {"SPARK_HOME": str(other)}, None) == other / "jars"
    assert spark_jars_dir("/nowhere/bin/spark-submit", {}, tmp_path / "missing") is None
    assert spark_version(home / "jars") == "3.5.7"


def test_a_local_archive_folder_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(Exception, match="archive_dir .* is a local path: YARN nodes need an hdfs:// folder"):
        ensure_shared_files(archive_dir=str(tmp_path), user_conf={}, jars_dir=None, tasks_zip="x",
                            cache_dir=tmp_path)


def test_the_archive_never_overrides_jars_the_user_named():
    def conf(user: dict[str, str]) -> dict[str, str]:
        return job_conf(user, ui_port=None, yarn=None, cluster_mode=True, environ={}, archive="hdfs:///a/spark-libs.zip")

    assert conf({})["spark.yarn.archive"] == "hdfs:///a/spark-libs.zip"
    assert conf({"spark.yarn.archive": "hdfs:///mine.zip"})["spark.yarn.archive"] == "hdfs:///mine.zip"
    assert "spark.yarn.archive" not in conf({"spark.yarn.jars": "hdfs:///jars/*.jar"})

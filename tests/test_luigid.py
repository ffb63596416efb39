"""Against a real luigid: each running job shows a live tracking URL, status and progress;
a luigid that stops answering mid-run ends the run in one line, keeping what finished."""

from __future__ import annotations

import configparser
import json
import os
import socket
import subprocess
import sys

import pytest
import requests

from pipeline.data.labels import label_slug
from tests.conftest import REPO
from tests.spark_helpers import artifact_dir, job_started, start_luigi, stop, wait_for
from tests.test_train_spark import dataset  # noqa: F401 - shared module fixture

pytestmark = pytest.mark.spark


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def luigid(tmp_path):
    port = _free_port()
    (tmp_path / "luigid").mkdir()  # luigid does not create its log folder
    exe = os.path.join(os.path.dirname(sys.executable), "luigid")
    proc = subprocess.Popen([exe, "--address", "127.0.0.1", "--port", str(port), "--logdir", str(tmp_path / "luigid"),
                             "--state-path", str(tmp_path / "luigid" / "state.pickle")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/api/task_list", timeout=1).ok
        except requests.RequestException:
            return False

    assert wait_for(up, timeout=30, interval=0.2), "luigid did not start"
    yield port, url, proc
    if proc.poll() is None:
        proc.terminate()
    proc.wait(timeout=10)


def _running_train_models(url: str) -> list[dict]:
    params = {"data": json.dumps({"status": "RUNNING", "upstream_status": "", "search": ""})}
    tasks = requests.get(f"{url}/api/task_list", params=params, timeout=5).json()["response"]
    return [t for t in tasks.values() if t["name"] == "TrainModel"]


def test_running_job_shows_tracking_url_status_and_progress(tmp_path, dataset, luigid):  # noqa: F811
    port, url, _ = luigid
    proc = start_luigi(["TrainAll", "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port), "--workers", "1",
                        "--data", str(dataset), "--models", "models", "--labels", '["label_00"]',
                        "--engine", "mllib-gbt", "--params", '{"max_iter": 40}'], cwd=tmp_path)
    seen: dict = {}
    try:
        def visible() -> bool:
            for task in _running_train_models(url):
                # the job's `started` event sets the URL, the status and the progress, one call each
                if task.get("tracking_url") and task.get("status_message") and task.get("progress_percentage") is not None:
                    seen.update(task)
                    return True
            return False

        assert wait_for(visible, timeout=240, interval=0.5), proc.communicate()[0][-3000:]
        assert seen["status_message"].startswith("RUNNING local-")
        assert seen["progress_percentage"] >= 10
        page = requests.get(seen["tracking_url"], timeout=10)  # the job's own Spark UI, live
        assert page.ok and "Spark" in page.text
        out, _ = proc.communicate(timeout=300)
    finally:
        stop(proc)
    assert proc.returncode == 0, out[-3000:]


NOT_RUN = 25  # [retcode] not_run: the run ended with jobs it never started


def test_a_lost_scheduler_ends_the_run_in_one_line_and_keeps_the_running_job(tmp_path, dataset, luigid):  # noqa: F811
    port, _, luigid_proc = luigid
    config = configparser.ConfigParser()
    config.read(REPO / "luigi.cfg")
    config.set("core", "rpc_retry_wait", "1")  # Luigi's retries (3 attempts) take 2 s instead of 60
    with open(tmp_path / "luigi.cfg", "w", encoding="utf-8") as fh:
        config.write(fh)
    labels = ["label_00", "label_01"]
    # one job at a time: label_00 runs while luigid goes away; label_01 never starts
    proc = start_luigi(["TrainAll", "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port), "--workers", "1",
                        "--batch-size", "1", "--data", str(dataset), "--models", "models", "--labels", json.dumps(labels)],
                       cwd=tmp_path, LUIGI_CONFIG_PATH=str(tmp_path / "luigi.cfg"), FANOUT_LABEL_DELAY="8")
    try:
        assert wait_for(lambda: job_started(tmp_path / "logs", "label_00"), timeout=240, interval=0.2), \
            proc.communicate()[0][-3000:]
        luigid_proc.kill()
        luigid_proc.wait(timeout=10)
        out, _ = proc.communicate(timeout=300)
    finally:
        stop(proc)
    assert proc.returncode == NOT_RUN, out[-3000:]
    for noise in ("Traceback", "Failed connecting", "NoneType", "closed file", "RPCError"):
        assert noise not in out, out[-3000:]
    where = f"the scheduler at 127.0.0.1:{port} stopped answering"
    [closing] = [line for line in out.splitlines() if line.startswith(f"spark-fanout: {where}")]
    assert closing == f"spark-fanout: {where}: 1 label trained, 1 not started; rerun to continue (what finished is kept)"
    # the job that was running when luigid went away finished and was kept
    assert (artifact_dir(tmp_path / "models", "label_00") / "_COMPLETE").is_file()
    assert not (artifact_dir(tmp_path / "models", "label_01")).exists()
    assert not (tmp_path / "logs" / label_slug("label_01")).exists()  # never started
    [row] = [line for line in out.splitlines() if line.startswith("label_01 ")]
    assert f"not started: {where}; rerun to continue" in row

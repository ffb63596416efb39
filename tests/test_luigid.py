"""Against a real luigid: each running job shows a live tracking URL, status and progress."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import requests

from tests.spark_helpers import start_luigi, stop, wait_for
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
    yield port, url
    proc.terminate()
    proc.wait(timeout=10)


def _running_train_models(url: str) -> list[dict]:
    params = {"data": json.dumps({"status": "RUNNING", "upstream_status": "", "search": ""})}
    tasks = requests.get(f"{url}/api/task_list", params=params, timeout=5).json()["response"]
    return [t for t in tasks.values() if t["name"] == "TrainModel"]


def test_running_job_shows_tracking_url_status_and_progress(tmp_path, dataset, luigid):  # noqa: F811
    port, url = luigid
    proc = start_luigi(["TrainAll", "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port), "--workers", "1",
                        "--data", str(dataset), "--models", "models", "--labels", '["label_00"]',
                        "--engine", "mllib-gbt", "--params", '{"max_iter": 40}'], cwd=tmp_path)
    seen: dict = {}
    try:
        def visible() -> bool:
            for task in _running_train_models(url):
                if task.get("tracking_url") and task.get("status_message"):
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

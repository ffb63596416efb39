"""luigid's task list, as a user sees it: rendered by its JavaScript in headless Chromium."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import ODD_LABEL
from tests.spark_helpers import run_luigi
from tests.test_luigid import luigid  # noqa: F401 - a real luigid on 127.0.0.1
from tests.test_train_spark import TASK_FAILED, dataset  # noqa: F401 - shared module fixture

pytestmark = pytest.mark.spark

CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)
TASKS_PAGE = "/static/visualiser/index.html#tab=tasks"


def _chromium(*args: str) -> subprocess.CompletedProcess:
    # --no-sandbox: Chromium refuses to run as root (CI) with its sandbox on.
    # --virtual-time-budget: return once the page's scripts have run (no fixed sleep).
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=10000", *args], capture_output=True, text=True, timeout=120)


def _rows(dom: str) -> list[str]:
    """The task table's rows as the text a reader sees."""
    rows = re.findall(r"<tr role=\"row\" class=\"(?:odd|even)\">(.*?)</tr>", dom, re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in rows]


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium)")
def test_task_list_shows_every_label_with_its_status(tmp_path, dataset, luigid):  # noqa: F811
    port, url, _ = luigid
    labels = ["label_00", ODD_LABEL]
    proc = run_luigi(["TrainAll", "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port), "--workers", "2",
                      "--data", str(dataset), "--models", "models", "--labels", json.dumps(labels),
                      "--batch-size", "1"],  # one task, so one row, per label (a batch is one row)
                     cwd=tmp_path, FANOUT_FAIL_LABELS=ODD_LABEL)
    assert proc.returncode == TASK_FAILED, (proc.stdout + proc.stderr)[-3000:]

    page = _chromium("--dump-dom", url + TASKS_PAGE)
    assert page.returncode == 0, page.stderr[-2000:]
    rows = _rows(page.stdout)
    expected = {"label_00": "DONE", ODD_LABEL: "FAILED"}
    for label, status in expected.items():
        mine = [row for row in rows if f"label = {label} " in f"{row} "]
        assert mine, f"no row shows label {label!r}: {rows}"
        assert any(row.startswith(f"{status} ") for row in mine), mine

    shot = tmp_path / "tasks.png"
    done = _chromium("--window-size=1280,900", f"--screenshot={shot}", url + TASKS_PAGE)
    assert done.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", done.stderr[-2000:]
    if os.environ.get("FANOUT_UI_SCREENSHOT"):  # refresh docs/luigid-tasks.png: FANOUT_UI_SCREENSHOT=docs/luigid-tasks.png
        shutil.copyfile(shot, os.environ["FANOUT_UI_SCREENSHOT"])

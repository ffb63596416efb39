"""Helpers for tests that run the real controller (`luigi --module pipeline …`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from pipeline.data.labels import label_slug
from tests.conftest import REPO


def luigi_argv(*args: str) -> list[str]:
    return [os.path.join(os.path.dirname(sys.executable), "luigi"), "--module", "pipeline", *args]


def controller_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["LUIGI_CONFIG_PATH"] = str(REPO / "luigi.cfg")
    env.update(extra)
    return env


def run_luigi(args: list[str], cwd: Path, timeout: float = 420, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(luigi_argv(*args), cwd=cwd, env=controller_env(**env), capture_output=True, text=True,
                          timeout=timeout)


def start_luigi(args: list[str], cwd: Path, own_group: bool = False, **env: str) -> subprocess.Popen:
    """The controller, running; ``own_group``: in a process group of its own, which
    :func:`ctrl_c` interrupts as a terminal's Ctrl-C does."""
    return subprocess.Popen(luigi_argv(*args), cwd=cwd, env=controller_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=own_group)


def ctrl_c(proc: subprocess.Popen) -> None:
    """SIGINT to the controller's whole process group (it and Luigi's task processes), as
    a terminal sends it on Ctrl-C; the controller must have been started with ``own_group``."""
    os.killpg(proc.pid, signal.SIGINT)


#: How a run that Ctrl-C stopped ends: killed by SIGINT, which a shell reports as exit 130.
STOPPED_BY_CTRL_C = -signal.SIGINT


def config_dir(models: Path) -> Path:
    """The one configuration folder a test's run made under ``models``."""
    [found] = [p for p in models.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))]
    return found


def artifact_dir(models: Path, label: str) -> Path:
    return config_dir(models) / label_slug(label)


def metadata(models: Path, label: str) -> dict:
    return json.loads((artifact_dir(models, label) / "metadata.json").read_text(encoding="utf-8"))


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return False


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def spark_jobs_running(pid: int) -> int:
    """spark-submit JVMs under the controller ``pid``."""
    count = 0
    for p in descendants(pid):
        try:
            cmd = p.cmdline()
        except psutil.Error:
            continue
        if any("org.apache.spark.deploy.SparkSubmit" in c for c in cmd):
            count += 1
    return count


def job_started(log_dir: Path, label: str) -> bool:
    folder = log_dir / label_slug(label)
    return any('"started"' in f.read_text(errors="replace") for f in folder.glob("*-spark-submit.log"))


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)

"""Pure pieces of a spark-submit call: where the executable is, the job's extra
Spark settings and environment, the application name, the py-files zip of ``tasks/``.

Nothing here starts a process; :mod:`pipeline.runner.job` runs what these functions build.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import socket
import stat
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path

import tasks
from pipeline.errors import ConfigError, SparkSubmitNotFound
from tasks.jobspec import FAIL_LABELS_ENV


def pyspark_home() -> Path | None:
    """The folder of the installed ``pyspark`` package (a complete Spark home)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent


def resolve_spark_submit(configured: str, which: Callable[[str], str | None] = shutil.which,
                         bundled_home: Path | None = None) -> str:
    """The spark-submit to run: an explicit path must exist; a bare name is looked up
    on PATH, and the default name falls back to the one inside the pyspark package."""
    if os.sep in configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise SparkSubmitNotFound(
            f"spark-submit {configured!r} does not exist or is not executable: fix [spark] spark-submit"
        )
    found = which(configured)
    if found:
        return found
    if configured == "spark-submit" and bundled_home is not None:
        candidate = bundled_home / "bin" / "spark-submit"
        if candidate.is_file():
            return str(candidate)
    raise SparkSubmitNotFound(
        f"{configured!r} is not on PATH: install Spark (pip install pyspark) or set [spark] spark-submit=/path/to/spark-submit"
    )


def needs_bundled_spark_home(spark_submit: str, bundled_home: Path | None, venv_bin: str) -> bool:
    """pyspark's own launcher scripts find SPARK_HOME with whatever ``python3`` is on
    PATH, which fails outside the venv; a Spark distribution's scripts find their own."""
    if bundled_home is None:
        return False
    real = os.path.realpath(spark_submit)
    return real.startswith(str(bundled_home.resolve()) + os.sep) or os.path.dirname(real) == os.path.realpath(venv_bin)


def job_environment(base: Mapping[str, str], *, spark_submit: str, bundled_home: Path | None,
                    local_master: bool, driver_local: bool, python: str = sys.executable) -> dict[str, str]:
    """The job's environment. A driver running on this machine (local mode, YARN client
    mode) uses the controller's interpreter, which has lightgbm & co.; in local mode the
    Python workers do too. On a cluster, executors use what [spark] conf names."""
    env = dict(base)
    if "SPARK_HOME" not in env and needs_bundled_spark_home(spark_submit, bundled_home, os.path.dirname(python)):
        env["SPARK_HOME"] = str(bundled_home)
    if local_master:
        env.setdefault("PYSPARK_PYTHON", python)
    if driver_local:
        env.setdefault("PYSPARK_DRIVER_PYTHON", python)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def is_local_master(master: str | None) -> bool:
    return master is None or master.startswith("local")


def job_conf(base: Mapping[str, str], *, ui_port: int | None, yarn: Mapping[str, str] | None,
             cluster_mode: bool, environ: Mapping[str, str], archive: str | None = None) -> dict[str, str]:
    """Spark settings this tool adds to the user's ``[spark] conf``.

    The UI port is ours (it must differ per concurrent local job); ``yarn`` entries (from
    :func:`pipeline.cluster.yarn.submit_conf`) yield to the user's, except the tag, which is
    added to theirs because it is how the controller finds its application again.
    ``archive`` (Spark's jars published once on HDFS) becomes ``spark.yarn.archive`` unless
    the user named their own jars (``spark.yarn.archive`` or ``spark.yarn.jars``).
    """
    conf = dict(base)
    if ui_port is not None:
        conf["spark.ui.port"] = str(ui_port)
    conf.setdefault("spark.ui.showConsoleProgress", "false")
    for key, value in (yarn or {}).items():
        if key == "spark.yarn.tags" and conf.get(key):
            conf[key] = f"{conf[key]},{value}"
        else:
            conf.setdefault(key, value)
    if archive and not any(conf.get(key) for key in ("spark.yarn.archive", "spark.yarn.jars")):
        conf["spark.yarn.archive"] = archive
    if cluster_mode and environ.get(FAIL_LABELS_ENV):
        # In cluster mode the driver runs in the AM container, not under our environment.
        conf[f"spark.yarn.appMasterEnv.{FAIL_LABELS_ENV}"] = environ[FAIL_LABELS_ENV]
    return conf


def free_port() -> int:
    """A TCP port free right now, for one local job's Spark UI (4040 upward collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _package_files(package_dir: Path) -> list[Path]:
    return sorted(p for p in package_dir.rglob("*.py") if "__pycache__" not in p.parts)


def private_cache_dir(explicit: str | None = None) -> Path:
    """A cache folder only this user can write: the zip in it goes first on the jobs'
    Python path, so a folder others could plant files in (a fixed name under /tmp)
    would let them run code as this user."""
    base = explicit or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "spark-fanout")
    folder = Path(base)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise ConfigError(
            f"cache folder {folder} is not a private folder of this user (owner, mode or symlink): remove it or set XDG_CACHE_HOME"
        )
    return folder


@cache
def tasks_zip(cache_dir: str | None = None) -> str:
    """Zip of the ``tasks`` package for ``--py-files``, built once per content: named by
    a hash of its files and written atomically, so concurrent workers share one."""
    package_dir = Path(tasks.__file__).resolve().parent
    files = _package_files(package_dir)
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(package_dir).as_posix().encode())
        digest.update(f.read_bytes())
    folder = private_cache_dir(cache_dir)
    target = folder / f"tasks-{digest.hexdigest()[:16]}.zip"
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".zip.tmp")
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in files:
                zf.write(f, f"tasks/{f.relative_to(package_dir).as_posix()}")
        os.replace(tmp, target)
    return str(target)


def train_script() -> str:
    """Path of the job entry script inside the installed ``tasks`` package."""
    return str(Path(tasks.__file__).resolve().parent / "train_model.py")

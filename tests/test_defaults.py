"""The package's own defaults hold from any folder and after a plain ``pip install``; a
user's luigi.cfg still overrides them; the repository's luigi.cfg documents the same values.

Every other test reads the repository's luigi.cfg (conftest.py sets LUIGI_CONFIG_PATH);
these run ``luigi`` from an empty temporary folder without it.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys

import pytest
from luigi.parameter import _no_value
from luigi.task_register import Register, TaskClassNotFoundException

from pipeline import defaults
from tests.conftest import REPO

MISSING = ["TrainAll", "--data", "missing.parquet", "--local-scheduler"]
REFUSAL = "ERROR: TrainAll: dataset missing.parquet does not exist"


def run_elsewhere(cwd, *args: str, luigi: str | None = None, pythonpath: str | None = None,
                  config_path: str | None = None) -> tuple[int, list[str]]:
    """``luigi --module pipeline <args>`` in ``cwd``, without the repository's luigi.cfg."""
    env = {k: v for k, v in os.environ.items() if k not in ("LUIGI_CONFIG_PATH", "PYTHONPATH")}
    if config_path:
        env["LUIGI_CONFIG_PATH"] = config_path
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    argv = [luigi or os.path.join(os.path.dirname(sys.executable), "luigi"), "--module", "pipeline", *args]
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]


def active_settings(path) -> dict[tuple[str, str], str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return {(s, k): v for s in parser.sections() for k, v in parser.items(s)}


def test_a_failure_run_from_another_folder_exits_non_zero(tmp_path):
    code, lines = run_elsewhere(tmp_path, *MISSING)
    assert code == 35, lines  # Luigi's own default is 0: a missing dataset would read as success
    assert len(lines) == 1 and lines[0].startswith(REFUSAL), lines
    assert not (tmp_path / "models").exists()


def test_a_users_luigi_cfg_overrides_the_packaged_defaults(tmp_path):
    (tmp_path / "luigi.cfg").write_text("[retcode]\nscheduling_error = 7\n")
    code, lines = run_elsewhere(tmp_path, *MISSING)
    assert code == 7 and lines[0].startswith(REFUSAL), lines
    named = tmp_path / "elsewhere.cfg"
    named.write_text("[retcode]\nscheduling_error = 9\n")
    code, lines = run_elsewhere(tmp_path, *MISSING, config_path=str(named))
    assert code == 9, lines  # LUIGI_CONFIG_PATH beats ./luigi.cfg, both beat the package


def test_the_defaults_come_from_a_non_editable_install(tmp_path):
    source, target = tmp_path / "src", tmp_path / "site"
    source.mkdir()
    for name in ("setup.py", "setup.cfg", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in ("pipeline", "tasks"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(source)],
                         capture_output=True, text=True, timeout=300)
    if pip.returncode != 0 and "setuptools" in pip.stderr and "No matching distribution" in pip.stderr:
        pytest.skip(f"pip cannot build a wheel here (no package index): {pip.stderr.strip().splitlines()[-1]}")
    assert pip.returncode == 0, pip.stderr
    assert (target / "pipeline" / "defaults.cfg").is_file()  # package data, not only the source tree
    work = tmp_path / "work"
    work.mkdir()
    probe = subprocess.run([sys.executable, "-c", "import pipeline; print(pipeline.__file__)"], cwd=work, capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(target)}, timeout=60)
    assert probe.stdout.strip().startswith(str(target)), probe.stdout + probe.stderr  # the installed copy is the one used
    code, lines = run_elsewhere(work, *MISSING, pythonpath=str(target))
    assert code == 35 and len(lines) == 1 and lines[0].startswith(REFUSAL), lines


def test_the_repository_luigi_cfg_documents_the_packaged_values():
    packaged = active_settings(defaults.DEFAULTS_FILE)
    documented = active_settings(REPO / "luigi.cfg")
    assert packaged, "defaults.cfg holds no setting"
    for key, value in packaged.items():
        assert documented.get(key) == value, f"[{key[0]}] {key[1]}: luigi.cfg says {documented.get(key)!r}, the package {value!r}"
    # Every value luigi.cfg sets is a packaged default too, except what Luigi reads while it
    # is imported, before any package of ours can add a file.
    read_at_luigi_import = {("core", "autoload_range")}
    assert set(documented) - set(packaged) == read_at_luigi_import


def test_install_puts_the_defaults_first_once():
    from luigi.configuration import LuigiConfigParser

    defaults.install()
    defaults.install()
    paths = LuigiConfigParser._config_paths
    assert paths.count(str(defaults.DEFAULTS_FILE)) == 1 and paths[0] == str(defaults.DEFAULTS_FILE)


def documented_defaults(path) -> list[tuple[str, str, str]]:
    """``(section, key, value)`` of each ``# key = value`` line that documents a default."""
    found, section = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        header = re.match(r"^\[(\w+)\]", line)
        if header:
            section = header.group(1)
            continue
        doc = re.match(r"^# (\w+) = ?(\S*)(\s{2,}|$)", line)
        if doc and section:
            found.append((section, doc.group(1), doc.group(2)))
    return found


def test_every_default_luigi_cfg_documents_is_the_one_in_the_code():
    import pipeline.storage.webhdfs  # noqa: F401 - registers [webhdfs]

    checked = 0
    for section, key, value in documented_defaults(REPO / "luigi.cfg"):
        try:
            cls = Register.get_task_cls(section)
        except TaskClassNotFoundException:
            assert section == "spark", f"[{section}] is documented but no class reads it"
            continue  # Luigi's own luigi.contrib.spark settings: the lines there are examples
        params = dict(cls.get_params())
        assert key in params, f"[{section}] {key} is documented but {section} has no such parameter"
        param = params[key]
        if param._default is _no_value:  # required: documented with an empty value
            assert value == "", f"[{section}] {key} is required but luigi.cfg shows a default {value!r}"
            continue
        assert param.normalize(param.parse(value)) == param.normalize(param._default), \
            f"[{section}] {key}: luigi.cfg says {value!r}, the code {param._default!r}"
        checked += 1
    assert checked > 40

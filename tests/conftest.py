import logging
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytest_plugins = ["tests.kdc"]  # the test KDC's fixtures: kdc, ticket, no_ticket
ODD_LABEL = 'churn 30d/EU "vip" ü $(touch pwned) `id`'


@pytest.fixture(autouse=True)
def _repo_luigi_cfg(monkeypatch):
    """Every test reads the repository's luigi.cfg, wherever pytest runs from."""
    monkeypatch.setenv("LUIGI_CONFIG_PATH", str(REPO / "luigi.cfg"))


@pytest.fixture(autouse=True)
def _fresh_dataset_identities():
    """A run takes each dataset's fingerprint once per process (pipeline.data.datasets):
    tests share a process and a run id, and a test server on a port an earlier test used
    would otherwise find that test's fingerprint under the same URI ("dataset changed")."""
    from pipeline.data.datasets import forget_identities

    forget_identities()
    yield
    forget_identities()


# Luigi configures these once per process, at the first luigi.build, with that build's
# log_level (and a stderr handler); a test building with log_level="ERROR" would otherwise
# leave every later test's WARNING records filtered out before they reach caplog.
_LOGGERS_LUIGI_CONFIGURES = ("luigi-interface", "luigi")


@pytest.fixture(autouse=True)
def _luigi_loggers_as_they_were():
    """Each test leaves Luigi's loggers as it found them."""
    saved = [(log, log.level, log.handlers[:], log.filters[:], log.propagate, log.disabled)
             for log in map(logging.getLogger, _LOGGERS_LUIGI_CONFIGURES)]
    yield
    for log, level, handlers, filters, propagate, disabled in saved:
        log.setLevel(level)
        log.handlers[:], log.filters[:] = handlers, filters
        log.propagate, log.disabled = propagate, disabled


def venv_bin(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def pytest_sessionstart(session):
    """The recorded cluster outputs travel with the repository in tests/fixtures."""
    from tests.replay import FIXTURES

    if not (FIXTURES / "README.md").is_file():
        pytest.exit(f"recorded fixtures not found at {FIXTURES}: restore tests/fixtures from git (git checkout -- tests/fixtures)",
                    returncode=4)


@pytest.fixture(scope="session")
def user_engine_site(tmp_path_factory):
    """tests/plugin_engine installed with pip into a folder of its own: a user's package
    that registers the engine ``centroid`` through the entry point group
    ``spark_fanout.engines``. Put the folder on sys.path (and PYTHONPATH for jobs) to use it."""
    import shutil
    import subprocess

    source = tmp_path_factory.mktemp("plugin-source") / "plugin_engine"
    shutil.copytree(REPO / "tests" / "plugin_engine", source)  # pip builds in place: not in the repository
    site = tmp_path_factory.mktemp("plugin-site")
    # The test extra brings setuptools and wheel: a build needs no network.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
                    "--target", str(site), str(source)], check=True, capture_output=True, text=True, timeout=300)
    return site

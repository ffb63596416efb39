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


def venv_bin(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def pytest_sessionstart(session):
    """The recorded cluster outputs travel with the repository in tests/fixtures."""
    from tests.replay import FIXTURES

    if not (FIXTURES / "README.md").is_file():
        pytest.exit(f"recorded fixtures not found at {FIXTURES}: restore tests/fixtures from git (git checkout -- tests/fixtures)",
                    returncode=4)

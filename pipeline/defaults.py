"""The package's own defaults for Luigi's sections (``[retcode]``, ``[worker]``, ``[spark]``).

Luigi reads ``/etc/luigi/luigi.cfg``, ``./luigi.cfg`` and ``$LUIGI_CONFIG_PATH``, so
settings kept only in the repository's ``luigi.cfg`` vanish for anyone who runs
``luigi --module pipeline …`` from another folder (Luigi's own exit codes are all 0).
:func:`install` puts ``defaults.cfg`` (package data) first in Luigi's list of files:
read from any folder, overridden by every file the user has.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.internals import put_config_file_first

DEFAULTS_FILE = Path(__file__).with_name("defaults.cfg")


def install() -> None:
    """Make ``defaults.cfg`` the lowest-precedence file of Luigi's configuration (once)."""
    # Files read later win, so the first place is the lowest precedence.
    put_config_file_first(str(DEFAULTS_FILE))

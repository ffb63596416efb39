"""``Report``: one static HTML page of what the runs under ``--models`` did.

``luigi --module pipeline Report --models models [--out report.html] --local-scheduler``

Metrics per label and configuration with ROC/PR curves, a search's leaderboard, a
feature sweep's metric against N, failed jobs with their one-line errors and logs, and
a timeline of the last run's jobs. Plots are PNGs inside the file: it opens offline.
The page is written anew on every run (it reads what is there now).
"""

from __future__ import annotations

import logging
import os

import luigi

from pipeline.errors import ConfigError
from pipeline.params import Parameter
from pipeline.report import collect, render
from pipeline.report.page import GENERATOR_META
from pipeline.runner.batching import check_workers
from pipeline.runner.job import RunParameters
from pipeline.storage import storage_for
from pipeline.storage.locations import parse_location

logger = logging.getLogger("luigi-interface")


def _is_our_page(path: str) -> bool:
    """Whether ``path`` is a page Report wrote (its generator tag, near the top)."""
    try:
        with open(path, "rb") as fh:
            return GENERATOR_META.encode("ascii") in fh.read(4096)
    except OSError:
        return False


class Report(RunParameters, luigi.Task):
    """Write the HTML report of the artifacts under ``models`` and the results in ``log_dir``."""

    models = Parameter(default="models", description="Artifact root to report on (local path or URI)")
    out = Parameter(default="report.html", description="The HTML file to write (a local path)")
    title = Parameter(default="spark-fanout report", description="The page's title")

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(self.out)

    def complete(self) -> bool:
        # Always rewritten: the runs it shows may have changed. A flag on the task would
        # not do: Luigi hands a notebook's second build the same (cached) task object.
        # Luigi checks completeness before running it, not after (no task requires it).
        # What can be refused without reading anything is refused here, while Luigi schedules.
        check_workers()
        if os.path.isdir(self.out):
            raise ConfigError(f"--out {self.out} is a folder: name the HTML file to write, e.g. --out {os.path.join(self.out, 'report.html')}")
        models = parse_location(self.models)
        if not storage_for(models).exists(models):  # a typo would give an empty page and exit 0
            raise ConfigError(f"--models {self.models} does not exist: point it at the artifact root of a run (TrainAll --models)")
        return False

    def run(self) -> None:
        if os.path.lexists(self.out) and not _is_our_page(self.out):
            raise ConfigError(f"{self.out} exists and was not written by spark-fanout's Report: choose another --out, "
                              f"or move it away yourself")
        page = render(collect(self.models, self.log_dir), title=self.title)
        folder = os.path.dirname(os.path.abspath(self.out))
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{os.path.basename(self.out)}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.replace(tmp, self.out)  # a reader never sees half a page
        logger.info("Report: wrote %s (%d KB)", os.path.abspath(self.out), len(page) // 1024)

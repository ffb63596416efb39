"""Settings of this tool that are not task parameters (``[fanout]`` in luigi.cfg).

Precedence everywhere: task parameter, then luigi.cfg, then the default given here.
"""

from __future__ import annotations

import luigi

from pipeline.params import FloatParameter, IntParameter


class fanout(luigi.Config):  # noqa: N801 - luigi names the config section after the class
    kill_grace_seconds = FloatParameter(
        default=5.0,
        description="Seconds a stopped job's processes get to exit after SIGTERM before SIGKILL.",
    )
    job_timeout = IntParameter(
        default=0,
        description="Seconds one spark-submit may run before it is stopped (0 = no limit). "
        "Luigi's --worker-timeout also applies.",
    )
    summary = luigi.BoolParameter(
        default=True, description="Print the per-label summary table when the controller exits."
    )
    max_local_jobs = IntParameter(
        default=0,
        description="Local-mode jobs running at once on this machine (0 = as many as its cores and free memory "
        "hold, at least 1). --workers still caps it.",
    )


class batching(luigi.Config):  # noqa: N801 - luigi names the config section after the class
    """Several labels per spark-submit (see :mod:`pipeline.runner.batching` for the rule)."""

    max_size = IntParameter(default=64, description="Most labels in one batch with batch-size auto.")
    startup_share = FloatParameter(
        default=0.2, description="batch-size auto keeps the start-up share of a batch's time under this.")
    startup_seconds_local = FloatParameter(
        default=8.0, description="Start-up cost of a local-mode job before measurements exist (4-6 s measured for an "
        "empty session, plus reading the data).")
    startup_seconds_yarn = FloatParameter(
        default=45.0, description="Start-up cost of a YARN job before measurements exist (29-68 s measured on Hadoop 3.3.6).")
    collect_limit_mb = FloatParameter(
        default=512.0, description="A LightGBM batch collects its rows to the driver (features and labels as doubles) "
        "up to this size and trains labels in driver threads; above it, labels train as Spark jobs.")
    threads = IntParameter(
        default=0, description="Training threads in a batch's driver (0 = one per driver core: local[N]'s N, "
        "spark.driver.cores on YARN).")

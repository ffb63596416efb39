"""Settings of this tool that are not task parameters (``[fanout]`` in luigi.cfg).

Precedence everywhere: task parameter, then luigi.cfg, then the default given here.
"""

from __future__ import annotations

import luigi


class fanout(luigi.Config):  # noqa: N801 - luigi names the config section after the class
    kill_grace_seconds = luigi.FloatParameter(
        default=5.0,
        description="Seconds a stopped job's processes get to exit after SIGTERM before SIGKILL.",
    )
    job_timeout = luigi.IntParameter(
        default=0,
        description="Seconds one spark-submit may run before it is stopped (0 = no limit). "
        "Luigi's --worker-timeout also applies.",
    )
    summary = luigi.BoolParameter(
        default=True, description="Print the per-label summary table when the controller exits."
    )
    max_local_jobs = luigi.IntParameter(
        default=0,
        description="Local-mode jobs running at once on this machine (0 = as many as its cores and free memory "
        "hold, at least 1). --workers still caps it.",
    )

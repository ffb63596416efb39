"""A job's ``spark-submit`` command line: what Luigi's ``SparkSubmitTask`` builds from a
task's properties, given here from the ``[spark]`` and ``[yarn]`` settings (the pure
pieces are in :mod:`pipeline.runner.submit`)."""

from __future__ import annotations

import os
from functools import cached_property

import luigi
from luigi.contrib.spark import SparkSubmitTask
from luigi.parameter import ParameterVisibility

from pipeline.cluster.yarn import submit_conf, yarn_tag
from pipeline.cluster.yarn_clients import kerberos_arguments
from pipeline.cluster.yarn_clients import yarn as yarn_settings
from pipeline.errors import ConfigError
from pipeline.runner import submit
from pipeline.runner.job_state import JobRun
from pipeline.runner.slots import parse_submit_cap
from pipeline.runner.spark_archive import SharedFiles, shared_files


class SparkCommand(SparkSubmitTask):
    """The command line of a job: master and deploy mode, the application's name and YARN
    tag, Spark settings and environment, the shared files on YARN, Kerberos arguments."""

    # Luigi's ExternalProgramTask setting; the job runner always captures (and streams) the
    # output, so it is no user choice: kept out of luigid.
    capture_output = luigi.BoolParameter(default=True, significant=False, visibility=ParameterVisibility.HIDDEN,
                                         description="Internal: the job's output is always captured")

    always_log_stderr = False
    name_prefix: str  # the kind's (see pipeline.runner.job.JobKind)
    slug: str
    state: JobRun  # the current run (its Spark UI port)

    @property
    def on_yarn(self) -> bool:
        return self.master == "yarn"

    @property
    def cluster_mode(self) -> bool:
        return self.on_yarn and self.deploy_mode == "cluster"

    @property
    def driver_local(self) -> bool:
        """Whether the job's driver runs on this machine (local mode, YARN client mode)."""
        return not self.cluster_mode

    @cached_property
    def tag(self) -> str:
        """The YARN tag that finds this task's application again, from any controller."""
        return yarn_tag(self.task_id)

    @property
    def name(self) -> str:
        return f"fanout-{self.name_prefix}-{self.slug}"

    @property
    def spark_submit(self) -> str:
        return submit.resolve_spark_submit(super().spark_submit, bundled_home=submit.pyspark_home())

    @property
    def master(self) -> str:
        return super().master or "local[1]"

    @property
    def py_files(self) -> list[str]:
        shared = self.shared_files.tasks_zip if self.cluster_mode else None
        return (super().py_files or []) + [shared or submit.tasks_zip()]

    @cached_property
    def shared_files(self) -> SharedFiles:
        """Spark's jars and the tasks zip, published once on HDFS for every YARN job."""
        if not self.on_yarn:
            return SharedFiles(None, None)
        return shared_files(user_conf=super().conf or {}, spark_submit=self.spark_submit, environ=os.environ,
                            bundled_home=submit.pyspark_home(), tasks_zip=submit.tasks_zip(),
                            cache_dir=submit.private_cache_dir())

    @property
    def conf(self) -> dict[str, str]:
        yarn_entries = None
        if self.on_yarn:
            cfg = yarn_settings()
            yarn_entries = submit_conf(self.tag, max_app_attempts=cfg.max_app_attempts,
                                       wait_app_completion=cfg.wait_app_completion or not self.cluster_mode)
        return submit.job_conf(super().conf or {}, ui_port=self.state.ui_port, yarn=yarn_entries,
                        cluster_mode=self.cluster_mode, environ=os.environ, archive=self.shared_files.archive)

    def spark_command(self) -> list[str]:
        command = super().spark_command()
        return command + kerberos_arguments(yarn_settings()) if self.on_yarn else command

    def program_environment(self) -> dict[str, str]:
        return submit.job_environment(
            self.get_environment(), spark_submit=self.spark_submit, bundled_home=submit.pyspark_home(),
            local_master=submit.is_local_master(self.master), driver_local=self.driver_local,
        )

    def check_spark_settings(self) -> None:
        """The ``[spark]``/``[yarn]`` settings every job needs, checked before any JVM starts."""
        try:
            _ = super().conf  # Luigi parses "|"-separated key=value pairs here
        except ValueError:
            raise ConfigError("[spark] conf holds an entry without '=': write it as key=value|key=value") from None
        if self.on_yarn:
            cfg = yarn_settings()
            kerberos_arguments(cfg)  # refuses a principal without keytab and vice versa
            parse_submit_cap(cfg.max_concurrent_submits)

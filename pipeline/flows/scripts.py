"""``RunScripts``: fan out a user's own Spark script, one spark-submit per jobs-file entry.

``luigi --module pipeline RunScripts --script my_job.py --jobs jobs.json --workers 20``
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from typing import Any

import luigi
from luigi.parameter import ParameterVisibility

from pipeline.data.jobs_file import ScriptJob, parse_jobs_text, validate_jobs
from pipeline.data.outputs import RenamedOutput, completed_jobs
from pipeline.errors import ConfigError, JobFailed
from pipeline.runner import results
from pipeline.runner.controller import install_controller_hooks
from pipeline.runner.job import WRAPPER_PRIORITY, RunParameters, SparkJob, current_run_id, start_in_order
from pipeline.storage import storage_for
from pipeline.storage.locations import Location, parse_location
from tasks.outputs import SUCCESS

logger = logging.getLogger("luigi-interface")

RESULT_GROUP = "scripts"


def _check_script(script: str) -> str:
    if "://" in script:  # a script on HDFS: spark-submit fetches it
        return script
    if not os.path.isfile(script):
        raise ConfigError(f"script {script!r} does not exist: check --script (a path on this machine)")
    return os.path.abspath(script)


def load_jobs(jobs: str) -> list[ScriptJob]:
    """The checked entries of the jobs file ``jobs`` (a local path or a storage URI)."""
    loc = parse_location(jobs)
    storage = storage_for(loc)
    if not storage.exists(loc):
        raise ConfigError(f"jobs file {jobs!r} does not exist: check --jobs")
    text = storage.read_bytes(loc).decode("utf-8", errors="replace")
    return validate_jobs(parse_jobs_text(text, jobs), jobs)


def _location_arg(loc: Location) -> str:
    """How a script sees a location: a plain path for local files (``open()`` and Spark
    both take it), the URI otherwise."""
    return loc.path if loc.is_local else loc.uri()


class RunScript(RenamedOutput, SparkJob):
    """One entry of a jobs file: ``spark-submit <script> <args>``, output committed atomically."""

    script = luigi.Parameter(description="The user's Spark script (local path, or hdfs:// for cluster mode)")
    job = luigi.Parameter(description="The job's name (unique in its jobs file)")
    args = luigi.ListParameter(default=(), description="The script's arguments; {output} and {name} are replaced")
    out = luigi.Parameter(description="The job's output folder (path or URI)")
    commit_by_rename = luigi.BoolParameter(default=True, visibility=ParameterVisibility.HIDDEN,
                                           description="Internal: whether {output} is in args (the controller commits)")

    unit = "job"
    success_status = "succeeded"
    result_group = RESULT_GROUP
    name_prefix = "script"

    @property
    def job_name(self) -> str:
        return self.job

    @property
    def app(self) -> str:
        return _check_script(self.script)

    def app_options(self) -> list[str]:
        entry = ScriptJob(self.job, tuple(self.args), self.out)
        target = self.temp_location if self.commit_by_rename else self.out_location
        return entry.argv(_location_arg(target))

    def preflight(self) -> None:
        _check_script(self.script)
        if self.on_yarn and self.out_location.is_local and self.cluster_mode:
            raise ConfigError(f"job {self.job!r}: output {self.out} is a local path but the job runs on YARN nodes: "
                              f"use an hdfs:// path")

    def before_submit(self) -> None:
        """Remove what a killed attempt left: its temporary folder, or an output the script
        wrote itself without ``_SUCCESS`` (never a complete output)."""
        if self.remove_stale_temporary():
            logger.info("%s: removed stale temporary output %s", self.title, self.temp_location)
        storage = storage_for(self.out_location)
        if not self.commit_by_rename and storage.exists(self.out_location) and not self.output().exists():
            storage.remove_tree(self.out_location)
            logger.warning("%s: removed incomplete output %s (no %s) left by an earlier attempt",
                           self.title, self.out_location, SUCCESS)

    def after_success(self) -> None:
        """Move the temporary output into place once Spark (or the script) committed it."""
        if not self.commit_by_rename:
            if not self.output().exists():
                raise JobFailed(f"{self.title}: the script succeeded but {self.out} holds no {SUCCESS}: write it with "
                                f"a Spark DataFrame writer or call tasks.outputs.mark_success at the end")
            return
        storage = storage_for(self.out_location)
        if not storage.exists(self.temp_location.join(SUCCESS)):
            if self.output().exists():  # the script wrote the final output itself
                return
            raise JobFailed(f"{self.title}: the script succeeded but wrote no {SUCCESS} into {{output}} "
                            f"({self.temp_location}): write it with a Spark DataFrame writer or call "
                            f"tasks.outputs.mark_success at the end")
        self.move_into_place()


class RunScripts(RunParameters, luigi.WrapperTask):
    """Run ``script`` once per entry of ``jobs``; only jobs without a complete output run."""

    script = luigi.Parameter(description="Your Spark script, run by spark-submit once per job")
    jobs = luigi.Parameter(description='Jobs file: a JSON (or YAML) list of {"name", "args", "output"}')

    priority = WRAPPER_PRIORITY  # its jobs start in the order of the jobs file (start_in_order)
    summary_title = "jobs"
    summary_unit = "job"
    summary_detail = "output / error"

    @cached_property
    def plan(self) -> dict[str, Any]:
        """The jobs and which of them are still missing, computed once per run."""
        _check_script(self.script)
        entries = load_jobs(self.jobs)
        done = completed_jobs(entries)
        missing = [job for job in entries if job.name not in done]
        logger.info("RunScripts: %d jobs, %d complete, %d to run", len(entries), len(done), len(missing))
        return {"jobs": entries, "missing": missing}

    def requires(self) -> list[RunScript]:
        install_controller_hooks(self)
        run_id = self.run_id or current_run_id()
        return start_in_order([
            RunScript(script=self.script, job=job.name, args=job.args, out=job.output,
                      commit_by_rename=job.writes_to_placeholder, log_dir=self.log_dir, run_id=run_id)
            for job in self.plan["missing"]
        ])

    def summary_rows(self) -> list[dict[str, object]]:
        """One row per job: what happened to it in this controller run."""
        entries = self.plan["jobs"]
        done = completed_jobs(entries)
        return results.summarize([j.name for j in entries], self.run_id or current_run_id(), self.log_dir, done,
                                 group=RESULT_GROUP, success=RunScript.success_status, kept="output")

"""``RunScripts``: fan out a user's own Spark script, one spark-submit per jobs-file entry.

``luigi --module pipeline RunScripts --script my_job.py --jobs jobs.json --workers 20``
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import luigi
from luigi.freezing import recursively_unfreeze
from luigi.parameter import ParameterVisibility

from pipeline.data import results
from pipeline.data.datasets import data_identity
from pipeline.data.jobs_file import ScriptJob, output_location, parse_jobs_text, validate_jobs
from pipeline.data.outputs import OwnedOutput, read_made_record
from pipeline.data.results import current_run_id
from pipeline.errors import ConfigError, DatasetError, JobFailed
from pipeline.params import Parameter
from pipeline.runner.batching import check_workers
from pipeline.runner.controller import install_controller_hooks
from pipeline.runner.job import WRAPPER_PRIORITY, RunParameters, SparkJob, start_in_order
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


def _file_digest(path: str) -> str:
    """sha256 of a file: a local path, or a storage URI."""
    loc = parse_location(path)
    storage = storage_for(loc)
    if not storage.exists(loc):
        raise ConfigError(f"{path!r} does not exist: check --script and [spark] py_files")
    return hashlib.sha256(storage.read_bytes(loc)).hexdigest()


def configured_py_files() -> list[str]:
    """``[spark] py_files``, as spark-submit gets them."""
    value = luigi.configuration.get_config().get("spark", "py-files", None)
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def job_identity(job: ScriptJob, script_digest: str, py_files: Mapping[str, str], run_id: str) -> dict[str, Any]:
    """What a job's output is computed from: the script's content, its arguments as the
    script sees them ({output} as the final output), the py_files' contents and the
    fingerprints of the inputs the job declares."""
    inputs = {}
    for one in job.inputs:
        try:
            inputs[parse_location(one).uri()] = data_identity(one, run_id)
        except DatasetError:
            raise ConfigError(f"job {job.name!r}: input {one!r} does not exist: create it, or fix \"inputs\"") from None
    return {"script": script_digest, "args": job.argv(output_location(job).uri()), "py_files": dict(py_files),
            "inputs": inputs}


def job_states(tasks: Sequence[RunScript]) -> tuple[set[str], list[str]]:
    """Which jobs are done (our record in their output names their identity), and the
    outputs that exist but are not ours (neither our record nor our claim beside them):
    ONE listing per output parent folder, plus one read of the record of each output
    that exists."""
    by_parent: dict[Location, list[RunScript]] = defaultdict(list)
    for task in tasks:
        by_parent[task.out_location.parent()].append(task)
    done: set[str] = set()
    foreign: list[str] = []
    for parent, members in by_parent.items():
        storage = storage_for(parent)
        names = {e.name for e in storage.list_dir(parent) or []}
        for task in members:
            if task.out_location.name not in names:
                continue
            record = read_made_record(storage, task.out_location)
            if record is not None:
                if record.get("identity") == task.identity:
                    done.add(task.job)
            elif task.claim_location.name not in names:
                foreign.append(str(task.out_location))
    return done, foreign


class RunScript(OwnedOutput, SparkJob):
    """One entry of a jobs file: ``spark-submit <script> <args>``, output committed atomically."""

    script = luigi.Parameter(description="The user's Spark script (local path, or hdfs:// for cluster mode)")
    job = luigi.Parameter(description="The job's name (unique in its jobs file)")
    args = luigi.ListParameter(default=(), description="The script's arguments; {output} and {name} are replaced")
    out = luigi.Parameter(description="The job's output folder (path or URI)")
    inputs = luigi.ListParameter(default=(), description="Paths the job reads (their fingerprints are part of its identity)")
    commit_by_rename = luigi.BoolParameter(default=True, visibility=ParameterVisibility.HIDDEN,
                                           description="Internal: whether {output} is in args (the controller commits)")
    identity_parts = luigi.DictParameter(default={}, significant=False, visibility=ParameterVisibility.HIDDEN,
                                         description="Internal: what the output is computed from (RunScripts computes it)")

    unit = "job"
    success_status = "succeeded"
    result_group = RESULT_GROUP
    name_prefix = "script"
    marker_kind = "script"

    @property
    def job_name(self) -> str:
        return self.job

    @property
    def app(self) -> str:
        return _check_script(self.script)

    @property
    def entry(self) -> ScriptJob:
        return ScriptJob(self.job, tuple(self.args), self.out, tuple(self.inputs))

    def output_identity(self) -> dict[str, Any]:
        if self.identity_parts:
            return recursively_unfreeze(self.identity_parts)
        py_files = {p: _file_digest(p) for p in configured_py_files()}
        return job_identity(self.entry, _file_digest(_check_script(self.script)), py_files, self.run_id or current_run_id())

    def app_options(self) -> list[str]:
        target = self.temp_location if self.commit_by_rename else self.out_location
        return self.entry.argv(_location_arg(target))

    def preflight(self) -> None:
        _check_script(self.script)
        if self.on_yarn and self.out_location.is_local and self.cluster_mode:
            raise ConfigError(f"job {self.job!r}: output {self.out} is a local path but the job runs on YARN nodes: "
                              f"use an hdfs:// path")
        self.refuse_foreign_output()

    def before_submit(self) -> None:
        """Claim the output (waiting for another run writing it), removing what a gone
        attempt of ours left: its temporary, or a partial output it wrote itself."""
        if not self.claim_output(self.state, self.status_message):
            self.done_elsewhere(self.job)

    def after_success(self) -> None:
        """Publish the output with our record once Spark (or the script) wrote ``_SUCCESS``."""
        storage = storage_for(self.out_location)
        written = self.temp_location if self.commit_by_rename else self.out_location
        if not storage.exists(written.join(SUCCESS)):
            how = ("write it with a Spark DataFrame writer or call tasks.outputs.mark_success at the end"
                   if self.commit_by_rename else "write it with a Spark DataFrame writer or call "
                   "tasks.outputs.mark_success at the end (or pass {output} in args and write there)")
            where = f"into {{output}} ({self.temp_location})" if self.commit_by_rename else f"into {self.out}"
            raise JobFailed(f"{self.title}: the script succeeded but wrote no {SUCCESS} {where}: {how}")
        if not self.commit_output():
            self.done_elsewhere(self.job)


class RunScripts(RunParameters, luigi.WrapperTask):
    """Run ``script`` once per entry of ``jobs``; only jobs without a complete output run."""

    script = Parameter(example="my_job.py", description="Your Spark script, run by spark-submit once per job")
    jobs = Parameter(example="jobs.json", description='Jobs file: a JSON (or YAML) list of {"name", "args", "output"}')

    priority = WRAPPER_PRIORITY  # its jobs start in the order of the jobs file (start_in_order)
    summary_title = "jobs"
    summary_unit = "job"
    summary_detail = "output / error"

    @cached_property
    def plan(self) -> dict[str, Any]:
        """The jobs, what each is computed from, and which are still missing (computed once
        per run); outputs that exist but are not ours are refused before any job starts."""
        script = _check_script(self.script)
        entries = load_jobs(self.jobs)
        run_id = self.run_id or current_run_id()
        digest = _file_digest(script)
        py_files = {p: _file_digest(p) for p in configured_py_files()}
        tasks = [RunScript(script=self.script, job=job.name, args=job.args, out=job.output, inputs=job.inputs,
                           commit_by_rename=job.writes_to_placeholder,
                           identity_parts=job_identity(job, digest, py_files, run_id), log_dir=self.log_dir,
                           run_id=run_id)
                 for job in entries]
        done, foreign = job_states(tasks)
        if foreign:
            more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
            raise ConfigError(f"output {foreign[0]}{more} exists and was not made by spark-fanout: choose another "
                              f"output in {self.jobs}, or move it away yourself")
        missing = [task for task in tasks if task.job not in done]
        logger.info("RunScripts: %d jobs, %d complete, %d to run", len(entries), len(done), len(missing))
        return {"jobs": entries, "tasks": tasks, "missing": missing}

    def requires(self) -> list[RunScript]:
        check_workers()  # before the exit summary is hooked: a refused run has nothing to sum up
        install_controller_hooks(self)
        return start_in_order(self.plan["missing"])

    def summary_rows(self) -> list[dict[str, object]]:
        """One row per job: what happened to it in this controller run."""
        entries = self.plan["jobs"]
        done, _ = job_states(self.plan["tasks"])
        return results.summarize([j.name for j in entries], self.run_id or current_run_id(), self.log_dir, done,
                                 group=RESULT_GROUP, success=RunScript.success_status, kept="output")

"""Outputs of single jobs (``RunScripts``' jobs, ``Predict``): owned, identified folders.

A job told where to write (``{output}`` in its arguments, Predict always) writes into a
temporary sibling of its output; the controller renames it into place once ``_SUCCESS``
is there, with a made-by record (``_fanout.json``) naming the inputs it was computed
from. A script that writes its output itself gets the record once ``_SUCCESS`` is in it.

An output is complete only when its record names the inputs of this run. Anything at an
output path without our record is not ours: it is refused, never replaced or removed.
While a job runs, a claim beside its temporary names the controller process that
writes it; another run waits for it, and removes what it left only once it is gone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from functools import cached_property
from typing import Any, Protocol

import luigi

from pipeline.config import fanout
from pipeline.data.labels import label_slug
from pipeline.errors import ConfigError, FanoutError, JobFailed
from pipeline.storage import Storage, storage_for
from pipeline.storage.locations import Location, parse_location
from tasks.layout import TMP_PREFIX
from tasks.outputs import SUCCESS
from tasks.ownership import (
    MADE_FILE,
    Heartbeat,
    claim_name,
    describe_owner,
    encode_record,
    made_record,
    owner_gone,
    owner_record,
    parse_record,
    process_alive,
    this_host,
)

logger = logging.getLogger("luigi-interface")


class MarkedFolder(luigi.Target):
    """A folder that exists, for Luigi, once its completion marker file does."""

    marker = SUCCESS

    def __init__(self, location: Location, storage: Storage | None = None) -> None:
        self.location = location
        self._storage = storage

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            self._storage = storage_for(self.location)
        return self._storage

    @property
    def path(self) -> str:
        return str(self.location)

    def exists(self) -> bool:
        return self.storage.exists(self.location.join(self.marker))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"


class SuccessTarget(MarkedFolder):
    """An output folder (a job's, a dataset); it exists once ``_SUCCESS`` is in it."""


def identity_of(parts: Mapping[str, Any]) -> str:
    """A short stable hash of what an output is computed from."""
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:16]


def read_made_record(storage: Storage, folder: Location) -> dict[str, Any] | None:
    """The made-by record in ``folder``; ``None`` when it has none (not made by us)."""
    marker = folder.join(MADE_FILE)
    return parse_record(storage.read_bytes(marker)) if storage.exists(marker) else None


class OwnedFolder(MarkedFolder):
    """An output folder that exists, for Luigi, once our made-by record in it names
    ``identity`` (computed lazily: a callable)."""

    marker = MADE_FILE

    def __init__(self, location: Location, identity: Callable[[], str], storage: Storage | None = None) -> None:
        super().__init__(location, storage)
        self._identity = identity

    def exists(self) -> bool:
        record = read_made_record(self.storage, self.location)
        return record is not None and record.get("identity") == self._identity()


def temporary_output(output: Location, key: str) -> Location:
    """The temporary sibling a job writes into: fixed per task (``key``), so a rerun
    removes what a killed attempt left and a re-attached YARN job's folder is known."""
    token = hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]
    return output.parent().join(f"{TMP_PREFIX}{label_slug(output.name)}-{token}")


def temporary_is_ours_to_remove(record: Mapping[str, Any] | None, lease_seconds: float) -> bool:
    """Whether the controller named by a claim is gone (see :func:`tasks.ownership.owner_gone`);
    a claim of this very process (a notebook's earlier run) is taken over as well."""
    if record is not None and record.get("host") == this_host() and record.get("pid") == os.getpid():
        return True
    return owner_gone(record, now=time.time(), lease_seconds=lease_seconds, here=this_host(), alive=process_alive,
                      fallback_time=None)


class RunningJob(Protocol):
    """What :meth:`OwnedOutput.claim_output` needs of the job's current run."""

    resources: ExitStack  # closed when the job is over: the claim is released then
    deadline: float | None  # time.monotonic() by which the job must end
    left_running: bool  # a stop left its YARN application running: keep the claim for a later run


class OwnedOutput:
    """Mixin of a job whose output folder (its ``out`` parameter) spark-fanout owns.

    A kind says what the output is computed from (:meth:`output_identity`) and what made
    it (``marker_kind``). Spark writes a temporary sibling; :meth:`commit_output` puts
    the made-by record in it and renames it into place, replacing an earlier output of
    ours computed from other inputs (moved aside, the new one renamed in, the old one
    removed). Before the job, :meth:`claim_output` waits for another run writing the same
    output, then claims it for this process (kept fresh by a heartbeat while the job
    runs) and removes only what a gone writer of ours left.
    """

    out: str  # a luigi parameter of the task
    task_id: str
    title: str  # how the job names itself in messages
    marker_kind = "output"
    #: Whether Spark writes a temporary sibling the controller renames (else: ``out`` itself).
    commit_by_rename = True

    def output_identity(self) -> dict[str, Any]:
        """Everything the output is computed from, as plain JSON."""
        raise NotImplementedError

    @cached_property
    def identity(self) -> str:
        return identity_of(self.output_identity())

    @cached_property
    def out_location(self) -> Location:
        return parse_location(self.out)

    @cached_property
    def temp_location(self) -> Location:
        return temporary_output(self.out_location, self.task_id)

    @property
    def claim_location(self) -> Location:
        return self.temp_location.parent().join(claim_name(self.temp_location.name))

    @property
    def aside_location(self) -> Location:
        """Where an earlier output of ours waits while the new one is renamed in."""
        return self.temp_location.parent().join(self.temp_location.name + "-replaced")

    def output(self) -> OwnedFolder:
        return OwnedFolder(self.out_location, lambda: self.identity)

    def complete(self) -> bool:
        """Complete when our record in ``out`` names these inputs; inputs that cannot be
        read make it incomplete (the job's checks then say why in one line)."""
        try:
            return self.output().exists()
        except FanoutError:
            return False

    # --- before the job -------------------------------------------------------------
    def refuse_foreign_output(self) -> None:
        """One line, before any JVM, for an ``out`` that holds something we did not make."""
        storage = storage_for(self.out_location)
        if storage.exists(self.out_location) and read_made_record(storage, self.out_location) is None \
                and not storage.exists(self.claim_location):
            raise ConfigError(f"{self.title}: {self.out} exists and was not made by spark-fanout: choose another "
                              f"output, or move it away yourself")

    def claim_output(self, run: RunningJob, status: Callable[[str], None]) -> bool:
        """Take the output for this job's ``run``, released when the run's resources close;
        ``False`` when another run completed it meanwhile (nothing to do). Removes what a gone
        writer of ours left (its temporary, a self-written partial output), never a live
        writer's work."""
        storage = storage_for(self.out_location)
        lease = fanout().temporary_lease_seconds
        earlier = self._wait_for_other_writer(storage, lease, status, run.deadline)
        if self.output().exists():
            return False
        storage.write_bytes(self.claim_location, encode_record(self._claim_record(lease)))
        resources = run.resources
        resources.callback(self._release_output, storage, run)
        beat_storage = storage.for_thread()
        resources.enter_context(Heartbeat(
            lambda: beat_storage.write_bytes(self.claim_location, encode_record(self._claim_record(lease))), lease / 4,
            on_error=lambda exc: logger.warning("%s: could not refresh the claim on %s: %s", self.title, self.out, exc)))
        for leftover in (self.temp_location, self.aside_location):
            if storage.exists(leftover):
                storage.remove_tree(leftover)
                logger.info("%s: removed %s, left by an earlier attempt that is gone", self.title, leftover)
        if not self.commit_by_rename and storage.exists(self.out_location):
            if read_made_record(storage, self.out_location) is None and earlier is None:
                raise JobFailed(f"{self.title}: {self.out} exists and was not made by spark-fanout: choose another "
                                f"output, or move it away yourself")
            storage.remove_tree(self.out_location)
            logger.warning("%s: removed %s, an earlier output of this job (%s), before writing it anew", self.title,
                           self.out, "its inputs changed" if earlier is None else "left incomplete by a failed attempt")
        return True

    def _release_output(self, storage: Storage, run: RunningJob) -> None:
        """When the job is over: drop our claim and, if the job did not publish, what it
        wrote (its temporary, or the partial output a script writing ``out`` itself left:
        nothing else was there when we claimed it). Kept while the application may still
        run on YARN (left running on a stop): a later run re-attaches to it."""
        if run.left_running:
            return
        try:
            storage.remove_tree(self.temp_location)
            if not self.commit_by_rename and storage.exists(self.out_location) \
                    and read_made_record(storage, self.out_location) is None:
                storage.remove_tree(self.out_location)
                logger.info("%s: removed the partial output %s of this failed job", self.title, self.out)
            storage.remove_tree(self.claim_location)
        except FanoutError as exc:  # a later run cleans up once this process is gone
            logger.warning("%s: could not clean up after the job: %s", self.title, exc)

    def _claim_record(self, lease: float) -> dict[str, Any]:
        return owner_record(lease, job=self.title, output=self.out_location.uri())

    def _wait_for_other_writer(self, storage: Storage, lease: float, status: Callable[[str], None],
                               deadline: float | None) -> dict[str, Any] | None:
        """Wait while another live run claims this output; returns the last claim seen
        (a gone writer's), ``None`` when there was none."""
        while True:
            record = parse_record(storage.read_bytes(self.claim_location)) if storage.exists(self.claim_location) else None
            if record is None or temporary_is_ours_to_remove(record, lease):
                return record
            if deadline is not None and time.monotonic() > deadline:
                raise JobFailed(f"{self.title}: {describe_owner(record)} is still writing {self.out}: rerun once it ended")
            message = f"waiting for {describe_owner(record)}, which is writing {self.out}"
            logger.info("%s: %s", self.title, message)
            status(message)
            time.sleep(min(5.0, lease / 4))

    # --- after the job ----------------------------------------------------------------
    def commit_output(self) -> bool:
        """Publish the job's output with our made-by record; ``False`` when another run's
        output of the same inputs won (ours is dropped)."""
        storage = storage_for(self.out_location)
        record = encode_record(made_record(self.marker_kind, self.identity, job=self.title, inputs=self.output_identity()))
        if not self.commit_by_rename:
            storage.write_bytes(self.out_location.join(MADE_FILE), record)
            return True
        storage.write_bytes(self.temp_location.join(MADE_FILE), record)
        return self._rename_into_place(storage)

    def _rename_into_place(self, storage: Storage) -> bool:
        if storage.exists(self.out_location):
            theirs = read_made_record(storage, self.out_location)
            if theirs is None:
                raise JobFailed(f"{self.title}: {self.out} appeared while the job ran and was not made by spark-fanout: "
                                f"move it away and rerun (the job's output is kept in {self.temp_location})")
            if theirs.get("identity") == self.identity:  # another run of the same inputs won
                storage.remove_tree(self.temp_location)
                return False
            storage.rename(self.out_location, self.aside_location)
            storage.rename(self.temp_location, self.out_location)
            storage.remove_tree(self.aside_location)
            return True
        storage.rename(self.temp_location, self.out_location)
        return True

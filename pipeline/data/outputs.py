"""Outputs of user scripts (``RunScripts``): folders committed by Spark's ``_SUCCESS``.

A job told where to write (``{output}`` in its arguments) writes into a temporary
sibling of its output; the controller renames it into place once ``_SUCCESS`` is there,
so a folder under its final name is complete. A script that writes its output itself is
judged by ``_SUCCESS`` inside it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from functools import cached_property

import luigi

from pipeline.data.jobs_file import ScriptJob, output_location
from pipeline.data.labels import label_slug
from pipeline.errors import JobFailed
from pipeline.storage import Storage, storage_for
from pipeline.storage.locations import Location, parse_location
from tasks.layout import TMP_PREFIX
from tasks.outputs import SUCCESS


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


def temporary_output(output: Location, key: str) -> Location:
    """The temporary sibling a job writes into: fixed per task (``key``), so a rerun
    removes what a killed attempt left and a re-attached YARN job's folder is known."""
    token = hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]
    return output.parent().join(f"{TMP_PREFIX}{label_slug(output.name)}-{token}")


def completed_jobs(jobs: Sequence[ScriptJob]) -> set[str]:
    """Names of the jobs whose output is complete, from ONE listing per output parent
    folder (plus one ``_SUCCESS`` check per existing output of a script that writes its
    output itself, since only a rename by the controller makes a name proof of completion)."""
    by_parent: dict[Location, list[tuple[ScriptJob, Location]]] = defaultdict(list)
    for job in jobs:
        loc = output_location(job)
        by_parent[loc.parent()].append((job, loc))
    done: set[str] = set()
    for parent, members in by_parent.items():
        storage = storage_for(parent)
        entries = storage.list_dir(parent)
        present = {e.name for e in entries or [] if e.is_dir}
        for job, loc in members:
            if loc.name not in present:
                continue
            if job.writes_to_placeholder or storage.exists(loc.join(SUCCESS)):
                done.add(job.name)
    return done


class RenamedOutput:
    """Mixin of a job whose output folder (its ``out`` parameter) Spark writes into a
    temporary sibling; the controller renames that into place once it holds ``_SUCCESS``,
    so a folder under the final name is always complete."""

    out: str  # a luigi parameter of the task
    task_id: str
    title: str  # how the job names itself in messages

    @cached_property
    def out_location(self) -> Location:
        return parse_location(self.out)

    @cached_property
    def temp_location(self) -> Location:
        return temporary_output(self.out_location, self.task_id)

    def output(self) -> SuccessTarget:
        return SuccessTarget(self.out_location)

    def remove_stale_temporary(self) -> bool:
        """Delete the temporary a killed attempt left; whether there was one."""
        storage = storage_for(self.out_location)
        if not storage.exists(self.temp_location):
            return False
        storage.remove_tree(self.temp_location)
        return True

    def move_into_place(self) -> None:
        """Rename the committed temporary to ``out``. If another run committed ``out``
        meanwhile, theirs stays and ours goes; a folder there without ``_SUCCESS`` is not
        ours to replace."""
        storage = storage_for(self.out_location)
        if storage.exists(self.out_location):
            if self.output().exists():
                storage.remove_tree(self.temp_location)
                return
            raise JobFailed(f"{self.title}: {self.out} exists without {SUCCESS} (not written by this tool): "
                            f"move it away and rerun")
        storage.rename(self.temp_location, self.out_location)

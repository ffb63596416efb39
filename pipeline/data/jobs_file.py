"""The jobs file of ``RunScripts``: a list of ``{"name", "args", "output"[, "inputs"]}`` entries.

Pure: parsing, validation and placeholder substitution, no file system access.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.data.documents import parse_document
from pipeline.errors import ConfigError, StorageError
from pipeline.storage.locations import Location, first_overlap, first_overlap_across, parse_location

OUTPUT_PLACEHOLDER = "{output}"
NAME_PLACEHOLDER = "{name}"


@dataclass(frozen=True)
class ScriptJob:
    """One entry of a jobs file."""

    name: str
    args: tuple[str, ...]
    output: str
    inputs: tuple[str, ...] = ()  # paths the job reads: their fingerprints are part of its identity

    @property
    def writes_to_placeholder(self) -> bool:
        """Whether the script is told where to write (``{output}`` in its args): then the
        controller commits the output by renaming a temporary folder into place."""
        return any(OUTPUT_PLACEHOLDER in a for a in self.args)

    def argv(self, output: str) -> list[str]:
        """The script's arguments with ``{output}`` and ``{name}`` replaced (exact tokens
        only: other braces, e.g. JSON inside an argument, stay as they are)."""
        return [a.replace(OUTPUT_PLACEHOLDER, output).replace(NAME_PLACEHOLDER, self.name) for a in self.args]


def parse_jobs_text(text: str, source: str) -> list[Any]:
    """The raw entries of a jobs file (JSON or YAML, see :func:`parse_document`)."""
    doc = parse_document(text, source)
    if not isinstance(doc, list):
        raise ConfigError(f"{source} must hold a list of {{\"name\", \"args\", \"output\"}} entries, not {type(doc).__name__}")
    return doc


def validate_jobs(entries: Sequence[Any], source: str) -> list[ScriptJob]:
    """Typed, checked jobs; the first problem is refused in one line naming the entry."""
    if not entries:
        raise ConfigError(f"{source} holds no jobs: add at least one {{\"name\", \"args\", \"output\"}} entry")
    jobs: list[ScriptJob] = []
    names: dict[str, int] = {}
    outputs: dict[str, str] = {}
    for i, entry in enumerate(entries):
        job = _entry(entry, source, i + 1)
        where = f"{source} job {job.name!r}"
        if job.name in names:
            raise ConfigError(f"{source}: job name {job.name!r} is used by entries {names[job.name]} and {i + 1}: "
                              "names must be unique")
        names[job.name] = i + 1
        key = _usable(job.output, "output", where).uri()
        if key in outputs:
            raise ConfigError(f"{where} writes {job.output!r}, as job {outputs[key]!r} does: give each job its own output")
        outputs[key] = job.name
        jobs.append(job)
    _refuse_overlaps(jobs, source)
    return jobs


def _entry(entry: Any, source: str, number: int) -> ScriptJob:
    """Entry ``number`` of ``source``, its fields typed and checked."""
    where = f"{source} entry {number}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} is not an object: write {{\"name\": ..., \"args\": [...], \"output\": ...}}")
    unknown = sorted(set(entry) - {"name", "args", "output", "inputs"})
    if unknown:
        raise ConfigError(f"{where} has unknown key {unknown[0]!r}: only name, args, output and inputs are read")
    name, args, output, inputs = entry.get("name"), entry.get("args", []), entry.get("output"), entry.get("inputs", [])
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where} needs a non-empty string \"name\"")
    where = f"{source} job {name!r}"
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError(f"{where}: \"args\" must be a list of strings (quote numbers: \"5\", not 5)")
    if not isinstance(output, str) or not output.strip():
        raise ConfigError(f"{where} needs a string \"output\" (a path or URI of the folder it writes)")
    if not isinstance(inputs, list) or not all(isinstance(i, str) and i.strip() for i in inputs):
        raise ConfigError(f"{where}: \"inputs\" must be a list of paths or URIs the job reads, e.g. [\"data/events\"]")
    for one in inputs:
        _usable(one, "input", where)
    return ScriptJob(name=name, args=tuple(args), output=output, inputs=tuple(inputs))


def _usable(path: str, what: str, where: str) -> Location:
    """``path`` as a location; an output must lie below a root folder."""
    try:
        loc = parse_location(path)
    except (ConfigError, StorageError) as exc:
        raise ConfigError(f"{where}: {what} {path!r} is not usable: {exc}") from None
    if what == "output" and loc.path.rstrip("/") in ("", "/"):
        raise ConfigError(f"{where}: output {path!r} is a root folder: give a folder below it")
    return loc


def _refuse_overlaps(jobs: list[ScriptJob], source: str) -> None:
    """Outputs inside one another, or inside (or around) an input, are refused."""
    outputs = [(f"the output of job {j.name!r}", output_location(j)) for j in jobs]
    overlap = first_overlap(outputs) or first_overlap_across(
        outputs, [(f"an input of job {j.name!r}", parse_location(i)) for j in jobs for i in j.inputs])
    if overlap:
        raise ConfigError(f"{source}: {overlap[0]} and {overlap[1]} overlap (one lies inside the other): jobs run side "
                          f"by side in no order, so give each output a folder of its own, apart from every input")


def output_location(job: ScriptJob) -> Location:
    return parse_location(job.output)

"""The jobs file of ``RunScripts``: a list of ``{"name", "args", "output"}`` entries.

Pure: parsing, validation and placeholder substitution, no file system access.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.data.documents import parse_document
from pipeline.errors import ConfigError, StorageError
from pipeline.storage.locations import Location, parse_location

OUTPUT_PLACEHOLDER = "{output}"
NAME_PLACEHOLDER = "{name}"


@dataclass(frozen=True)
class ScriptJob:
    """One entry of a jobs file."""

    name: str
    args: tuple[str, ...]
    output: str

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
        where = f"{source} entry {i + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} is not an object: write {{\"name\": ..., \"args\": [...], \"output\": ...}}")
        unknown = sorted(set(entry) - {"name", "args", "output"})
        if unknown:
            raise ConfigError(f"{where} has unknown key {unknown[0]!r}: only name, args and output are read")
        name, args, output = entry.get("name"), entry.get("args", []), entry.get("output")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where} needs a non-empty string \"name\"")
        where = f"{source} job {name!r}"
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ConfigError(f"{where}: \"args\" must be a list of strings (quote numbers: \"5\", not 5)")
        if not isinstance(output, str) or not output.strip():
            raise ConfigError(f"{where} needs a string \"output\" (a path or URI of the folder it writes)")
        if name in names:
            raise ConfigError(f"{source}: job name {name!r} is used by entries {names[name]} and {i + 1}: names must be unique")
        names[name] = i + 1
        try:
            loc = parse_location(output)
        except (ConfigError, StorageError) as exc:
            raise ConfigError(f"{where}: output {output!r} is not usable: {exc}") from None
        if loc.path.rstrip("/") in ("", "/"):
            raise ConfigError(f"{where}: output {output!r} is a root folder: give a folder below it")
        key = loc.uri()
        if key in outputs:
            raise ConfigError(f"{where} writes {output!r}, as job {outputs[key]!r} does: give each job its own output")
        outputs[key] = name
        jobs.append(ScriptJob(name=name, args=tuple(args), output=output))
    return jobs


def output_location(job: ScriptJob) -> Location:
    return parse_location(job.output)

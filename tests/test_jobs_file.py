"""The RunScripts jobs file: parsing, validation, placeholders (pure)."""

from __future__ import annotations

import json

import pytest

from pipeline.data.jobs_file import ScriptJob, parse_jobs_text, validate_jobs
from pipeline.errors import ConfigError
from tests.conftest import ODD_LABEL


def jobs(entries):
    return validate_jobs(parse_jobs_text(json.dumps(entries), "jobs.json"), "jobs.json")


def test_entries_become_typed_jobs_with_placeholders_replaced():
    [job] = jobs([{"name": ODD_LABEL, "args": ["--out={output}", "{name}", '{"k": 1}'], "output": "out/a b"}])
    assert job.writes_to_placeholder
    assert job.argv("/tmp/x") == ["--out=/tmp/x", ODD_LABEL, '{"k": 1}']  # other braces untouched


def test_a_job_without_the_placeholder_writes_its_output_itself():
    [job] = jobs([{"name": "a", "args": ["out/a"], "output": "out/a"}])
    assert not job.writes_to_placeholder
    assert job == ScriptJob("a", ("out/a",), "out/a")


@pytest.mark.parametrize(
    "entries, message",
    [
        ([], "holds no jobs"),
        ([{"name": "a", "args": [], "output": "o/a"}, {"name": "a", "args": [], "output": "o/b"}],
         "job name 'a' is used by entries 1 and 2: names must be unique"),
        ([{"name": "a", "args": [], "output": "o/x"}, {"name": "b", "args": [], "output": "o/x"}],
         "as job 'a' does: give each job its own output"),
        ([{"name": "a", "args": [5], "output": "o/a"}], "\"args\" must be a list of strings"),
        ([{"name": "", "args": [], "output": "o/a"}], "needs a non-empty string \"name\""),
        ([{"name": "a", "args": []}], "needs a string \"output\""),
        ([{"name": "a", "args": [], "output": "o/a", "outptu": 1}], "unknown key 'outptu'"),
        (["a"], "entry 1 is not an object"),
        ([{"name": "a", "args": [], "output": "/"}], "is a root folder"),
    ],
)
def test_bad_entries_are_refused_in_one_line_naming_the_entry(entries, message):
    with pytest.raises(ConfigError) as err:
        jobs(entries)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_file_that_is_not_a_list_or_not_json_is_refused():
    with pytest.raises(ConfigError, match="must hold a list"):
        parse_jobs_text('{"name": "a"}', "jobs.json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        parse_jobs_text("[{", "jobs.json")


def test_yaml_jobs_file():
    pytest.importorskip("yaml", reason="pyyaml is optional")
    text = "- name: a\n  args: ['{output}']\n  output: out/a\n"
    [job] = validate_jobs(parse_jobs_text(text, "jobs.yaml"), "jobs.yaml")
    assert job.argv("T") == ["T"]

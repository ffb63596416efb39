"""Done means done, with real spark-submit jobs: a job reruns when what it is computed
from changed and its new output replaces the old one; two controllers on one artifact
root never break each other's work, and each says truthfully who trained a label."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pyarrow.parquet as pq
import pytest

from pipeline.data import results
from pipeline.data.labels import label_slug
from pipeline.flows.demo import make_demo_frame
from tasks.jobspec import COMMIT_DELAY_ENV
from tasks.layout import MARKER
from tasks.ownership import MADE_FILE, OWNER_FILE, parse_record
from tests.spark_helpers import config_dir, run_luigi, start_luigi, wait_for

pytestmark = pytest.mark.spark

# No SparkSession: the job's JVM starts and the script runs, without a session's cost.
SCRIPT = textwrap.dedent('''
    import os, sys
    from tasks.outputs import mark_success

    out, version = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    size = sum(len(f) for f in os.listdir(sys.argv[3])) if len(sys.argv) > 3 else 0
    with open(os.path.join(out, "result.txt"), "w") as fh:
        fh.write(f"{version} {size}")
    mark_success(None, out)
''')


def _jobs(work, entries):
    (work / "jobs.json").write_text(json.dumps(entries), encoding="utf-8")
    return run_luigi(["RunScripts", "--local-scheduler", "--script", "job.py", "--jobs", "jobs.json"], cwd=work)


def _ran(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return next(line for line in out.splitlines() if "RunScripts:" in line and "to run" in line)


def test_a_job_reruns_when_its_args_or_inputs_change_and_replaces_its_output(tmp_path):
    (tmp_path / "job.py").write_text(SCRIPT, encoding="utf-8")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a").write_text("1")
    told = {"name": "told", "args": ["{output}", "v1", "in"], "output": "out/told", "inputs": ["in"]}
    itself = {"name": "itself", "args": ["out/itself", "v1"], "output": "out/itself"}  # writes its output itself

    assert "2 to run" in _ran(_jobs(tmp_path, [told, itself]))
    assert (tmp_path / "out" / "told" / "result.txt").read_text() == "v1 1"
    record = parse_record((tmp_path / "out" / "told" / MADE_FILE).read_bytes())
    assert record["kind"] == "script" and record["inputs"]["args"][1] == "v1"
    assert "0 to run" in _ran(_jobs(tmp_path, [told, itself]))  # nothing changed: nothing runs

    told["args"][1] = itself["args"][1] = "v2"  # changed arguments
    assert "2 to run" in _ran(_jobs(tmp_path, [told, itself]))
    assert (tmp_path / "out" / "told" / "result.txt").read_text() == "v2 1"
    assert (tmp_path / "out" / "itself" / "result.txt").read_text() == "v2 0"

    (tmp_path / "in" / "bb").write_text("2")  # a declared input appended to
    line = _ran(_jobs(tmp_path, [told, itself]))
    assert "1 complete, 1 to run" in line
    assert (tmp_path / "out" / "told" / "result.txt").read_text() == "v2 3"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["itself", "told"]  # nothing aside, no claims


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "data.parquet"
    pq.write_table(make_demo_frame(rows=600, features=4, labels=1, seed=3), path)
    return path


def test_two_controllers_on_one_root_keep_each_others_work_and_tell_who_trained(tmp_path, dataset):
    first_args = ["TrainAll", "--local-scheduler", "--data", str(dataset), "--models", "models", "--labels", "label_00"]
    # the first job holds its written temporary 20 s: long enough for the second to plan and clean up
    first = start_luigi(first_args, cwd=tmp_path, **{COMMIT_DELAY_ENV: "20"})
    try:
        def first_temporary():
            models = tmp_path / "models"
            return [p for c in models.glob("*") for p in c.glob(".tmp-*") if (p / OWNER_FILE).is_file()] if models.is_dir() else []

        assert wait_for(lambda: first_temporary() or first.poll() is not None, timeout=300), "the first job never wrote"
        [temporary] = first_temporary()
        # The same run with its arguments in another order: Luigi's process lock does not see it.
        second = run_luigi(["TrainAll", "--local-scheduler", "--labels", "label_00", "--models", "models", "--data",
                            str(dataset)], cwd=tmp_path, timeout=400)
        second_out = second.stdout + second.stderr
        assert second.returncode == 0, second_out[-3000:]
        assert f"left temporary {temporary} alone" in second_out, second_out[-3000:]  # the live writer's work
        first_out, _ = first.communicate(timeout=400)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, first_out[-3000:]
    assert "vanished" not in first_out
    rows = {}
    for out in (first_out, second_out):
        [row] = [line for line in out.splitlines() if line.startswith("label_00 ")]
        rows[out is first_out] = row
    winners = [row for row in rows.values() if " trained by another run " not in row]
    assert len(winners) == 1 and " trained " in winners[0], rows  # one trained it, the other says so
    artifact = config_dir(tmp_path / "models") / label_slug("label_00")
    marker = parse_record((artifact / MARKER).read_bytes())
    result = results.latest(str(tmp_path / "logs"), "label_00")  # the last controller to finish wrote it
    assert result is not None and result.status in ("trained", results.REUSED)
    assert (marker["application_id"] == result.application_id) == (result.status == "trained")
    assert not [p for p in artifact.parent.iterdir() if p.name.startswith(".tmp-")]

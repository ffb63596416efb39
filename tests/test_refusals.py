"""Every parameter of every task is read and checked before any job: a wrong value is one
line naming the parameter and a right value, exit code per README's table, no traceback.
An error of ours (a bug) keeps its traceback. No Spark: every refusal here comes before
any JVM (``luigi --module pipeline … --local-scheduler`` in a subprocess)."""

from __future__ import annotations

import subprocess

import pyarrow.parquet as pq
import pytest

from pipeline.flows.demo import make_demo_frame
from tests.spark_helpers import controller_env, luigi_argv

PARSE, PLAN = 40, 35  # [retcode] unhandled_exception (a value that cannot be read), scheduling_error


def luigi_cli(cwd, *args: str, module: str = "pipeline", **env: str) -> tuple[int, str, list[str]]:
    argv = luigi_argv(*args, "--local-scheduler")
    argv[argv.index("pipeline")] = module
    proc = subprocess.run(argv, cwd=cwd, env=controller_env(**env), capture_output=True, text=True, timeout=120)
    text = proc.stdout + proc.stderr
    return proc.returncode, text, [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refusals")
    (folder / "demo.parquet").mkdir()
    pq.write_table(make_demo_frame(rows=200, features=3, labels=2, seed=1), folder / "demo.parquet" / "part-0.parquet")
    (folder / "job.py").write_text("print('never run')\n")
    (folder / "jobs.json").write_text('[{"name": "a", "args": ["{output}"], "output": "out/a"}]')
    (folder / "space.json").write_text('{"lightgbm": {"num_leaves": [15, 31]}}')
    (folder / "a_folder").mkdir()
    return folder


TRAIN = ["TrainAll", "--data", "demo.parquet"]
CASES = [
    # the rows
    (TRAIN + ["--params", "[1,2]"], PARSE, "--params '[1,2]' is a list, not a JSON object: write e.g. --params '{\"num_iterations\": 200}'"),
    (TRAIN + ["--params", "not json"], PARSE, "--params 'not json' is not JSON (Expecting value at character 0)"),
    (TRAIN + ["--seed", "abc"], PARSE, "--seed 'abc' is not a whole number: write e.g. --seed 42"),
    (TRAIN + ["--test-fraction", "x"], PARSE, "--test-fraction 'x' is not a number: write e.g. --test-fraction 0.2"),
    (TRAIN + ["--labels", ""], PARSE, "--labels is empty: leave it out for its default, or give a value, e.g. --labels label_00,label_01"),
    (TRAIN + ["--workers", "0"], PLAN, "TrainAll: --workers 0 runs no task"),
    # every other task
    (["TuneAll", "--space", "space.json", "--search", "bayes"], PARSE, "--search 'bayes' is not one of grid, random, optuna"),
    (["TuneAll", "--space", "space.json", "--trials", "many"], PARSE, "--trials 'many' is not a whole number: write e.g. --trials 20"),
    (["TuneAll", "--space", "space.json", "--data", "demo.parquet", "--workers", "0"], PLAN, "TuneAll: --workers 0 runs no task"),
    (["FeatureSweep", "--sizes", "five"], PARSE, "--sizes 'five': 'five' is not a int"),
    (["FeatureSweep", "--sizes", "2", "--tolerance", "tiny"], PARSE, "--tolerance 'tiny' is not a number"),
    (["FeatureSweep", "--sizes", "2", "--data", "demo.parquet", "--workers", "0"], PLAN, "FeatureSweep: --workers 0 runs no task"),
    (["Predict", "--data", "demo.parquet", "--out", "scores", "--key", ""], PARSE, "--key is empty"),
    (["Predict", "--data", "demo.parquet", "--out", "scores"], PLAN, "Predict: no leaderboard.json under"),
    (["Predict", "--data", "demo.parquet", "--out", "scores", "--workers", "0"], PLAN, "Predict: --workers 0 runs no task"),
    (["RunScripts", "--script", "job.py", "--jobs", ""], PARSE, "--jobs is empty"),
    (["RunScripts", "--script", "gone.py", "--jobs", "jobs.json"], PLAN, "RunScripts: script 'gone.py' does not exist"),
    (["RunScripts", "--script", "job.py", "--jobs", "jobs.json", "--workers", "0"], PLAN, "RunScripts: --workers 0 runs no task"),
    (["Report", "--out", "a_folder"], PLAN, "Report: --out a_folder is a folder: name the HTML file to write"),
    (["Report", "--title", ""], PARSE, "--title is empty"),
    (["MakeDemoData", "--rows", "1e3"], PARSE, "--rows '1e3' is not a whole number: write e.g. --rows 20000"),
    (["MakeDemoData", "--rows", "5", "--path", "small.parquet"], PLAN, "MakeDemoData: --rows 5 is too small: use at least 10"),
    (["MakeDemoData", "--workers", "0", "--path", "small.parquet"], PLAN, "MakeDemoData: --workers 0 runs no task"),
    # Luigi's own parameters and the [fanout] settings, read by Luigi before our code runs
    (TRAIN + ["--workers", "two"], PARSE,
     "the value of core parameter 'workers' cannot be read (ValueError: invalid literal for int() with base 10: 'two'): fix --workers"),
    (TRAIN + ["--fanout-job-timeout", "soon"], PLAN, "TrainAll: --fanout-job-timeout 'soon' is not a whole number"),
]


@pytest.mark.parametrize("args, rc, says", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_a_bad_value_is_one_line_naming_it(work, args, rc, says):
    code, text, lines = luigi_cli(work, *args)
    assert "Traceback" not in text, text
    assert code == rc, lines
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and says in lines[0], lines
    assert not (work / "models").exists() and not (work / "small.parquet").exists() and not (work / "scores").exists()


def test_a_bad_value_in_luigi_cfg_names_the_section_and_key(work, tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("[TrainAll]\nseed = abc\n")
    code, text, lines = luigi_cli(work, *TRAIN, LUIGI_CONFIG_PATH=str(cfg))
    assert "Traceback" not in text and code == PARSE
    assert lines == ["ERROR: [TrainAll] seed = 'abc' is not a whole number: write e.g. [TrainAll] seed = 42"]


BUGGY = '''
import luigi

import pipeline  # noqa: F401 - our console, as for any run of ours
from pipeline.params import IntParameter


class BrokenParse(IntParameter):
    def _convert(self, text):
        return {}[text]  # a bug in a parser: not the user's value


class BuggyPlan(luigi.WrapperTask):
    def requires(self):
        return 1 / 0


class BuggyParameter(luigi.WrapperTask):
    n = BrokenParse(default=1)
'''


@pytest.mark.parametrize("task, rc, error", [("BuggyPlan", PLAN, "ZeroDivisionError: division by zero"),
                                             ("BuggyParameter --n 3", PARSE, "KeyError: '3'")])
def test_an_error_of_ours_keeps_its_traceback(work, task, rc, error):
    (work / "buggy_tasks.py").write_text(BUGGY)
    code, text, _ = luigi_cli(work, *task.split(), module="buggy_tasks", PYTHONPATH=str(work))
    assert code == rc
    assert "Traceback (most recent call last)" in text and error in text

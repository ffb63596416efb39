"""Every parameter of every task is read and checked before any job: a wrong value is one
line naming the parameter and a right value, exit code per README's table, no traceback.
An error of ours (a bug) keeps its traceback. No Spark: every refusal here comes before
any JVM (``luigi --module pipeline … --local-scheduler`` in a subprocess)."""

from __future__ import annotations

import subprocess

import pyarrow as pa
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


def dataset(folder, table, name: str = "part-0.parquet"):
    folder.mkdir(parents=True)
    pq.write_table(table, folder / name)
    return folder / name


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refusals")
    demo = make_demo_frame(rows=200, features=3, labels=2, seed=1)
    n = demo.num_rows
    odd = (demo.append_column("s", pa.array(["a", "b"] * (n // 2)))
           .append_column("label_text", pa.array(["yes", "no"] * (n // 2)))
           .append_column("label_three", pa.array([float(i % 3) for i in range(n)])))
    dataset(folder / "demo.parquet", demo)
    dataset(folder / "odd.parquet", odd)
    whole = dataset(folder / "cut.parquet", demo).read_bytes()
    (folder / "cut.parquet" / "part-1.parquet").write_bytes(whole[: len(whole) // 2])
    (folder / "cut_file.parquet").write_bytes(whole[: len(whole) // 2])
    (folder / "x.csv").write_text("f000,label_00\n0.5,1\n")
    dataset(folder / "empty.parquet", demo.slice(0, 0))
    dataset(folder / "labels_only.parquet", demo.select(["label_00", "label_01"]))
    dataset(folder / "by_day.parquet" / "day=2026-01-01", demo)
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


DATA = [  # the rows about the dataset, refused from the footers
    (["TrainAll", "--data", "x.csv"], PLAN, "x.csv is not a Parquet file, or it was cut short (no PAR1 magic at its end)"),
    (["TrainAll", "--data", "cut_file.parquet"], PLAN, "cut_file.parquet is not a Parquet file, or it was cut short"),
    (["TrainAll", "--data", "cut.parquet"], PLAN, "cut.parquet/part-1.parquet is not a Parquet file, or it was cut short"),
    (["TrainAll", "--data", "odd.parquet", "--features", "f000,s"], PLAN,
     "feature 's' of odd.parquet is a string column, not numeric: leave it out of --features, or encode it as numbers first"),
]
HELD_OUT = [  # what a new user types
    (TRAIN + ["--features", "f000,f01"], PLAN, "feature 'f01' is not a column of demo.parquet (did you mean 'f001'?)"),
    (TRAIN + ["--balance-ratio", "-1"], PLAN, "balance-ratio -1.0 is invalid: use 0 (off) or a value >= 1"),
    (TRAIN + ["--test-fraction", "1"], PLAN, "test-fraction 1.0 is invalid: use a value from 0 to 0.9"),
    (TRAIN + ["--seed", "1.5"], PARSE, "--seed '1.5' is not a whole number"),
    (TRAIN + ["--labels", "label_00,label_00"], PLAN, "label 'label_00' appears twice in --labels: list each label once"),
    (TRAIN + ["--labels", "[]"], PLAN, "the label list is empty"),
    (TRAIN + ["--params", '{"num_leaves": "many"}'], PLAN, "parameter num_leaves='many' for engine lightgbm"),
    (TRAIN + ["--params", '{"bagging_fracton": 0.5}'], PLAN,
     "unknown parameter 'bagging_fracton' for engine lightgbm: did you mean 'bagging_fraction'?"),
    (TRAIN + ["--params", '{"bagging_fraction": 2}'], PLAN, "LightGBM refuses the parameters {'bagging_fraction': 2}: "
     "Check failed: (bagging_fraction) <= (1.0)"),
    (TRAIN + ["--batch-size", "0"], PLAN, "batch-size '0' is invalid"),
    (["TrainAll", "--data", "empty.parquet"], PLAN, "dataset empty.parquet has no rows (1 part file, all empty)"),
    (["TrainAll", "--data", "labels_only.parquet"], PLAN, "labels_only.parquet has no numeric feature columns besides the labels"),
    (["TrainAll", "--data", "by_day.parquet"], PLAN, "dataset by_day.parquet is partitioned (day=2026-01-01/, …)"),
    (["TrainAll", "--data", "nope.parquet"], PLAN, "dataset nope.parquet does not exist"),
    (["TuneAll", "--space", "space.json", "--data", "demo.parquet", "--metric", "f2"], PLAN, "--metric 'f2' is unknown"),
    (["Report", "--models", "modles"], PLAN, "Report: --models modles does not exist: point it at the artifact root of a run"),
    (["Predict", "--data", "demo.parquet", "--out", "scores", "--config", "lightgbm-00000000"], PLAN,
     "configuration lightgbm-00000000 under"),
]


@pytest.mark.parametrize("args, rc, says", CASES + DATA + HELD_OUT, ids=[" ".join(c[0]) for c in CASES + DATA + HELD_OUT])
def test_a_bad_value_is_one_line_naming_it(work, args, rc, says):
    code, text, lines = luigi_cli(work, *args)
    assert "Traceback" not in text, text
    assert code == rc, lines
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and says in lines[0], lines
    assert not (work / "models").exists() and not (work / "small.parquet").exists() and not (work / "scores").exists()


@pytest.mark.parametrize("label, says", [
    ("label_text", "label 'label_text' holds text (values 'no' … 'yes'), not 0/1: convert it to 0/1 or true/false first"),
    ("label_three", "label 'label_three' holds values 0 … 2, not only 0 and 1: map it to 0/1 first"),
    ("label_txt", "label 'label_txt' is not a column of odd.parquet (did you mean 'label_text'?)"),
])
def test_a_label_that_cannot_be_trained_fails_alone_before_any_jvm(work, label, says):
    code, text, lines = luigi_cli(work, "TrainAll", "--data", "odd.parquet", "--features", "f000", "--models", "label_models",
                                  "--labels", label)
    assert "Traceback" not in text
    assert code == 30  # a label's own failure: in a run of several, the others go on (tests/test_train_spark.py)
    [failed] = [line for line in lines if f"failed    label '{label}'" in line]
    assert says in failed
    assert not list((work / "logs").rglob("*-spark-submit.log"))  # refused before any JVM


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


def test_a_users_value_in_a_scheduling_traceback_is_its_one_line():
    """What Luigi's "Will not run … due to error in complete()" warning carries: the
    formatted traceback of a wrapped error (its cause first), read back to one line."""
    import traceback

    import luigi

    from pipeline import console
    from pipeline.config import fanout

    config = luigi.configuration.get_config()
    config.set("fanout", "job_timeout", "soon")
    try:
        fanout()
    except ValueError:
        text = traceback.format_exc()
    finally:
        config.remove_option("fanout", "job_timeout")
    assert "Traceback" in text
    assert console.typed_error_in_traceback(text) == "[fanout] job_timeout = 'soon' is not a whole number: write e.g. [fanout] job_timeout = 0"
    try:
        int("two")
    except ValueError:
        assert console.typed_error_in_traceback(traceback.format_exc()) is None  # not a wrapped parameter value


def test_the_notebook_api_refuses_no_workers_too(tmp_path):
    from pipeline import api
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^workers=0 runs no task"):
        api.train_all(data=str(tmp_path / "none.parquet"), models=str(tmp_path / "m"), workers=0)
    assert not (tmp_path / "m").exists()

"""List parameters take ``a,b`` as well as JSON, from the command line and luigi.cfg,
and refuse what they cannot read in one line."""

from __future__ import annotations

import luigi
import pytest

import pipeline  # noqa: F401 - registers every task of the command line
from pipeline.errors import ConfigError
from pipeline.flows.train import TrainAll
from pipeline.params import (
    ChoiceParameter,
    FloatParameter,
    IntParameter,
    JsonObjectParameter,
    ListParameter,
    OptionalListParameter,
    Parameter,
    command_line_flag,
    parse_list,
    unreadable_value,
)


@pytest.mark.parametrize("text, expected", [
    ("label_00", ["label_00"]),
    ("label_00,label_01", ["label_00", "label_01"]),
    (" label_00 , label_01 ", ["label_00", "label_01"]),
    ('["label_00", "label_01"]', ["label_00", "label_01"]),
    ('  ["a, with comma", "b"]', ["a, with comma", "b"]),
    ("[]", []),
])
def test_comma_and_json_lists_mean_the_same(text, expected):
    assert parse_list(text, "--labels") == expected


@pytest.mark.parametrize("text, says", [
    ("label_00,", "empty entry"),
    ("a,,b", "empty entry"),
    ("", "empty entry"),
    ('["a", ', "not a valid JSON list"),
    ('{"a": 1}', "not a list"),
    ('"label_00"', "not a list"),
    ('["a", 3]', "holds 3"),
])
def test_unreadable_lists_are_refused_in_one_line(text, says):
    with pytest.raises(ConfigError) as err:
        parse_list(text, "--labels")
    message = str(err.value)
    assert says in message and "\n" not in message
    assert "--labels" in message and "a,b" in message  # names the parameter and how to write it


def test_integer_lists_convert_their_entries():
    assert parse_list("5, 10,20", "--sizes", int) == [5, 10, 20]
    assert parse_list("[5, 10]", "--sizes", int) == [5, 10]
    with pytest.raises(ConfigError, match="'ten' is not a int"):
        parse_list("5,ten", "--sizes", int)
    with pytest.raises(ConfigError, match="holds '5'"):
        parse_list('["5"]', "--sizes", int)


def test_the_parameter_names_itself_and_keeps_luigis_types():
    class Job(luigi.Task):
        some_names = ListParameter()
        maybe = OptionalListParameter(default=None)

    with pytest.raises(ConfigError, match="--some-names"):
        Job.some_names.parse("a,")
    assert Job.some_names.normalize(Job.some_names.parse("a,b")) == ("a", "b")
    assert Job.maybe.parse("") is None
    assert Job.some_names.serialize(("a", "b")) == '["a", "b"]'  # luigid and task ids see JSON, as before


@pytest.mark.parametrize("task, param", [("TrainAll", "labels"), ("TrainAll", "features"), ("TuneAll", "labels"),
                                         ("FeatureSweep", "labels"), ("FeatureSweep", "sizes"), ("Predict", "labels"),
                                         ("Predict", "key")])
def test_the_flows_declare_comma_lists(task, param):
    try:
        cls = luigi.task_register.Register.get_task_cls(task)
    except luigi.task_register.TaskClassNotFoundException:
        pytest.skip(f"{task} is not part of this tree")
    parameter = dict(cls.get_params())[param]
    item = int if param == "sizes" else str
    given = "5,10" if item is int else "x,y"
    assert parameter.parse(given) == tuple(item(v) for v in given.split(","))


def test_command_line_and_config_values_parse_alike():
    config = luigi.configuration.get_config()
    config.set("TrainAll", "labels", "label_02,label_03")
    try:
        assert TrainAll().labels == ("label_02", "label_03")
        with luigi.cmdline_parser.CmdlineParser.global_instance(["TrainAll", "--labels", "label_00,label_01"]) as cp:
            assert cp.get_task_obj().labels == ("label_00", "label_01")
    finally:
        config.remove_option("TrainAll", "labels")


# --------------------------------------------------------------------------- typed parameters


class Typed(luigi.Task):
    seed = IntParameter(default=42)
    share = FloatParameter(default=0.2)
    params = JsonObjectParameter(default={}, example="'{\"num_iterations\": 200}'")
    search = ChoiceParameter(choices=("grid", "random"), default="grid")
    data = Parameter(default="data/demo.parquet")


@pytest.mark.parametrize("name, text, says", [
    ("seed", "abc", "--seed 'abc' is not a whole number: write e.g. --seed 42"),
    ("seed", "1.5", "--seed '1.5' is not a whole number"),
    ("share", "x", "--share 'x' is not a number: write e.g. --share 0.2"),
    ("share", "nan", "--share 'nan' is not a finite number"),
    ("params", "[1,2]", "--params '[1,2]' is a list, not a JSON object: write e.g. --params '{\"num_iterations\": 200}'"),
    ("params", "not json", "--params 'not json' is not JSON (Expecting value at character 0)"),
    ("params", '"text"', "--params '\"text\"' is a string, not a JSON object"),
    ("search", "bayes", "--search 'bayes' is not one of grid, random: write e.g. --search grid"),
])
def test_a_value_that_cannot_be_read_is_one_line_naming_the_parameter(name, text, says):
    with pytest.raises(ConfigError) as err:
        dict(Typed.get_params())[name].parse(text)
    assert str(err.value).startswith(says) and "\n" not in str(err.value)


def test_typed_values_read_as_before():
    params = dict(Typed.get_params())
    assert params["seed"].parse(" 7 ") == 7 and params["share"].parse("0.5") == 0.5
    assert dict(params["params"].parse('{"num_iterations": 5}')) == {"num_iterations": 5}
    assert params["search"].parse("random") == "random" and params["data"].parse("d.parquet") == "d.parquet"


def test_an_empty_command_line_value_is_refused_not_taken_as_the_default():
    for flag in ("--data", "--seed", "--params"):
        with luigi.cmdline_parser.CmdlineParser.global_instance(["Typed", flag, ""]) as cp:
            with pytest.raises(ConfigError, match=f"^{flag} is empty: leave it out for its default, or give a value, e.g. {flag} "):
                cp.get_task_obj()
    with luigi.cmdline_parser.CmdlineParser.global_instance(["Typed"]) as cp:
        assert cp.get_task_obj().data == "data/demo.parquet"  # left out: the default, as before


def test_a_luigi_cfg_value_is_named_by_its_section_and_key():
    config = luigi.configuration.get_config()
    config.set("Typed", "seed", "abc")
    try:
        with pytest.raises(ValueError) as err:  # Luigi wraps what a default's parse raises
            Typed()
        assert str(err.value.__cause__) == "[Typed] seed = 'abc' is not a whole number: write e.g. [Typed] seed = 42"
        assert unreadable_value(err.value) == str(err.value.__cause__)
    finally:
        config.remove_option("Typed", "seed")


def test_a_setting_is_named_by_its_command_line_flag():
    from pipeline.config import fanout

    with pytest.raises(ConfigError, match="^--fanout-job-timeout 'soon' is not a whole number"):
        dict(fanout.get_params())["job_timeout"].parse("soon")
    assert command_line_flag("core", "workers") == "--workers"  # Luigi's core takes no section prefix


def test_only_errors_reading_a_users_value_lose_their_traceback():
    wrapped = ValueError("core[args=(), kwargs={}]: Error when parsing the default value of 'workers'")
    wrapped.__cause__ = ValueError("invalid literal for int() with base 10: 'two'")
    assert unreadable_value(wrapped) == ("the value of core parameter 'workers' cannot be read (ValueError: invalid literal "
                                         "for int() with base 10: 'two'): fix --workers or [core] workers in the configuration")
    assert unreadable_value(ValueError("math domain error")) is None  # a bug of ours or a library's
    assert unreadable_value(KeyError("x")) is None and unreadable_value(None) is None

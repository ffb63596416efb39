"""List parameters take ``a,b`` as well as JSON, from the command line and luigi.cfg,
and refuse what they cannot read in one line."""

from __future__ import annotations

import luigi
import pytest

import pipeline  # noqa: F401 - registers every task of the command line
from pipeline.errors import ConfigError
from pipeline.flows.train import TrainAll
from pipeline.params import ListParameter, OptionalListParameter, parse_list


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

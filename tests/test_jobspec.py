from tasks.jobspec import decode_spec, encode_spec, fail_labels, format_event, parse_event
from tests.conftest import ODD_LABEL


def test_spec_round_trips_any_label_as_one_shell_free_argument():
    spec = {"labels": [ODD_LABEL, "a\nb"], "params": {"x": 1}}
    encoded = encode_spec(spec)
    assert set(encoded) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")
    decoded = decode_spec(encoded)
    assert decoded["labels"] == [ODD_LABEL, "a\nb"] and decoded["params"] == {"x": 1}


def test_events_are_found_in_log_lines_and_other_lines_are_not():
    line = "some prefix " + format_event("started", application_id="local-1", percent=10)
    assert parse_event(line) == {"event": "started", "application_id": "local-1", "percent": 10}
    assert parse_event("26/11/23 INFO SparkContext: Running Spark version 3.5.7") is None
    assert parse_event("FANOUT_EVENT {not json") is None


def test_fail_switch_parses_comma_list():
    assert fail_labels(None) == set()
    assert fail_labels(" a, b ,,") == {"a", "b"}

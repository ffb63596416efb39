import re

import pytest

from pipeline.data.labels import discover_labels, feature_columns, label_slug, resolve_labels, validate_labels
from pipeline.errors import ConfigError, DatasetError
from tests.conftest import ODD_LABEL, REPO

SAFE = re.compile(r"^[a-z0-9-]+$")


@pytest.mark.parametrize("label, readable", [
    ("label_00", "label-00"),
    ("Churn 30d/EU", "churn-30d-eu"),
    (ODD_LABEL, "churn-30d-eu-vip-u-touch-pwned-id"),
    ("日本語", "label"),
    ("../../etc/passwd", "etc-passwd"),
])
def test_slug_is_safe_readable_and_hashed(label, readable):
    slug = label_slug(label)
    assert SAFE.match(slug), slug
    assert slug.rsplit("-", 1)[0] == readable
    assert len(slug.rsplit("-", 1)[1]) == 8


def test_slugs_of_labels_that_read_alike_differ():
    labels = ["a b", "a/b", "a-b", "A B", "a  b"]
    assert len({label_slug(x) for x in labels}) == len(labels)
    assert label_slug("a b") == label_slug("a b")  # stable


def test_long_labels_sharing_a_prefix_get_different_slugs():
    # The readable part stops at 40 characters; the hash must cover the whole label.
    a, b = "customer_churn_probability_next_30_days_segment_a", "customer_churn_probability_next_30_days_segment_b"
    assert label_slug(a).rsplit("-", 1)[0] == label_slug(b).rsplit("-", 1)[0]
    assert label_slug(a) != label_slug(b)


# Found by hashing numbered labels (birthday bound: ~2**16 tries for 8 hex digits).
COLLIDING = ("customer_churn_probability_next_30_days_segment_48808",
             "customer_churn_probability_next_30_days_segment_103892")


def test_two_labels_with_one_slug_are_refused_naming_both():
    assert label_slug(COLLIDING[0]) == label_slug(COLLIDING[1])
    for requested, columns in ((list(COLLIDING), []), (None, ["f1", *COLLIDING])):
        with pytest.raises(ConfigError) as err:
            resolve_labels(requested, columns, "customer_", "d")
        message = str(err.value)
        assert all(repr(label) in message for label in COLLIDING) and "\n" not in message
        assert label_slug(COLLIDING[0]) in message
    assert resolve_labels([COLLIDING[0], "other"], [], "customer_", "d") == [COLLIDING[0], "other"]


def test_default_rule_takes_prefixed_columns_in_order():
    assert discover_labels(["f1", "label_b", "x", "label_a"]) == ["label_b", "label_a"]
    assert discover_labels(["y_1", "z"], prefix="y_") == ["y_1"]


@pytest.mark.parametrize("labels, fragment", [
    ([], "empty"),
    (["a", "a"], "twice"),
    (["a", ""], "non-empty"),
    (["a", 3], "non-empty"),
    ("a", "JSON list"),
])
def test_bad_label_lists_are_refused_with_one_line(labels, fragment):
    with pytest.raises(ConfigError) as err:
        validate_labels(labels)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_resolve_labels_uses_rule_only_when_not_given():
    cols = ["f1", "label_a", "label_b"]
    assert resolve_labels(None, cols, "label_", "d") == ["label_a", "label_b"]
    assert resolve_labels(["label_b"], cols, "label_", "d") == ["label_b"]
    with pytest.raises(ConfigError):
        resolve_labels([], cols, "label_", "d")
    with pytest.raises(DatasetError, match="no label columns"):
        resolve_labels(None, ["f1"], "label_", "d")


def test_feature_rule_excludes_every_label():
    assert feature_columns(["f1", "f2", "label_a", "target"], ["target"], "label_") == ["f1", "f2"]


def test_the_documented_slug_example_is_what_the_code_gives():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "(`churn 30d/EU` → `churn-30d-eu-a90bce5c`)" in readme
    assert label_slug("churn 30d/EU") == "churn-30d-eu-a90bce5c"
    assert '"churn 30d/EU"`` → ``"churn-30d-eu-a90bce5c"``' in label_slug.__doc__


def test_labels_sort_in_natural_order():
    from pipeline.data.labels import natural_key

    names = ["label_10", "label_2", "Label_1", "label_100", "churn 30d", "churn 7d", "label_9"]
    assert sorted(names, key=natural_key) == ["churn 7d", "churn 30d", "Label_1", "label_2", "label_9", "label_10",
                                              "label_100"]

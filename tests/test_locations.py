import pytest

from pipeline.errors import ConfigError
from pipeline.storage.locations import Location, parse_location


def test_relative_local_path_becomes_absolute_file_uri(tmp_path):
    loc = parse_location("models", base_dir=str(tmp_path))
    assert loc == Location("file", "", str(tmp_path / "models"))
    assert loc.uri() == f"file://{tmp_path}/models"
    assert str(loc) == str(tmp_path / "models")


@pytest.mark.parametrize("value, expected", [
    ("hdfs://nn:8020/models/run1/", Location("hdfs", "nn:8020", "/models/run1")),
    ("hdfs:///models", Location("hdfs", "", "/models")),
    ("webhdfs://nn:9870/a b/ü", Location("webhdfs", "nn:9870", "/a b/ü")),
    ("file:///tmp/x", Location("file", "", "/tmp/x")),
    ("/tmp/with space/and'quote", Location("file", "", "/tmp/with space/and'quote")),
])
def test_uris_parse(value, expected):
    assert parse_location(value) == expected


@pytest.mark.parametrize("value, fragment", [
    ("", "empty"),
    ("s3://bucket/x", "unsupported scheme"),
    ("/tmp/a:b", "':'"),
    ("hdfs://nn/x?op=LIST", "'?' or '#'"),
    ("file://otherhost/x", "names host"),
    (" /tmp/x", "whitespace"),
])
def test_bad_locations_get_one_clear_line(value, fragment):
    with pytest.raises(ConfigError) as err:
        parse_location(value)
    assert fragment in str(err.value)


def test_join_refuses_traversal():
    root = parse_location("/tmp/root")
    assert root.join("a b").path == "/tmp/root/a b"
    for bad in ("..", "a/b", ""):
        with pytest.raises(ConfigError):
            root.join(bad)

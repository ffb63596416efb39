"""Datasets and artifacts on HDFS paths."""

from __future__ import annotations

import json

import luigi
import pytest

from pipeline.data import datasets
from pipeline.flows.demo import MakeDemoData
from pipeline.storage.webhdfs import clear_webhdfs_cache
from tasks.artifact_writer import ArtifactConflict, ArtifactWriter, _HadoopFs
from tests.webhdfs_server import WebHdfsServer


def test_demo_data_is_written_to_webhdfs_atomically_and_its_schema_read_back():
    clear_webhdfs_cache()
    with WebHdfsServer() as nn:
        path = f"webhdfs://127.0.0.1:{nn.port}/user/alice/demo.parquet"
        assert luigi.build([MakeDemoData(path=path, rows=5000, features=3, labels=2, files=1)], local_scheduler=True,
                           log_level="ERROR")
        names = [p for p in nn.paths() if p.startswith("/user/alice/")]
        assert "/user/alice/demo.parquet/_SUCCESS" in names
        assert not [p for p in names if "/.tmp-" in p], "the staging folder was renamed, not left behind"
        nn.clear_log()
        schema = datasets.read_schema(path)
        assert schema.columns == ("f000", "f001", "f002", "label_00", "label_01")
        # only the footer travels: every OPEN is a ranged read of the file's end
        opens = [r for r in nn.requests if r.op == "OPEN" and r.datanode]
        part = nn.node("/user/alice/demo.parquet/part-00000.parquet")
        assert opens and all(int(r.params["offset"]) + int(r.params["length"]) == len(part.data) for r in opens)
        assert sum(int(r.params["length"]) for r in opens) < len(part.data)


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
    yield session
    session.stop()


@pytest.mark.spark
def test_hadoop_filesystem_writer_commits_by_rename_and_never_replaces(spark, tmp_path):
    """The writer the job uses on HDFS, run through Hadoop's FileSystem API (here on file://)."""
    root = f"file://{tmp_path}/models"

    def write(slug: str, label: str, fresh: bool = False) -> ArtifactWriter:
        with ArtifactWriter(spark, root, slug, fs=_HadoopFs(spark, root)) as writer:
            writer.write_bytes("model.txt", b"tree")
            if fresh:
                assert not (tmp_path / "models" / slug).exists(), "nothing under the final name before commit"
            writer.commit({"label": label, "format_version": 1})
        return writer

    first = write("a-1", "a", fresh=True)
    assert first.committed and json.loads((tmp_path / "models" / "a-1" / "metadata.json").read_text())["label"] == "a"
    assert (tmp_path / "models" / "a-1" / "_COMPLETE").is_file()
    again = write("a-1", "a")  # a second attempt finds the first complete: keeps it
    assert again.already_complete and not again.committed
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".tmp-")]
    (tmp_path / "models" / "b-2").mkdir()  # someone else's folder without a marker
    with pytest.raises(ArtifactConflict, match="exists without a _COMPLETE marker"):
        write("b-2", "b")
    assert list((tmp_path / "models" / "b-2").iterdir()) == [], "a folder that is not ours is left untouched"


def test_parquet_footer_reads_again_when_the_footer_is_bigger_than_the_guess(tmp_path, monkeypatch):
    import io

    import pyarrow.parquet as pq

    from pipeline.errors import DatasetError
    from pipeline.flows.demo import make_demo_frame

    pq.write_table(make_demo_frame(rows=50, features=3, labels=1, seed=1), tmp_path / "p.parquet")
    raw = (tmp_path / "p.parquet").read_bytes()
    asked: list[int] = []

    def read_tail(n: int) -> bytes:
        asked.append(n)
        return raw[-n:]

    monkeypatch.setattr(datasets, "FOOTER_GUESS", 16)
    footer = datasets.parquet_footer(read_tail, "p.parquet")
    assert len(asked) == 2 and asked[1] > 16
    assert pq.read_schema(io.BytesIO(footer)).names == ["f000", "f001", "f002", "label_00"]
    with pytest.raises(DatasetError, match="is not a Parquet file"):
        datasets.parquet_footer(lambda n: (b"just some csv text\n" * 3)[-n:], "x.csv")


# -- transport trouble is never reported as bad data -----------------------------------------------


@pytest.fixture
def dataset_on_hdfs():
    import io

    import pyarrow.parquet as pq

    from pipeline.flows.demo import make_demo_frame

    clear_webhdfs_cache()
    with WebHdfsServer() as nn:
        buf = io.BytesIO()
        pq.write_table(make_demo_frame(rows=200, features=3, labels=1, seed=1), buf)
        nn.put_file("/d.parquet/part-00000.parquet", buf.getvalue())
        yield nn, f"webhdfs://127.0.0.1:{nn.port}/d.parquet"
    clear_webhdfs_cache()


@pytest.mark.parametrize("how", ["cut", "short", "drop"])
def test_a_footer_read_that_failed_once_is_read_again(dataset_on_hdfs, how):
    nn, path = dataset_on_hdfs
    nn.fail("OPEN", how, datanode=True)
    assert datasets.read_schema(path).columns == ("f000", "f001", "f002", "label_00")
    assert [op for op in nn.ops() if op.startswith("OPEN")] == ["OPEN", "OPEN(datanode)"] * 2


@pytest.mark.parametrize("how", ["cut", "short"])
def test_footer_reads_that_keep_failing_are_storage_unavailable_not_bad_data(dataset_on_hdfs, how):
    """Before: a cut or short footer read said "not a Parquet file" about a fine file."""
    from pipeline.errors import DatasetError, StorageUnavailable

    nn, path = dataset_on_hdfs
    nn.fail("OPEN", how, datanode=True, times=None)
    with pytest.raises(StorageUnavailable) as info:
        datasets.read_schema(path)
    assert not isinstance(info.value, DatasetError)
    text = str(info.value)
    assert "\n" not in text and "Parquet" not in text and text.startswith("after 3 tries") and "retry" in text
    assert nn.ops().count("OPEN(datanode)") == 3


def test_a_file_that_really_is_not_parquet_is_still_bad_data(dataset_on_hdfs):
    from pipeline.errors import DatasetError

    nn, path = dataset_on_hdfs
    nn.put_file("/d.parquet/part-00000.parquet", b"a,b\n1,2\n" * 20)
    with pytest.raises(DatasetError, match="is not a Parquet file"):
        datasets.read_schema(path)
    assert nn.ops().count("OPEN(datanode)") == 1, "complete bytes are judged at once, not read again"


def test_parquet_footer_tells_a_mixed_up_read_from_a_damaged_file(tmp_path, monkeypatch):
    import io

    import pyarrow.parquet as pq

    from pipeline.errors import DatasetError, StorageError
    from pipeline.flows.demo import make_demo_frame

    pq.write_table(make_demo_frame(rows=50, features=3, labels=1, seed=1), tmp_path / "p.parquet")
    raw = (tmp_path / "p.parquet").read_bytes()
    assert pq.read_schema(io.BytesIO(datasets.parquet_footer(lambda n: raw[-n:], "p.parquet"))).names[0] == "f000"
    with pytest.raises(StorageError, match="mixed up") as info:  # more bytes than asked: another answer
        datasets.parquet_footer(lambda n: b"\0" * n + raw[-8:], "p.parquet")
    assert not isinstance(info.value, DatasetError)
    damaged = raw[-200:]  # the whole "file" is shorter than its footer says
    assert len(damaged) < datasets.FOOTER_GUESS
    asked: list[int] = []

    def read_damaged(n: int) -> bytes:
        asked.append(n)
        return damaged[-n:]

    with pytest.raises(DatasetError, match="is damaged: its footer claims"):
        datasets.parquet_footer(read_damaged, "p.parquet")
    assert asked == [datasets.FOOTER_GUESS], "the whole file was already there: no second read"
    monkeypatch.setattr(datasets, "FOOTER_GUESS", 16)  # now the file is longer than the guess: read again
    with pytest.raises(DatasetError, match="is damaged: its footer claims"):
        datasets.parquet_footer(lambda n: damaged[-n:], "p.parquet")

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
        datasets.parquet_footer(lambda n: b"just some csv text\n" * 3, "x.csv")

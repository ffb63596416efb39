"""Dataset checks from the Parquet footers (no JVM), and the per-label checks a job makes
on the rows themselves (pure pandas)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data import datasets
from pipeline.data.columns import check_features, check_label
from pipeline.errors import DatasetError
from tasks.data_errors import damaged_parquet
from tasks.label_sample import (
    HASH_COL,
    VALIDATION_COL,
    JobInputError,
    Minimums,
    check_counts,
    label_sample,
    null_warning,
)

FIXTURES = Path(__file__).parent / "fixtures"


def write(folder: Path, table: pa.Table, parts: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    step = -(-table.num_rows // parts)
    for i in range(parts):
        pq.write_table(table.slice(i * step, step), folder / f"part-{i:05d}.parquet")
    return folder


def table(n: int = 100, **extra) -> pa.Table:
    rng = np.random.default_rng(0)
    columns = {"f0": rng.normal(size=n), "s": pa.array(["a", "b"] * (n // 2)), "label_ok": (rng.random(n) < 0.3).astype("int32")}
    columns.update(extra)
    return pa.table(columns)


# --------------------------------------------------------------------------- footers


def test_footer_facts_give_types_ranges_and_nulls_over_every_local_part(tmp_path):
    n = 100
    data = write(tmp_path / "d.parquet", table(n, label_text=pa.array(["yes", "no"] * 50),
                                               label_nulls=pa.array([None if i % 4 else 1 for i in range(n)], pa.int32())), parts=4)
    schema = datasets.read_schema(str(data))
    assert schema.parts == 4 and schema.every_part_checked and schema.rows == n
    assert schema.numeric == ("f0", "label_ok", "label_nulls")
    text = schema.facts["label_text"]
    assert (text.type, text.numeric, text.low, text.high, text.nulls) == ("string", False, "no", "yes", 0)
    assert schema.facts["label_nulls"].nulls == 75 and schema.facts["label_ok"].low == 0 and schema.facts["label_ok"].high == 1


def test_a_remote_dataset_reads_the_first_and_last_footer_only():
    footers = []
    for i in range(3):
        buf = io.BytesIO()
        pq.write_table(table(10), buf)
        footers.append((f"part-{i}", pq.read_metadata(io.BytesIO(buf.getvalue()))))
    schema = datasets.schema_from_footers([footers[0], footers[2]], parts=3)
    assert not schema.every_part_checked and schema.rows == 20 and schema.checked == ("part-0", "part-2")


@pytest.mark.parametrize("damage, says", [
    (lambda raw: raw[: len(raw) // 2], "is not a Parquet file, or it was cut short (no PAR1 magic at its end)"),
    (lambda raw: b"", "is not a Parquet file, or it was cut short"),
    (lambda raw: b"a,b\n1,2\n" * 10, "is not a Parquet file, or it was cut short"),
])
def test_a_damaged_part_file_is_named_before_any_jvm(tmp_path, damage, says):
    data = write(tmp_path / "d.parquet", table(), parts=3)
    raw = (data / "part-00001.parquet").read_bytes()
    (data / "part-00001.parquet").write_bytes(damage(raw))
    with pytest.raises(DatasetError, match=re.escape(says)) as info:
        datasets.read_schema(str(data))
    assert "part-00001.parquet" in str(info.value) and "\n" not in str(info.value)


def test_a_csv_file_given_as_data_is_one_line(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match=r"x.csv is not a Parquet file, or it was cut short"):
        datasets.read_schema(str(tmp_path / "x.csv"))
    (tmp_path / "csvs").mkdir()
    (tmp_path / "csvs" / "a.csv").write_text("a\n1\n")
    with pytest.raises(DatasetError, match=r"holds no .parquet files \(it holds a.csv\)"):
        datasets.read_schema(str(tmp_path / "csvs"))


def test_parts_that_disagree_on_a_columns_type_are_refused(tmp_path):
    data = write(tmp_path / "d.parquet", table(10))
    pq.write_table(pa.table({"f0": pa.array(["x"] * 10)}), data / "part-00009.parquet")
    with pytest.raises(DatasetError, match="column 'f0' is double in part-00000.parquet but string in part-00009.parquet"):
        datasets.read_schema(str(data))


def test_spark_files_that_spark_skips_are_skipped(tmp_path):
    data = write(tmp_path / "d.parquet", table(10))
    (data / "_SUCCESS").write_bytes(b"")
    (data / ".part-00000.parquet.crc").write_bytes(b"crc")
    (data / "_temporary.parquet").write_bytes(b"half")
    assert datasets.read_schema(str(data)).parts == 1


# --------------------------------------------------------------------------- columns


@pytest.fixture
def facts(tmp_path):
    n = 100
    return datasets.read_schema(str(write(tmp_path / "d.parquet", table(
        n, label_text=pa.array(["yes", "no"] * 50), label_empty=pa.array([None] * n, pa.int32()),
        label_three=pa.array([float(i % 3) for i in range(n)]), label_one=pa.array([1] * n, pa.int8()),
        label_bool=pa.array([i % 2 == 0 for i in range(n)]), label_when=pa.array(range(n), pa.timestamp("s"))), parts=2)))


@pytest.mark.parametrize("label, says", [
    ("label_text", "label 'label_text' holds text (values 'no' … 'yes'), not 0/1: convert it to 0/1 or true/false first "
                   "(e.g. 1 where it is 'yes', else 0)"),
    ("label_empty", "label 'label_empty' is empty: all 100 rows are null; drop it from --labels"),
    ("label_three", "label 'label_three' holds values 0 … 2, not only 0 and 1"),
    ("label_one", "label 'label_one' has only class 1 (100 rows, 0 null): nothing to learn"),
    ("label_when", "label 'label_when' is a timestamp[ms] column: a label must hold 0/1"),
    ("label_0k", "label 'label_0k' is not a column of d (did you mean 'label_ok'?): check --labels"),
])
def test_a_label_that_cannot_be_a_target_is_refused_naming_why(facts, label, says):
    with pytest.raises(DatasetError) as info:
        check_label(facts, label, "d", "label_")
    assert says in str(info.value)


def test_labels_of_0_1_and_booleans_pass(facts):
    for label in ("label_ok", "label_bool"):
        check_label(facts, label, "d", "label_")


def test_a_label_is_only_judged_empty_or_one_class_when_every_footer_was_read(facts):
    partial = datasets.DatasetSchema(facts.columns, facts.numeric, facts.facts, rows=50, checked=("part-00000",), parts=2)
    check_label(partial, "label_one", "d", "label_")  # the job counts the rows themselves
    with pytest.raises(DatasetError, match="holds text"):
        check_label(partial, "label_text", "d", "label_")  # a column's type is the same in every part


@pytest.mark.parametrize("features, says", [
    (["f0", "s"], "feature 's' of d is a string column, not numeric: leave it out of --features"),
    (["f0", "label_0k"], "feature 'label_0k' is not a column of d (did you mean 'label_ok'?)"),
])
def test_features_must_be_numeric_columns(facts, features, says):
    with pytest.raises(DatasetError) as info:
        check_features(facts, features, "d")
    assert says in str(info.value)
    check_features(facts, ["f0", "label_bool"], "d")


# --------------------------------------------------------------------------- inside the job


def frame(n: int, positives: int, nulls: int = 0) -> pd.DataFrame:
    """``positives`` rows of class 1, then ``nulls`` of the rows made null; a fifth of the rows validate."""
    rng = np.random.default_rng(3)
    y = np.zeros(n)
    y[rng.choice(n, size=positives, replace=False)] = 1.0
    y[rng.choice(n, size=nulls, replace=False)] = np.nan
    return pd.DataFrame({"f0": np.arange(n, dtype=float), "y0": y, VALIDATION_COL: rng.random(n) < 0.2,
                         HASH_COL: rng.integers(-(2**63), 2**63 - 1, size=n)})


def test_a_label_with_three_positives_is_refused_naming_its_counts():
    with pytest.raises(JobInputError) as info:
        label_sample(frame(2000, 3), "rare", "y0", ["f0"], 1.0, seed=1)
    message = str(info.value)
    assert re.fullmatch(r"label 'rare' has [0-3] positive / 1[0-9]{3} negative training rows and [0-3] / [0-9]+ validation "
                        r"rows, too few to learn from: training positives < \[fanout\] min_positives = 10; "
                        r"(validation positives < \[fanout\] min_validation_per_class = 1; )?"
                        r"drop it from --labels or lower the minimum", message), message


def test_validation_rows_need_both_classes_when_there_are_any():
    # every positive falls in the training rows: the validation rows hold one class only
    data = frame(2000, 0)
    data.loc[data.index[~data[VALIDATION_COL]][:30], "y0"] = 1.0
    with pytest.raises(JobInputError, match=r"and 0 / \d+ validation rows, too few to learn from: validation positives < \[fanout\] "
                                            r"min_validation_per_class = 1;"):
        label_sample(data, "skewed", "y0", ["f0"], 1.0, seed=1)
    no_validation = data.assign(**{VALIDATION_COL: False})  # --test-fraction 0: nothing to judge, nothing refused
    assert label_sample(no_validation, "skewed", "y0", ["f0"], 1.0, seed=1).rows["validation"] == 0


def test_minimums_come_from_the_spec_and_can_be_lowered():
    relaxed = Minimums.from_spec({"label_minimums": {"positives": 2, "negatives": 2, "validation_per_class": 0}})
    assert relaxed == Minimums(positives=2, negatives=2, validation_per_class=0)
    assert Minimums.from_spec({}) == Minimums()  # a spec of an older controller
    check_counts("rare", {0: 1500, 1: 3}, {0: 400, 1: 0}, relaxed)


def test_null_labels_are_counted_and_warned_above_the_share():
    sample = label_sample(frame(2000, 600, nulls=400), "gappy", "y0", ["f0"], 1.0, seed=1)
    assert sample.rows["null_labels"] == 400 and sample.rows["labelled"] == 1600
    warning = null_warning("gappy", sample.rows, Minimums())
    assert warning == ("label 'gappy': 400 of 2000 rows (20%) are null and were left out of training and validation "
                       "(above [fanout] null_label_warning = 0.1)")
    assert null_warning("gappy", sample.rows, Minimums(null_warning_share=0.25)) is None


def test_an_all_null_or_one_class_label_says_so_truthfully():
    empty = frame(100, 0).assign(y0=np.nan)
    with pytest.raises(JobInputError, match="label 'gone' is empty: all 100 rows are null"):
        label_sample(empty, "gone", "y0", ["f0"], 1.0, seed=1)
    with pytest.raises(JobInputError, match=r"label 'zeros' has only class 0 \(90 rows, 10 null\)"):
        label_sample(frame(100, 0, nulls=10), "zeros", "y0", ["f0"], 1.0, seed=1)


def test_a_damaged_part_spark_met_is_one_line_from_its_recorded_error():
    recorded = (FIXTURES / "spark-local" / "py4j-parquet-truncated-part.txt").read_text()
    assert recorded.startswith("An error occurred while calling")  # what the job printed before
    assert damaged_parquet(recorded) == ("dataset part file file:/tmp/t17/w/cutdir.parquet/part-1.parquet is not a Parquet "
                                         "file (its end is missing: a write cut short?): rewrite the dataset, or remove the file")
    assert damaged_parquet("Py4JJavaError: An error occurred while calling o75.getResult.") is None


def test_big_local_footers_are_parsed_first_and_last_but_every_end_is_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "LOCAL_FOOTER_BYTES", 0)  # as if the footers were many megabytes
    data = write(tmp_path / "d.parquet", table(90), parts=3)
    schema = datasets.read_schema(str(data))
    assert schema.checked == ("part-00000.parquet", "part-00002.parquet") and not schema.every_part_checked
    raw = (data / "part-00001.parquet").read_bytes()
    (data / "part-00001.parquet").write_bytes(raw[:-10])
    with pytest.raises(DatasetError, match=r"part-00001.parquet is not a Parquet file, or it was cut short"):
        datasets.read_schema(str(data))


def test_a_remote_dataset_costs_two_footers_and_its_listing_sizes_refuse_a_stub():
    from pipeline.storage.webhdfs import clear_webhdfs_cache
    from tests.webhdfs_server import WebHdfsServer

    clear_webhdfs_cache()
    with WebHdfsServer() as nn:
        for i in range(4):
            buf = io.BytesIO()
            pq.write_table(table(40), buf)
            nn.put_file(f"/d.parquet/part-{i:05d}.parquet", buf.getvalue())
        path = f"webhdfs://127.0.0.1:{nn.port}/d.parquet"
        nn.clear_log()
        schema = datasets.read_schema(path)
        assert schema.checked == ("part-00000.parquet", "part-00003.parquet") and schema.parts == 4
        assert sorted(r.path for r in nn.requests if r.op == "OPEN" and r.datanode) == \
            ["/d.parquet/part-00000.parquet", "/d.parquet/part-00003.parquet"]
        nn.put_file("/d.parquet/part-00002.parquet", b"PAR1")  # a write cut short after 4 bytes
        nn.clear_log()
        with pytest.raises(DatasetError, match=r"part-00002.parquet is too short to be a Parquet file"):
            datasets.read_schema(path)
        assert not [r for r in nn.requests if r.op == "OPEN"], "the listing's sizes said it: no footer read"
    clear_webhdfs_cache()

"""Synthetic multi-label data in the shape users bring: numeric features, 0/1 labels."""

from __future__ import annotations

import os
import shutil
import tempfile

import luigi

from pipeline.data.outputs import SuccessTarget, identity_of, read_made_record
from pipeline.errors import ConfigError
from pipeline.params import IntParameter, Parameter
from pipeline.runner.batching import check_workers
from pipeline.storage import storage_for
from pipeline.storage.locations import Location, parse_location
from tasks.outputs import SUCCESS
from tasks.ownership import MADE_FILE, encode_record, made_record


def demo_base_rates(labels: int) -> list[float]:
    """Positive rates from 0.5 down to 0.02, so later labels are imbalanced."""
    if labels == 1:
        return [0.3]
    return [round(0.5 - (0.48 * i / (labels - 1)), 4) for i in range(labels)]


def make_demo_frame(rows: int, features: int, labels: int, seed: int):  # noqa: ANN201 - pyarrow.Table
    """A deterministic table: ``f000…`` standard-normal features and ``label_00…`` labels,
    each a noisy logistic function of a few features with its own base rate."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features)).astype("float64")
    columns = {f"f{j:03d}": x[:, j] for j in range(features)}
    for k, rate in enumerate(demo_base_rates(labels)):
        weights = np.zeros(features)
        picked = rng.choice(features, size=min(features, 3), replace=False)
        weights[picked] = rng.uniform(0.8, 2.0, size=len(picked)) * rng.choice([-1, 1], size=len(picked))
        score = x @ weights + rng.logistic(size=rows)
        threshold = np.quantile(score, 1.0 - rate)
        columns[f"label_{k:02d}"] = (score > threshold).astype("int32")
    return pa.table(columns)


class MakeDemoData(luigi.Task):
    """``luigi --module pipeline MakeDemoData --path data/demo.parquet --rows 20000``"""

    path = Parameter(default="data/demo.parquet", description="Where to write the dataset (local or hdfs://)")
    rows = IntParameter(default=20000, description="Number of rows")
    features = IntParameter(default=20, description="Number of numeric feature columns")
    labels = IntParameter(default=4, description="Number of binary label columns")
    seed = IntParameter(default=7, description="Random seed: same seed, same data")
    files = IntParameter(default=2, description="Number of Parquet part files")

    @property
    def location(self) -> Location:
        return parse_location(self.path)

    def output(self) -> luigi.Target:
        return SuccessTarget(self.location)

    def complete(self) -> bool:
        # Refused while Luigi schedules (exit code [retcode] scheduling_error), before run().
        check_workers()
        for name, value, low in (("rows", self.rows, 10), ("features", self.features, 1), ("labels", self.labels, 1), ("files", self.files, 1)):
            if value < low:
                raise ConfigError(f"--{name} {value} is too small: use at least {low}")
        return super().complete()

    def run(self) -> None:
        import pyarrow.parquet as pq

        table = make_demo_frame(self.rows, self.features, self.labels, self.seed)
        loc = self.location
        storage = storage_for(loc)
        staging = tempfile.mkdtemp(prefix="fanout-demo-")
        try:
            step = -(-self.rows // self.files)
            for i in range(self.files):
                pq.write_table(table.slice(i * step, step), os.path.join(staging, f"part-{i:05d}.parquet"))
            open(os.path.join(staging, SUCCESS), "wb").close()
            with open(os.path.join(staging, MADE_FILE), "wb") as fh:
                fh.write(encode_record(made_record("demo-data", identity_of(self.to_str_params()))))
            tmp = loc.parent().join(f".tmp-{loc.name}-{os.getpid()}")
            storage.makedirs(loc.parent())
            storage.remove_tree(tmp)
            storage.upload_dir(staging, tmp)
            if storage.exists(loc):  # an incomplete earlier attempt (no _SUCCESS): ours to replace, if ours
                if read_made_record(storage, loc) is None:
                    storage.remove_tree(tmp)
                    raise ConfigError(f"{loc} exists and was not made by spark-fanout: choose another --path, or move "
                                      f"it away yourself")
                storage.remove_tree(loc)
            storage.rename(tmp, loc)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

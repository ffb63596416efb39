"""Baseline: the "many models" recipe. Melt the labels into rows (label name, target,
features), then groupBy(label).applyInPandas: each group balances, trains native
LightGBM and scores its held-out rows inside a Python worker, in parallel across the
application's cores. Models come back as strings and are written by the driver.

    spark-submit --master local[2] many_models.py <data> <out> <label,label,...>
"""

from __future__ import annotations

import os
import sys

import lightgbm as lgb
import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from sklearn.metrics import roc_auc_score


def main(data: str, out: str, labels: list[str]) -> None:
    spark = SparkSession.builder.getOrCreate()
    df = spark.read.parquet(data)
    features = [c for c in df.columns if not c.startswith("label_")]
    melted = df.select(
        *features,
        F.explode(F.array(*[F.struct(F.lit(lb).alias("label"), F.col(lb).cast("double").alias("y")) for lb in labels])).alias("t"),
    ).select("t.label", "t.y", *features).withColumn("_valid", F.rand(42) < 0.2)

    def train(group: pd.DataFrame) -> pd.DataFrame:
        label = group["label"].iloc[0]
        train_rows, valid = group[~group["_valid"]], group[group["_valid"]]
        counts = train_rows["y"].value_counts()
        rng = np.random.default_rng(42)
        keep = rng.random(len(train_rows)) < np.where(train_rows["y"] == counts.idxmax(), counts.min() / counts.max(), 1.0)
        sample = train_rows[keep]
        booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1, "seed": 42},
                            lgb.Dataset(sample[features], label=sample["y"]), num_boost_round=100)
        auc = roc_auc_score(valid["y"], booster.predict(valid[features]))
        return pd.DataFrame({"label": [label], "auc": [auc], "model": [booster.model_to_string()]})

    result = melted.groupBy("label").applyInPandas(train, "label string, auc double, model string").collect()
    os.makedirs(out, exist_ok=True)
    for row in result:
        with open(os.path.join(out, f"{row['label']}.txt"), "w") as fh:
            fh.write(row["model"])
        print(f"{row['label']} auc={row['auc']:.4f}", flush=True)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3].split(","))

"""Baseline: ONE Spark application that loops over the labels (what a user writes
instead of a fan-out tool). Reads the data once (cached), then per label: balance the
training rows with sampleBy, collect them, train native LightGBM, score the held-out
rows, save the model. Same settings as TrainAll's defaults (balance 1:1, 20 % held out,
LightGBM defaults, one thread).

    spark-submit --master local[2] loop_app.py <data> <out> <label,label,...>
"""

from __future__ import annotations

import os
import sys

import lightgbm as lgb
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from sklearn.metrics import roc_auc_score


def main(data: str, out: str, labels: list[str]) -> None:
    spark = SparkSession.builder.getOrCreate()
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    df = spark.read.parquet(data)
    features = [c for c in df.columns if not c.startswith("label_")]
    df = df.withColumn("_valid", F.rand(42) < 0.2).cache()
    os.makedirs(out, exist_ok=True)
    for label in labels:
        train = df.where(~F.col("_valid"))
        counts = {int(r[label]): r["count"] for r in train.groupBy(label).count().collect()}
        minority = min(counts.values())
        fractions = {k: min(1.0, minority / v) for k, v in counts.items()}
        sample = train.sampleBy(label, fractions, seed=42).select(*features, label).toPandas()
        valid = df.where(F.col("_valid")).select(*features, label).toPandas()
        booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1, "seed": 42},
                            lgb.Dataset(sample[features], label=sample[label]), num_boost_round=100)
        auc = roc_auc_score(valid[label], booster.predict(valid[features]))
        booster.save_model(os.path.join(out, f"{label}.txt"))
        print(f"{label} auc={auc:.4f}", flush=True)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3].split(","))

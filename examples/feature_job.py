"""Feature engineering as one Spark job: transform some numeric columns of a Parquet
dataset and write the result as Parquet. Fanned out by ``RunScripts`` with
``examples/feature_jobs.json`` (one job per transform); runs alone too:

    spark-submit examples/feature_job.py data/demo.parquet out/zscore zscore f000,f001,f002

Arguments: <input dataset> <output folder> <transform: zscore | log1p | bucket10> <columns, comma-separated>
"""

from __future__ import annotations

import sys

TRANSFORMS = ("zscore", "log1p", "bucket10")


def main(argv: list[str]) -> None:
    if len(argv) != 4 or argv[2] not in TRANSFORMS:
        sys.exit(f"usage: feature_job.py <input> <output> <{'|'.join(TRANSFORMS)}> <col,col,...>")
    source, output, transform, columns = argv[0], argv[1], argv[2], [c for c in argv[3].split(",") if c]

    from pyspark.ml.feature import QuantileDiscretizer
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = SparkSession.builder.appName(f"feature-{transform}").getOrCreate()
    df = spark.read.parquet(source)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"column {missing[0]!r} is not in {source}")
    if transform == "zscore":
        stats = df.select(*[F.struct(F.mean(c).alias("m"), F.stddev(c).alias("s")).alias(c) for c in columns]).first()
        out = df.select(*[((F.col(c) - stats[c]["m"]) / stats[c]["s"]).alias(f"{c}_z") for c in columns])
    elif transform == "log1p":
        out = df.select(*[F.log1p(F.abs(F.col(c))).alias(f"{c}_log1p") for c in columns])
    else:
        out = df
        for c in columns:
            out = QuantileDiscretizer(numBuckets=10, inputCol=c, outputCol=f"{c}_b10").fit(out).transform(out)
        out = out.select(*[f"{c}_b10" for c in columns])
    out.write.parquet(output)  # Spark commits the folder with _SUCCESS last
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])

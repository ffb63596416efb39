"""Baseline S: the least a spark-submit costs — start a session, stop it. Whatever a
Spark-based fan-out adds beyond the floor, one of these is the part no design avoids.

    spark-submit --master local[1] bare_session.py
"""

from pyspark.sql import SparkSession

if __name__ == "__main__":
    SparkSession.builder.getOrCreate().stop()

"""spark-fanout: train many models in parallel with Spark and Luigi."""

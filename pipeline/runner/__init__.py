"""The job runner: building ``spark-submit`` command lines, supervising job processes, result records."""

"""Settings of this tool that are not task parameters (``[fanout]`` in luigi.cfg).

Precedence everywhere: task parameter, then luigi.cfg, then the default given here.
"""

from __future__ import annotations

import luigi

from pipeline.params import ChoiceParameter, FloatParameter, IntParameter


class fanout(luigi.Config):  # noqa: N801 - luigi names the config section after the class
    kill_grace_seconds = FloatParameter(
        default=5.0,
        description="Seconds a stopped job's processes get to exit after SIGTERM before SIGKILL.",
    )
    job_timeout = IntParameter(
        default=0,
        description="Seconds one spark-submit may run before it is stopped (0 = no limit). "
        "Luigi's --worker-timeout also applies.",
    )
    summary = luigi.BoolParameter(
        default=True, description="Print the per-label summary table when the controller exits."
    )
    data_identity = ChoiceParameter(
        choices=("fingerprint", "path"), default="fingerprint",
        description="What names a dataset in configuration ids and job identities: fingerprint (its path plus "
        "size, file and folder counts and modification time, so data rebuilt in place trains anew) or path "
        "(its path only, for data versioned by path).",
    )
    temporary_lease_seconds = FloatParameter(
        default=600.0,
        description="A temporary output whose writer runs on another host is removed by a later run only "
        "once the writer's heartbeat (refreshed every quarter of this) is older than this.",
    )
    min_positives = IntParameter(
        default=10,
        description="Positive training rows (before balancing) a label needs, else it fails naming its counts: with "
        "fewer a model learns little but the base rate (a balanced sample of 10 positives is 20 rows, one LightGBM "
        "leaf at its default min_data_in_leaf).",
    )
    min_negatives = IntParameter(default=10, description="Negative training rows a label needs (as min_positives).")
    min_validation_per_class = IntParameter(
        default=1,
        description="Rows of each class among a label's validation rows (when --test-fraction > 0): without both "
        "classes AUC is undefined. Raise it for metrics you trust; positives_validation in metadata.json shows the count.",
    )
    null_label_warning = FloatParameter(
        default=0.1,
        description="Warn when more than this share of a label's rows is null (they are left out of training and "
        "validation, and counted in metadata.json rows.null_labels).",
    )
    max_local_jobs = IntParameter(
        default=0,
        description="Local-mode jobs running at once on this machine (0 = as many as its cores and free memory "
        "hold, at least 1). --workers still caps it.",
    )


class batching(luigi.Config):  # noqa: N801 - luigi names the config section after the class
    """Several labels per spark-submit (see :mod:`pipeline.runner.batching` for the rule)."""

    max_size = IntParameter(default=256, description="Most labels in one batch with batch-size auto (the job spec "
                            "carries every label's name in one command-line argument, which Linux caps at 128 KiB).")
    startup_share = FloatParameter(
        default=0.2, description="batch-size auto keeps the start-up share of a batch's time under this.")
    startup_seconds_local = FloatParameter(
        default=8.0, description="Start-up cost of a local-mode job before measurements exist (4-6 s measured for an "
        "empty session, plus reading the data).")
    startup_seconds_yarn = FloatParameter(
        default=45.0, description="Start-up cost of a YARN job before measurements exist (29-68 s measured on Hadoop 3.3.6).")
    collect_limit_mb = FloatParameter(
        default=512.0, description="A LightGBM batch collects its rows to the driver (features and labels as doubles) "
        "up to this size and trains labels in driver threads; above it, labels train as Spark jobs.")
    threads = IntParameter(
        default=0, description="Training threads in a batch's driver with fit_place = driver (0 = one per driver "
        "core: local[N]'s N, spark.driver.cores on YARN).")
    fit_place = ChoiceParameter(
        choices=("auto", "tasks", "driver"), default="auto", description="Where a batch fits the labels of a driver "
        "engine (LightGBM, XGBoost, scikit-learn) once its rows are collected: tasks = as Spark tasks on every core "
        "the job has (the executors on YARN: they need the engine's library; local[N]'s slots); driver = on driver "
        "threads; auto = tasks with executors, driver threads under a plain local master (faster there).")
    widen_local = luigi.BoolParameter(
        default=True, parsing=luigi.BoolParameter.EXPLICIT_PARSING, description="With --batch-size auto and a local [spark] master, TrainAll (and a search) makes the fewest "
        "batches and gives each its share of this machine's cores (local[N]); false: [spark] master as written.")
    local_cores = IntParameter(default=0, description="Cores TrainAll or a search shares among its local batches (0: all of "
                               "this machine's).")

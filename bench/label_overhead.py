"""Where a batch's time goes per label: one batch job's code (tasks.train_model.train_batch)
run in this process on a local Spark session, its steps timed (summed over the driver's
threads). Labels fitted as Spark tasks run in Spark's Python workers: their steps are
timed there and reported back in each artifact's metadata (``fitted_in``).

    python bench/label_overhead.py [--labels 64] [--rows 500] [--features 3] [--master local[2]]

Prints the batch's wall seconds split into: reading and collecting the rows, fitting
(engine.fit + save + predict), evaluation (metrics and curves), artifact commits (writes,
fsyncs, renames), events, and the rest.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.flows.demo import make_demo_frame  # noqa: E402

#: (category, module, function): the steps timed, wherever they run on the driver
STEPS = (
    ("read + collect (Spark -> pandas)", "tasks.train_model", "collect_batch"),
    ("fits as Spark tasks, whole phase", "tasks.train_frame", "train_as_tasks"),
    ("label's rows (check, balance, split)", "tasks.train_frame", "label_sample"),
    ("training incl. evaluation (driver)", "tasks.label_job", "train_on_driver"),
    ("  of which evaluation", "tasks.engines.training", "evaluate"),
    ("artifact commits", "tasks.train_frame", "commit_label"),
    ("events", "tasks.train_frame", "emit_event"),
    ("events", "tasks.label_job", "emit_event"),
)


class Timers:
    """Wall seconds spent inside each patched function, summed over threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def wrap(self, name: str, fn: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
                    self.calls[name] = self.calls.get(name, 0) + 1
        return timed


def patch(timers: Timers) -> None:
    for category, module, function in STEPS:
        mod = importlib.import_module(module)
        if hasattr(mod, function):
            setattr(mod, function, timers.wrap(category, getattr(mod, function)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=64)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--features", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--fit-place", choices=("tasks", "driver"), default="tasks")
    parser.add_argument("--verbose", action="store_true", help="also print each task-fitted label (pid, seconds)")
    args = parser.parse_args()

    from pyspark.sql import SparkSession

    from tasks import train_model

    base = Path(tempfile.mkdtemp(prefix="fanout-overhead-"))
    try:
        data = base / "data.parquet"
        data.mkdir()
        pq.write_table(make_demo_frame(rows=args.rows, features=args.features, labels=args.labels, seed=7),
                       data / "part-00000.parquet")
        labels = [f"label_{i:02d}" for i in range(args.labels)]
        spec = {"labels": labels, "slugs": labels, "data": f"file://{data}", "artifact_root": f"file://{base}/models",
                "engine": "lightgbm", "params": {}, "features": [f"f{i:03d}" for i in range(args.features)],
                "balance_ratio": 1.0, "test_fraction": 0.2, "seed": 42, "config": "bench", "threads": 0,
                "fit_place": args.fit_place}
        started = time.perf_counter()
        spark = (SparkSession.builder.master(args.master).config("spark.ui.enabled", "false")
                 .config("spark.sql.shuffle.partitions", "4").config("spark.ui.showConsoleProgress", "false").getOrCreate())
        spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
        session_s = time.perf_counter() - started
        timers = Timers()
        patch(timers)
        out = io.StringIO()
        real_stdout, sys.stdout = sys.stdout, out  # the job's event lines
        batch_started = time.perf_counter()
        try:
            failed = train_model.train_batch(spark, spark.read.parquet(spec["data"]), spec, None)
        finally:
            sys.stdout = real_stdout
        batch_s = time.perf_counter() - batch_started
        spark.stop()
        if failed == args.labels:
            raise SystemExit(f"every label failed:\n{out.getvalue()[-2000:]}")
        metas = [json.loads(p.read_text()) for p in (base / "models").glob("*/metadata.json")]
        print(f"{args.labels} labels x {args.rows} rows x {args.features} features, {args.master}: session start "
              f"{session_s:.1f} s, batch {batch_s:.1f} s ({batch_s / args.labels * 1000:.0f} ms per label; {failed} refused for too few rows)")
        for category, _, _ in STEPS:
            if category in timers.seconds:
                print(f"  {category:<40}{timers.seconds[category]:>8.2f} s in {timers.calls[category]} calls")
        print(f"  {'fitting alone (metadata training_seconds)':<40}"
              f"{sum(float(m.get('training_seconds') or 0) for m in metas):>8.2f} s")
        tasks = [m["fitted_in"] for m in metas if m.get("fitted_in")]
        if args.verbose:
            print(*[(t["pid"], t["rows_s"], t["task_s"]) for t in tasks])
        if tasks:
            for key in ("rows_s", "task_s"):
                print(f"  {'in tasks: ' + key:<40}{sum(float(t.get(key) or 0) for t in tasks):>8.2f} s")
        print(f"  labels fitted in: {', '.join(sorted({str((m.get('fitted_in') or {}).get('where', 'driver thread')) for m in metas}))}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

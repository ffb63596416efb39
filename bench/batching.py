"""Batches against one job per label and against one Spark application, measured in one run.

Contenders, all in Spark local mode on this machine, each from a cold start:
  ours-per-label  TrainAll --batch-size 1 --workers 2 (one spark-submit per label, local[1] each)
  ours-batched    TrainAll --batch-size auto --workers 2 (here: two batches, local[1] each)
  ours-threads    TrainAll --batch-size auto --workers 1, [spark] master local[2] (one batch,
                  two training threads in its driver)
  loop-app        one spark-submit, local[2], looping over the labels (bench/baselines/loop_app.py)
  many-models     one spark-submit, local[2], groupBy(label).applyInPandas (bench/baselines/many_models.py)
Each prints wall seconds, CPU seconds of the whole process tree (children's rusage) and
peak RSS of the tree; medians over ``--repeats``, and ratios to ours-batched.

    python bench/batching.py [--scenario small|wide|both] [--repeats 1] [--skip ours-per-label]

Scenarios: small = 64 labels x 5,000 rows x 10 features; wide = 8 labels x 200,000 rows
x 40 features (the figures of issue 11).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.tree_memory import PeakTreeRss  # noqa: E402
from pipeline.flows.demo import make_demo_frame  # noqa: E402
from pipeline.runner.submit import job_environment, pyspark_home, resolve_spark_submit  # noqa: E402

SCENARIOS = {"small": (64, 5_000, 10), "wide": (8, 200_000, 40)}
CONTENDERS = ("ours-per-label", "ours-batched", "ours-threads", "loop-app", "many-models")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(argv: list[str], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Run ``argv``; wall seconds, CPU seconds of its whole tree, peak tree RSS (MiB)."""
    cpu0, started = _children_cpu(), time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with PeakTreeRss(proc.pid, interval=0.25) as peak:
        out, _ = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed with exit code {proc.returncode}:\n{out[-3000:]}")
    return {"wall": wall, "cpu": _children_cpu() - cpu0, "peak_mib": peak.mib}


def command(contender: str, data: Path, labels: list[str], work: Path) -> list[str]:
    if contender.startswith("ours"):
        luigi = os.path.join(os.path.dirname(sys.executable), "luigi")
        batch = "1" if contender == "ours-per-label" else "auto"
        workers = "1" if contender == "ours-threads" else "2"
        return [luigi, "--module", "pipeline", "TrainAll", "--local-scheduler", "--workers", workers, "--data", str(data),
                "--models", str(work / "models"), "--log-dir", str(work / "logs"), "--labels", json.dumps(labels),
                "--batch-size", batch]
    script = REPO / "bench" / "baselines" / ("loop_app.py" if contender == "loop-app" else "many_models.py")
    submit = resolve_spark_submit("spark-submit", bundled_home=pyspark_home())
    return [submit, "--master", "local[2]", "--driver-memory", "2g", "--conf", "spark.sql.shuffle.partitions=4",
            "--conf", "spark.ui.showConsoleProgress=false", str(script), str(data), str(work / "out"), ",".join(labels)]


def run_scenario(name: str, repeats: int, skip: set[str], base: Path) -> None:
    n_labels, rows, features = SCENARIOS[name]
    data = base / f"{name}.parquet"
    data.mkdir(parents=True)
    pq.write_table(make_demo_frame(rows=rows, features=features, labels=n_labels, seed=7), data / "part-00000.parquet")
    labels = [f"label_{i:02d}" for i in range(n_labels)]
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(REPO / "luigi.cfg"))
    submit = resolve_spark_submit("spark-submit", bundled_home=pyspark_home())
    env = job_environment(env, spark_submit=submit, bundled_home=pyspark_home(), local_master=True, driver_local=True)
    samples: dict[str, list[dict[str, float]]] = {c: [] for c in CONTENDERS if c not in skip}
    two_cores_cfg = base / "luigi-local2.cfg"
    two_cores_cfg.write_text((REPO / "luigi.cfg").read_text().replace("master = local[1]", "master = local[2]"))
    for r in range(repeats):
        for contender in samples:  # interleaved: the machine's drift hits every contender alike
            work = base / f"{name}-{contender}-{r}"
            work.mkdir()
            run_env = dict(env, LUIGI_CONFIG_PATH=str(two_cores_cfg)) if contender == "ours-threads" else env
            samples[contender].append(measure(command(contender, data, labels, work), work, run_env))
            print(f"  {name} {contender} run {r + 1}: {samples[contender][-1]['wall']:.1f} s", flush=True)
            shutil.rmtree(work, ignore_errors=True)
    med = {c: {k: statistics.median(s[k] for s in runs) for k in runs[0]} for c, runs in samples.items()}
    ref = med.get("ours-batched")
    print(f"\n{name}: {n_labels} labels x {rows:,} rows x {features} features, {repeats} run(s) each, medians")
    print(f"{'contender':<16}{'wall s':>9}{'CPU s':>9}{'peak MiB':>10}{'wall / ours-batched':>22}")
    for c, m in med.items():
        ratio = f"{m['wall'] / ref['wall']:.2f}" if ref else "-"
        print(f"{c:<16}{m['wall']:>9.1f}{m['cpu']:>9.1f}{m['peak_mib']:>10.0f}{ratio:>22}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=("small", "wide", "both"), default="both")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip", action="append", default=[], choices=CONTENDERS)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
          f"python {sys.version.split()[0]}")
    base = Path(tempfile.mkdtemp(prefix="fanout-batching-"))
    try:
        for name in (("small", "wide") if args.scenario == "both" else (args.scenario,)):
            run_scenario(name, args.repeats, set(args.skip), base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Batches against one job per label and against one Spark application, measured in one run.

Contenders, all in Spark local mode on this machine, each from a cold start:
  ours-per-label  TrainAll --batch-size 1 --workers 2 (one spark-submit per label, local[1] each)
  ours-batched    TrainAll --batch-size auto --workers 2 (here: two batches, local[1] each)
  ours-threads    TrainAll --batch-size auto --workers 1, [spark] master local[2] (one batch,
                  two training threads in its driver)
  loop-app        one spark-submit, local[2], looping over the labels (bench/baselines/loop_app.py)
  many-models     one spark-submit, local[2], groupBy(label).applyInPandas (bench/baselines/many_models.py)
  floor           no Spark at all: pyarrow reads the data, the same fits 2 at a time on threads
                  (bench/baselines/floor.py)
  bare-submit     S: a spark-submit (local[1]) that starts a session and stops it
                  (bench/baselines/bare_session.py)
Each prints wall seconds, CPU seconds of the whole process tree (children's rusage) and
peak RSS of the tree; medians over ``--repeats``, ratios to ours-batched, and issue 21's
targets against the floor and S measured in the same run (ours-batched is the README's
quick start: TrainAll --workers 2 with every default).

    python bench/batching.py [--scenario small|wide|many|all] [--repeats 1] [--skip ours-per-label]

Scenarios: small = 64 labels x 5,000 rows x 10 features; wide = 8 labels x 200,000 rows
x 40 features (the figures of issue 11); many = 1,000 labels x 500 rows x 3 features
(ours-batched, floor and bare-submit only: one job per label would take hours).
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

SCENARIOS = {"small": (64, 5_000, 10), "wide": (8, 200_000, 40), "many": (1_000, 500, 3)}
CONTENDERS = ("ours-per-label", "ours-batched", "ours-threads", "loop-app", "many-models", "floor", "bare-submit")
#: Issue 21's targets for ours-batched (the default run): at most factor x floor + S, and for
#: "many" a wall and memory ceiling.
TARGETS = {"wide": 1.3, "small": 1.5}
MANY_LIMITS = (120.0, 2048.0)  # seconds, MiB peak
ONLY_IN_MANY = ("ours-batched", "floor", "bare-submit")


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
    baselines = REPO / "bench" / "baselines"
    if contender == "floor":
        return [sys.executable, str(baselines / "floor.py"), str(data), str(work / "out"), ",".join(labels), "2"]
    submit = resolve_spark_submit("spark-submit", bundled_home=pyspark_home())
    if contender == "bare-submit":
        return [submit, "--master", "local[1]", "--conf", "spark.ui.showConsoleProgress=false",
                str(baselines / "bare_session.py")]
    script = baselines / ("loop_app.py" if contender == "loop-app" else "many_models.py")
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
    chosen = [c for c in CONTENDERS if c not in skip and (name != "many" or c in ONLY_IN_MANY)]
    samples: dict[str, list[dict[str, float]]] = {c: [] for c in chosen}
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
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    floor, bare = med.get("floor"), med.get("bare-submit")
    if ref and floor and bare and name in TARGETS:
        limit = TARGETS[name] * floor["wall"] + bare["wall"]
        verdict = "met" if ref["wall"] <= limit else "NOT met"
        print(f"target: ours-batched {ref['wall']:.1f} s <= {TARGETS[name]} x floor {floor['wall']:.1f} s + S "
              f"{bare['wall']:.1f} s = {limit:.1f} s: {verdict} (ours = {(ref['wall'] - bare['wall']) / floor['wall']:.2f} "
              f"x floor + S)")
    if ref and name == "many":
        wall, peak = MANY_LIMITS
        verdict = "met" if ref["wall"] <= wall and ref["peak_mib"] <= peak else "NOT met"
        print(f"target: ours-batched {ref['wall']:.1f} s <= {wall:.0f} s and peak {ref['peak_mib']:.0f} MiB <= "
              f"{peak:.0f} MiB: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=(*SCENARIOS, "all"), default="all")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip", action="append", default=[], choices=CONTENDERS)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
          f"python {sys.version.split()[0]}")
    base = Path(tempfile.mkdtemp(prefix="fanout-batching-"))
    try:
        for name in (tuple(SCENARIOS) if args.scenario == "all" else (args.scenario,)):
            run_scenario(name, args.repeats, set(args.skip), base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

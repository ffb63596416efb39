"""What one local-mode job costs on this machine, measured in one run.

Prints: the time of a bare spark-submit (start and stop a SparkSession), the wall time
and peak memory (RSS summed over spark-submit's JVM, the Python driver and its workers)
of one TrainModel job, and the speed-up of 2 workers over 1 for a 4-label TrainAll.

    python bench/job_cost.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.tree_memory import PeakTreeRss  # noqa: E402
from pipeline.runner.submit import job_environment, pyspark_home, resolve_spark_submit  # noqa: E402


def _luigi(args: list[str], cwd: Path) -> tuple[float, float, int]:
    """Run the controller; return (wall seconds, peak tree RSS in MiB, exit code)."""
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(REPO / "luigi.cfg"))
    exe = os.path.join(os.path.dirname(sys.executable), "luigi")
    started = time.perf_counter()
    proc = subprocess.Popen([exe, "--module", "pipeline", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # job processes only: everything below the controller, not the controller itself
    with PeakTreeRss(proc.pid, include_root=False) as peak:
        rc = proc.wait()
    return time.perf_counter() - started, peak.mib, rc


def bare_spark_submit(work: Path) -> float:
    script = work / "bare.py"
    script.write_text(textwrap.dedent("""
        from pyspark.sql import SparkSession
        SparkSession.builder.getOrCreate().stop()
    """))
    spark_submit = resolve_spark_submit("spark-submit", bundled_home=pyspark_home())
    env = job_environment(dict(os.environ), spark_submit=spark_submit, bundled_home=pyspark_home(), local_master=True,
                          driver_local=True)
    started = time.perf_counter()
    subprocess.run([spark_submit, "--master", "local[1]", str(script)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bare = [bare_spark_submit(work) for _ in range(args.repeat)]
        print(f"bare spark-submit (session start+stop), local[1]: {min(bare):.1f} s best, "
              f"{sum(bare) / len(bare):.1f} s mean of {len(bare)}")
        _luigi(["MakeDemoData", "--local-scheduler", "--rows", str(args.rows)], work)
        one_wall, one_peak, rc = _luigi(["TrainModel", "--local-scheduler", "--label", "label_00",
                                         "--models", "m1"], work)
        assert rc == 0, "TrainModel failed"
        meta = json.loads(next((work / "m1").glob("*/metadata.json")).read_text())
        print(f"one TrainModel job ({args.rows} rows, lightgbm): {one_wall:.1f} s wall, "
              f"{meta['job_seconds']:.1f} s inside the job, training {meta['training_seconds']:.2f} s, "
              f"peak memory of the job's processes {one_peak:.0f} MiB")
        w1, _, rc1 = _luigi(["TrainAll", "--local-scheduler", "--workers", "1", "--models", "w1"], work)
        w2, peak2, rc2 = _luigi(["TrainAll", "--local-scheduler", "--workers", "2", "--models", "w2"], work)
        assert rc1 == 0 and rc2 == 0, "TrainAll failed"
        print(f"TrainAll over 4 labels: 1 worker {w1:.1f} s, 2 workers {w2:.1f} s, "
              f"speed-up {w1 / w2:.2f}x on {os.cpu_count()} cores (peak memory with 2 jobs {peak2:.0f} MiB)")
        r_wall, _, rc3 = _luigi(["TrainAll", "--local-scheduler", "--workers", "2", "--models", "w2"], work)
        print(f"rerun with every artifact complete: {r_wall:.1f} s (exit {rc3})")


if __name__ == "__main__":
    main()

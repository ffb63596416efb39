"""Orchestration overhead: N jobs of a fixed duration T at concurrency C, wall / ideal.

The ideal is ceil(N/C) * T: C jobs always running, no time lost between them. Contenders,
each started as its own command (interpreter start-up included), measured side by side:

* ours, local scheduler: ``luigi --module pipeline RunScripts --workers C --local-scheduler``
* ours, luigid: the same against a real ``luigid`` on 127.0.0.1
* thread pool: the common recipe, C threads each starting a job with ``subprocess.Popen``
  and polling ``poll()`` every ``--recipe-poll`` seconds until it is done
* sequential loop: one job after the other (``--sequential-jobs`` of them, the wall
  scaled to N: it grows linearly, and N of them would take N*T)

The job is a STAND-IN for spark-submit: ``[spark] spark_submit`` names a small /bin/sh
script that sleeps T seconds and then writes the job's output folder with ``_SUCCESS``
(what Spark's committer leaves), so the controller's whole path runs (fork per task,
preflight, slot, spark-submit command line, process group, output commit by rename,
result record) while the job itself costs nothing measurable. Every contender runs the
same stand-in.

    python bench/overhead.py [--jobs 200] [--concurrency 20] [--seconds 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import configparser
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STAND_IN = """#!/bin/sh
# spark-submit stand-in (bench/overhead.py): a job of a fixed duration. The last
# argument is where the job writes; it commits as Spark does, with a _SUCCESS file.
for out; do :; done
sleep "$FANOUT_BENCH_JOB_SECONDS"
mkdir -p "$out" && : > "$out/_SUCCESS"
"""


# --------------------------------------------------------------------------- set-up


def prepare(work: Path, jobs: int, seconds: float, concurrency: int) -> dict[str, str]:
    """Stand-in, a user script (never run by the stand-in), a luigi.cfg naming the
    stand-in, and the environment every contender runs with."""
    stand_in = work / "spark-submit-stand-in"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    (work / "job.py").write_text("# the user's script: the stand-in does not run it\n")
    cfg = configparser.RawConfigParser()
    cfg.read(REPO / "luigi.cfg")
    cfg.set("spark", "spark_submit", str(stand_in))
    if not cfg.has_section("fanout"):
        cfg.add_section("fanout")
    # The machine-sized cap on local jobs protects real JVMs; stand-ins cost nothing.
    cfg.set("fanout", "max_local_jobs", str(concurrency))
    with open(work / "luigi.cfg", "w") as fh:
        cfg.write(fh)
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(work / "luigi.cfg"), FANOUT_BENCH_JOB_SECONDS=str(seconds),
               XDG_CACHE_HOME=str(work / "cache"),  # own slot files: other runs on this machine do not interfere
               PYTHONPATH=str(REPO))
    return env


def jobs_file(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    entries = [{"name": f"job-{i:03d}", "args": ["{output}"], "output": str(folder / "out" / f"job-{i:03d}")}
               for i in range(n)]
    path = folder / "jobs.json"
    path.write_text(json.dumps(entries))
    return path


def outputs_complete(folder: Path, n: int) -> int:
    return sum(1 for i in range(n) if (folder / "out" / f"job-{i:03d}" / "_SUCCESS").is_file())


# --------------------------------------------------------------------------- contenders


def run_ours(work: Path, env: dict[str, str], tag: str, n: int, c: int, scheduler: list[str]) -> float:
    folder = work / tag
    jobs = jobs_file(folder, n)
    exe = os.path.join(os.path.dirname(sys.executable), "luigi")
    argv = [exe, "--module", "pipeline", "RunScripts", "--script", str(work / "job.py"), "--jobs", str(jobs),
            "--workers", str(c), "--log-dir", str(folder / "logs"), *scheduler]
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    done = outputs_complete(folder, n)
    if proc.returncode != 0 or done != n:
        raise SystemExit(f"{tag}: exit {proc.returncode}, {done}/{n} outputs\n{proc.stderr[-3000:]}")
    return wall


def run_recipe(work: Path, env: dict[str, str], tag: str, n: int, c: int, mode: str, poll: float) -> float:
    folder = work / tag
    jobs_file(folder, n)
    argv = [sys.executable, __file__, "--recipe", mode, "--recipe-folder", str(folder), "--jobs", str(n),
            "--concurrency", str(c), "--recipe-poll", str(poll), "--stand-in", str(work / "spark-submit-stand-in")]
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True)
    wall = time.perf_counter() - started
    done = outputs_complete(folder, n)
    if done != n:
        raise SystemExit(f"{tag}: {done}/{n} outputs")
    return wall


def recipe_main(mode: str, folder: Path, n: int, c: int, poll: float, stand_in: str) -> None:
    """The baselines as a user writes them (run in a process of their own)."""
    entries = json.loads((folder / "jobs.json").read_text())

    def one(entry: dict) -> int:
        proc = subprocess.Popen([stand_in, entry["output"]])
        while proc.poll() is None:
            time.sleep(poll)
        return proc.returncode

    if mode == "threadpool":
        with ThreadPoolExecutor(max_workers=c) as pool:
            codes = list(pool.map(one, entries))
    else:
        codes = [subprocess.run([stand_in, e["output"]]).returncode for e in entries]
    if any(codes):
        raise SystemExit(f"{sum(1 for x in codes if x)} jobs failed")


# --------------------------------------------------------------------------- luigid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_luigid(work: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    import requests

    port = free_port()
    logdir = work / "luigid"
    logdir.mkdir()
    exe = os.path.join(os.path.dirname(sys.executable), "luigid")
    proc = subprocess.Popen([exe, "--address", "127.0.0.1", "--port", str(port), "--logdir", str(logdir),
                             "--state-path", str(logdir / "state.pickle")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/task_list", timeout=1).ok:
                return proc, port
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("luigid did not start")


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0, help="the stand-in job's duration T")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sequential-jobs", type=int, default=10)
    parser.add_argument("--recipe-poll", type=float, default=1.0, help="the thread pool's poll interval")
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument("--recipe", choices=["threadpool", "sequential"], help=argparse.SUPPRESS)
    parser.add_argument("--recipe-folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stand-in", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.recipe:
        recipe_main(args.recipe, args.recipe_folder, args.jobs, args.concurrency, args.recipe_poll, args.stand_in)
        return

    n, c, t = args.jobs, args.concurrency, args.seconds
    ideal = math.ceil(n / c) * t
    print(f"N={n} jobs of T={t:g} s at C={c}: ideal ceil(N/C)*T = {ideal:g} s; {os.cpu_count()} cores; "
          f"job = spark-submit stand-in (/bin/sh: sleep T, then write <output>/_SUCCESS)")
    load0 = os.getloadavg()[0]
    walls: dict[str, list[float]] = {"ours, local scheduler": [], "ours, luigid": [], "thread pool": []}
    with tempfile.TemporaryDirectory(prefix="fanout-overhead-") as tmp:
        work = Path(tmp)
        env = prepare(work, n, t, c)
        luigid, port = start_luigid(work, env)
        try:
            for r in range(args.repeat):
                walls["ours, local scheduler"].append(run_ours(work, env, f"local-{r}", n, c, ["--local-scheduler"]))
                walls["ours, luigid"].append(run_ours(work, env, f"luigid-{r}", n, c, [
                    "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port)]))
                walls["thread pool"].append(run_recipe(work, env, f"pool-{r}", n, c, "threadpool", args.recipe_poll))
                print(f"  run {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in walls.items()), flush=True)
                for r_folder in work.glob(f"*-{r}"):
                    shutil.rmtree(r_folder / "out", ignore_errors=True)
        finally:
            luigid.terminate()
            luigid.wait(timeout=10)
        if not args.skip_sequential:
            m = args.sequential_jobs
            seq = run_recipe(work, env, "sequential", m, 1, "sequential", args.recipe_poll)
            walls[f"sequential loop ({m} jobs, x{n / m:g})"] = [seq * n / m]

    print(f"\n{'contender':<34} {'median wall':>12} {'wall/ideal':>11} {'lost per job':>13}")
    for name, values in walls.items():
        med = statistics.median(values)
        per_job = (med - ideal) / math.ceil(n / c)  # jobs in a row on one slot
        print(f"{name:<34} {med:>10.1f} s {med / ideal:>11.3f} {per_job:>11.2f} s")
    ours = statistics.median(walls["ours, local scheduler"])
    pool = statistics.median(walls["thread pool"])
    print(f"load average (1 min) at start {load0:.1f}, at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          f"(other work on the machine slows every contender; ours forks a process per task)")
    print(f"thread pool / ours (local scheduler): {pool / ours:.2f}x; median of {args.repeat} runs each "
          f"(thread pool polls every {args.recipe_poll:g} s); 'lost per job' = (wall - ideal) / ceil(N/C)")


if __name__ == "__main__":
    main()

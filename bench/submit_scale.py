"""Fifty YARN jobs from one edge node: what submitting them costs the controller's machine.

Runs the real controller (``luigi --module pipeline RunScripts --workers 50``, local
scheduler, detached cluster-mode submission) against a replayed ResourceManager (the
recorded answers in tests/fixtures) and the in-memory WebHDFS test server, with a
stand-in ``spark-submit``: there is no YARN here. Twice (or more), side by side:

* **before**: no shared archive, no cap (``[yarn] spark_archive = false``,
  ``max_concurrent_submits = 0``): every stand-in plays a spark-submit that zips and
  uploads Spark's jars;
* **after** (for each ``--caps`` value): the controller publishes pyspark's real jars
  (~320 MB, from a cold cache: hashed, zipped, uploaded once) and every job names the
  archive; at most ``cap`` stand-ins submit at once.

The stand-in spark-submit holds ``--rss-mb`` of touched memory and burns CPU until it has
used ``--cpu`` CPU-seconds (``--archive-cpu`` when ``spark.yarn.archive`` is in its argv),
then prints the recorded detached submission (spark-submit-nowait.stderr), marks its
job's output complete on WebHDFS (playing the job) and exits. Defaults: the issue's
measurements on Hadoop 3.3.6 (~300 MB per submitting JVM, ~7.6 CPU-s per job of which the
jar zip + upload is most); ``--archive-cpu 2.5`` is an estimate (what is left of 7.6 CPU-s
without deflating and uploading 320 MB), not a measurement: change it and rerun.

Measured from outside: peak PSS of the controller's whole process tree (sampled from
/proc every 0.2 s), total CPU of the tree (getrusage of the waited-for children), and the
time from start until every job printed "Submitted application".

    python bench/submit_scale.py [--jobs 50] [--workers 50] [--caps 3] [--rss-mb 300] [--cpu 7] [--archive-cpu 2.5]
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from tests.replay import ReplayServer, recorded_reply  # noqa: E402
from tests.webhdfs_server import WebHdfsServer  # noqa: E402

APPS = "/ws/v1/cluster/apps"
NOWAIT = "application_1795461516199_0010"  # the id in the recorded detached submission

STAND_IN = r'''
import json, os, sys, time, urllib.request
from urllib.parse import urlsplit
started = time.time()
argv = sys.argv[1:]
archive = any(a.startswith("spark.yarn.archive=") for a in argv)
cpu = float(os.environ["STANDIN_ARCHIVE_CPU" if archive else "STANDIN_CPU"])
held = bytearray(b"\x01") * (int(os.environ["STANDIN_RSS_MB"]) * 2**20)  # touched: resident, like a JVM heap in use
x = 0
while time.process_time() < cpu:  # the JVM zipping and uploading (or just starting, with an archive)
    x += 1
lines = open(os.environ["STANDIN_RECORDING"], "rb").read().splitlines(keepends=True)
for line in lines:
    sys.stderr.buffer.write(line)
    sys.stderr.flush()
    if b"Submitted application" in line:
        with open(os.environ["STANDIN_LOG"], "a") as fh:
            fh.write(json.dumps({"start": started, "submitted": time.time(), "cpu": time.process_time(),
                                 "archive": archive}) + "\n")
# playing the job: its output folder gets _SUCCESS (WebHDFS CREATE, two steps)
out = urlsplit(argv[-1])
nn = os.environ["STANDIN_NAMENODE"]
req = urllib.request.Request(f"{nn}/webhdfs/v1{out.path}/_SUCCESS?op=CREATE&overwrite=true&user.name=bench", method="PUT")
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None
opener = urllib.request.build_opener(NoRedirect)
try:
    opener.open(req)
except urllib.error.HTTPError as exc:
    location = exc.headers["Location"]
    urllib.request.urlopen(urllib.request.Request(location, data=b"", method="PUT")).read()
del held
'''


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _tree_pss_mb(root: psutil.Process) -> float:
    try:
        pids = [root.pid] + [c.pid for c in root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    return sum(_pss_kb(p) for p in pids) / 1024


def run_case(name: str, *, work: Path, nn: WebHdfsServer, rm: ReplayServer, args: argparse.Namespace,
             archive: bool, cap: int) -> dict:
    case = work / name
    case.mkdir()
    nn_base = f"webhdfs://127.0.0.1:{nn.port}"
    nn.put_dir(f"/out-{name}")
    jobs = [{"name": f"j{i:02d}", "args": ["{output}"], "output": f"{nn_base}/out-{name}/j{i:02d}"}
            for i in range(args.jobs)]
    (case / "jobs.json").write_text(json.dumps(jobs))
    (case / "job.py").write_text("raise SystemExit('never run: spark-submit is a stand-in')\n")
    standin = case / "spark-submit"
    standin.write_text(f"#!{sys.executable}\n{STAND_IN}")
    standin.chmod(0o755)
    cfg = case / "luigi.cfg"
    config = configparser.ConfigParser()
    config.read(REPO / "luigi.cfg")
    for section, values in {
        "spark": {"master": "yarn", "deploy_mode": "cluster", "spark_submit": str(standin)},
        "yarn": {"rm_address": rm.url, "wait_app_completion": "false", "poll_interval": "0.5",
                 "max_concurrent_submits": str(cap), "spark_archive": str(archive).lower(),
                 "archive_dir": f"{nn_base}/shared-{name}/spark-fanout"},  # each case pays its one upload
        "fanout": {"summary": "false"},
    }.items():
        for key, value in values.items():
            config.set(section, key, value)
    with open(cfg, "w") as fh:
        config.write(fh)
    log = case / "submitted.jsonl"
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(cfg), XDG_CACHE_HOME=str(case / "cache"),  # cold cache
               STANDIN_CPU=str(args.cpu), STANDIN_ARCHIVE_CPU=str(args.archive_cpu), STANDIN_RSS_MB=str(args.rss_mb),
               STANDIN_RECORDING=str(REPO / "tests/fixtures/spark-submit/spark-submit-nowait.stderr"),
               STANDIN_LOG=str(log), STANDIN_NAMENODE=nn.url, HADOOP_USER_NAME="bench")
    env.pop("SPARK_HOME", None)  # pyspark's own jars: the real ~320 MB
    luigi_bin = os.path.join(os.path.dirname(sys.executable), "luigi")
    command = [luigi_bin, "--module", "pipeline", "RunScripts", "--script", str(case / "job.py"),
               "--jobs", str(case / "jobs.json"), "--workers", str(args.workers), "--local-scheduler",
               "--log-dir", str(case / "logs")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    proc = subprocess.Popen(command, cwd=case, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(case / "controller.log", "w"))
    root = psutil.Process(proc.pid)
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_pss_mb(root))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rc = proc.wait()
    wall = time.time() - started
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    if rc != 0 or len(records) != args.jobs:
        tail = (case / "controller.log").read_text()[-2000:]
        raise SystemExit(f"{name}: controller exited {rc} with {len(records)} of {args.jobs} jobs submitted:\n{tail}")
    if archive and not all(r["archive"] for r in records):
        raise SystemExit(f"{name}: some jobs were submitted without spark.yarn.archive")
    uploads = [r.path for r in nn.requests if r.op == "CREATE" and not r.datanode and "spark-libs-" in r.path]
    return {
        "case": name, "peak_pss_mb": peak, "cpu_s": cpu, "cpu_per_job_s": cpu / args.jobs, "wall_s": wall,
        "all_submitted_s": max(r["submitted"] for r in records) - started,
        "median_submit_s": statistics.median(r["submitted"] - r["start"] for r in records),
        "median_submitted_at_s": statistics.median(r["submitted"] - started for r in records),
        "median_standin_cpu_s": statistics.median(r["cpu"] for r in records),
        "archive_uploads": len(uploads),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--caps", default="3", help="comma-separated max_concurrent_submits values for 'after'")
    parser.add_argument("--rss-mb", type=int, default=300)
    parser.add_argument("--cpu", type=float, default=7.0)
    parser.add_argument("--archive-cpu", type=float, default=2.5)
    args = parser.parse_args()
    caps = [int(c) for c in args.caps.split(",")]
    need = args.jobs * (args.rss_mb + 40) * 2**20 + 3 * 2**30
    if psutil.virtual_memory().available < need:
        raise SystemExit(f"'before' may hold {args.jobs} x {args.rss_mb} MB at once and this machine has "
                         f"{psutil.virtual_memory().available / 2**30:.1f} GiB free: lower --jobs or --rss-mb")
    print(f"{args.jobs} jobs, --workers {args.workers}; stand-in spark-submit: {args.rss_mb} MB, "
          f"{args.cpu} CPU-s uploading jars / {args.archive_cpu} CPU-s with an archive; "
          f"{os.cpu_count()} cores", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="submit-scale-") as tmp, WebHdfsServer() as nn, ReplayServer() as rm:
        rm.route("GET", APPS, recorded_reply("yarn/rm-rest-apps-states-FAILED.json"))  # tag lookup: none live
        rm.route("GET", f"{APPS}/{NOWAIT}", recorded_reply("yarn/rm-rest-app-SUCCEEDED.json"))
        cases = [("before", False, 0)] + [(f"after-cap{c}", True, c) for c in caps]
        for name, archive, cap in cases:
            nn.clear_log()
            row = run_case(name, work=Path(tmp), nn=nn, rm=rm, args=args, archive=archive, cap=cap)
            rows.append(row)
            print(f"  {name}: done in {row['wall_s']:.0f} s", flush=True)
    cols = [("case", "{}"), ("peak_pss_mb", "{:.0f}"), ("cpu_s", "{:.0f}"), ("cpu_per_job_s", "{:.2f}"),
            ("all_submitted_s", "{:.1f}"), ("median_submitted_at_s", "{:.1f}"), ("median_submit_s", "{:.1f}"),
            ("median_standin_cpu_s", "{:.2f}"), ("archive_uploads", "{}")]
    print("\n| " + " | ".join(c for c, _ in cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(fmt.format(row[c]) for c, fmt in cols) + " |")
    base = rows[0]
    for row in rows[1:]:
        print(f"{row['case']} / before: peak PSS x{row['peak_pss_mb'] / base['peak_pss_mb']:.2f}, "
              f"CPU x{row['cpu_s'] / base['cpu_s']:.2f}, all submitted x{row['all_submitted_s'] / base['all_submitted_s']:.2f}")


if __name__ == "__main__":
    main()

"""What following 20 YARN jobs costs the machine that submits them: CPU and memory.

Contenders, each started as its own command, N=20 jobs all in flight at once:

* ours: ``luigi --module pipeline RunScripts --workers 20 --local-scheduler`` in YARN
  cluster mode with the defaults: detached submission (spark-submit returns once YARN
  accepted the job) and the jobs followed through the ResourceManager's REST API, one
  shared list request per ``[yarn] poll_interval`` for all of them (issue 21).
* thread pool: the common recipe. 20 threads; each starts a waiting cluster-mode
  spark-submit, polls ``yarn application -list`` until its application appears, then
  ``yarn application -status <id>`` every ``--recipe-poll`` seconds while its spark-submit waits.

Stand-ins, calibrated to figures measured on a real Hadoop 3.3.6 cluster (issue 12):

* ``yarn``: burns 3.0 CPU-seconds and takes 4.5 s (a JVM start), then prints the
  recorded output of the real command (tests/fake_bin/yarn, tests/fixtures/yarn).
* ResourceManager REST: tests/replay.py serving the recorded answers with 0.03 s per
  request (in this process: its CPU is the RM's, not the controller's).
* spark-submit: holds 200 MB resident. Detached (ours): waits ``--submit-seconds``, prints
  the recorded stderr of a detached submission, exits. Waiting (recipe): stays until the
  job ends. Counted apart from the controller.

The jobs stay RUNNING (recorded RUNNING report) until all 20 have been followed for
``--inflight-seconds``; then the RM answers the recorded SUCCEEDED report and the outputs
appear on the WebHDFS test server.

Counted:
* controller CPU: user+system CPU of the contender's process and every descendant (Luigi's
  task processes, the yarn CLI calls), minus what the spark-submit stand-ins report for
  themselves (read as they exit, after freeing their 200 MB: that ~25 ms each is theirs);
  per job = total / N.
* controller PSS: proportional set size summed over the contender's processes except the
  spark-submit stand-ins and their children, sampled every 0.5 s while all N jobs are in
  flight (median); per job = that / N. spark-submit stand-ins: RSS summed, same window.

    python bench/controller_cost.py [--jobs 20] [--inflight-seconds 30] [--recipe-poll 10]
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.replay import ReplayServer, Request, app_object, recorded_reply, rm_app_reply, rm_apps_reply  # noqa: E402
from tests.webhdfs_server import WebHdfsServer  # noqa: E402

FAKE_BIN = REPO / "tests" / "fake_bin"
APPS = "/ws/v1/cluster/apps"
NOWAIT = "application_1795461516199_0010"  # the id in the recorded detached submission
LIVE = "application_1795501881681_0001"  # recorded RUNNING report (tag rec-running)
SUCCEEDED = "application_1795461516199_0005"  # recorded SUCCEEDED report
RECIPE_APP_NAME = "ok_job.py"  # the recipe's application in the recorded `yarn application -list`

SPARK_SUBMIT = """#!{python}
# spark-submit stand-in (bench/controller_cost.py): 200 MB resident, like a waiting
# cluster-mode spark-submit; detached: prints the recorded output of a detached submission.
import os, resource, runpy, sys, time
ballast = bytearray(b"\\1") * (200 * 2**20)  # written, so resident
release = os.environ["BENCH_RELEASE"]
if "spark.yarn.submit.waitAppCompletion=false" in sys.argv:
    time.sleep(float(os.environ["BENCH_SUBMIT_SECONDS"]))
    os.environ.update(FAKE_SPARK_SUBMIT_STDERR="spark-submit-nowait.stderr", FAKE_SPARK_SUBMIT_RC="0")
    try:
        runpy.run_path({fake!r}, run_name="__main__")
    except SystemExit:
        pass
else:
    while not os.path.exists(release):
        time.sleep(0.2)
# Its CPU read last: freeing the ballast (~25 ms of unmapping) and the interpreter's exit are
# this stand-in's own cost, as a real spark-submit's JVM exit is, not the controller's.
del ballast
sys.stdout.flush()
sys.stderr.flush()
ru = resource.getrusage(resource.RUSAGE_SELF)
with open(os.environ["BENCH_SUBMIT_CPU"], "a") as fh:
    fh.write(f"{{ru.ru_utime + ru.ru_stime}}\\n")
os._exit(0)
"""

YARN = """#!{python}
# yarn CLI stand-in (bench/controller_cost.py): costs what one real `yarn application`
# call cost on Hadoop 3.3.6 (a JVM start), then prints the recorded output.
import resource, runpy, time
start = time.monotonic()
def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime
x = 0
while cpu() < 3.0:
    for i in range(20000):
        x += i
time.sleep(max(0.0, 4.5 - (time.monotonic() - start)))
runpy.run_path({fake!r}, run_name="__main__")
"""


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def read_floats(path: Path) -> list[float]:
    return [float(x) for x in path.read_text().split()] if path.exists() else []


# --------------------------------------------------------------------------- memory sampling


def is_stand_in(proc: psutil.Process) -> bool:
    try:
        return any("spark-submit-stand-in" in part for part in proc.cmdline()[:3])
    except psutil.Error:
        return False


def tree_memory(root_pid: int) -> tuple[int, int, int]:
    """(controller PSS, spark-submit stand-ins' RSS, controller processes) in bytes."""
    try:
        root = psutil.Process(root_pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0, 0
    stand_ins = set()
    for p in procs:
        if is_stand_in(p):
            stand_ins.add(p.pid)
            try:
                stand_ins.update(c.pid for c in p.children(recursive=True))
            except psutil.Error:
                pass
    pss = rss = count = 0
    for p in procs:
        try:
            if p.pid in stand_ins:
                rss += p.memory_info().rss
            else:
                pss += p.memory_full_info().pss
                count += 1
        except psutil.Error:
            pass
    return pss, rss, count


class Sampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[int, int, int]] = []
        self.active = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            if self.active.is_set():
                self.samples.append(tree_memory(self.pid))
            time.sleep(0.5)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()


# --------------------------------------------------------------------------- the cluster


class Cluster:
    """Replay RM + WebHDFS test server; the jobs run until ``release()``."""

    def __init__(self, work: Path, n: int) -> None:
        self.work, self.n = work, n
        self.released = threading.Event()
        self.release_file = work / "released"
        self.rm = ReplayServer(delay_s=0.03)
        self.hdfs = WebHdfsServer()

    def __enter__(self) -> Cluster:
        self.rm.__enter__()
        self.hdfs.__enter__()
        self.hdfs.put_dir("/out")
        running = rm_app_reply("yarn/rm-rest-apps-applicationTags-rec-running-RUNNING.json", LIVE)
        succeeded = recorded_reply("yarn/rm-rest-app-SUCCEEDED.json")
        # The run's shared poll lists its jobs by tag: the same recorded objects in the recorded
        # list framing, as NOWAIT (every job's id). They carry the recorded tags, not the
        # jobs': the tag lookup before each submission finds nothing to re-attach to.
        running_list = rm_apps_reply([app_object("yarn/rm-rest-apps-applicationTags-rec-running-RUNNING.json",
                                                 LIVE, as_app=NOWAIT)])
        succeeded_list = rm_apps_reply([app_object("yarn/rm-rest-app-SUCCEEDED.json", SUCCEEDED, as_app=NOWAIT)])

        def app(_req: Request):
            return succeeded if self.released.is_set() else running

        def apps(_req: Request):
            return succeeded_list if self.released.is_set() else running_list

        self.rm.route("GET", f"{APPS}/{NOWAIT}", app)  # with [yarn] shared_poll = false
        self.rm.route("GET", APPS, apps)
        return self

    def release(self) -> None:
        """The jobs finish: each writes its output (as the cluster job would), then YARN
        reports SUCCEEDED and the waiting spark-submits return."""
        for i in range(self.n):
            self.hdfs.put_dir(f"/out/job-{i:02d}")
            self.hdfs.put_file(f"/out/job-{i:02d}/_SUCCESS", b"")
        self.released.set()
        self.release_file.touch()

    def polls(self) -> int:
        """RM REST requests so far: tag lookups, shared polls, per-application polls."""
        return len(self.rm.requests)

    def __exit__(self, *exc) -> None:
        self.hdfs.__exit__(*exc)
        self.rm.__exit__(*exc)


# --------------------------------------------------------------------------- contenders


def prepare(work: Path) -> dict[str, str]:
    for name, text in (("spark-submit-stand-in", SPARK_SUBMIT), ("yarn-stand-in", YARN)):
        fake = FAKE_BIN / ("spark-submit" if name.startswith("spark") else "yarn")
        path = work / name
        path.write_text(text.format(python=sys.executable, fake=str(fake)))
        path.chmod(0o755)
    (work / "job.py").write_text("# the user's script (the stand-in does not run it)\n")
    return {}


def luigi_cfg(work: Path, rm_url: str, max_submits: str | None) -> Path:
    cfg = configparser.RawConfigParser()
    cfg.read(REPO / "luigi.cfg")
    cfg.set("spark", "master", "yarn")
    cfg.set("spark", "deploy_mode", "cluster")
    cfg.set("spark", "spark_submit", str(work / "spark-submit-stand-in"))
    cfg.set("yarn", "rm_address", rm_url)
    cfg.set("yarn", "yarn_bin", str(work / "yarn-stand-in"))
    if max_submits is not None:
        cfg.set("yarn", "max_concurrent_submits", str(max_submits))
    path = work / "luigi.cfg"
    with open(path, "w") as fh:
        cfg.write(fh)
    return path


def run_contender(name: str, argv: list[str], env: dict[str, str], cluster: Cluster, n: int, inflight: float,
                  in_flight: Callable[[int], bool]) -> dict[str, float]:
    cpu_file = Path(env["BENCH_SUBMIT_CPU"])
    cpu_file.unlink(missing_ok=True)
    cluster.released.clear()
    cluster.release_file.unlink(missing_ok=True)
    polls0 = cluster.polls()
    cpu0 = children_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cluster.work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(proc.pid)
    deadline = time.monotonic() + 900
    while not in_flight(proc.pid) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    if proc.poll() is not None or time.monotonic() >= deadline:
        proc.kill()
        raise SystemExit(f"{name}: the jobs never were all in flight\n{proc.communicate()[1][-3000:]}")
    sampler.active.set()
    time.sleep(inflight)
    sampler.active.clear()
    cluster.release()
    _, err = proc.communicate(timeout=900)
    wall = time.perf_counter() - started
    sampler.stop()
    if proc.returncode != 0:
        raise SystemExit(f"{name}: exit {proc.returncode}\n{err[-3000:]}")
    submit_cpu = read_floats(cpu_file)
    total_cpu = children_cpu() - cpu0
    controller_cpu = total_cpu - sum(submit_cpu)
    samples = sampler.samples
    pss = statistics.median(s[0] for s in samples) if samples else float("nan")
    submit_rss = statistics.median(s[1] for s in samples) if samples else float("nan")
    procs = statistics.median(s[2] for s in samples) if samples else float("nan")
    return {"wall": wall, "cpu_per_job": controller_cpu / n, "pss_per_job": pss / n / 2**20, "pss": pss / 2**20,
            "submit_rss": submit_rss / 2**20, "processes": procs, "submit_cpu": sum(submit_cpu),
            "rm_calls": cluster.polls() - polls0}


def all_followed(n: int):
    """Ours is fully in flight once N task processes run and no spark-submit is left."""
    def check(pid: int) -> bool:
        try:
            kids = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return False
        stand_ins = task_processes = 0
        for k in kids:
            try:
                if is_stand_in(k):
                    stand_ins += 1
                elif k.ppid() == pid:
                    task_processes += 1
            except psutil.Error:  # ended meanwhile
                pass
        return task_processes >= n and not stand_ins
    return check


def all_waiting(n: int):
    """The recipe is fully in flight once N waiting spark-submits run."""
    def check(pid: int) -> bool:
        try:
            return sum(1 for k in psutil.Process(pid).children(recursive=True) if is_stand_in(k)) >= n
        except psutil.NoSuchProcess:
            return False
    return check


def recipe_main(work: Path, n: int, poll: float) -> None:
    """The thread-pool recipe, as users write it (runs in a process of its own)."""
    yarn = str(work / "yarn-stand-in")
    spark_submit = str(work / "spark-submit-stand-in")
    calls = []

    def yarn_call(*args: str) -> str:
        calls.append(args[1])
        return subprocess.run([yarn, *args], capture_output=True, text=True).stdout

    def job(i: int) -> int:
        sub = subprocess.Popen([spark_submit, "--master", "yarn", "--deploy-mode", "cluster", "--name", f"job-{i:02d}",
                                str(work / "job.py")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        app_id = None
        while app_id is None:
            for line in yarn_call("application", "-list", "-appStates", "ALL").splitlines():
                cells = [c.strip() for c in line.split("\t")]
                if len(cells) > 1 and cells[1] == RECIPE_APP_NAME:
                    app_id = cells[0]
            if app_id is None:
                time.sleep(poll)
        while sub.poll() is None:
            yarn_call("application", "-status", app_id)
            try:
                sub.wait(timeout=poll)
            except subprocess.TimeoutExpired:
                pass
        return sub.returncode

    with ThreadPoolExecutor(max_workers=n) as pool:
        codes = list(pool.map(job, range(n)))
    (work / "recipe-calls.json").write_text(json.dumps({"list": calls.count("-list"), "status": calls.count("-status")}))
    if any(codes):
        raise SystemExit(f"{sum(1 for c in codes if c)} jobs failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--inflight-seconds", type=float, default=30.0, help="how long all jobs stay RUNNING together")
    parser.add_argument("--recipe-poll", type=float, default=10.0, help="the recipe's seconds between yarn calls")
    parser.add_argument("--submit-seconds", type=float, default=5.0, help="detached spark-submit stand-in's time to submit")
    parser.add_argument("--max-concurrent-submits", help="ours: [yarn] max_concurrent_submits, a number or auto "
                        "(default: the package's 3; auto: as many as free memory holds, at most --workers; the recipe "
                        "runs all its spark-submits at once)")
    parser.add_argument("--recipe", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.recipe:
        recipe_main(args.recipe, args.jobs, args.recipe_poll)
        return
    n = args.jobs
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fanout-cost-") as tmp:
        work = Path(tmp)
        prepare(work)
        with Cluster(work, n) as cluster:
            cfg = luigi_cfg(work, cluster.rm.url, args.max_concurrent_submits)
            jobs = [{"name": f"job-{i:02d}", "args": [f"job-{i:02d}"],
                     "output": f"webhdfs://127.0.0.1:{cluster.hdfs.port}/out/job-{i:02d}"} for i in range(n)]
            (work / "jobs.json").write_text(json.dumps(jobs))
            env = dict(os.environ, LUIGI_CONFIG_PATH=str(cfg), PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(work / "cache"),
                       BENCH_RELEASE=str(cluster.release_file), BENCH_SUBMIT_CPU=str(work / "submit-cpu.txt"),
                       BENCH_SUBMIT_SECONDS=str(args.submit_seconds), FAKE_SPARK_SUBMIT_LINE_DELAY="0.001")
            luigi = os.path.join(os.path.dirname(sys.executable), "luigi")
            ours = run_contender("ours", [luigi, "--module", "pipeline", "RunScripts", "--script", str(work / "job.py"),
                                          "--jobs", str(work / "jobs.json"), "--workers", str(n), "--local-scheduler",
                                          "--log-dir", str(work / "logs")],
                                 env, cluster, n, args.inflight_seconds, all_followed(n))
            recipe = run_contender("thread pool", [sys.executable, __file__, "--recipe", str(work), "--jobs", str(n),
                                                   "--recipe-poll", str(args.recipe_poll)],
                                   env, cluster, n, args.inflight_seconds, all_waiting(n))
            calls = json.loads((work / "recipe-calls.json").read_text())
    print(f"N={n} YARN cluster-mode jobs, all in flight for {args.inflight_seconds:g} s; {os.cpu_count()} cores; "
          f"stand-ins: yarn CLI 3.0 CPU-s/4.5 s per call, RM REST 0.03 s, spark-submit 200 MB")
    print(f"ours: {ours['rm_calls']} RM REST requests for the {n} jobs; thread pool: {calls['list']} `yarn application -list`"
          f" + {calls['status']} `-status` calls (every {args.recipe_poll:g} s)")
    print(f"\n{'contender':<12} {'wall':>7} {'ctl CPU/job':>12} {'ctl PSS':>9} {'PSS/job':>8} {'ctl procs':>10} "
          f"{'spark-submit RSS':>17} {'spark-submit CPU':>17}")
    for name, r in (("ours", ours), ("thread pool", recipe)):
        print(f"{name:<12} {r['wall']:>5.1f} s {r['cpu_per_job']:>10.3f} s {r['pss']:>6.0f} MB {r['pss_per_job']:>5.1f} MB "
              f"{r['processes']:>10.0f} {r['submit_rss']:>14.0f} MB {r['submit_cpu']:>15.1f} s")
    print(f"load average (1 min) at start {load0:.1f}, at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"\ncontroller CPU per job, thread pool / ours: {recipe['cpu_per_job'] / ours['cpu_per_job']:.0f}x; "
          f"controller PSS per in-flight job, ours: {ours['pss_per_job']:.1f} MB "
          f"(+ spark-submit RSS per job in flight: ours {ours['submit_rss'] / n:.0f} MB, "
          f"thread pool {recipe['submit_rss'] / n:.0f} MB)")


if __name__ == "__main__":
    main()

"""How long until a 10,000-label rerun knows it is done, or starts its one missing job.

Compares TrainAll's bulk check (one listing of the artifact root; only missing labels
are required) with the plain-Luigi pattern (every label required, one completeness
check each), on local files and on WebHDFS (the in-memory WebHDFS test server with a
per-request delay standing in for a NameNode round trip), with Luigi's local scheduler
and with a real luigid. Prints every number and the ratios from this one run.

    python bench/completeness.py [--labels 10000] [--delay-ms 2] [--workers 1] [--skip-per-label-luigid]

Requests are counted where they cannot be missed: on WebHDFS, by the test server, which
logs every HTTP request whichever process sent it (with ``--workers`` > 1 Luigi forks task
processes, and a storage's own ``request_count`` only covers the process that reads it);
on local files, as storage calls (stat, listdir) of the controller process.

"The first missing job starts" is the moment Luigi starts TrainModel for it (its START
event); spark-submit is pointed at a missing path so the job then fails at once instead
of starting a JVM: we measure the controller, not Spark.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("LUIGI_CONFIG_PATH", str(REPO / "luigi.cfg"))

import luigi  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from luigi.execution_summary import LuigiStatusCode  # noqa: E402

import pipeline.data.artifacts as artifacts  # noqa: E402
import pipeline.data.datasets as datasets  # noqa: E402
import pipeline.data.outputs as outputs  # noqa: E402
import pipeline.flows.train as train  # noqa: E402
from pipeline.data.labels import label_slug  # noqa: E402
from pipeline.flows.demo import make_demo_frame  # noqa: E402
from pipeline.flows.train import TrainAll, TrainModel  # noqa: E402
from pipeline.storage import Storage, storage_for  # noqa: E402
from pipeline.storage.locations import Location, parse_location  # noqa: E402
from pipeline.storage.webhdfs import clear_webhdfs_cache  # noqa: E402
from tasks.layout import MARKER  # noqa: E402
from tests.webhdfs_server import WebHdfsServer  # noqa: E402


class Counting:
    """Counts calls made to a local storage in this process: one call is one system call
    (stat, listdir). WebHDFS requests are counted by the server instead."""

    OPERATIONS = ("exists", "list_dir", "read_bytes", "read_tail", "write_bytes", "write_file", "makedirs", "rename",
                  "remove_tree", "content_summary", "modified")

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.inner, name)
        if name not in self.OPERATIONS:
            return found

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return found(*args, **kwargs)

        return counted


class PerLabelTrainAll(TrainAll):
    """The plain-Luigi pattern: require every label and let Luigi check each one."""

    def requires(self) -> list[TrainModel]:
        plan = self.plan
        return [self.clone(TrainModel, label=label, features=plan["features"], config=plan["config"], run_id=self.run_id)
                for label in plan["labels"]]

    def complete(self) -> bool:
        return all(task.complete() for task in self.requires())


# Shared memory, not a list: with --workers > 1 the START event fires in a forked task
# process. time.monotonic() is one system-wide clock on Linux, comparable across processes.
FIRST_START = multiprocessing.Value("d", 0.0)


@TrainModel.event_handler(luigi.Event.START)
def _started(task: TrainModel) -> None:
    with FIRST_START.get_lock():
        if not FIRST_START.value:
            FIRST_START.value = time.monotonic()


@contextmanager
def luigid() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logdir = tempfile.mkdtemp(prefix="bench-luigid-")
    exe = os.path.join(os.path.dirname(sys.executable), "luigid")
    proc = subprocess.Popen([exe, "--address", "127.0.0.1", "--port", str(port), "--logdir", logdir,
                             "--state-path", os.path.join(logdir, "state.pickle")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait()


def measure(cls: type[TrainAll], data: str, models: str, labels: list[str], count: Callable[[], int],
            port: int | None, run: str, workers: int) -> tuple[float, float | None, int]:
    """(seconds until luigi.build returned, seconds until the first TrainModel started,
    storage requests: ``count()`` after the run, its counter reset before)."""
    FIRST_START.value = 0.0
    task = cls(data=data, models=models, labels=labels, run_id=run, log_dir=tempfile.mkdtemp(prefix="bench-logs-"))
    kwargs = {"scheduler_host": "127.0.0.1", "scheduler_port": port} if port else {"local_scheduler": True}
    started = time.monotonic()
    outcome = luigi.build([task], workers=workers, log_level="CRITICAL", detailed_summary=True, **kwargs)
    ended = time.monotonic()
    # FAILED is the missing label's job failing at once (no spark-submit), as planned
    if outcome.status not in (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY, LuigiStatusCode.FAILED):
        raise SystemExit(f"{cls.__name__} on {models} failed to schedule: the numbers would mean nothing\n{outcome.summary_text}")
    first = FIRST_START.value - started if FIRST_START.value else None
    return ended - started, first, count()


def configuration_root(data: str, models: str, labels: list[str]) -> Location:
    """The folder TrainAll keeps this configuration's artifacts in (planning once writes its config.json)."""
    return TrainAll(data=data, models=models, labels=labels, run_id="bench-seed").plan["root"]


def seed_local(root: Location, labels: list[str], missing: str | None) -> None:
    for label in labels:
        if label != missing:
            folder = Path(root.path) / label_slug(label)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / MARKER).write_text("{}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", type=int, default=10000)
    parser.add_argument("--delay-ms", type=float, default=2.0, help="WebHDFS per-request delay")
    parser.add_argument("--skip-per-label-luigid", action="store_true", help="the slowest case (about a minute each)")
    parser.add_argument("--workers", type=int, default=1, help="Luigi workers (more than 1: task processes are forked)")
    args = parser.parse_args()
    luigi.configuration.get_config().set("spark", "spark_submit", "/nonexistent/spark-submit")

    labels = [f"label_{i:05d}" for i in range(args.labels)]
    work = Path(tempfile.mkdtemp(prefix="bench-completeness-"))
    data = work / "data.parquet"
    data.mkdir()
    pq.write_table(make_demo_frame(rows=50, features=3, labels=1, seed=1), data / "part-0.parquet")

    rows = []
    with WebHdfsServer(delay_s=args.delay_ms / 1000) as nn, luigid() as port:
        buf = io.BytesIO()
        pq.write_table(make_demo_frame(rows=50, features=3, labels=1, seed=1), buf)
        nn.put_file("/data/data.parquet/part-0.parquet", buf.getvalue())
        for storage_name in ("local", "webhdfs"):
            for missing in (None, labels[len(labels) // 2]):
                clear_webhdfs_cache()
                if storage_name == "local":
                    models, data_uri = str(work / f"models-{missing is None}"), str(data)
                    seed_local(configuration_root(data_uri, models, labels), labels, missing)
                else:
                    base = f"webhdfs://127.0.0.1:{nn.port}"
                    models, data_uri = f"{base}/models-{missing is None}", f"{base}/data/data.parquet"
                    root = configuration_root(data_uri, models, labels)
                    for label in labels:
                        if label != missing:
                            nn.put_file(f"{root.path}/{label_slug(label)}/{MARKER}", b"{}")
                for scheduler, sched_port in (("local", None), ("luigid", port)):
                    for cls in (TrainAll, PerLabelTrainAll):
                        if cls is PerLabelTrainAll and scheduler == "luigid" and args.skip_per_label_luigid:
                            continue
                        clear_webhdfs_cache()
                        run = f"bench-{time.monotonic_ns()}"
                        if storage_name == "webhdfs":  # the server sees every process's requests
                            nn.clear_log()
                            wall, first, calls = measure(cls, data_uri, models, labels, lambda: nn.request_count,
                                                         sched_port, run, args.workers)
                        else:
                            wall, first, calls = measure_local(cls, data_uri, models, labels, sched_port, run,
                                                               args.workers)
                        rows.append((storage_name, "all done" if missing is None else "one missing", scheduler,
                                     "bulk" if cls is TrainAll else "per-label", wall, first, calls))
                        shown = f"{first:.2f} s to first job" if first is not None else f"{wall:.2f} s to done"
                        unit = "HTTP requests at the server" if storage_name == "webhdfs" else "storage calls"
                        print(f"{rows[-1][0]:8} {rows[-1][1]:12} {scheduler:7} {rows[-1][3]:10} {shown:24} "
                              f"{calls:6d} {unit}", flush=True)

    print(f"\n{args.labels} labels; WebHDFS delay {args.delay_ms:g} ms per request (a NameNode round trip on a LAN); "
          f"{args.workers} Luigi worker(s)")
    if args.workers > 1:
        print("local storage calls count the controller process only; WebHDFS requests count every process")
    index = {(r[0], r[1], r[2], r[3]): r for r in rows}
    for key in sorted({(r[0], r[1], r[2]) for r in rows}):
        bulk, per = index.get((*key, "bulk")), index.get((*key, "per-label"))
        if not bulk or not per:
            continue
        t_bulk = bulk[5] if bulk[5] is not None else bulk[4]
        t_per = per[5] if per[5] is not None else per[4]
        print(f"{key[0]:8} {key[1]:12} {key[2]:7} time bulk {t_bulk:6.2f} s vs per-label {t_per:7.2f} s "
              f"({t_per / t_bulk:6.1f}x); requests {bulk[6]} vs {per[6]} ({per[6] / max(bulk[6], 1):.0f}x fewer)")


def measure_local(cls: type[TrainAll], data: str, models: str, labels: list[str], port: int | None, run: str,
                  workers: int) -> tuple[float, float | None, int]:
    """:func:`measure` with every storage call of the controller process counted."""
    counter = Counting(storage_for(parse_location(models)))
    patched = (artifacts, datasets, outputs, train)
    real = [m.storage_for for m in patched]
    for module in patched:
        module.storage_for = lambda loc, _c=counter: _c
    try:
        return measure(cls, data, models, labels, lambda: counter.calls, port, run, workers)
    finally:
        for module, original in zip(patched, real, strict=True):
            module.storage_for = original


if __name__ == "__main__":
    main()

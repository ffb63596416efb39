"""WebHDFS across fork(): what Luigi does with ``--workers`` > 1 (issue 7).

The controller plans over a pooled keep-alive connection, then Luigi forks one process
per running task. Here the parent does the same: it uses a storage (so a NameNode
connection sits in its pool), forks children that start together, and every process,
the parent included, then sends many LISTSTATUS / GETFILESTATUS / OPEN requests and
checks every answer. Before the fix the children shared the parent's socket: answers
went to the wrong process (wrong listings without any error, broken chunked bodies,
"not a Parquet file" for a fine file).
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import select
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipeline.data import datasets
from pipeline.flows.demo import make_demo_frame
from pipeline.storage import storage_for
from pipeline.storage import webhdfs as webhdfs_module
from pipeline.storage.locations import Location, parse_location
from pipeline.storage.webhdfs import WebHdfsStorage, clear_webhdfs_cache, webhdfs_storage
from tests.webhdfs_server import WebHdfsServer

CHILDREN = 4
ROUNDS = 100
CHILD_DEADLINE_S = 120  # far above a healthy run (a few seconds); hung children are killed after it


def _folder(i: int) -> str:
    return f"/fork/dir-{i}"


def _names(i: int) -> list[str]:
    """Listings that differ per process: an answer meant for another process shows."""
    return sorted(f"p{i}-{k}.bin" for k in range(i + 1))


def _content(i: int) -> bytes:
    return (f"file {i}: ".encode() + bytes([i]) * 64) * (i + 1)


@pytest.fixture
def nn() -> Iterator[WebHdfsServer]:
    with WebHdfsServer() as server:
        for i in range(CHILDREN + 1):
            for name in _names(i):
                server.put_file(f"{_folder(i)}/{name}", _content(i))
        yield server


def _where(nn: WebHdfsServer, path: str) -> Location:
    return parse_location(f"webhdfs://127.0.0.1:{nn.port}{path}")


def _rounds(storage: WebHdfsStorage, nn_port: int, i: int, rounds: int) -> dict[str, Any]:
    """``rounds`` x (LISTSTATUS, GETFILESTATUS + ranged OPEN, OPEN); every answer checked."""
    folder = parse_location(f"webhdfs://127.0.0.1:{nn_port}{_folder(i)}")
    first = folder.join(_names(i)[0])
    wrong, errors = 0, []
    for _ in range(rounds):
        for check in (
            lambda: sorted(e.name for e in storage.list_dir(folder) or []) == _names(i),
            lambda: storage.read_tail(first, 20) == _content(i)[-20:],
            lambda: storage.read_bytes(first) == _content(i),
        ):
            try:
                wrong += not check()
            except Exception as exc:  # noqa: BLE001 - every failure is counted and reported by type
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
    return {"wrong": wrong, "errors": errors, "requests": storage.request_count, "pid": os.getpid()}


def _fork_children(count: int, work: Callable[[int], dict[str, Any]]) -> tuple[list[int], list[int]]:
    """Fork ``count`` children; each blocks until all exist, then runs ``work(i)``. Returns
    (pids, pipes to read each child's one JSON report from)."""
    go_read, go_write = os.pipe()
    pids, pipes = [], []
    for i in range(count):
        report_read, report_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            code = 70
            try:
                os.close(go_write)
                os.close(report_read)
                os.read(go_read, 1)  # released together, so their requests overlap
                report = work(i)
                code = 0
            except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
                report = {"crash": f"{type(exc).__name__}: {exc}"}
            finally:
                try:
                    os.write(report_write, json.dumps(report).encode())
                finally:
                    os._exit(code)
        os.close(report_write)
        pids.append(pid)
        pipes.append(report_read)
    os.close(go_read)
    os.write(go_write, b"go" * count)
    os.close(go_write)
    return pids, pipes


def _collect(pids: list[int], pipes: list[int], deadline_s: float = CHILD_DEADLINE_S) -> list[dict[str, Any]]:
    """Every child's report; a child still running after the deadline is killed and reported."""
    deadline = time.monotonic() + deadline_s
    chunks: dict[int, bytes] = {fd: b"" for fd in pipes}
    open_fds = set(pipes)
    while open_fds and time.monotonic() < deadline:
        ready, _, _ = select.select(list(open_fds), [], [], 1.0)
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                chunks[fd] += data
            else:
                open_fds.discard(fd)
    reports = []
    for pid, fd in zip(pids, pipes, strict=True):
        if fd in open_fds:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        try:
            report = json.loads(chunks[fd]) if chunks[fd] else {"crash": "no report"}
        except ValueError:
            report = {"crash": f"unreadable report {chunks[fd][:100]!r}"}
        report["exit"] = os.waitstatus_to_exitcode(status)
        reports.append(report)
    return reports


def _summary(reports: list[dict[str, Any]]) -> str:
    wrong = sum(r.get("wrong", 0) for r in reports)
    errors = [e for r in reports for e in r.get("errors", [])]
    crashes = [r["crash"] for r in reports if "crash" in r]
    return f"{wrong} wrong answers, {len(errors)} errors {errors[:3]}, crashes {crashes}"


def test_children_forked_after_the_parent_used_a_storage_get_only_their_own_answers(nn: WebHdfsServer) -> None:
    storage = WebHdfsStorage([nn.url], user="alice", timeout=2)
    parent_before = _rounds(storage, nn.port, CHILDREN, 1)  # the plan: a NameNode connection is now pooled
    assert parent_before["wrong"] == 0 and not parent_before["errors"]
    requests_before = storage.request_count

    pids, pipes = _fork_children(CHILDREN, lambda i: _rounds(storage, nn.port, i, ROUNDS))
    parent = _rounds(storage, nn.port, CHILDREN, ROUNDS)  # the parent keeps using its pool meanwhile
    children = _collect(pids, pipes)

    assert all(r["exit"] == 0 for r in children), _summary(children)
    assert _summary([*children, parent]) == _summary([]), "every process got exactly its own answers"
    # request counts are per process: a child starts from zero and counts only what it sent
    assert all(r["requests"] == ROUNDS * 6 for r in children)
    assert storage.request_count == requests_before + ROUNDS * 6
    assert nn.request_count == storage.request_count + sum(r["requests"] for r in children)


def _write_dataset(nn: WebHdfsServer, path: str) -> None:
    buf = io.BytesIO()
    pq.write_table(make_demo_frame(rows=200, features=3, labels=2, seed=7), buf)
    nn.put_file(f"{path}/part-00000.parquet", buf.getvalue())
    nn.put_file(f"{path}/_SUCCESS")


def _plan_like_a_task(data: str, models: str, rounds: int) -> dict[str, Any]:
    """What a forked task process does: storage_for() for the same locations, schema and listing."""
    wrong, errors = 0, []
    for _ in range(rounds):
        try:
            wrong += datasets.read_schema(data).columns != ("f000", "f001", "f002", "label_00", "label_01")
            listing = storage_for(parse_location(models)).list_dir(parse_location(models)) or []
            wrong += sorted(e.name for e in listing) != [f"label-{k}" for k in range(3)]
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported by type
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
    storage = storage_for(parse_location(models))
    return {"wrong": wrong, "errors": errors, "requests": storage.request_count, "storage_id": id(storage)}


def _task_process(conn: Any, data: str, models: str, rounds: int) -> None:
    conn.send(_plan_like_a_task(data, models, rounds))
    conn.close()


def test_tasks_forked_by_multiprocessing_after_planning_through_storage_for(nn: WebHdfsServer) -> None:
    """The real path: plan with storage_for() in the parent (cached storage, pooled connection),
    then processes started with multiprocessing's fork method, as Luigi starts its task processes."""
    clear_webhdfs_cache()
    base = f"webhdfs://127.0.0.1:{nn.port}"
    data, models = f"{base}/data/d.parquet", f"{base}/models"
    _write_dataset(nn, "/data/d.parquet")
    for k in range(3):
        nn.put_file(f"/models/label-{k}/_COMPLETE", b"{}")
    plan = _plan_like_a_task(data, models, 1)
    assert plan["wrong"] == 0 and not plan["errors"]
    parent_storage = storage_for(parse_location(models))

    ctx = multiprocessing.get_context("fork")
    pipes, procs = [], []
    for _ in range(CHILDREN):
        here, there = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_task_process, args=(there, data, models, ROUNDS // 2))
        pipes.append(here)
        procs.append(proc)
    for proc in procs:
        proc.start()
    parent = _plan_like_a_task(data, models, ROUNDS // 2)
    reports = []
    for here, proc in zip(pipes, procs, strict=True):
        reports.append(here.recv() if here.poll(CHILD_DEADLINE_S) else {"crash": "no report"})
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    assert _summary([*reports, parent]) == _summary([])
    # each task process built its own storage (the cache is per process) and counted from zero
    assert all(r["storage_id"] != id(parent_storage) for r in reports)
    per_child = reports[0]["requests"]
    assert per_child > 0 and all(r["requests"] == per_child for r in reports)
    assert nn.request_count == parent_storage.request_count + sum(r["requests"] for r in reports)
    clear_webhdfs_cache()


def test_a_storage_is_rebuilt_not_shared_in_a_forked_child(nn: WebHdfsServer) -> None:
    """The session (its pool, cookies and lock) of the parent is never touched in a child,
    and the module's cache of storages starts empty there."""
    clear_webhdfs_cache()
    storage = webhdfs_storage(_where(nn, "/"))
    assert storage.list_dir(_where(nn, "/fork")) is not None
    parent_session = storage._session
    pids, pipes = _fork_children(
        1,
        lambda i: {
            "requests_at_start": storage.request_count,
            "cached_is_new": webhdfs_storage(_where(nn, "/")) is not storage,
            "same_session": storage._session is parent_session,
        },
    )
    (report,) = _collect(pids, pipes)
    assert report["exit"] == 0, report
    assert report == {"requests_at_start": 0, "cached_is_new": True, "same_session": False, "exit": 0}
    assert storage._session is parent_session and storage.request_count == 1
    clear_webhdfs_cache()


def test_the_cache_lock_held_at_fork_time_does_not_block_the_child(nn: WebHdfsServer) -> None:
    """A parent thread inside webhdfs_storage() when Luigi forks leaves the cache's lock
    locked in the child, where no thread will ever release it: the child gets a new lock."""
    clear_webhdfs_cache()
    with webhdfs_module._CACHE_LOCK:
        pids, pipes = _fork_children(
            1, lambda i: {"listing": [e.name for e in webhdfs_storage(_where(nn, "/")).list_dir(_where(nn, "/"))]}
        )
        (report,) = _collect(pids, pipes, deadline_s=10)
    assert report == {"listing": ["fork"], "exit": 0}, "the child hung on the inherited lock (killed) or failed"


def test_a_resource_manager_client_made_before_a_fork_opens_its_own_connection_in_the_child() -> None:
    """The RM client is made in each task process today; should one ever be made before
    Luigi forks, the child must not talk over the parent's pooled keep-alive socket."""
    from pipeline.cluster.yarn_clients import ResourceManagerRest
    from tests.replay import ReplayServer

    app = "application_1795461516199_0005"
    with ReplayServer() as rm:
        rm.route_fixture("GET", f"/ws/v1/cluster/apps/{app}", "yarn/rm-rest-app-SUCCEEDED.json")
        client = ResourceManagerRest(rm.url)
        assert client.application(app).final_status == "SUCCEEDED"  # a pooled connection now
        pids, pipes = _fork_children(1, lambda i: {"status": client.application(app).final_status})
        (report,) = _collect(pids, pipes)
        assert report == {"status": "SUCCEEDED", "exit": 0}, report
        assert client.application(app).final_status == "SUCCEEDED"  # the parent's connection still works
        ports = [r.client[1] for r in rm.requests]
        # parent, child, parent: the child's request came on a connection of its own
        assert len(ports) == 3 and ports[0] == ports[2] != ports[1], ports
        client.close()


_FORKED_AFTER_CHECKS = """
import multiprocessing, sys
import pipeline  # the controller: model libraries' checks go to a helper process
from tasks.engines import get_engine
for name, params in (("lightgbm", {"bagging_fraction": 0.5, "bagging_freq": 1}), ("xgboost", {"max_depth": 3}),
                     ("sklearn:sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 5})):
    engine = get_engine(name)
    engine.check_params(engine.resolve(params), 4)
    engine.learned_kinds()

def train():  # what a forked Luigi task does: run the libraries' threaded code
    import numpy as np, lightgbm, xgboost
    from sklearn.ensemble import HistGradientBoostingClassifier
    x = np.random.default_rng(0).standard_normal((2000, 4)); y = (x[:, 0] > 0).astype(float)
    lightgbm.train({"verbosity": -1, "objective": "binary"}, lightgbm.Dataset(x, y), num_boost_round=3)
    xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(x, label=y), num_boost_round=3)
    HistGradientBoostingClassifier(max_iter=3).fit(x, y)

child = multiprocessing.get_context("fork").Process(target=train)
child.start()
child.join(90)
if child.is_alive():
    child.kill()
    sys.exit(2)
sys.exit(0 if child.exitcode == 0 else 1)
"""


def test_tasks_forked_after_the_controller_checked_engine_parameters_still_train():
    """The controller checks parameters with LightGBM, XGBoost and scikit-learn, then Luigi
    forks its tasks: a child whose parent had started OpenMP's threads hung in its first
    parallel region (exit 2 here), so the checks run in a helper process."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _FORKED_AFTER_CHECKS], capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, ("the forked child hung" if proc.returncode == 2 else proc.stderr[-2000:])

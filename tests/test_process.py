"""JobProcess against real process trees (no Spark: a Python stand-in that forks)."""

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from pipeline.errors import TaskInterrupted
from pipeline.runner.process import JobProcess, stop_signals_raise

TREE = textwrap.dedent("""
    import os, sys, time
    for _ in range(2):
        if os.fork() == 0:
            # ignore SIGTERM like a stubborn JVM would: only SIGKILL ends it
            import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True: time.sleep(1)
    print("tree up", os.getpid(), flush=True)
    while True: time.sleep(1)
""")


def _tree_pids(root_pid):
    root = psutil.Process(root_pid)
    return [root_pid] + [c.pid for c in root.children(recursive=True)]


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_leaving_by_exception_kills_the_whole_tree_including_sigterm_ignorers():
    log = io.StringIO()
    with pytest.raises(RuntimeError), JobProcess([sys.executable, "-c", TREE], dict(os.environ), log, grace_s=1.0) as job:
        assert _wait_for(lambda: "tree up" in log.getvalue())
        assert _wait_for(lambda: len(_tree_pids(job.pid)) == 3)
        pids = _tree_pids(job.pid)
        raise RuntimeError("stop")
    assert _wait_for(lambda: not any(_alive(p) for p in pids), timeout=5), [p for p in pids if _alive(p)]


def test_normal_exit_returns_code_and_streams_lines():
    seen = []
    log = io.StringIO()
    script = "import sys; print('a'); print('FANOUT_EVENT {\"event\": \"x\"}'); sys.exit(3)"
    with JobProcess([sys.executable, "-c", script], dict(os.environ), log, on_line=seen.append) as job:
        rc = job.wait()
    assert rc == 3
    assert [s.strip() for s in seen] == ["a", 'FANOUT_EVENT {"event": "x"}']
    assert list(job.tail) == ["a", 'FANOUT_EVENT {"event": "x"}']


def test_a_process_holding_over_1024_descriptors_still_waits_for_its_job():
    """A notebook kernel may hold many files; select() refuses descriptors past 1024."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"this machine allows {hard} open files, fewer than the test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        with JobProcess([sys.executable, "-c", "import sys; sys.exit(4)"], dict(os.environ), io.StringIO()) as job:
            assert job.wait(deadline=time.monotonic() + 30) == 4
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_deadline_raises_and_kills():
    log = io.StringIO()
    with pytest.raises(TimeoutError), JobProcess([sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ), log) as job:
        pid = job.pid
        job.wait(deadline=time.monotonic() + 0.5)
    assert _wait_for(lambda: not _alive(pid), timeout=5)


def test_sigterm_becomes_task_interrupted_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TaskInterrupted), stop_signals_raise():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is before


def test_job_dies_when_the_supervising_process_is_killed_outright():
    # The supervisor itself is SIGKILLed (no cleanup can run): the parent-death signal
    # set at spawn must still end the job.
    supervisor = textwrap.dedent(f"""
        import io, os, sys, time
        sys.path.insert(0, {os.getcwd()!r})
        from pipeline.runner.process import JobProcess
        with JobProcess([sys.executable, "-c", "import time; time.sleep(120)"], dict(os.environ), io.StringIO()) as job:
            print(job.pid, flush=True)
            time.sleep(120)
    """)
    sup = subprocess.Popen([sys.executable, "-c", supervisor], stdout=subprocess.PIPE, text=True)
    job_pid = int(sup.stdout.readline())
    assert _alive(job_pid)
    sup.kill()
    sup.wait()
    assert _wait_for(lambda: not _alive(job_pid), timeout=5)


def test_die_with_parent_fires_at_once_when_the_expected_parent_is_not_ours():
    # Run in a child: with a wrong expected parent it must signal itself straight away;
    # with the real parent (pid 1 or not) it must live on.
    code = "import os, sys, time; from pipeline.runner.process import die_with_parent; die_with_parent({pid}); time.sleep(0.5); print('alive')"
    real = subprocess.run([sys.executable, "-c", code.format(pid="os.getppid()")], capture_output=True, text=True,
                          cwd=os.getcwd(), timeout=30)
    assert real.returncode == 0 and "alive" in real.stdout
    wrong = subprocess.run([sys.executable, "-c", code.format(pid="os.getppid() + 100000")], capture_output=True,
                           text=True, cwd=os.getcwd(), timeout=30)
    assert wrong.returncode == -signal.SIGTERM


LEAKER = textwrap.dedent("""
    import os, sys, time
    if os.fork() == 0:
        os.setsid()  # leaves the job's process group, keeps its stdout: the pipe stays open
        print("leaked", os.getpid(), flush=True)
        time.sleep(120)
        os._exit(0)
    time.sleep(0.5)
    print("job done", flush=True)
""")


def test_a_leaked_setsid_descendant_holding_the_pipe_does_not_hold_the_job():
    log = io.StringIO()
    leaked = None
    try:
        with JobProcess([sys.executable, "-c", LEAKER], dict(os.environ), log) as job:
            assert _wait_for(lambda: "leaked" in log.getvalue())
            leaked = int(log.getvalue().split("leaked", 1)[1].split()[0])
            rc = job.wait()
        # Left while the descendant still holds the pipe (it sleeps two minutes), with the
        # output read so far and a note naming it in the job's log.
        assert rc == 0
        assert _alive(leaked)
        assert "job done" in log.getvalue()
        assert f"pid {leaked} (python" in log.getvalue()
        assert "still holds its output pipe" in log.getvalue()
    finally:
        if leaked is not None:
            os.kill(leaked, signal.SIGKILL)


def test_output_without_a_final_newline_and_carriage_returns_become_lines():
    seen = []
    script = "import sys; sys.stdout.write('progress 1\\rprogress 2\\r\\nlast'); sys.stdout.flush()"
    with JobProcess([sys.executable, "-c", script], dict(os.environ), io.StringIO(), on_line=seen.append) as job:
        assert job.wait() == 0
    assert seen == ["progress 1\n", "progress 2\n", "last"]
    assert list(job.tail) == ["progress 1", "progress 2", "last"]

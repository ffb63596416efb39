"""What following one YARN job costs the controller, measured in one run.

1. One ResourceManager REST call (GET /ws/v1/cluster/apps/{id}) through our client
   against the replay server serving the recorded answer: wall and CPU per call.
2. One job's life in detached mode (spark.yarn.submit.waitAppCompletion=false): the
   real `follow()` loop with the default back-off, on a simulated clock, against a
   client that answers RUNNING (the recorded report, state changed) until the job ends:
   RM calls per job for jobs of 1 minute, 10 minutes and 1 hour.
3. Controller CPU per job = the measured CPU per call x calls, plus the loop itself.
   The replay server runs in this process, so CPU per call includes serving it: an
   upper bound for the client alone.

Not included: the one spark-submit JVM that submits the job (it exits once YARN has
accepted the job; the recorded cluster run took about 9 s for the submission).

    python bench/yarn_follow.py
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.cluster.yarn import ApplicationReport  # noqa: E402
from pipeline.cluster.yarn_clients import ResourceManagerRest, follow  # noqa: E402
from tests.replay import ReplayServer, fixture_bytes  # noqa: E402

APP = "application_1795461516199_0005"


def rest_call_cost(calls: int = 500) -> tuple[float, float]:
    with ReplayServer() as rm:
        rm.route_fixture("GET", f"/ws/v1/cluster/apps/{APP}", "yarn/rm-rest-app-SUCCEEDED.json")
        client = ResourceManagerRest([rm.url], timeout=5)
        client.application(APP)  # warm the connection
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(calls):
            client.application(APP)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return wall / calls, cpu / calls


class SimulatedJob:
    """Answers like the RM for a job that runs ``duration`` seconds on a fake clock."""

    def __init__(self, duration: float) -> None:
        self.now = 0.0
        self.duration = duration
        self.request_count = 0
        done = ApplicationReport.from_rest(json.loads(fixture_bytes("yarn/rm-rest-app-SUCCEEDED.json"))["app"])
        self.done = done
        self.running = dataclasses.replace(done, state="RUNNING", final_status="UNDEFINED")

    def application(self, app_id: str) -> ApplicationReport:
        self.request_count += 1
        if self.now >= self.duration:
            return self.done
        # progress moves, as it does in real reports: each change resets the back-off
        progress = round(100 * self.now / self.duration / 10) * 10
        return dataclasses.replace(self.running, progress=float(progress))

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def main() -> None:
    per_call_wall, per_call_cpu = rest_call_cost()
    print(f"RM REST call via replay server: {per_call_wall * 1000:.2f} ms wall, {per_call_cpu * 1000:.2f} ms CPU each")
    for minutes in (1, 10, 60):
        job = SimulatedJob(minutes * 60)
        cpu0 = time.process_time()
        follow(job, APP, lambda r: None, clock=lambda j=job: j.now, sleep=job.sleep)
        loop_cpu = time.process_time() - cpu0
        calls = job.request_count + 1  # + the tag lookup before submitting (re-attach check)
        cpu = calls * per_call_cpu + loop_cpu
        print(f"job of {minutes:3d} min: {calls:3d} RM calls over its life, controller CPU {cpu * 1000:.0f} ms "
              f"(vs ~3.5 CPU-s for ONE `yarn application -list`)")


if __name__ == "__main__":
    main()

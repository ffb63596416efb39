"""Python API for notebooks: run a fan-out and get the per-label outcome back.

>>> from pipeline.api import train_all, load_artifact
>>> report = train_all(data="data/demo.parquet", models="models", workers=2)
>>> print(report.table())
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import luigi

from pipeline.data.artifacts import ArtifactTarget, artifact_location, configurations
from pipeline.flows.train import TrainAll
from pipeline.runner import results
from pipeline.storage.locations import parse_location
from tasks.layout import NATIVE_MODEL


@dataclass
class RunReport:
    """What one :func:`train_all` call did: ``ok`` and one row per label."""

    ok: bool
    rows: list[dict[str, Any]]
    luigi_status: str

    def table(self) -> str:
        return results.format_table(self.rows)

    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] not in ("trained", "done earlier")]

    def to_pandas(self):  # noqa: ANN201 - pandas is optional for callers
        import pandas as pd

        return pd.DataFrame(self.rows)


def train_all(data: str = "data/demo.parquet", models: str = "models", labels: list[str] | None = None, *,
              workers: int = 2, scheduler_host: str | None = None, scheduler_port: int = 8082,
              **training: Any) -> RunReport:
    """Train every missing label's model (as ``luigi --module pipeline TrainAll``).

    ``workers`` caps concurrent jobs; ``scheduler_host`` uses a running ``luigid`` (its web
    UI shows progress) instead of an in-process scheduler. ``training`` takes TrainAll's
    other parameters: engine, params, features, balance_ratio, test_fraction, seed, log_dir.
    """
    task = TrainAll(data=data, models=models, labels=labels, run_id=f"api-{uuid.uuid4().hex[:12]}", **training)
    kwargs: dict[str, Any] = {"workers": workers, "detailed_summary": True}
    if scheduler_host:
        kwargs.update(scheduler_host=scheduler_host, scheduler_port=scheduler_port)
    else:
        kwargs["local_scheduler"] = True
    outcome = luigi.build([task], **kwargs)
    return RunReport(ok=outcome.scheduling_succeeded and task.complete(), rows=task.summary_rows(),
                     luigi_status=outcome.status.name)


def load_artifact(models: str, label: str, config: str | None = None) -> dict[str, Any]:
    """A finished artifact: its metadata, configuration, location and, for LightGBM
    engines, the ``lightgbm.Booster``. ``config`` names the configuration folder
    (``lightgbm-1a2b3c4d``); it may be left out when ``models`` holds only one.
    Raises FileNotFoundError if the artifact is not complete."""
    root = parse_location(models)
    if config is None:
        found = configurations(root)
        if len(found) != 1:
            listed = ", ".join(found) if found else "none"
            raise FileNotFoundError(f"{models} holds {len(found)} configurations ({listed}): pass config=<one of them>"
                                    if found else f"no trained configuration under {models}: train first")
        config = found[0]
    target = ArtifactTarget(artifact_location(root.join(config), label))
    if not target.exists():
        raise FileNotFoundError(f"no complete artifact for label {label!r} under {models}/{config}: train it first")
    meta = target.metadata()
    out: dict[str, Any] = {"metadata": meta, "config": config, "location": target.path, "booster": None}
    model_txt = target.location.join(NATIVE_MODEL)
    if target.storage.exists(model_txt):
        import lightgbm

        out["booster"] = lightgbm.Booster(model_str=target.storage.read_bytes(model_txt).decode("utf-8"))
    return out

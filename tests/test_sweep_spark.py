"""FeatureSweep end to end with real spark-submit (local[1], at most 2 workers)."""

from __future__ import annotations

import json
import os
import re

import lightgbm
import pyarrow.parquet as pq
import pytest

from pipeline.data.labels import label_slug
from pipeline.flows.demo import make_demo_frame
from tests.spark_helpers import run_luigi

pytestmark = pytest.mark.spark

LABELS = ["label_01"]  # one label keeps it to 3 jobs (N=5 is the baseline itself); the code has no per-label special case


def test_sweep_gives_three_real_points_per_label_on_the_gain_ranking(tmp_path):
    data = tmp_path / "sweep.parquet"
    pq.write_table(make_demo_frame(rows=2000, features=5, labels=2, seed=5), data)
    proc = run_luigi(["FeatureSweep", "--sizes", "[1, 3, 5]", "--tolerance", "0.01", "--workers", "2", "--local-scheduler",
                      "--data", str(data), "--models", "models", "--labels", json.dumps(LABELS),
                      "--console-log", "luigi"], cwd=tmp_path, timeout=560)  # luigi: each job's spark-submit argv
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    # TrainAll's plan: the baseline alone on every core, then the two (label, N) jobs at once on half each
    masters = [re.search(r" --master (\S+)", line).group(1) for line in out.splitlines() if ": running " in line]
    cores = os.cpu_count() or 1
    assert masters == [f"local[{cores}]"] + [f"local[{max(1, cores // 2)}]"] * 2, masters
    models = tmp_path / "models"
    report = json.loads((models / "feature_sweep.json").read_text())
    rows = report["rows"]
    features = [f"f{j:03d}" for j in range(5)]
    # N=5 (every feature, LightGBM defaults) is the baseline itself: 3 configurations, not 4
    assert len([p for p in models.iterdir() if p.name.startswith("lightgbm-")]) == 3
    for label in LABELS:
        # the baseline: every feature, LightGBM defaults; its gain importance ranks the features
        [baseline] = [p for p in models.glob(f"lightgbm-*/{label_slug(label)}")
                      if json.loads((p / "metadata.json").read_text())["features"] == features]
        booster = lightgbm.Booster(model_str=(baseline / "model.txt").read_text())
        gains = booster.feature_importance(importance_type="gain")
        ranked = [features[i] for i in sorted(range(5), key=lambda i: (-gains[i], i))]
        mine = sorted((r for r in rows if r["label"] == label), key=lambda r: r["n"])
        assert [r["n"] for r in mine] == [1, 3, 5]
        for r in mine:
            meta = json.loads((models / r["config"] / label_slug(label) / "metadata.json").read_text())
            assert meta["features"] == [f for f in features if f in ranked[: r["n"]]]  # top N, in the data's order
            assert r["value"] == meta["metrics"]["auc_roc"] and 0.5 < r["value"] <= 1
        best = max(r["value"] for r in mine)
        chosen = [r["n"] for r in mine if r["chosen"]]
        assert chosen == [min(r["n"] for r in mine if r["value"] >= best - 0.01)]
    assert (models / "feature_sweep.csv").read_text().count("\n") == 1 + 3 * len(LABELS)
    # the notebook API gives the same curve as a DataFrame (nothing left to train)
    from pipeline.api import sweep

    curve = sweep([1, 3, 5], data=str(data), models=str(models), labels=LABELS, tolerance=0.01, workers=1,
                  log_dir=str(tmp_path / "logs"))
    assert curve.attrs["ok"] and len(curve) == 3 * len(LABELS)
    assert sorted(curve["value"]) == sorted(r["value"] for r in rows) and curve["chosen"].sum() == len(LABELS)

"""Baseline: the floor — training without Spark at all. pyarrow reads the Parquet once;
each label: 20 % of the rows held out (seeded), the training rows downsampled 1:1,
LightGBM with its defaults (100 rounds, one thread), AUC on the held-out rows, the model
saved. Fits run ``parallel`` at a time on threads (LightGBM releases the GIL): what a
data scientist's own script on one machine would do, with no fan-out tool around it.

    python floor.py <data> <out> <label,label,...> [parallel]
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import lightgbm as lgb
import numpy as np
import pyarrow.parquet as pq
from sklearn.metrics import roc_auc_score


def fit(frame: dict, features: list[str], label: str, valid: np.ndarray, out: str) -> float:
    y = frame[label]
    train = ~valid
    pos, neg = np.flatnonzero(train & (y == 1)), np.flatnonzero(train & (y == 0))
    rng = np.random.default_rng(42)
    small, big = (pos, neg) if len(pos) <= len(neg) else (neg, pos)
    keep = np.concatenate([small, rng.choice(big, size=len(small), replace=False)])
    x = np.column_stack([frame[f] for f in features])
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1, "seed": 42},
                        lgb.Dataset(x[keep], label=y[keep]), num_boost_round=100)
    auc = roc_auc_score(y[valid], booster.predict(x[valid]))
    booster.save_model(os.path.join(out, f"{label}.txt"))
    return auc


def main(data: str, out: str, labels: list[str], parallel: int) -> None:
    table = pq.read_table(data)
    frame = {name: table.column(name).to_numpy() for name in table.column_names}
    features = [c for c in table.column_names if not c.startswith("label_")]
    valid = np.random.default_rng(42).random(table.num_rows) < 0.2
    os.makedirs(out, exist_ok=True)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for label, auc in zip(labels, pool.map(lambda lb: fit(frame, features, lb, valid, out), labels), strict=True):
            print(f"{label} auc={auc:.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3].split(","), int(sys.argv[4]) if len(sys.argv) > 4 else 2)

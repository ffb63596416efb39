"""A user's engine: score a row by how much nearer it lies to the positives' mean than to
the negatives' (features scaled by their spread). Small on purpose: it shows what an
engine record must say, and nothing it needs comes from spark-fanout but the base class."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tasks.engines import DRIVER, DriverRows, Engine, Param

MODEL_FILE = "centroid.json"


class CentroidEngine(Engine):
    name = "centroid"
    description = "distance to each class's mean, on the job's driver (a test package's engine)"
    trains_on = DRIVER
    model_files = (MODEL_FILE,)
    requires = (("numpy", "pip install numpy"),)
    defaults = {"temperature": Param(float, 1.0, 1e-6, None)}

    def versions(self) -> dict[str, str]:
        return {"fanout-centroid-engine": "0.1.0"}

    def fit(self, rows: DriverRows) -> tuple[Any, dict[str, Any]]:
        import numpy as np

        x = rows.x.to_numpy(dtype="float64")
        y = np.asarray(rows.y)
        w = np.ones(len(y)) if rows.weights is None else np.asarray(rows.weights)
        model = {"mean0": np.average(x[y == 0], axis=0, weights=w[y == 0]).tolist(),
                 "mean1": np.average(x[y == 1], axis=0, weights=w[y == 1]).tolist(),
                 "scale": (x.std(axis=0) + 1e-9).tolist(),
                 "temperature": float(rows.params["temperature"])}
        return model, {"rows_fitted": int(len(y))}

    def save(self, model: Any) -> dict[str, bytes]:
        return {MODEL_FILE: json.dumps(model).encode("utf-8")}

    def load(self, files: Mapping[str, bytes]) -> Any:
        return json.loads(files[MODEL_FILE].decode("utf-8"))

    def predict(self, model: Any, x: Any) -> Any:
        import numpy as np

        x = np.asarray(x, dtype="float64")
        scale = np.asarray(model["scale"])
        d0 = (((x - np.asarray(model["mean0"])) / scale) ** 2).sum(axis=1)
        d1 = (((x - np.asarray(model["mean1"])) / scale) ** 2).sum(axis=1)
        return 1.0 / (1.0 + np.exp((d1 - d0) / (model["temperature"] * x.shape[1])))


ENGINE = CentroidEngine()

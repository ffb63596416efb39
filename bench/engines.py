"""Every engine side by side on the demo data: AUC and seconds per label, each engine's
labels trained as one batch (one spark-submit).

    python bench/engines.py [--rows 20000] [--features 20] [--labels 4] [--engines lightgbm,xgboost]

The demo data of ``MakeDemoData`` (default size), then one ``TrainAll --batch-size <labels>
--workers 1`` per engine with its default parameters, in Spark local mode
(``[spark] master``: the package default, local[1]). Per engine: the AUC of each label on
its held-out rows, the median training seconds per label (the library's fit, from
metadata.json), the job's seconds per label (reading, balancing, training, evaluating and
writing, from metadata.json) and the wall seconds of the whole run (controller, JVM start,
job). synapseml needs its jar from Maven and is left out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.flows.demo import make_demo_frame  # noqa: E402

ENGINES = ("lightgbm", "xgboost", "sklearn:sklearn.ensemble.HistGradientBoostingClassifier",
           "sklearn:sklearn.linear_model.LogisticRegression", "mllib-logreg", "mllib-gbt", "mllib-mlp")


def run_engine(engine: str, data: Path, labels: list[str], work: Path) -> dict[str, object]:
    """Train ``labels`` with ``engine`` in one batch under ``work`` (a folder of its own)."""
    work.mkdir()  # a models root per engine: its metadata files are this engine's alone
    luigi = os.path.join(os.path.dirname(sys.executable), "luigi")
    argv = [luigi, "--module", "pipeline", "TrainAll", "--local-scheduler", "--workers", "1", "--data", str(data),
            "--models", str(work / "models"), "--log-dir", str(work / "logs"), "--labels", json.dumps(labels),
            "--engine", engine, "--batch-size", str(len(labels))]
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(REPO / "luigi.cfg"))
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{engine} failed with exit code {proc.returncode}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    metas = [json.loads(p.read_text()) for p in (work / "models").glob("*/*/metadata.json")]
    by_label = {m["label"]: m for m in metas}
    return {"engine": engine, "wall": wall, "auc": {la: by_label[la]["metrics"]["auc_roc"] for la in labels},
            "fit_s": statistics.median(m["training_seconds"] for m in metas),
            "job_s": statistics.median(m["job_seconds"] for m in metas),
            "positives": {la: by_label[la]["metrics"]["positives_validation"] for la in labels}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--labels", type=int, default=4)
    parser.add_argument("--engines", default=",".join(ENGINES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        work = Path(tmp)
        data = work / "demo.parquet"
        pq.write_table(make_demo_frame(rows=args.rows, features=args.features, labels=args.labels, seed=7), data)
        labels = [f"label_{k:02d}" for k in range(args.labels)]
        results = [run_engine(engine, data, labels, work / f"engine-{k}") for k, engine in enumerate(args.engines.split(","))]
    print(f"demo data: {args.rows} rows, {args.features} features, {args.labels} labels; one batch per engine, local[1]")
    print("| engine | " + " | ".join(f"AUC {la}" for la in labels) + " | fit s/label | job s/label | run s |")
    print("|---|" + "---|" * (len(labels) + 3))
    for r in results:
        aucs = " | ".join(f"{r['auc'][la]:.4f}" for la in labels)
        print(f"| {r['engine']} | {aucs} | {r['fit_s']:.2f} | {r['job_s']:.2f} | {r['wall']:.1f} |")
    print("validation positives per label:", results[0]["positives"])


if __name__ == "__main__":
    main()

"""Which models Predict uses: the leaderboard's best per label, or one configuration."""

from __future__ import annotations

import json

import pytest

from pipeline.data.labels import label_slug
from pipeline.errors import ConfigError
from pipeline.flows.predict import choose_models
from pipeline.storage.locations import parse_location


def test_leaderboard_best_per_label_is_chosen(tmp_path):
    rows = [{"label": "a", "rank": 2, "config": "lightgbm-11111111"}, {"label": "a", "rank": 1, "config": "lightgbm-22222222"},
            {"label": "a", "rank": 3, "config": "lightgbm-44444444"}, {"label": "b", "rank": 1, "config": "mllib-logreg-33333333"}]
    (tmp_path / "leaderboard.json").write_text(json.dumps({"search": {}, "rows": rows}))
    chosen = choose_models(parse_location(str(tmp_path)), None, None)
    assert [(c["label"], c["config"]) for c in chosen] == [("a", "lightgbm-22222222"), ("b", "mllib-logreg-33333333")]
    assert chosen[0]["artifact"].path == str(tmp_path / "lightgbm-22222222" / label_slug("a"))
    assert [c["label"] for c in choose_models(parse_location(str(tmp_path)), None, ["b"])] == ["b"]
    with pytest.raises(ConfigError, match="label 'zz' has no chosen model"):
        choose_models(parse_location(str(tmp_path)), None, ["zz"])


def test_no_leaderboard_and_no_config_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="run TuneAll first, or pass --config"):
        choose_models(parse_location(str(tmp_path)), None, None)
    with pytest.raises(ConfigError, match="has no complete artifact"):
        choose_models(parse_location(str(tmp_path)), "lightgbm-00000000", None)

"""FeatureSweep's pure parts: gain ranking, the smallest good N, ranking files."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.flows.sweep import parse_ranking, smallest_within, top_features_by_gain


def test_gain_ranking_is_largest_first_ties_in_data_order():
    assert top_features_by_gain(["a", "b", "c", "d"], [1.0, 5.0, 1.0, 0.0]) == ["b", "a", "c", "d"]


def test_smallest_n_within_tolerance_of_the_best():
    points = {2: 0.80, 5: 0.845, 10: 0.85, 20: 0.849}
    assert smallest_within(points, 0.005, True) == (5, 0.85)
    assert smallest_within(points, 0.0, True) == (10, 0.85)
    assert smallest_within({2: 0.30, 5: 0.21, 10: 0.2}, 0.02, False) == (5, 0.2)  # a loss: lower wins
    assert smallest_within({2: None}, 0.1, True) is None


def test_ranking_files_are_checked():
    assert parse_ranking(["b", "a", "b"], ["y"], ["a", "b"], "r.json") == {"y": ["b", "a"]}
    with pytest.raises(ConfigError, match="feature 'zz' .* is not a feature"):
        parse_ranking({"y": ["zz"]}, ["y"], ["a"], "r.json")
    with pytest.raises(ConfigError, match="no ranked feature list for label 'y2'"):
        parse_ranking({"y": ["a"]}, ["y", "y2"], ["a"], "r.json")

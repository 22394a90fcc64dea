"""The drift check's arithmetic (lake_platform/ml/drift.py) on data whose shift is known: the population
stability index of shares, the training window's reference (train.reference) and a report of scored flights."""

import math

import numpy as np
import pandas as pd
import pytest

from lake_platform.ml import drift, train


def test_psi_of_equal_shares_is_zero_and_of_a_known_shift_is_the_formula():
    assert drift.psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0
    expected = 0.4 * math.log(0.9 / 0.5) + (-0.4) * math.log(0.1 / 0.5)
    assert drift.psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(expected)  # 0.879
    # An empty bin counts as rare (EPSILON), not impossible: finite, and large.
    assert 0.2 < drift.psi([0.5, 0.5], [1.0, 0.0]) < math.inf
    with pytest.raises(ValueError, match="not the same bins"):
        drift.psi([0.5, 0.5], [1.0])


def flights(n: int, seed: int, temp_shift: float = 0.0, carriers=("UA", "AA", "DL", "B6")) -> pd.DataFrame:
    """Prepared features (train.prepare's columns) drawn from one fixed distribution, optionally shifted."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.normal(50, 10, n) for c in train.NUMERIC})
    frame["temp"] = rng.normal(40 + temp_shift, 8, n)
    frame.loc[rng.random(n) < 0.05, "wind_speed"] = np.nan
    for c in train.CATEGORICAL:
        frame[c] = rng.choice(["a", "b", "c"], n)
    frame["carrier"] = rng.choice(list(carriers), n)
    return train.prepare(frame)


@pytest.fixture(scope="module")
def reference():
    features = flights(20_000, seed=1)
    probability = np.random.default_rng(2).beta(2, 5, len(features))
    return train.reference(features, probability)


def test_the_reference_holds_deciles_categories_and_shares_summing_to_one(reference):
    assert set(reference["numeric"]) == set(train.NUMERIC) and set(reference["categorical"]) == set(train.CATEGORICAL)
    temp = reference["numeric"]["temp"]
    assert len(temp["edges"]) == 9 and len(temp["shares"]) == 11  # 10 bins + missing
    assert temp["shares"][:10] == pytest.approx([0.1] * 10, abs=0.001) and temp["shares"][10] == 0
    assert reference["numeric"]["wind_speed"]["shares"][10] == pytest.approx(0.05, abs=0.01)
    assert sorted(reference["categorical"]["carrier"]["categories"]) == ["AA", "B6", "DL", "UA"]
    for part in [*reference["numeric"].values(), *reference["categorical"].values(), reference["probability"]]:
        assert sum(part["shares"]) == pytest.approx(1)


def test_same_distribution_is_stable_and_a_shift_is_flagged_by_name(reference):
    same = drift.report(reference, flights(5_000, seed=3), np.random.default_rng(4).beta(2, 5, 5_000))
    assert max(same.psi.values()) < 0.02 and not same.drifted
    assert set(same.psi) == {*train.FEATURES, "probability_late"} - set(drift.CALENDAR)

    warmer = flights(5_000, seed=5, temp_shift=10, carriers=("UA", "AA", "WN"))  # a new carrier, a warmer month
    later = np.random.default_rng(6).beta(3, 4, 5_000)  # more flights predicted late
    shifted = drift.report(reference, warmer, later)
    assert set(shifted.drifted) == {"temp", "carrier", "probability_late"}, shifted.psi
    assert shifted.psi["temp"] > 1 and shifted.psi["distance"] < 0.02
    assert "consider retraining" in shifted.summary() and "temp" in shifted.summary()
    assert shifted.mean_probability == pytest.approx(3 / 7, abs=0.01)


def test_a_surge_of_missing_values_is_drift():
    features = flights(10_000, seed=7)
    reference = train.reference(features, np.full(len(features), 0.2))
    gappy = flights(10_000, seed=8)
    gappy.loc[gappy.index[:3_000], "wind_speed"] = np.nan  # 5 % missing in training, 30 % now
    assert drift.report(reference, gappy, np.full(len(gappy), 0.2)).drifted.keys() == {"wind_speed"}


def test_nothing_scored_is_no_drift(reference):
    empty = drift.report(reference, flights(0, seed=9), np.array([]))
    assert empty.psi == {} and empty.summary().startswith("nothing scored")

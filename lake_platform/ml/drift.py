"""Drift of the scored days from the model's training window: the population stability index (PSI).

For each feature, the scored flights are binned as the training window was (train.py `reference`, stored with
the model's metrics: deciles of each numeric feature, the 20 most frequent categories, a bin for any other
value and one for missing values), and

    PSI = sum over bins of (actual share - expected share) * ln(actual share / expected share)

with shares floored at EPSILON so that an empty bin counts as rare, not impossible. The usual reading: below
0.1 stable, 0.1-0.2 a moderate shift, above 0.2 (WARN_ABOVE) a shift worth a retrain. The model's probabilities
are compared the same way (the prediction rate), and their mean beside the training window's.

The calendar features (month, day of week) are left out: the scored days are a few days of the calendar by
construction, so their shares always differ from a training window's (one day scored is one day of the week):
that is the schedule, not a change in the population.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

WARN_ABOVE = 0.2
EPSILON = 1e-4
CALENDAR = ("month", "day_of_week")


def psi(expected: list[float], actual: list[float]) -> float:
    """The population stability index of two share vectors over the same bins."""
    if len(expected) != len(actual):
        raise ValueError(f"{len(expected)} expected shares against {len(actual)} actual ones: not the same bins")
    total = 0.0
    for e, a in zip(expected, actual):
        e, a = max(e, EPSILON), max(a, EPSILON)
        total += (a - e) * math.log(a / e)
    return total


@dataclass
class DriftReport:
    rows: int
    psi: dict[str, float] = field(default_factory=dict)  # feature -> PSI, and "probability_late"
    mean_probability: float | None = None
    training_mean_probability: float | None = None

    @property
    def drifted(self) -> dict[str, float]:
        """The features (and the probability) whose PSI is above WARN_ABOVE, largest first."""
        over = {k: v for k, v in self.psi.items() if v > WARN_ABOVE}
        return dict(sorted(over.items(), key=lambda kv: -kv[1]))

    def summary(self) -> str:
        if not self.psi:
            return "nothing scored: no drift to measure"
        worst = max(self.psi, key=self.psi.get)
        head = (
            f"{len(self.drifted)} of {len(self.psi)} PSI above {WARN_ABOVE}"
            + (f" ({', '.join(f'{k} {v:.3f}' for k, v in self.drifted.items())}): consider retraining"
               if self.drifted else f" (largest: {worst} {self.psi[worst]:.3f})")
        )
        return (
            f"{head}; mean probability late {self.mean_probability:.3f} on {self.rows:,} scored flights vs "
            f"{self.training_mean_probability:.3f} on the training window"
        )


def report(reference: dict, features: pd.DataFrame, probability: np.ndarray) -> DriftReport:
    """The scored flights' drift from `reference` (train.reference): `features` as train.prepare gives them."""
    from lake_platform.ml.train import bin_shares, category_shares

    out = DriftReport(
        rows=len(features),
        mean_probability=float(np.mean(probability)) if len(probability) else None,
        training_mean_probability=reference.get("mean_probability"),
    )
    if not len(features):
        return out
    for column, ref in reference["numeric"].items():
        if column in CALENDAR:
            continue
        out.psi[column] = psi(ref["shares"], bin_shares(features[column].to_numpy(dtype="float64"), ref["edges"]))
    for column, ref in reference["categorical"].items():
        out.psi[column] = psi(ref["shares"], category_shares(features[column], ref["categories"]))
    ref = reference["probability"]
    out.psi["probability_late"] = psi(ref["shares"], bin_shares(np.asarray(probability, dtype="float64"), ref["edges"]))
    return out

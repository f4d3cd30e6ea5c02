"""Are the drift tests right? Simulate many windows and count the alarms.

Two questions, each answered by simulation with the real model and the real tests:

* **False alarms**: windows drawn from the same population as the reference must rarely
  be flagged (at most ``ALPHA`` of the time). The reference is itself a sample, so each
  simulated window is compared with a reference *drawn afresh from the same population*
  (the penguins, resampled, with a little noise so that values are not copied); the
  model's own profile, with windows resampled from its training rows, is shown too.
* **Detection**: windows where one numeric column is shifted by one standard deviation
  must nearly always be flagged, and the other columns should stay quiet.
"""

from dataclasses import dataclass

import numpy as np

from apps import data, training
from apps.monitoring import drift
from apps.registry import LoadedModel
from apps.registry.profile import build_profile

JITTER = 0.1
"""Noise added to numbers, in standard deviations: resampled values are not copies."""


@dataclass
class Rates:
    """Out of ``windows`` windows: the share with any alarm, with one on ``column``, and
    with one on another input column."""

    windows: int
    any_alarm: float
    column: str | None = None
    on_column: float = 0.0
    on_others: float = 0.0


class Population:
    """The penguins with a known target, as columns, sampled with replacement."""

    def __init__(self, model: LoadedModel, seed: int = 0):
        self.model, self.rng = model, np.random.default_rng(seed)
        spec = training.SPECS[model.name]
        frame = data.load_data().dropna(subset=[spec.target])
        self.columns = [c.to_dict() for c in spec.features]
        self.frame = frame[[c["name"] for c in self.columns]]
        self.train, _, _, _ = training.split(data.load_data(), spec)

    def draw(self, rows: int, source=None, jitter: float = JITTER) -> dict[str, np.ndarray]:
        """``rows`` rows drawn with replacement from ``source`` (default: every penguin)."""
        source = self.frame if source is None else source
        picked = source.iloc[self.rng.integers(0, len(source), rows)]
        columns = {}
        for column in self.columns:
            values = picked[column["name"]].to_numpy()
            if column["type"] == "number":
                values = values.astype(float)
                noise = self.rng.normal(0, jitter * np.nanstd(values), rows) if jitter else 0
                values = np.clip(values + noise, column["minimum"], column["maximum"])
            else:
                values = np.array([None if v != v else v for v in values], dtype=object)
            columns[column["name"]] = values
        return columns

    def predictions(self, columns: dict[str, np.ndarray]) -> list:
        """The model's answers for some rows, as the log stores them."""
        outputs = self.model.answer(columns).outputs.tolist()
        return [str(o) for o in outputs] if self.model.manifest.classes else outputs

    def profile(self, rows: int, held_out: int) -> dict:
        """A reference profile of a fresh sample, as training would make it."""
        reference, held = self.draw(rows), self.draw(held_out)
        return build_profile(
            reference, self.columns, self.predictions(held), self.model.manifest.classes
        )


def _plain(values: np.ndarray) -> list:
    return [None if v is None or v != v else v for v in values.tolist()]


def simulate(
    model: LoadedModel,
    profile: dict | None = None,
    windows: int = 500,
    rows: int = 200,
    shift: str | None = None,
    seed: int = 0,
) -> Rates:
    """Alarm rates over ``windows`` windows of ``rows`` rows.

    With ``profile`` (the model's own), windows are resampled from its training rows;
    without, each window gets a fresh reference from the population (see the module's
    docstring). ``shift`` names a numeric column moved up by one reference standard
    deviation in every window.
    """
    population = Population(model, seed)
    train_rows = profile["rows"] if profile else len(population.train)
    held_out = sum(profile["prediction"].get("counts", {}).values()) if profile else 86
    alarms = on_column = on_others = 0
    for _ in range(windows):
        reference = profile or population.profile(train_rows, held_out)
        if profile:
            window = population.draw(rows, population.train, jitter=0)
        else:
            window = population.draw(rows)
        if shift:
            column = next(c for c in population.columns if c["name"] == shift)
            moved = window[shift] + reference["columns"][shift]["std"]
            window[shift] = np.minimum(moved, column["maximum"])
        tests = drift.compare(
            reference,
            {name: _plain(values) for name, values in window.items()},
            population.predictions(window),
        )
        flagged = {t.column for t in tests if t.drift}
        alarms += bool(flagged)
        on_column += shift in flagged
        on_others += bool(flagged - {shift, "prediction"})
    return Rates(windows, alarms / windows, shift, on_column / windows, on_others / windows)

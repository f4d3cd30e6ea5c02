"""Are the drift tests right? 500 simulated windows with the real model and the real tests.

* No drift: at most 5% of windows raise an alarm (the tests' promise, ``ALPHA``), both
  against the model's own profile (windows resampled from its training rows) and
  against a fresh reference drawn from the same population (the fair check: the
  reference is a sample too).
* A one-standard-deviation shift of one numeric column: detected in at least 95% of the
  windows, while the other input columns stay quiet (alarms in at most 10% of windows).

The figures are printed (``pytest -s`` shows them).
"""

import pytest

from apps.monitoring import calibration, drift
from apps.monitoring.db import connect
from apps.monitoring.reference import reference_profile
from apps.registry import ModelRegistry

pytestmark = pytest.mark.slow

CASES = [("species-classifier", "body_mass_g"), ("body-mass-regressor", "flipper_length_mm")]


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    """Each model's reference profile (computed, since v1 was trained without one)."""
    engine = connect(tmp_path_factory.mktemp("profiles") / "monitoring.db")
    registry = ModelRegistry()
    return {name: reference_profile(registry, engine, name, 1) for name, _ in CASES}


@pytest.mark.parametrize(("name", "column"), CASES)
def test_false_alarms_and_detection_meet_the_targets(name, column, profiles):
    model = ModelRegistry().load(name, backend="onnx")
    own = calibration.simulate(model, profiles[name], windows=500)
    fresh = calibration.simulate(model, windows=500, seed=1)
    shifted = calibration.simulate(model, windows=500, shift=column, seed=2)
    print(
        f"\n{name}, 500 windows of 200 rows: false alarms {own.any_alarm:.1%} (own profile), "
        f"{fresh.any_alarm:.1%} (fresh reference); a one-SD shift of {column} detected in "
        f"{shifted.on_column:.1%} of windows, other inputs flagged in {shifted.on_others:.1%}"
    )
    assert own.any_alarm <= drift.ALPHA
    assert fresh.any_alarm <= drift.ALPHA
    assert shifted.on_column >= 0.95
    assert shifted.on_others <= 0.10

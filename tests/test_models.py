"""The models themselves: backend parity, format parity, behaviour, reproducibility."""

import numpy as np
import pytest

from apps import training
from apps.registry import ModelRegistry

from .conftest import MODEL_NAMES, as_records


def _columns(model, penguins):
    return model.schema.to_columns(as_records(penguins, model.schema.names))


def test_onnx_matches_scikit_learn_on_the_whole_data_set(registry, penguins):
    classifier = registry.load("species-classifier")
    classifier_onnx = registry.load("species-classifier", backend="onnx")
    columns = _columns(classifier, penguins)
    assert len(columns["island"]) == 344
    labels = classifier.predict(columns)
    assert labels.tolist() == classifier_onnx.predict(columns).tolist()
    np.testing.assert_allclose(
        classifier_onnx.predict_proba(columns), classifier.predict_proba(columns), rtol=0, atol=1e-4
    )

    regressor = registry.load("body-mass-regressor")
    regressor_onnx = registry.load("body-mass-regressor", backend="onnx")
    columns = _columns(regressor, penguins)
    np.testing.assert_allclose(
        regressor_onnx.predict(columns), regressor.predict(columns), rtol=1e-4, atol=0
    )


def test_rows_with_missing_values_agree_too(registry, penguins):
    incomplete = penguins[penguins.isna().any(axis=1)]
    assert len(incomplete) >= 10
    for name in MODEL_NAMES:
        sk, onnx = registry.load(name), registry.load(name, backend="onnx")
        columns = _columns(sk, incomplete)
        if sk.manifest.task == "classification":
            assert sk.predict(columns).tolist() == onnx.predict(columns).tolist()
        else:
            np.testing.assert_allclose(onnx.predict(columns), sk.predict(columns), rtol=1e-4)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_joblib_and_skops_files_hold_the_same_model(registry, penguins, name):
    skops_model = registry.load(name, fmt="skops")
    joblib_model = registry.load(name, fmt="joblib")
    columns = _columns(skops_model, penguins)
    np.testing.assert_array_equal(skops_model.predict(columns), joblib_model.predict(columns))


def test_typical_birds_get_their_species(registry):
    model = registry.load("species-classifier", backend="onnx")
    birds = [
        {
            "island": "Torgersen",
            "sex": "male",
            "bill_length_mm": 39.1,
            "bill_depth_mm": 18.7,
            "flipper_length_mm": 181,
            "body_mass_g": 3750,
        },
        {
            "island": "Dream",
            "sex": "female",
            "bill_length_mm": 46.5,
            "bill_depth_mm": 17.9,
            "flipper_length_mm": 192,
            "body_mass_g": 3500,
        },
        {
            "island": "Biscoe",
            "sex": "female",
            "bill_length_mm": 46.1,
            "bill_depth_mm": 13.2,
            "flipper_length_mm": 211,
            "body_mass_g": 4500,
        },
    ]
    assert model.predict_records(birds).tolist() == ["Adelie", "Chinstrap", "Gentoo"]


def test_species_is_invariant_to_sex_for_a_clear_case(registry):
    model = registry.load("species-classifier")
    gentoo = {
        "island": "Biscoe",
        "bill_length_mm": 47.5,
        "bill_depth_mm": 14.5,
        "flipper_length_mm": 215,
        "body_mass_g": 5000,
    }
    answers = {
        s: model.predict_records([{**gentoo, "sex": s}])[0] for s in ("female", "male", None)
    }
    assert set(answers.values()) == {"Gentoo"}


def test_longer_flippers_mean_heavier_birds(registry):
    model = registry.load("body-mass-regressor")
    base = {
        "species": "Adelie",
        "island": "Dream",
        "sex": "male",
        "bill_length_mm": 39.0,
        "bill_depth_mm": 18.5,
    }
    masses = model.predict_records([{**base, "flipper_length_mm": f} for f in (180, 195, 210)])
    assert masses[0] < masses[1] < masses[2]
    male, female = model.predict_records(
        [{**base, "flipper_length_mm": 190}, {**base, "sex": "female", "flipper_length_mm": 190}]
    )
    assert male > female


def test_retraining_reproduces_the_committed_models(registry, tmp_path, penguins):
    """Same data, seed and versions give the same model, up to floating-point rounding.

    Not byte for byte: BLAS kernels may round differently with the memory alignment of
    the arrays, which changes from one process to the next in the last bits.
    """
    fresh = ModelRegistry(tmp_path)
    for name in MODEL_NAMES:
        manifest = training.train_and_register(fresh, name, 1)
        committed = registry.manifest(name)
        assert manifest.data["training_data"] == committed.data["training_data"]
        assert manifest.data["metrics"]["test"] == pytest.approx(
            committed.data["metrics"]["test"], rel=1e-5, abs=1e-6
        )
        new, old = fresh.load(name), registry.load(name)
        columns = _columns(old, penguins)
        if old.manifest.task == "classification":
            assert new.predict(columns).tolist() == old.predict(columns).tolist()
            np.testing.assert_allclose(
                new.predict_proba(columns), old.predict_proba(columns), rtol=0, atol=1e-9
            )
        else:
            np.testing.assert_allclose(new.predict(columns), old.predict(columns), rtol=1e-9)

"""Train the course's two models and save them, verified, into the registry.

Run ``python -m apps.training`` to train a new version of both models. Training is
deterministic (fixed seed and split), so the same data and library versions give the
same predictions on any machine. Each version is signed (:mod:`apps.registry.signing`):
with this machine's key unless another is given, made on first use.
"""

import argparse
import importlib.metadata
import io
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zipfile import ZIP_DEFLATED

import joblib
import pandas as pd
import skops.io
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn import metrics
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from apps import data
from apps.registry import Manifest, ModelRegistry, RegistryError
from apps.registry.profile import PROFILE_FILE, build_profile, profile_bytes
from apps.registry.signing import signing_key

SEED = 42
TEST_SIZE = 0.25
LIBRARIES = (
    "scikit-learn",
    "numpy",
    "pandas",
    "joblib",
    "skops",
    "onnx",
    "skl2onnx",
    "onnxruntime",
)


@dataclass(frozen=True)
class ModelSpec:
    """What to predict, from which columns, with which estimator."""

    name: str
    task: str
    target: str
    features: tuple[data.ColumnSpec, ...]
    description: str
    estimator_params: dict = field(default_factory=dict)

    def estimator(self):
        """A fresh, unfitted final estimator (seeded where it has randomness)."""
        if self.task == "classification":
            return LogisticRegression(max_iter=1000, random_state=SEED, **self.estimator_params)
        return Ridge(**self.estimator_params)


SPECS = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="species-classifier",
            task="classification",
            target="species",
            features=(
                data.ISLAND,
                data.SEX,
                data.BILL_LENGTH,
                data.BILL_DEPTH,
                data.FLIPPER_LENGTH,
                data.BODY_MASS,
            ),
            description="Predicts a penguin's species from where it was seen and its measurements.",
        ),
        ModelSpec(
            name="body-mass-regressor",
            task="regression",
            target="body_mass_g",
            features=(
                data.SPECIES,
                data.ISLAND,
                data.SEX,
                data.BILL_LENGTH,
                data.BILL_DEPTH,
                data.FLIPPER_LENGTH,
            ),
            description="Predicts a penguin's body mass (g) from its species and measurements.",
            estimator_params={"alpha": 1.0},
        ),
    )
}


def build_pipeline(spec: ModelSpec) -> Pipeline:
    """Preprocessing and estimator in one Pipeline, shaped so its ONNX export is exact.

    Numbers: median imputation, then scaling. Categories: one-hot encoding with the
    categories fixed from the column facts and unknown values ignored; a missing
    category is therefore encoded as all zeros. There is deliberately no string imputer:
    ONNX converters cannot express one exactly, and the encoder already handles it.
    """
    numbers = [c.name for c in spec.features if c.type == "number"]
    categories = [c for c in spec.features if c.type == "category"]
    preprocess = ColumnTransformer(
        [
            (
                "numbers",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                ),
                numbers,
            ),
            (
                "categories",
                OneHotEncoder(
                    categories=[list(c.categories) for c in categories], handle_unknown="ignore"
                ),
                [c.name for c in categories],
            ),
        ]
    )
    return Pipeline([("preprocess", preprocess), ("model", spec.estimator())])


def split(frame: pd.DataFrame, spec: ModelSpec):
    """The fixed train/test split: rows with a known target, stratified by species."""
    known = frame.dropna(subset=[spec.target])
    features = known[[c.name for c in spec.features]]
    return train_test_split(
        features,
        known[spec.target],
        test_size=TEST_SIZE,
        random_state=SEED,
        stratify=known["species"],
    )


def evaluate(pipeline: Pipeline, spec: ModelSpec, x_test, y_test) -> dict[str, float]:
    """Held-out metrics, rounded so that the manifest stays readable."""
    predicted = pipeline.predict(x_test)
    if spec.task == "classification":
        scores = {
            "accuracy": metrics.accuracy_score(y_test, predicted),
            "balanced_accuracy": metrics.balanced_accuracy_score(y_test, predicted),
            "f1_macro": metrics.f1_score(y_test, predicted, average="macro"),
            # every class named, so that a sample lacking one still has a log loss
            "log_loss": metrics.log_loss(
                y_test, pipeline.predict_proba(x_test), labels=data.COLUMNS[spec.target].categories
            ),
        }
    else:
        scores = {
            "mae": metrics.mean_absolute_error(y_test, predicted),
            "rmse": metrics.root_mean_squared_error(y_test, predicted),
            "r2": metrics.r2_score(y_test, predicted),
        }
    return {key: round(float(value), 6) for key, value in scores.items()}


def to_onnx_bytes(pipeline: Pipeline, spec: ModelSpec) -> bytes:
    """Convert to ONNX with one named input per column, and probabilities as a tensor."""
    inputs = [
        (
            c.name,
            StringTensorType([None, 1]) if c.type == "category" else FloatTensorType([None, 1]),
        )
        for c in spec.features
    ]
    options = {id(pipeline[-1]): {"zipmap": False}} if spec.task == "classification" else None
    return convert_sklearn(
        pipeline, name=spec.name, initial_types=inputs, options=options
    ).SerializeToString()


def environment() -> dict[str, str]:
    """Versions that decide whether a saved model can be loaded faithfully elsewhere."""
    versions = {"python": platform.python_version()}
    versions.update({lib: importlib.metadata.version(lib) for lib in LIBRARIES})
    return versions


def train(spec: ModelSpec, frame: pd.DataFrame | None = None) -> tuple[Pipeline, dict]:
    """Fit one model; return it with the facts its manifest needs (metrics, data)."""
    frame = data.load_data() if frame is None else frame
    x_train, x_test, y_train, y_test = split(frame, spec)
    pipeline = build_pipeline(spec).fit(x_train, y_train)
    facts = {
        "metrics": {"test": evaluate(pipeline, spec, x_test, y_test)},
        "training_data": {
            "source": f"palmerpenguins {importlib.metadata.version('palmerpenguins')}",
            "sha256": data.fingerprint(frame),
            "rows": len(frame),
            "train_rows": len(x_train),
            "test_rows": len(x_test),
            "split": {"test_size": TEST_SIZE, "random_state": SEED, "stratify": "species"},
        },
    }
    return pipeline, facts


def reference_profile(spec: ModelSpec, frame: pd.DataFrame, predict, classes=()) -> dict:
    """What the training rows looked like, and what ``predict`` says on the held-out rows.

    Monitoring compares production traffic with this profile (see
    :mod:`apps.registry.profile`). ``predict`` maps a frame of features to predictions;
    ``classes`` are a classifier's labels.
    """
    x_train, x_test, _, _ = split(frame, spec)
    return profile_of(spec, x_train, x_test, predict, classes)


def profile_of(spec: ModelSpec, x_train, x_test, predict, classes=()) -> dict:
    """The profile of given training and held-out rows (a retrained model has its own)."""
    predictions = list(predict(x_test))
    return build_profile(
        x_train,
        [c.to_dict() for c in spec.features],
        [str(p) for p in predictions] if len(classes) else [float(p) for p in predictions],
        [str(c) for c in classes],
        source=f"{len(x_train)} training rows; predictions on {len(x_test)} held-out rows",
    )


def model_files(pipeline: Pipeline, spec: ModelSpec, profile: dict | None = None) -> dict:
    """The model as joblib, skops and ONNX bytes, and its reference profile if given:
    ``{file name: (format, bytes)}``, what the registry writes."""
    joblib_bytes = io.BytesIO()
    joblib.dump(pipeline, joblib_bytes, compress=3)
    files = {
        "model.joblib": ("joblib", joblib_bytes.getvalue()),
        "model.skops": ("skops", skops.io.dumps(pipeline, compression=ZIP_DEFLATED)),
        "model.onnx": ("onnx", to_onnx_bytes(pipeline, spec)),
    }
    if profile is not None:
        files[PROFILE_FILE] = ("profile", profile_bytes(profile))
    return files


def model_facts(pipeline: Pipeline, spec: ModelSpec, facts: dict) -> dict:
    """What the manifest says about the model besides its files: task, schema, outputs,
    library versions, and the ``facts`` of its training (metrics, data, ...)."""
    outputs: dict[str, object] = {"target": spec.target}
    if spec.task == "classification":
        outputs["classes"] = [str(c) for c in pipeline.classes_]
    else:
        outputs["unit"] = data.COLUMNS[spec.target].unit
    return {
        "task": spec.task,
        "description": spec.description,
        "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "input_schema": {"columns": [c.to_dict() for c in spec.features]},
        "outputs": outputs,
        "environment": environment(),
        **facts,
    }


def save(
    registry: ModelRegistry,
    pipeline: Pipeline,
    spec: ModelSpec,
    facts: dict,
    profile: dict | None = None,
    version: int | None = None,
    signer=None,
) -> Manifest:
    """Hand the model's files and facts to the registry, which writes the new version
    signed with ``signer`` (default: this machine's key, see ``signing_key``)."""
    files = model_files(pipeline, spec, profile)
    signer = signer if signer is not None else signing_key()
    facts = model_facts(pipeline, spec, facts)
    return registry.add_version(spec.name, files, facts, version, signer)


def train_and_register(
    registry: ModelRegistry, name: str, version: int | None = None, signer=None
) -> Manifest:
    """Train one model, save it as ``version`` (default: the next free version), and sign
    its manifest with ``signer`` (default: this machine's key, see ``signing_key``)."""
    spec = SPECS[name]
    frame = data.load_data()
    pipeline, facts = train(spec, frame)
    classes = pipeline.classes_ if spec.task == "classification" else ()
    profile = reference_profile(spec, frame, pipeline.predict, classes)
    return save(registry, pipeline, spec, facts, profile, version, signer)


def main(argv: list[str] | None = None) -> None:
    """Command line: train a new version of every model (or the ones named)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(SPECS), help="models to train")
    parser.add_argument("--models-dir", type=Path, help="registry folder (default: models/)")
    parser.add_argument("--version", type=int, help="version number (default: the next one)")
    args = parser.parse_args(argv)
    registry = ModelRegistry(args.models_dir)
    for name in args.names:
        manifest = train_and_register(registry, name, args.version)
        print(f"saved {manifest.name} v{manifest.version}: {manifest.data['metrics']['test']}")
        try:  # what the apps will do with it: are they going to trust its signer?
            registry.verify(name, manifest.version)
        except RegistryError as error:
            print(f"warning: the apps will refuse it: {error}")


if __name__ == "__main__":
    main()

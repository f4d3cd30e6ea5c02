"""Retraining: a candidate from the training data plus the labelled production rows,
judged by the gate, and registered, with its lineage, only if it passes.

The candidate is fitted by the same code as every model (``apps.training``): the same
pipeline, the same seed, the same original split, so the only new thing is the data.
Its manifest says where it came from (its **lineage**): the version it may replace, the
fingerprint of every data set it was made from, and why it was trained; and what the
gate measured. A candidate that passes becomes the model's ``candidate``; putting it in
production is a separate step (:mod:`apps.rollout.promotion`).
"""

import importlib.metadata
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine

from apps import data, training
from apps.registry import Manifest, ModelRegistry, RegistryError
from apps.registry.aliases import CANDIDATE, PRODUCTION
from apps.registry.manifest import MANIFEST_FILE, sha256_bytes
from apps.rollout import fresh_data, gate

MIN_ROWS = 50
"""Fewer labelled production rows than this: nothing new to learn from, no retraining."""


class RetrainError(RegistryError):
    """A retraining that cannot even start (no recipe, too few labelled rows)."""


@dataclass
class Outcome:
    """What a retraining did: the gate's verdict, and the version registered if it passed."""

    verdict: gate.Verdict
    manifest: Manifest | None
    facts: dict


@dataclass
class Gathered:
    """The data of one retraining: what to fit on, what to judge on, and every data set
    used (for their fingerprints)."""

    fit: tuple[pd.DataFrame, pd.Series]
    parts: dict[str, tuple[pd.DataFrame, pd.Series]]
    frames: dict[str, pd.DataFrame]


def features_and_target(spec, *frames: pd.DataFrame):
    """Several frames as one: the model's input columns, and its target."""
    names = [column.name for column in spec.features]
    joined = pd.concat([frame[[*names, spec.target]] for frame in frames], ignore_index=True)
    return joined[names], joined[spec.target]


def gather(engine: Engine, spec, min_rows: int = MIN_ROWS) -> Gathered:
    """The original split and the labelled production rows, each cut in two, and joined:
    training rows with training rows, held-out rows with held-out rows."""
    original = data.load_data()
    x_train, x_test, y_train, y_test = training.split(original, spec)
    fresh = fresh_data.labelled_frame(engine, spec)
    if len(fresh) < min_rows:
        raise RetrainError(f"{spec.name} has {len(fresh)} labelled production rows, fewer "
                           f"than {min_rows}: nothing new to learn from yet")  # fmt: skip
    kept_out = fresh_data.held_out(fresh)
    original_train = x_train.assign(**{spec.target: y_train})
    original_test = x_test.assign(**{spec.target: y_test})
    fit = features_and_target(spec, original_train, fresh[~kept_out])
    parts = {
        "all": features_and_target(spec, original_test, fresh[kept_out]),
        "original": features_and_target(spec, original_test),
        "feedback": features_and_target(spec, fresh[kept_out]),
    }
    frames = {
        "original": original,
        "feedback": fresh,
        "train": pd.concat(fit, axis=1),
        "held_out": pd.concat(parts["all"], axis=1),
    }
    return Gathered(fit, parts, frames)


def lineage(registry, spec, champion: int, reason: str, frames: dict[str, pd.DataFrame]) -> dict:
    """Where the candidate comes from: its parent, its data sets' fingerprints, the reason."""
    parent = registry.resolve(spec.name, champion) / MANIFEST_FILE
    source = f"palmerpenguins {importlib.metadata.version('palmerpenguins')}"
    described = {
        "original": f"{source}: all rows (split with seed {training.SEED})",
        "feedback": "labelled production rows from the prediction log",
        "train": "the rows the candidate was fitted on: original training split + feedback",
        "held_out": "the rows the gate judged on: original held-out split + held-out feedback",
    }
    return {
        "parent": {"version": champion, "manifest_sha256": sha256_bytes(parent.read_bytes())},
        "reason": reason,
        "data": {
            name: {
                "description": described[name],
                "rows": len(frame),
                "sha256": fresh_data.fingerprint(frame),
            }
            for name, frame in frames.items()
        },
    }


def candidate_facts(gathered: Gathered, verdict: gate.Verdict, origin: dict) -> dict:
    """The candidate's manifest facts: held-out metrics, data, the gate's figures, lineage."""
    frames = gathered.frames
    return {
        "metrics": {"test": verdict.figures["candidate"]["scores"]["all"]},
        "training_data": {
            "source": f"{len(frames['original'])} original rows and "
            f"{len(frames['feedback'])} labelled production rows",
            "sha256": fresh_data.fingerprint(frames["train"]),
            "rows": len(frames["original"]) + len(frames["feedback"]),
            "train_rows": len(frames["train"]),
            "test_rows": len(frames["held_out"]),
            "split": {
                "test_size": training.TEST_SIZE,
                "random_state": training.SEED,
                "stratify": "species",
                "feedback_held_out": fresh_data.HELD_OUT_SHARE,
            },
        },
        "gate": verdict.figures,
        "lineage": origin,
    }


def retrain(registry: ModelRegistry, engine: Engine, name: str, reason: str = "",
            margin: float = gate.MARGIN, min_rows: int = MIN_ROWS) -> Outcome:  # fmt: skip
    """Fit a candidate, judge it against the production version, register it if it passes."""
    spec = training.SPECS.get(name)
    if spec is None:
        raise RetrainError(f"no training recipe for {name!r}: one of {sorted(training.SPECS)}")
    champion_version = registry.production(name)
    champion = registry.load(name, champion_version, backend="onnx")
    gathered = gather(engine, spec, min_rows)
    pipeline = training.build_pipeline(spec).fit(*gathered.fit)
    verdict = gate.judge(spec, champion, pipeline, gathered.parts, margin)
    origin = lineage(registry, spec, champion_version, reason, gathered.frames)
    facts = candidate_facts(gathered, verdict, origin)
    if not verdict.passed:
        return Outcome(verdict, None, facts)
    return Outcome(verdict, register(registry, spec, pipeline, facts, gathered), facts)


def register(registry, spec, pipeline, facts: dict, gathered: Gathered) -> Manifest:
    """Save the candidate as a new version, its alias ``candidate``, production untouched.

    While no version has been promoted the registry serves the latest one; registering a
    candidate would put it in production. So the version served until now is pinned as
    ``production`` first.
    """
    name = spec.name
    if registry.aliases(name).get(PRODUCTION) is None:
        served = facts["lineage"]["parent"]["version"]
        registry.set_alias(name, PRODUCTION, served, "pin", "served before the first candidate")
    classes = pipeline.classes_ if spec.task == "classification" else ()
    x_fit, x_held_out = gathered.fit[0], gathered.parts["all"][0]
    profile = training.profile_of(spec, x_fit, x_held_out, pipeline.predict, classes)
    manifest = training.save(registry, pipeline, spec, facts, profile)
    registry.set_alias(name, CANDIDATE, manifest.version, "register", facts["lineage"]["reason"])
    return manifest

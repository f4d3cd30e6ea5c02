"""Retraining: the trigger rule, the gate, the lineage in the manifest, and the command line.

Each database holds eight simulated weeks of one of the simulator's scenarios (drift
from week 5), logged through the real prediction log with late truths, and a saved
report (see ``rollout_data.py``). Registries are private copies of the committed models.
"""

import hashlib
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from apps import data, training
from apps.config import REPO_ROOT
from apps.monitoring import db, store
from apps.registry import ModelRegistry
from apps.registry.aliases import CANDIDATE, PRODUCTION
from apps.rollout import fresh_data, gate, retrain, trigger

from . import rollout_data

pytestmark = pytest.mark.slow

CLASSIFIER, REGRESSOR = "species-classifier", "body-mass-regressor"


def filled(tmp_path, registry: ModelRegistry, name=CLASSIFIER, **options) -> str:
    url = str(tmp_path / "monitoring.db")
    rollout_data.fill(url, registry, name, **options)
    return url


def cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "apps.rollout", *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


# --- the trigger rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "scenario"),
    [(CLASSIFIER, "pounds"), (CLASSIFIER, "new-colony"), (CLASSIFIER, "heavier"),
     (REGRESSOR, "pounds"), (REGRESSOR, "new-colony"), (REGRESSOR, "heavier")],
)  # fmt: skip
def test_the_trigger_fires_on_every_drift_scenario(tmp_path, registry_copy, name, scenario):
    url = filled(tmp_path, registry_copy, name, scenario=scenario)
    decision = trigger.decide(db.connect(url), registry_copy, name)
    assert decision.retrain, decision.summary()
    assert decision.reasons and decision.figures["version"] == 1


@pytest.mark.parametrize("name", [CLASSIFIER, REGRESSOR])
def test_the_trigger_stays_quiet_without_drift(tmp_path, registry_copy, name):
    url = filled(tmp_path, registry_copy, name, scenario="none")
    decision = trigger.decide(db.connect(url), registry_copy, name)
    assert not decision.retrain, decision.summary()
    assert decision.figures["live"]["labelled"] >= trigger.MIN_LABELS  # it had labels to judge


def test_a_report_on_another_version_does_not_trigger(tmp_path, registry_copy):
    url = filled(tmp_path, registry_copy, scenario="new-colony")
    training.train_and_register(registry_copy, CLASSIFIER)  # v2, in production (the latest)
    decision = trigger.decide(db.connect(url), registry_copy, CLASSIFIER)
    assert decision.figures["version"] == 2
    assert not decision.retrain, decision.summary()  # no report and no labels for v2 yet


# --- the gate -------------------------------------------------------------------------------


def test_the_gate_accepts_a_better_candidate_and_registers_it(tmp_path, registry_copy):
    url = filled(tmp_path, registry_copy, scenario="new-colony")
    outcome = retrain.retrain(registry_copy, db.connect(url), CLASSIFIER, reason="new colony")
    figures = outcome.verdict.figures
    assert outcome.verdict.passed, outcome.verdict.reasons
    champion, candidate = (
        figures[who]["scores"]["all"]["accuracy"] for who in ("champion", "candidate")
    )
    assert candidate > champion  # better on the same held-out rows, not merely "not worse"
    assert figures["onnx_parity"]["equal"] and figures["schema"] == "compatible"
    assert outcome.manifest.version == 2
    assert registry_copy.verify(CLASSIFIER, 2).data["gate"] == figures
    aliases = registry_copy.aliases(CLASSIFIER)
    assert (aliases.get(PRODUCTION), aliases.get(CANDIDATE)) == (1, 2)  # not promoted yet
    assert registry_copy.production(CLASSIFIER) == 1


def test_the_gate_refuses_a_worse_candidate_and_registers_nothing(tmp_path, registry_copy):
    # A scale in pounds spoils half the truths of the body-mass regressor: fitted on them,
    # the candidate is worse than the champion on the same held-out rows.
    url = filled(tmp_path, registry_copy, REGRESSOR, scenario="pounds")
    outcome = retrain.retrain(registry_copy, db.connect(url), REGRESSOR)
    figures = outcome.verdict.figures
    assert not outcome.verdict.passed and outcome.manifest is None
    assert figures["candidate"]["scores"]["all"]["mae"] > figures["limit"]
    assert any(reason.startswith("mae ") for reason in outcome.verdict.reasons)
    assert registry_copy.versions(REGRESSOR) == [1]
    assert registry_copy.aliases(REGRESSOR).versions == {}
    assert not [p.name for p in (registry_copy.root / REGRESSOR).iterdir() if p.name != "1"]


def test_the_gate_judges_both_models_on_the_same_rows(tmp_path, registry_copy):
    """A candidate fitted on ten rows is refused; the held-out rows are those it was told."""
    url = filled(tmp_path, registry_copy, scenario="new-colony")
    spec = training.SPECS[CLASSIFIER]
    gathered = retrain.gather(db.connect(url), spec)
    weak = training.build_pipeline(spec).fit(gathered.fit[0][:10], gathered.fit[1][:10])
    champion = registry_copy.load(CLASSIFIER, 1, backend="onnx")
    verdict = gate.judge(spec, champion, weak, gathered.parts)
    assert not verdict.passed
    held_out = verdict.figures["held_out_rows"]
    assert (
        held_out["all"]
        == held_out["original"] + held_out["feedback"]
        == len(gathered.parts["all"][0])
    )
    # the held-out rows are disjoint from the rows fitted on
    keys = gathered.frames["feedback"]["key"]
    kept_out = fresh_data.held_out(gathered.frames["feedback"])
    assert set(keys[kept_out]).isdisjoint(keys[~kept_out]) and 0 < kept_out.sum() < len(keys)


def test_the_held_out_side_of_a_row_never_changes(tmp_path, registry_copy):
    url = filled(tmp_path, registry_copy, scenario="new-colony")
    frame = fresh_data.labelled_frame(db.connect(url), training.SPECS[CLASSIFIER])
    whole = dict(zip(frame["key"], fresh_data.held_out(frame), strict=True))
    part = frame.iloc[::3]  # fewer rows, in another order: each key keeps its side
    assert dict(zip(part["key"], fresh_data.held_out(part), strict=True)) == {
        key: whole[key] for key in part["key"]
    }
    assert 0.15 < sum(whole.values()) / len(whole) < 0.35  # about HELD_OUT_SHARE


# --- lineage --------------------------------------------------------------------------------


def test_the_manifest_records_the_lineage(tmp_path, registry_copy):
    url = filled(tmp_path, registry_copy, scenario="new-colony")
    engine = db.connect(url)
    reason = "; ".join(trigger.decide(engine, registry_copy, CLASSIFIER).reasons)
    outcome = retrain.retrain(registry_copy, engine, CLASSIFIER, reason=reason)
    lineage = registry_copy.manifest(CLASSIFIER, outcome.manifest.version).data["lineage"]
    parent = registry_copy.resolve(CLASSIFIER, 1) / "manifest.json"
    assert lineage["parent"] == {
        "version": 1,
        "manifest_sha256": hashlib.sha256(parent.read_bytes()).hexdigest(),
    }
    assert lineage["reason"] == reason and "drift in" in reason
    sets = lineage["data"]
    assert set(sets) == {"original", "feedback", "train", "held_out"}
    # the original data: the fingerprint the champion's own manifest pins
    assert (
        sets["original"]["sha256"]
        == registry_copy.manifest(CLASSIFIER, 1).data["training_data"]["sha256"]
    )
    assert sets["original"]["sha256"] == data.fingerprint(data.load_data())
    with engine.connect() as connection:  # labelled rows, counted by the database itself
        labelled = connection.execute(
            select(func.count()).select_from(db.feedback).where(db.feedback.c.model == CLASSIFIER)
        ).scalar_one()
    assert sets["feedback"]["rows"] == labelled > 0
    assert sets["train"]["rows"] + sets["held_out"]["rows"] == len(data.load_data()) + labelled
    # the same data gives the same fingerprints; one corrected truth changes them
    again = retrain.retrain(registry_copy, engine, CLASSIFIER, reason=reason)
    assert again.facts["lineage"]["data"] == sets
    with engine.connect() as connection:
        request_id, label = connection.execute(
            select(db.feedback.c.request_id, db.feedback.c.label).limit(1)
        ).one()
    other = next(c for c in ("Adelie", "Chinstrap", "Gentoo") if c != label)
    assert store.record_feedback(engine, CLASSIFIER, request_id, 0, other) == "updated"
    changed = retrain.retrain(registry_copy, engine, CLASSIFIER).facts["lineage"]["data"]
    assert changed["feedback"]["sha256"] != sets["feedback"]["sha256"]
    assert changed["original"] == sets["original"]


# --- the command line, as a scheduler runs it ------------------------------------------------


def test_the_command_line_exit_codes(tmp_path, registry_copy):
    drifted = filled(tmp_path / "drifted", registry_copy, scenario="new-colony")
    calm = filled(tmp_path / "calm", registry_copy, scenario="none")
    where = ("--model", CLASSIFIER, "--models-dir", str(registry_copy.root))
    assert cli("trigger", *where, "--db", calm).returncode == 0
    done = cli("retrain", *where, "--db", calm, "--if-needed")
    assert (done.returncode, registry_copy.versions(CLASSIFIER)) == (0, [1])
    assert done.stdout.endswith("no need to retrain\n")
    done = cli("trigger", *where, "--db", drifted)
    assert done.returncode == 1 and "retrain: drift in" in done.stdout
    done = cli("retrain", *where, "--db", drifted, "--if-needed")
    assert done.returncode == 0, done.stderr
    assert (
        "registered species-classifier v2 as the candidate; production is still v1" in done.stdout
    )
    empty = str(tmp_path / "empty.db")
    done = cli("retrain", *where, "--db", empty)
    assert done.returncode == 2 and "0 labelled production rows" in done.stderr


def test_a_refusal_exits_1(tmp_path, registry_copy):
    url = filled(tmp_path, registry_copy, REGRESSOR, scenario="pounds")
    done = cli(
        "retrain", "--model", REGRESSOR, "--models-dir", str(registry_copy.root), "--db", url
    )
    assert done.returncode == 1 and "refused: mae " in done.stdout

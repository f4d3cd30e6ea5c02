"""``python -m apps.rollout``: decide, retrain, promote and roll back, from a terminal.

    python -m apps.rollout trigger --model species-classifier     # exit 1: retraining is due
    python -m apps.rollout retrain --model species-classifier     # exit 1: the gate refused
    python -m apps.rollout retrain --model species-classifier --if-needed
    python -m apps.rollout promote --model species-classifier     # the candidate
    python -m apps.rollout rollback --model species-classifier
    python -m apps.rollout status --model species-classifier

Exit codes: 0 done (or nothing to do), 1 the answer is "no" (trigger: retraining is due;
retrain: the gate refused), 2 a mistake or a refusal to act, with the reason.
"""

import argparse
import sys
from pathlib import Path

from apps.monitoring import db
from apps.registry import ModelRegistry, RegistryError
from apps.registry.aliases import CANDIDATE, PRODUCTION
from apps.rollout import gate, promotion, retrain, trigger

NO = 1


def trigger_command(args, registry: ModelRegistry) -> int:
    """Print the rule's decision; exit 1 when retraining is due, as a scheduler expects."""
    decision = trigger.decide(db.connect(args.db), registry, args.model)
    print(decision.summary())
    return NO if decision.retrain else 0


def retrain_command(args, registry: ModelRegistry) -> int:
    """Retrain (if needed), print the gate's table; exit 1 when the gate refuses."""
    engine = db.connect(args.db)
    reason = args.reason
    if args.if_needed:
        decision = trigger.decide(engine, registry, args.model)
        print(decision.summary())
        if not decision.retrain:
            return 0
        reason = reason or "; ".join(decision.reasons)
    outcome = retrain.retrain(registry, engine, args.model, reason or "asked for", args.margin)
    print(gate.gate_table(outcome.verdict.figures))
    if outcome.manifest is None:
        print("refused: " + "; ".join(outcome.verdict.reasons))
        return NO
    print(f"registered {args.model} v{outcome.manifest.version} as the candidate; production "
          f"is still v{registry.production(args.model)}. Promote it with:\n"
          f"  python -m apps.rollout promote --model {args.model}")  # fmt: skip
    return 0


def promote_command(args, registry: ModelRegistry) -> int:
    aliases = promotion.promote(registry, args.model, args.version, args.reason)
    print(f"{args.model}: production is v{aliases.get(PRODUCTION)}")
    return 0


def rollback_command(args, registry: ModelRegistry) -> int:
    aliases = promotion.rollback(registry, args.model, args.reason)
    print(f"{args.model}: production is back to v{aliases.get(PRODUCTION)}")
    return 0


def status_command(args, registry: ModelRegistry) -> int:
    """The versions, the aliases and the history of the aliases."""
    aliases = registry.aliases(args.model)
    production, candidate = registry.production(args.model), aliases.get(CANDIDATE)
    for version in registry.versions(args.model):
        marks = [m for m, v in ((PRODUCTION, production), (CANDIDATE, candidate)) if v == version]
        print(f"v{version}  {', '.join(marks)}".rstrip())
    for entry in aliases.history:
        before, after = (
            f"v{v}" if v is not None else "-" for v in (entry["previous"], entry["version"])
        )
        print(f"{entry['at']}  {entry['action']:<8} {entry['alias']:<10} {before:>4} -> {after:<4}"
              f"  {entry['reason']}")  # fmt: skip
    return 0


def parser() -> argparse.ArgumentParser:
    """One sub-command per step; every one names its model."""
    main = argparse.ArgumentParser(
        prog="python -m apps.rollout", description=__doc__.split("\n")[0]
    )
    commands = main.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", default="species-classifier", help="model name")
    common.add_argument("--models-dir", type=Path, help="registry folder (default: models/)")
    logged = argparse.ArgumentParser(add_help=False)
    logged.add_argument("--db", help=f"monitoring database URL or SQLite path (default: "
                        f"${db.URL_ENV} or var/monitoring.db)")  # fmt: skip
    why = argparse.ArgumentParser(add_help=False)
    why.add_argument("--reason", default="", help="why: kept in the history or the lineage")
    commands.add_parser("trigger", parents=[common, logged], help="is retraining due?")
    ret = commands.add_parser("retrain", parents=[common, logged, why], help="train a candidate")
    ret.add_argument("--if-needed", action="store_true", help="only if the trigger fires")
    worse = f"how much worse than the champion the candidate may be, relative ({gate.MARGIN})"
    ret.add_argument("--margin", type=float, default=gate.MARGIN, help=worse)
    pro = commands.add_parser("promote", parents=[common, why], help="put a version in production")
    pro.add_argument("--version", type=int, help="the version (default: the candidate)")
    commands.add_parser("rollback", parents=[common, why], help="back to the previous version")
    commands.add_parser("status", parents=[common], help="versions, aliases and their history")
    return main


COMMANDS = {"trigger": trigger_command, "retrain": retrain_command, "promote": promote_command,
            "rollback": rollback_command, "status": status_command}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run one command; a refusal or a mistake is one plain line on stderr, exit code 2."""
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args, ModelRegistry(args.models_dir))
    except (RegistryError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""``python -m apps.monitoring``: drift reports, reference profiles and traffic simulations.

    python -m apps.monitoring report --model species-classifier --since 28d --window 7d
    python -m apps.monitoring profile --model species-classifier --version 1
    python -m apps.monitoring simulate --scenario pounds

``report`` exits with 1 when the latest window drifted, 0 when it did not (2 on a usage
error), so that a scheduler can act on it.
"""

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path

from apps.monitoring import db, reference, report, store
from apps.monitoring.render import render_html
from apps.registry import ModelRegistry, RegistryError

DRIFT_EXIT = 1
SIMULATION_DB = "var/simulation.db"


def report_command(args) -> int:
    """Build the report, write it as JSON and HTML, keep it in the database."""
    now = db.now()
    window = report.parse_duration(args.window)
    until = report.parse_time(args.until, now) if args.until else now
    since = report.parse_time(args.since, until) if args.since else until - 4 * window
    engine, registry = db.connect(args.db), ModelRegistry(args.models_dir)
    content = report.build_report(
        engine, registry, args.model, since, until, window, args.version, args.alpha
    )
    content["created_at"] = now.isoformat(timespec="seconds")
    args.output.mkdir(parents=True, exist_ok=True)
    paths = [args.output / f"{args.model}-report.{kind}" for kind in ("json", "html")]
    paths[0].write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
    paths[1].write_text(render_html(content), encoding="utf-8")
    if not args.no_save:
        store.save_report(engine, args.model, content, content["drift"])
    print(summary(content))
    print("wrote", *(p.as_posix() for p in paths))
    return DRIFT_EXIT if content["drift"] else 0


def summary(content: dict) -> str:
    """One line per window: rows, drift, and live performance with its interval."""
    key = "accuracy" if content["task"] == "classification" else "mae"
    lines = [f"{content['model']} v{content['version']}, {content['rows']} predictions logged:"]
    for window in content["windows"]:
        figures = window["performance"]
        verdict = "drift in " + ", ".join(window["drifted"]) if window["drift"] else "no drift"
        if not window["tested"]:
            verdict = "too few rows to test"
        shown = "-"
        if figures[key] is not None:
            low, high = figures[f"{key}_low"], figures[f"{key}_high"]
            interval = "" if low is None else f" ({low:.3g} to {high:.3g})"
            shown = f"{figures[key]:.3g}{interval}"
        lines.append(
            f"  {window['start'][:10]}  {window['rows']:5d} rows  {verdict:<40}"
            f"  {key} {shown}, {figures['labelled']} labelled"
        )
    if content["latest_window"] is None:
        lines.append(f"no window has the {content['min_rows']} rows a test needs: nothing to say")
    else:
        lines.append(
            "drift in the latest window" if content["drift"] else "no drift in the latest window"
        )
    return "\n".join(lines)


def profile_command(args) -> int:
    """Compute and keep the reference profile of a version trained without one."""
    engine, registry = db.connect(args.db), ModelRegistry(args.models_dir)
    version = args.version or registry.versions(args.model)[-1]
    if registry.reference_profile(args.model, version) is not None:
        print(f"{args.model} v{version} has its reference profile among its files")
        return 0
    profile = reference.reference_profile(registry, engine, args.model, version)
    print(f"{args.model} v{version}: reference profile kept in the database ({profile['source']})")
    return 0


def simulate_command(args) -> int:
    """Run the traffic simulation, through a local API started for it unless --url."""
    from apps.monitoring import simulator

    options = {
        "model": args.model,
        "scenario": args.scenario,
        "weeks": args.weeks,
        "per_week": args.per_week,
        "drift_week": args.drift_week,
        "start": report.parse_time(args.start, db.now()),
        "seed": args.seed,
    }
    database = args.db or SIMULATION_DB  # never the real log: simulated weeks would mix in
    if args.url:
        table = simulator.simulate(args.url, api_key=args.api_key, **options)
        where = ""
    else:
        with simulator.local_api(db.database_url(database)) as url:
            table = simulator.simulate(url, **options)
        where = f" --db {database}"
    print(table.to_string())
    end = options["start"] + timedelta(weeks=args.weeks)
    print(
        "\nNow look at it:\n  python -m apps.monitoring report --model "
        f"{args.model}{where} --since {options['start'].date()} --until {end.date()} --window 7d"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per job."""
    main = argparse.ArgumentParser(
        prog="python -m apps.monitoring", description=__doc__.split("\n")[0]
    )
    commands = main.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", default="species-classifier", help="model name")
    common.add_argument("--db", help=f"database URL or SQLite path (default: ${db.URL_ENV} "
                        "or var/monitoring.db)")  # fmt: skip
    common.add_argument("--models-dir", type=Path, help="registry folder (default: models/)")
    rep = commands.add_parser("report", parents=[common], help="drift and performance report")
    rep.add_argument("--since", help="ISO date/time or duration before --until (4 windows)")
    rep.add_argument("--until", help="ISO date/time (default: now)")
    rep.add_argument("--window", default="7d", help="window length: 30m, 12h, 7d, 2w (7d)")
    rep.add_argument("--version", type=int, help="model version (the latest one logged)")
    rep.add_argument("--alpha", type=float, default=0.05, help="false alarm rate (0.05)")
    rep.add_argument("--output", type=Path, default=Path("reports"), help="folder (reports/)")
    rep.add_argument("--no-save", action="store_true", help="do not keep it in the database")
    rep.set_defaults(run=report_command)
    pro = commands.add_parser("profile", parents=[common], help="profile an older version")
    pro.add_argument("--version", type=int, help="model version (the latest)")
    pro.set_defaults(run=profile_command)
    sim = commands.add_parser(
        "simulate",
        parents=[common],
        help="simulated weeks of traffic",
        description=f"Simulated weeks of traffic, through an API started for it, logged to "
        f"--db (default: {SIMULATION_DB}).",
    )
    sim.add_argument(
        "--scenario", default="pounds", choices=["none", "pounds", "new-colony", "heavier"]
    )
    sim.add_argument("--weeks", type=int, default=8)
    sim.add_argument("--per-week", type=int, default=250, help="birds per week (250)")
    sim.add_argument("--drift-week", type=int, default=5, help="first week of the scenario (5)")
    sim.add_argument("--start", default="2026-03-02", help="first simulated day (2026-03-02)")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--url", help="a running API started with PREDICTION_LOG_SIMULATED_TIME=on")
    sim.add_argument("--api-key", help="its API key")
    sim.set_defaults(run=simulate_command)
    return main


def main(argv: list[str] | None = None) -> int:
    """Run one command; a mistake in the arguments or the data is reported plainly."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, RegistryError, reference.ProfileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

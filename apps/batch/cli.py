"""``python -m apps.batch score``: the command line, its summary and its exit codes."""

import argparse
import sys
import traceback

from apps.batch.inputs import InputError
from apps.batch.job import Settings, run
from apps.batch.output import OutputError
from apps.registry import ModelNotFoundError, RegistryError

DONE, FAILED, BAD_INPUT, TOO_MANY_REJECTS = 0, 1, 2, 3
EXIT_CODES = """\
exit codes:
  0  done: every row is scored or in the rejects file
  1  failed (a model that does not verify, a disk error, a lost cluster...): what was
     committed stays; fix the cause and run the same command again to resume
  2  bad command or input (nothing was written): a missing or unreadable file, not CSV
     or Parquet, empty, a column the model needs is absent; unknown model or version;
     an output folder that holds another job's output
  3  done, but more rows were rejected than --max-reject-fraction allows
"""


def parser() -> argparse.ArgumentParser:
    """``python -m apps.batch score``'s options, in two groups (see ``--help``)."""
    main = argparse.ArgumentParser(prog="python -m apps.batch", description=__doc__.split(":")[0])
    commands = main.add_subparsers(dest="command", required=True)
    score = commands.add_parser(
        "score",
        help="score CSV (also .csv.gz) and Parquet files with a model from the registry",
        description="Score every row of the inputs with a model from the registry, exactly "
        "once: rerun the same command after a crash and it resumes.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _what(score.add_argument_group("what to score, and where the results go"))
    _where(score.add_argument_group("where it runs"))
    return main


def _what(group) -> None:
    group.add_argument("inputs", nargs="+", metavar="INPUT", help="files, or folders of files")
    group.add_argument("--model", required=True, help="the model's name in the registry")
    group.add_argument("--version", type=int, help="the model's version (default: the latest)")
    group.add_argument("--output", required=True, metavar="DIR", help="the output folder")
    group.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    group.add_argument(
        "--keep",
        nargs="+",
        action="extend",
        default=[],
        metavar="COLUMN",
        help="input columns copied to the output, such as ids",
    )
    group.add_argument(
        "--max-reject-fraction",
        type=_fraction,
        metavar="F",
        help="exit with 3 if more than this share of the rows is rejected",
    )
    group.add_argument(
        "--models",
        metavar="DIR",
        help="the model registry folder (default: models/, or $PENGUINS_MODELS_DIR)",
    )


def _where(group) -> None:
    group.add_argument("--backend", choices=("onnx", "sklearn"), default="onnx")
    group.add_argument(
        "--chunk-rows",
        type=_positive,
        default=50_000,
        metavar="N",
        help="rows read, checked, scored and committed together (default 50000)",
    )
    group.add_argument("--engine", choices=("local", "dask"), default="local")
    group.add_argument(
        "--threads",
        type=_positive,
        metavar="N",
        help="local engine: threads (default: one per core, at most 4)",
    )
    group.add_argument(
        "--workers",
        type=_positive,
        default=2,
        metavar="N",
        help="dask engine: worker processes of a new LocalCluster (default 2)",
    )
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="dask engine: an existing cluster instead, such as tcp://host:8786",
    )
    group.add_argument(
        "--dashboard",
        default="127.0.0.1:8787",
        metavar="HOST:PORT",
        help="dask engine: where the LocalCluster's dashboard listens",
    )


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, not {text!r}")
    return int(text)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, not {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code (see :data:`EXIT_CODES`)."""
    args = vars(parser().parse_args(argv))
    del args["command"]
    settings = Settings(**{**args, "keep": tuple(args["keep"])})
    try:
        record = run(settings, announce=lambda text: print(text, file=sys.stderr))
    except (InputError, OutputError, ModelNotFoundError) as error:
        problems = getattr(error, "problems", [str(error)])
        print("error: " + "\n  ".join(["nothing was written:", *problems]), file=sys.stderr)
        return BAD_INPUT
    except RegistryError as error:
        print(f"failed: {error}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130
    except Exception:  # a bug or a lost cluster: the details are for whoever fixes it
        traceback.print_exc()
        print(
            "failed: run the same command again to resume once the cause is fixed", file=sys.stderr
        )
        return FAILED
    print(summary(record, settings.output))
    return TOO_MANY_REJECTS if record["status"] == "too many rejects" else DONE


def summary(record: dict, output: str) -> str:
    """One screen: what was scored with what, where everything went, how fast."""
    rows, model, files = record["rows"], record["model"], record["scored_files"]
    lines = [
        f"{model['name']} v{model['version']} ({record['backend']}), "
        f"{len(record['inputs'])} input(s), {rows['read']:,} rows: {record['status']}",
        f"  scored   {rows['scored']:>12,} rows -> {output}/scored/ "
        f"({files} {record['format']} files)",
        f"  rejected {rows['rejected']:>12,} rows -> {output}/rejects.csv "
        f"({rows['problems']:,} problems)",
    ]
    attempt = record.get("this_attempt")
    if attempt:
        memory = ", ".join(
            f"{name} {mib:,.0f} MiB" for name, mib in attempt["peak_memory_mib"].items()
        )
        lines.append(
            f"  this run   {attempt['rows']:>12,} rows in {attempt['seconds']:.1f} s "
            f"({attempt['rows_per_second']:,} rows/s; peak memory: {memory or 'unknown'})"
        )
    lines.append(f"  run record -> {output}/run.json (attempts: {record['attempts']})")
    if record["status"] == "too many rejects":
        lines.append(
            f"  more than {record['max_reject_fraction']:.1%} of the rows were rejected: exit 3"
        )
    return "\n".join(lines)

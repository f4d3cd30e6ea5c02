"""This checkout's API against an earlier commit's, side by side under wrk, in one run.

Run by hand from the repository root (needs wrk and git; see bench/README.md)::

    .venv/bin/python bench/compare_refs.py [--baseline 66204cb] [--duration 10] [--rounds 3]

The baseline commit is checked out into a throwaway ``git worktree`` in a temporary
folder (removed at the end, also after an error or a Ctrl-C). Each side runs
``bench/constant_app.py`` of its own checkout under gunicorn with the settings of
``bench/api_bench.py`` (``apps/api/gunicorn_conf.py``, 2 workers x 4 threads, INFO
logging), one server per backend, all with this checkout's ``.venv`` python: the
baseline's servers import the baseline's code (``PYTHONPATH`` and gunicorn's
``--chdir`` point at its worktree, and Python's ``-P`` keeps this checkout off
``sys.path``) and load the baseline's own ``models/`` and keys. Before measuring, the
script checks that each server answers from its own checkout.

wrk then runs every row on both sides in turn, round after round, the side that goes
first alternating: the two sides of a ratio are measured seconds apart, so a change in
the machine's load hits both. The ratio new/baseline is the median of the per-round
ratios; on a shared machine only these ratios mean anything.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.api_bench import (  # noqa: E402
    HOST,
    MODEL,
    PREDICT_PATH,
    Measurement,
    fmt,
    penguin_records,
    run_wrk,
    server,
)

DEFAULT_BASELINE = "66204cb"  # the last commit before the request contracts (3b9a27b)
V2_PATH = f"/v2/models/{MODEL}/infer"
SIDES = ("new", "baseline")
# Variables that would point a server at another checkout's models or keys.
FOREIGN = ("PYTHONPATH", "PENGUINS_MODELS_DIR", "PENGUINS_TRUSTED_KEYS", "API_MODELS_DIR")


@dataclass
class Row:
    """One request, sent to the same kind of server on both sides."""

    key: str
    label: str
    backend: str  # which of the side's two servers answers it
    path: str
    body: str  # the name of a body file
    status: int = 200
    records: int = 1
    runs: dict[str, list[Measurement]] = field(default_factory=lambda: {s: [] for s in SIDES})


ROWS = [
    Row("onnx_1", "ONNX, 1 record", "onnx", PREDICT_PATH, "native_1"),
    Row("sklearn_1", "scikit-learn, 1 record", "sklearn", PREDICT_PATH, "native_1"),
    Row("onnx_1000", "ONNX, 1,000 records", "onnx", PREDICT_PATH, "native_1000", records=1000),
    Row("error_400", "validation error (400), misspelt key", "onnx", PREDICT_PATH, "misspelt", 400),
    Row("v2_1", "V2 infer, ONNX, 1 record", "onnx", V2_PATH, "v2_1"),
    Row("constant", "constant route, ONNX (reference)", "onnx", "/bench/constant", "native_1"),
]


# --- the baseline's checkout --------------------------------------------------------------


def git(*args: str, cwd: Path = REPO_ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout.strip()


@contextlib.contextmanager
def worktree_of(ref: str, folder: Path) -> Iterator[Path]:
    """``ref`` checked out (detached) in ``folder``; the worktree is removed afterwards."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    path = folder / f"baseline-{commit[:10]}"
    git("worktree", "add", "--detach", "--quiet", str(path), commit)
    try:
        yield path
    finally:
        with contextlib.suppress(RuntimeError):
            git("worktree", "remove", "--force", str(path))
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(RuntimeError):
            git("worktree", "prune")


def stop_on_sigterm() -> None:
    """A SIGTERM (or a closed terminal) unwinds like a Ctrl-C: servers and worktree go."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


# --- servers ---------------------------------------------------------------------------------


def side_environment(checkout: Path, backend: str, args, workdir: Path) -> dict[str, str]:
    """api_bench.py's settings, with imports, models and keys from ``checkout``."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
    scratch = Path(tempfile.mkdtemp(prefix=f"{checkout.name}-{backend}-", dir=workdir))
    (scratch / "metrics").mkdir()
    env.update(
        {
            "API_BACKEND": backend,
            "API_WORKERS": str(args.workers),
            "API_THREADS": str(args.api_threads),
            "LOG_LEVEL": args.log_level,
            "PROMETHEUS_MULTIPROC_DIR": str(scratch / "metrics"),
            "MONITORING_DB_URL": str(scratch / "monitoring.db"),
            "API_BIND": f"{HOST}:{{port}}",
            "PYTHONPATH": str(checkout),
        }
    )
    return env


def in_checkout(checkout: Path, module: str) -> list[str]:
    """``python -m module`` started from ``checkout``, with this checkout's python.

    :func:`apps.processes.spawn` starts every child in this checkout, and gunicorn puts
    its starting folder first on ``sys.path`` before it reads its settings: so the child
    moves to ``checkout`` first (``-P``: this checkout is never on ``sys.path``).
    """
    code = (
        "import os, runpy, sys; os.chdir(sys.argv.pop(1)); "
        "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-P", "-c", code, str(checkout), module]


def api_server(side: str, checkout: Path, backend: str, extra: dict[str, str], args, workdir):
    """``bench/constant_app.py`` of ``checkout`` under gunicorn, as api_bench.py runs it."""
    env = {**side_environment(checkout, backend, args, workdir), **extra}
    command = [
        *in_checkout(checkout, "gunicorn"),
        "-c",
        "python:apps.api.gunicorn_conf",
        "bench.constant_app:app",
    ]
    return server(command, env, "/health/live", workdir / f"api-{side}-{backend}.log")


def check_own_code(servers: dict[str, dict[str, tuple[str, object]]], checkouts, same: bool) -> str:
    """Prove that each server runs its own checkout's code; say how.

    Each server's folder (where gunicorn imported the app from) must be its checkout,
    and the two sides must publish different OpenAPI documents: the new code has routes
    that the baseline does not (or the other way round), unless both are one commit
    (``--baseline HEAD`` with ``--new-env``: what a setting costs).
    """
    import requests

    documents, notes = {}, []
    for side in SIDES:
        for backend, (base, process) in servers[side].items():
            folder = Path(f"/proc/{process.pid}/cwd")
            if folder.exists() and folder.resolve() != checkouts[side].resolve():
                raise RuntimeError(f"the {side} {backend} server runs in {folder.resolve()}")
            documents[side, backend] = requests.get(f"{base}/openapi.json", timeout=30).json()
    for backend in ("onnx", "sklearn"):
        new, old = documents["new", backend], documents["baseline", backend]
        only_new = sorted(set(new["paths"]) - set(old["paths"]))
        only_old = sorted(set(old["paths"]) - set(new["paths"]))
        if not (only_new or only_old or same) and new["info"] == old["info"]:
            raise RuntimeError(f"both {backend} servers publish the same document: same code?")
    notes.append(
        f"own code: each server runs in its checkout; API version {new['info']['version']} "
        f"(new) vs {old['info']['version']} (baseline); {len(new['paths'])} vs "
        f"{len(old['paths'])} paths, only in the new one: {', '.join(only_new[:3])}..."
    )
    return "\n".join(notes)


def check_answer(url: str, body: bytes, row: Row) -> None:
    """Send the body once and check the status (and the predictions), before wrk does."""
    import requests

    response = requests.post(url, data=body, headers={"Content-Type": "application/json"},
                             timeout=60)  # fmt: skip
    if response.status_code != row.status:
        raise RuntimeError(f"{url} answered {response.status_code}, not {row.status}: "
                           f"{response.text[:500]}")  # fmt: skip
    answer = response.json()
    predictions = answer.get("predictions", ())
    if row.path == PREDICT_PATH and row.status == 200 and len(predictions) != row.records:
        raise RuntimeError(f"{url}: expected {row.records} predictions: {str(answer)[:300]}")
    if row.path == V2_PATH and not answer.get("outputs"):
        raise RuntimeError(f"{url}: no outputs: {str(answer)[:300]}")


# --- bodies ----------------------------------------------------------------------------------


def write_bodies(workdir: Path) -> dict[str, Path]:
    from apps.registry import ModelRegistry

    schema = ModelRegistry().load(MODEL, backend="onnx").schema
    one = penguin_records(schema.names, 1)
    v2_inputs = [
        {
            "name": column.name,
            "datatype": "BYTES" if column.type == "category" else "FP64",
            "shape": [1],
            "data": [one[0][column.name]],
        }
        for column in schema.columns
    ]
    bodies = {
        "native_1": {"records": one},
        "native_1000": {"records": penguin_records(schema.names, 1000)},
        "misspelt": {"recrods": one},
        "v2_1": {"inputs": v2_inputs},
    }
    paths = {}
    for name, body in bodies.items():
        paths[name] = workdir / f"{name}.json"
        paths[name].write_text(json.dumps(body))
    return paths


# --- the table -------------------------------------------------------------------------------


def rate(runs: list[Measurement], expect_ok: bool) -> str:
    """Median (min-max) requests/s; wrk counts every answer other than 2xx as an error."""
    rates = [run.rps for run in runs]
    median = statistics.median(rates)
    digits = 1 if median < 100 else 0
    spread = f" ({fmt(min(rates), digits)}-{fmt(max(rates), digits)})" if len(rates) > 1 else ""
    errors = sum(run.errors for run in runs)
    return fmt(median, digits) + spread + (f", {errors} errors!" if errors and expect_ok else "")


def latency(runs: list[Measurement]) -> str:
    p50 = statistics.median(run.p50_ms for run in runs)
    p99 = statistics.median(run.p99_ms for run in runs)
    return f"{p50:.2f} / {p99:.2f}"


def table(rows: list[Row]) -> str:
    lines = [
        "| row | new requests/s | baseline requests/s | new p50 / p99 ms "
        "| baseline p50 / p99 ms | new / baseline |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        new, old = row.runs["new"], row.runs["baseline"]
        ok = row.status == 200
        ratios = [a.rps / b.rps for a, b in zip(new, old, strict=True)]
        spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
        lines.append(
            f"| {row.label} | {rate(new, ok)} | {rate(old, ok)} | {latency(new)} | {latency(old)} "
            f"| {statistics.median(ratios):.2f}x{spread} |"
        )
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE,
                        help=f"the commit to compare with ({DEFAULT_BASELINE})")  # fmt: skip
    parser.add_argument("--duration", type=float, default=10, help="seconds per row and side (10)")
    parser.add_argument("--rounds", type=int, default=3, help="slices per row, run in turn (3)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per row (2)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (8)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server (2)")
    parser.add_argument("--api-threads", type=int, default=4, help="API_THREADS (4: gthread)")
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of every server (INFO)")
    parser.add_argument(
        "--new-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable for this checkout's servers only, to see what a setting costs "
        "(e.g. PREDICTION_LOG=off); repeatable",
    )
    parser.add_argument("--rows", help="comma-separated row keys to run (default: all): "
                        + ", ".join(row.key for row in ROWS))  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write every slice's numbers here")
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.new_env):
        parser.error("--new-env takes NAME=VALUE")
    args.new_env = dict(item.split("=", 1) for item in args.new_env)
    unknown = set((args.rows or "").split(",")) - {row.key for row in ROWS} - {""}
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; rows: {[row.key for row in ROWS]}")
    return args


def measure(rows: list[Row], bases, bodies: dict[str, Path], args, workdir: Path) -> None:
    """Every row on both sides, round after round; the side that starts alternates."""
    slice_seconds = max(1.0, args.duration / args.rounds)
    for row in rows:
        for side in SIDES:
            run_wrk(bases[side][row.backend] + row.path, bodies[row.body], args.warmup, args,
                    workdir)  # fmt: skip
    for round_number in range(1, args.rounds + 1):
        order = SIDES if round_number % 2 else SIDES[::-1]
        for row in rows:
            for side in order:
                url = bases[side][row.backend] + row.path
                run = run_wrk(url, bodies[row.body], slice_seconds, args, workdir)
                row.runs[side].append(run)
                print(f"round {round_number}: {row.label}, {side}: {run.rps:,.1f}/s, "
                      f"p50 {run.p50_ms:.2f} ms, {run.errors} errors", file=sys.stderr)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)",
              file=sys.stderr)  # fmt: skip
        return 2
    rows = ROWS
    if args.rows:
        wanted = args.rows.split(",")
        rows = [row for row in ROWS if row.key in wanted]
    stop_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="compare-refs-"))
    try:
        with worktree_of(args.baseline, workdir) as baseline, contextlib.ExitStack() as stack:
            commits = {"new": git("rev-parse", "--short", "HEAD"),
                       "baseline": git("rev-parse", "--short", "HEAD", cwd=baseline)}  # fmt: skip
            checkouts = {"new": REPO_ROOT, "baseline": baseline}
            bodies = write_bodies(workdir)
            servers: dict[str, dict] = {side: {} for side in SIDES}
            for side in SIDES:
                extra = args.new_env if side == "new" else {}
                for backend in ("onnx", "sklearn"):
                    started = api_server(side, checkouts[side], backend, extra, args, workdir)
                    servers[side][backend] = stack.enter_context(started)
                    print(f"{side} ({commits[side]}) {backend} server at "
                          f"{servers[side][backend][0]}", file=sys.stderr)  # fmt: skip
            same = commits["new"] == commits["baseline"]
            print(check_own_code(servers, checkouts, same), file=sys.stderr)
            bases = {side: {b: url for b, (url, _) in servers[side].items()} for side in SIDES}
            for row in rows:
                for side in SIDES:
                    url = bases[side][row.backend] + row.path
                    check_answer(url, bodies[row.body].read_bytes(), row)
            measure(rows, bases, bodies, args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    extra = " ".join(f"{k}={v}" for k, v in args.new_env.items())
    print(
        f"new: {commits['new']} (this checkout{', with ' + extra if extra else ''}); "
        f"baseline: {commits['baseline']}; {args.workers} gunicorn workers x {args.api_threads} "
        f"threads per server, LOG_LEVEL={args.log_level}; wrk {args.threads} threads, "
        f"{args.connections} connections; {args.duration:g} s per row and side in "
        f"{args.rounds} alternating slice(s), after {args.warmup:g} s of warm-up; load average "
        f"at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print()
    print(table(rows))
    if args.json:
        raw = {row.key: {side: [vars(r) for r in row.runs[side]] for side in SIDES} for row in rows}
        args.json.write_text(json.dumps(raw, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the servers are stopped and the worktree removed by now
        print("interrupted: servers stopped, temporary worktree removed", file=sys.stderr)
        sys.exit(130)

"""Speed and memory of batch scoring (``python -m apps.batch score``), run by hand.

    .venv/bin/python bench/batch_bench.py [--rows 10000000] [--rounds 3] [--quick]

It first generates, once, realistic penguin files (noise on the measurements, missing
values, about 0.5 % bad rows of every kind) as CSV and Parquet, in a folder outside
the repository (``--data``, by default in the system's temporary folder). Then, in
rounds, side by side so that the machine's load hits every row alike:

* in-process, on 1,000,000 rows already in memory as the batch reader leaves them (one
  thread): the model alone (``predict only``), then the schema's columnar check and the
  model (``validate + predict``); and the API's path, records validated then predicted;
* the batch command on 1 million and on ``--rows`` rows, CSV and Parquet, ONNX and
  scikit-learn backends, local engine and a Dask LocalCluster: rows/s of the whole
  command (start-up, hashing and all), rows/s of its scoring phase, peak memory.

It prints two Markdown tables: every measurement, then the targets with their ratios.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from apps.data import load_data  # noqa: E402

MODEL = "species-classifier"
BATCH = 500_000
"""Rows generated at a time: the generator's memory stays flat too."""
MEASURES = {"bill_length_mm": (1.0, 1), "bill_depth_mm": (0.5, 1), "flipper_length_mm": (3.0, 0)}
"""Noise (standard deviation) and decimals of each measurement; body mass: 150 g, to 25 g."""
BAD_SHARE = 0.005


def typed_batch(rng, penguins, start: int, size: int) -> pa.Table:
    """``size`` penguins drawn with noise, ids from ``start``; some rows deliberately bad."""
    birds = penguins.iloc[rng.integers(0, len(penguins), size)].reset_index(drop=True)
    columns = {"id": np.arange(start, start + size), "species": birds["species"]}
    columns["island"] = birds["island"].astype(object)
    columns["sex"] = birds["sex"].where(rng.random(size) > 0.02)  # a few more unknowns
    for name, (noise, decimals) in MEASURES.items():
        columns[name] = (birds[name] + rng.normal(0, noise, size)).round(decimals)
    columns["body_mass_g"] = ((birds["body_mass_g"] + rng.normal(0, 150, size)) / 25).round() * 25
    bad = rng.random(size) < BAD_SHARE
    kind = rng.integers(0, 6, size)  # 0-3 here; 4-5 (fields, bytes) in the CSV text
    columns["island"] = columns["island"].where(~(bad & (kind == 0)), "Atlantis")
    columns["island"] = columns["island"].where(~(bad & (kind == 1)), None)
    columns["flipper_length_mm"] = columns["flipper_length_mm"].where(~(bad & (kind == 2)), 400.0)
    table = pa.Table.from_pandas(__import__("pandas").DataFrame(columns), preserve_index=False)
    marks = pa.array(np.where(bad, kind, -1))
    return table.append_column("_bad", marks)


def csv_bytes(table: pa.Table) -> bytes:
    """The batch as CSV text, with the bad rows that only text can have."""
    kinds = table["_bad"].to_numpy()
    text = table.drop_columns(["_bad"])
    text = pa.table({name: pc.cast(text[name], pa.string()) for name in text.column_names})
    words = pc.if_else(pa.array(kinds == 3), "n/a", text["bill_length_mm"])
    text = text.set_column(text.column_names.index("bill_length_mm"), "bill_length_mm", words)
    sink = pa.BufferOutputStream()
    pacsv.write_csv(text, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    lines = sink.getvalue().to_pybytes().split(b"\n")
    for row in np.flatnonzero(kinds == 4):
        lines[row] = lines[row].rsplit(b",", 2)[0]  # two fields short
    for row in np.flatnonzero(kinds == 5):
        lines[row] = lines[row].replace(b"male", b"m\xe4le", 1)  # latin-1, not UTF-8
    return b"\n".join(lines)


def generate(folder: Path, rows: int, seed: int = 0) -> dict[str, Path]:
    """``penguins-<rows>.csv`` and ``.parquet`` in ``folder``, made once and then reused."""
    paths = {fmt: folder / f"penguins-{rows}.{fmt}" for fmt in ("csv", "parquet")}
    if all(path.exists() for path in paths.values()):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    rng, penguins = np.random.default_rng(seed), load_data()
    writer = None
    with open(_partial(paths["csv"]), "wb") as csv_file:
        for start in range(0, rows, BATCH):
            table = typed_batch(rng, penguins, start, min(BATCH, rows - start))
            if writer is None:
                csv_file.write(",".join(table.column_names[:-1]).encode() + b"\n")
                schema = table.drop_columns(["_bad"]).schema
                writer = pq.ParquetWriter(_partial(paths["parquet"]), schema)
            csv_file.write(csv_bytes(table))
            writer.write_table(table.drop_columns(["_bad"]), row_group_size=100_000)
    writer.close()
    for path in paths.values():
        _partial(path).rename(path)
    return paths


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


# --- in-process: the same rows, already in memory ------------------------------------------


def in_process(paths: dict[str, Path], rows: int, slice_rows: int = 100_000) -> dict:
    """Callables timing the model alone, the columnar check + model, and the API's path."""
    from apps.batch.cells import typed_cells
    from apps.registry import ModelRegistry

    model = ModelRegistry().load(MODEL, backend="onnx")
    schema = model.schema
    table = pq.read_table(paths["parquet"], columns=schema.names).slice(0, rows)
    slices = []
    for start in range(0, rows, slice_rows):
        part = table.slice(start, slice_rows)
        cells = {c.name: typed_cells(part[c.name], c) for c in schema.columns}
        good = np.flatnonzero(~schema.check(cells).bad_rows(part.num_rows))
        slices.append((cells, good, schema.columns_of(cells, good)))
    records = [r for r in table.slice(0, 200_000).to_pylist()]
    valid, _ = schema.partition(records)
    records = [records[i] for i in valid]

    def predict_only():
        return sum(len(model.answer(columns).outputs) for _, _, columns in slices)

    def validate_and_predict():
        done = 0
        for cells, _, _ in slices:
            good = np.flatnonzero(~schema.check(cells).bad_rows(len(cells["island"].kinds)))
            done += len(model.answer(schema.columns_of(cells, good)).outputs)
        return done

    def records_path():
        return sum(
            len(model.answer(schema.validate(records[s : s + slice_rows])).outputs)
            for s in range(0, len(records), slice_rows)
        )

    return {
        "in-process, predict only (columns in memory)": predict_only,
        "in-process, columnar check + predict (cells in memory)": validate_and_predict,
        "in-process, API path: records validated + predicted": records_path,
    }


def timed(function) -> dict:
    """Rows per second of one call (the callable returns how many rows it predicted)."""
    start = time.perf_counter()
    rows = function()
    return {"rows_per_second": rows / (time.perf_counter() - start), "memory": None}


# --- the batch command ---------------------------------------------------------------------


def job(source: Path, work: Path, *options) -> dict:
    """Run ``python -m apps.batch score`` once, in a fresh output folder; its figures."""
    output = work / "out"
    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "apps.batch",
            "score",
            str(source),
            "--model",
            MODEL,
            "--output",
            str(output),
            "--keep",
            "id",
            *map(str, options),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"the batch command failed:\n{result.stderr[-3000:]}")
    record = json.loads((output / "run.json").read_text())
    attempt = record["this_attempt"]
    memory = attempt["peak_memory_mib"]
    shutil.rmtree(output)
    return {
        "rows_per_second": record["rows"]["read"] / seconds,
        "scoring_rows_per_second": attempt["rows_per_second"],
        "memory": max(memory.values()),
        "client_memory": memory.get("client"),
    }


def scenarios(paths: dict[int, dict[str, Path]], big: int, work: Path, quick: bool) -> dict:
    """Name -> callable returning one measurement, for every row of the first table."""
    small = min(paths)
    jobs = {
        f"job, local ONNX, CSV, {small:,} rows": (paths[small]["csv"],),
        f"job, local ONNX, CSV, {small:,} rows, 1 thread": (paths[small]["csv"], "--threads", 1),
        f"job, local ONNX, Parquet, {small:,} rows": (paths[small]["parquet"],),
        f"job, local scikit-learn, CSV, {small:,} rows": (
            paths[small]["csv"],
            "--backend",
            "sklearn",
        ),
        f"job, Dask LocalCluster (2 workers) ONNX, CSV, {small:,} rows": (
            paths[small]["csv"],
            "--engine",
            "dask",
            "--workers",
            2,
            "--dashboard",
            "127.0.0.1:0",
        ),
    }
    if big != small and not quick:
        jobs |= {
            f"job, local ONNX, CSV, {big:,} rows": (paths[big]["csv"],),
            f"job, local ONNX, Parquet, {big:,} rows": (paths[big]["parquet"],),
            f"job, Dask LocalCluster (2 workers) ONNX, CSV, {big:,} rows": (
                paths[big]["csv"],
                "--engine",
                "dask",
                "--workers",
                2,
                "--dashboard",
                "127.0.0.1:0",
            ),
        }
    found = {name: (lambda f=f: timed(f)) for name, f in in_process(paths[small], small).items()}
    found |= {
        name: (lambda a=arguments: job(a[0], work, *a[1:])) for name, arguments in jobs.items()
    }
    return found


# --- tables ----------------------------------------------------------------------------------


def median_range(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:,.0f}"
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def ratio(results: dict, top: str, bottom: str, key: str = "rows_per_second") -> list[float]:
    """The ratio measured in each round (the two sides ran minutes apart at most)."""
    return [a[key] / b[key] for a, b in zip(results[top], results[bottom], strict=False)]


def targets(results: dict, small: int, big: int) -> list[tuple[str, list[float], str, bool]]:
    """``(target, ratios per round, goal, passed)`` for the second table."""
    api, columnar = (
        "in-process, API path: records validated + predicted",
        "in-process, columnar check + predict (cells in memory)",
    )
    predict = "in-process, predict only (columns in memory)"
    local = f"job, local ONNX, CSV, {big:,} rows"
    rows = []

    def add(name, values, goal, low=None, high=None):
        middle = statistics.median(values)  # judged on the median round, as bench/api_bench.py
        passed = (low is None or middle >= low) and (high is None or middle <= high)
        rows.append((name, values, goal, passed))

    for fmt in ("CSV", "Parquet"):
        job_name = f"job, local ONNX, {fmt}, {big:,} rows"
        if job_name in results:
            add(f"{job_name} vs {api}", ratio(results, job_name, api), ">= 0.9x", low=0.9)
            add(f"{job_name} vs {columnar}", ratio(results, job_name, columnar), ">= 0.9x", low=0.9)
    add(f"{columnar} vs {predict}", ratio(results, columnar, predict), ">= 0.5x", low=0.5)
    add(f"{api} vs {predict}", ratio(results, api, predict), "(shown)")
    for fmt in ("CSV", "Parquet"):
        large, little = (f"job, local ONNX, {fmt}, {rows:,} rows" for rows in (big, small))
        if large in results:
            memory = [r["memory"] for r in results[large]]
            add(f"peak memory of {large}, MiB", memory, "<= 400", high=400)
            within = ratio(results, large, little, "memory")
            add(f"peak memory, {fmt}, {big:,} rows vs {small:,} rows", within, "0.9-1.1x", 0.9, 1.1)
    base = f"job, local ONNX, CSV, {small:,} rows"
    for other in ("local scikit-learn", "Dask LocalCluster (2 workers) ONNX"):
        add(
            f"job, {other} vs local ONNX, CSV, {small:,} rows",
            ratio(results, f"job, {other}, CSV, {small:,} rows", base),
            "(shown)",
        )
    add(
        f"job, 1 thread vs 2 threads, CSV, {small:,} rows",
        ratio(results, f"{base}, 1 thread", base),
        "(shown)",
    )
    dask_big = f"job, Dask LocalCluster (2 workers) ONNX, CSV, {big:,} rows"
    if dask_big in results:
        add(f"{dask_big} vs local", ratio(results, dask_big, local), "(shown)")
    return rows


def print_tables(results: dict, small: int, big: int, rounds: int) -> None:
    cores, python = os.cpu_count(), platform.python_version()
    print(f"\n{cores} cores, Python {python}, {rounds} round(s)\n")
    print("| measurement | rows/s (median, range) | scoring phase rows/s | peak memory MiB |")
    print("|---|---:|---:|---:|")
    for name, runs_of in results.items():
        scoring = [r["scoring_rows_per_second"] for r in runs_of if "scoring_rows_per_second" in r]
        memory = [r["memory"] for r in runs_of if r["memory"]]
        speed = median_range([r["rows_per_second"] for r in runs_of])
        scoring = median_range(scoring) if scoring else ""
        print(f"| {name} | {speed} | {scoring} | {median_range(memory) if memory else ''} |")
    print("\n| target | measured (median, range) | goal | result |")
    print("|---|---:|---|---|")
    for name, values, goal, passed in targets(results, small, big):
        shown = f"{statistics.median(values):.2f}" + (
            f" ({min(values):.2f}-{max(values):.2f})" if len(values) > 1 else ""
        )
        verdict = "" if goal == "(shown)" else ("pass" if passed else "FAIL")
        print(f"| {name} | {shown} | {goal} | {verdict} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the large file")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1,000,000 rows only, one round")
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "penguins-batch-bench"
    )
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--from-json", type=Path, help="print the tables of a saved run")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        found = re.findall(r"([\d,]+) rows", " ".join(saved))
        sizes = sorted({int(number.replace(",", "")) for number in found})
        print_tables(saved, sizes[0], sizes[-1], len(next(iter(saved.values()))))
        return
    small = 1_000_000
    big = small if args.quick else args.rows
    rounds = 1 if args.quick else args.rounds
    print(f"data in {args.data} (generated once, then reused)", file=sys.stderr)
    paths = {rows: generate(args.data, rows) for rows in sorted({small, big})}
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as work:
        runs = scenarios(paths, big, Path(work), args.quick)
        results: dict[str, list[dict]] = {name: [] for name in runs}
        for number in range(rounds):
            for name, run in runs.items():
                print(f"round {number + 1}/{rounds}: {name}", file=sys.stderr)
                results[name].append(run())
    print_tables(results, small, big, rounds)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

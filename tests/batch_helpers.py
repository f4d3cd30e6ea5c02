"""Files and commands for the batch tests: real inputs, the real command, its real output."""

import csv
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from apps.config import MODELS_DIR_ENV, REPO_ROOT
from apps.data import load_data

HEADER = [
    "id",
    "island",
    "sex",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
]
MODEL = "species-classifier"


def penguin_rows(count: int, start: int = 0) -> list[list[str]]:
    """``count`` valid rows (cells as text) cycling through the 344 penguins, with ids."""
    data = load_data()
    rows = []
    for number in range(count):
        bird = data.iloc[(start + number) % len(data)]
        cells = [bird[name] for name in HEADER[1:]]
        if pd.isna(cells[0]):
            cells[0] = "Dream"
        rows.append([f"p{start + number}", *("" if pd.isna(c) else str(c) for c in cells)])
    return rows


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    """A CSV file as a spreadsheet would save it (``\\n`` line ends, quoting where needed)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(text.getvalue().encode())
    return path


def score(*arguments, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m apps.batch score ...`` in a fresh process, as a user runs it."""
    environment = {key: value for key, value in os.environ.items() if key != MODELS_DIR_ENV}
    return subprocess.run(
        [sys.executable, "-m", "apps.batch", "score", *map(str, arguments)],
        cwd=REPO_ROOT,
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def command(*arguments) -> list[str]:
    return [sys.executable, "-m", "apps.batch", "score", *map(str, arguments)]


def data_digests(output: Path) -> dict[str, str]:
    """sha256 of every data file of an output folder (the scored parts and rejects.csv)."""
    files = [*sorted(output.glob("scored/*")), output / "rejects.csv"]
    return {
        f.relative_to(output).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest() for f in files
    }


def scored(output: Path) -> pd.DataFrame:
    """Every scored row of an output folder, in the order of its parts."""
    parts = sorted(output.glob("scored/*.parquet"))
    return pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)


def rejects(output: Path) -> pd.DataFrame:
    return pd.read_csv(output / "rejects.csv", dtype={"field": object, "message": object})

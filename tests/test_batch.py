"""The batch job on real files, run as a real command: rejects, whole-input errors, output.

Every test runs ``python -m apps.batch score`` in a fresh process on files written here,
and reads what it wrote back from the disk.
"""

import contextlib
import gzip
import json
import os
import shutil
import subprocess
import time

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from apps.config import REPO_ROOT

from .batch_helpers import (
    HEADER,
    MODEL,
    command,
    data_digests,
    penguin_rows,
    rejects,
    score,
    scored,
    write_csv,
)
from .conftest import sign_as_trusted

ISLANDS = "['Biscoe', 'Dream', 'Torgersen']"


def bad_rows_file(path):
    """A CSV file with good rows and one bad row of every kind; returns its bytes' lines."""
    good = penguin_rows(4)
    lines = [
        ",".join(HEADER),
        ",".join(good[0]),  # line 2: good
        "b1,Atlantis,male,45,15,220,5000",  # 3: unknown category
        "b2,Biscoe,male,abc,15,220,5000",  # 4: text for a number
        "b3,Biscoe,male,45,15,400,5000",  # 5: above the maximum
        "b4,Biscoe,male,45,15,220,100",  # 6: below the minimum
        "b5,,male,45,15,220,5000",  # 7: a required value left empty
        "b6,Biscoe,male,45,15",  # 8: too few fields
        "b7,Biscoe,male,45,15,220,5000,extra",  # 9: too many fields
        "b8,Biscoe,m\xffle,45,15,220,5000",  # 10: not UTF-8 (written as latin-1 below)
        "b9,Biscoe,male,45,nan,220,inf",  # 11: not finite, twice
        "",  # 12: blank: skipped, not a reject
        ",".join(good[1]),  # 13: good
        'b10,"Biscoe,male,45,15,220,5000',  # 14: a quote never closed
        ",".join(good[2]),  # 15: good, and the last line has no final newline
    ]
    path.write_bytes("\n".join(lines).encode("latin-1"))
    return lines


EXPECTED_REJECTS = [
    (3, "island", f"unknown category; allowed values are {ISLANDS}"),
    (4, "bill_length_mm", "must be a number"),
    (5, "flipper_length_mm", "must be at most 250"),
    (6, "body_mass_g", "must be at least 2000"),
    (7, "island", "is required and may not be null"),
    (8, None, "has 5 fields, the header has 7"),
    (9, None, "has 8 fields, the header has 7"),
    (10, "sex", "is not UTF-8 text"),
    (11, "bill_depth_mm", "must be a finite number (not NaN or infinity)"),
    (11, "body_mass_g", "must be a finite number (not NaN or infinity)"),
    (14, None, "is not valid CSV (unexpected end of data)"),
]


@pytest.mark.parametrize("chunk_rows", [1000, 3])
def test_every_bad_row_goes_to_the_rejects_with_its_line_field_and_reason(tmp_path, chunk_rows):
    bad_rows_file(tmp_path / "birds.csv")
    result = score(
        tmp_path / "birds.csv",
        "--model",
        MODEL,
        "--output",
        tmp_path / "out",
        "--keep",
        "id",
        "--chunk-rows",
        chunk_rows,
    )
    assert result.returncode == 0, result.stderr
    found = rejects(tmp_path / "out")
    assert set(found["source_file"]) == {(tmp_path / "birds.csv").as_posix()}
    assert [
        (row, None if isinstance(field, float) else field, message)
        for row, field, message in zip(
            found["source_row"], found["field"], found["message"], strict=True
        )
    ] == EXPECTED_REJECTS
    table = scored(tmp_path / "out")
    assert table["source_row"].tolist() == [2, 13, 15]
    assert table["id"].tolist() == ["p0", "p1", "p2"]
    assert set(table["predicted_species"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    probabilities = table[["probability_Adelie", "probability_Chinstrap", "probability_Gentoo"]]
    assert probabilities.sum(axis=1).round(6).eq(1).all()
    assert table["model_version"].eq(1).all()
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["rows"] == {"read": 13, "scored": 3, "rejected": 10, "problems": 11}
    assert record["status"] == "complete"
    assert "species-classifier v1 (onnx)" in result.stdout and "rejected" in result.stdout


def test_typed_parquet_values_are_judged_as_json_values_are(tmp_path):
    table = pa.table(
        {
            "island": pa.array(["Biscoe", "Dream", None, "Biscoe", "Biscoe", "Biscoe"]),
            "sex": pa.array(["male", "female", "male", " male", "male", "male"]),
            "bill_length_mm": pa.array(["45", None, None, None, None, None]),
            "bill_depth_mm": pa.array([15.0, 15.0, 15.0, 15.0, float("nan"), None]),
            "flipper_length_mm": pa.array([220, 220, 220, 220, 220, 900], pa.int64()),
            "body_mass_g": pa.array([True, None, None, None, None, None]),
        }
    )
    pq.write_table(table, tmp_path / "birds.parquet", row_group_size=4)
    result = score(
        tmp_path / "birds.parquet",
        "--model",
        MODEL,
        "--output",
        tmp_path / "out",
        "--chunk-rows",
        4,
    )
    assert result.returncode == 0, result.stderr
    found = rejects(tmp_path / "out")
    assert list(zip(found["source_row"], found["field"], found["message"], strict=True)) == [
        (1, "bill_length_mm", "must be a number"),
        (1, "body_mass_g", "must be a number"),
        (3, "island", "is required and may not be null"),
        (4, "sex", "unknown category; allowed values are ['female', 'male']"),
        (5, "bill_depth_mm", "must be a finite number (not NaN or infinity)"),
        (6, "flipper_length_mm", "must be at most 250"),
    ]
    assert scored(tmp_path / "out")["source_row"].tolist() == [2]


# --- problems with a whole input: exit code 2, nothing written ------------------------------


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


WHOLE_INPUT_PROBLEMS = {
    "empty": (b"", "the file is empty"),
    "header only": (b"island,sex\n\n", "has a header but no rows"),
    "no island": (b"sex,bill_length_mm\nmale,40\n", "has no column island, which the model needs"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "holds binary data"),
    "excel": (b"PK\x03\x04" + bytes(60), "is a ZIP file (an Excel workbook?)"),
    "not utf-8": (b"isl\xe4nd,sex\nBiscoe,male\n", "the header is not UTF-8 text"),
    "broken gzip": (b"\x1f\x8b\x08\x00broken", "is not a readable gzip file"),
    "broken parquet": (b"PAR1 this is no parquet", "is not a readable Parquet file"),
    "parquet, no rows": (
        _parquet_bytes(pa.table({"island": pa.array([], pa.string())})),
        "a Parquet file with no rows",
    ),
    "twice the same name": (b"island,sex,island\nBiscoe,male,Dream\n", "appears more than once"),
}


@pytest.mark.parametrize("case", WHOLE_INPUT_PROBLEMS, ids=list(WHOLE_INPUT_PROBLEMS))
def test_a_file_that_cannot_be_used_stops_the_job_before_it_writes_anything(tmp_path, case):
    content, message = WHOLE_INPUT_PROBLEMS[case]
    (tmp_path / "input.csv").write_bytes(content)
    write_csv(tmp_path / "good.csv", penguin_rows(3))
    result = score(
        tmp_path / "good.csv",
        tmp_path / "input.csv",
        "--model",
        MODEL,
        "--output",
        tmp_path / "out",
    )
    assert result.returncode == 2, result.stderr
    assert "nothing was written" in result.stderr
    assert (
        f"{(tmp_path / 'input.csv').as_posix()}: " in result.stderr
        or "input.csv has" in result.stderr
    )
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.csv"], "missing.csv: no such file or folder"),
        (["empty-folder"], "empty-folder: the folder has no .csv, .csv.gz, .parquet, .pq files"),
        (["good.csv", "--keep", "tag"], "has no column tag to keep (--keep)"),
        (["good.csv", "--version", "99"], "has no version 99"),
        (["good.csv", "--model", "no-such-model"], "no model named 'no-such-model'"),
    ],
)
def test_a_bad_command_is_refused_with_exit_code_2(tmp_path, arguments, message):
    write_csv(tmp_path / "good.csv", penguin_rows(3))
    (tmp_path / "empty-folder").mkdir()
    arguments = [tmp_path / a if a.endswith((".csv", "folder")) else a for a in arguments]
    if "--model" not in arguments:
        arguments += ["--model", MODEL]
    result = score(*arguments, "--output", tmp_path / "out")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "arguments",
    [[], ["--chunk-rows", "0"], ["--max-reject-fraction", "2"], ["--backend", "tensorflow"]],
)
def test_invalid_options_exit_with_2_and_the_usage(tmp_path, arguments):
    write_csv(tmp_path / "good.csv", penguin_rows(3))
    result = score(tmp_path / "good.csv", "--output", tmp_path / "out", *arguments)
    assert result.returncode == 2
    assert "usage: python -m apps.batch score" in result.stderr


def test_an_output_folder_that_holds_something_else_is_refused(tmp_path):
    write_csv(tmp_path / "good.csv", penguin_rows(3))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    result = score(tmp_path / "good.csv", "--model", MODEL, "--output", tmp_path / "out")
    assert result.returncode == 2
    assert "is not empty and was not written by this command" in result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"]
    into_a_file = score(tmp_path / "good.csv", "--model", MODEL, "--output", tmp_path / "good.csv")
    assert into_a_file.returncode == 2
    assert "is a file, not a folder" in into_a_file.stderr


# --- the output: the same input and model give the same bytes -------------------------------


def mixed_file(path, rows: int = 3000, bad: tuple[int, str] = (3, "not a number")):
    """Good rows with a bad one every 97 rows: text in a number column, by default."""
    lines = penguin_rows(rows)
    column, value = bad
    for number in range(0, rows, 97):
        lines[number][column] = value
    return write_csv(path, lines)


@pytest.mark.slow
def test_the_same_input_and_model_give_byte_identical_files(tmp_path):
    mixed_file(tmp_path / "birds.csv")
    common = ["--model", MODEL, "--keep", "id", "--chunk-rows", 500]
    first = score(tmp_path / "birds.csv", "--output", tmp_path / "one", *common)
    second = score(tmp_path / "birds.csv", "--output", tmp_path / "two", *common, "--threads", 1)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    digests = data_digests(tmp_path / "one")
    assert len(digests) == 7  # six parts and rejects.csv
    assert digests == data_digests(tmp_path / "two")
    assert len(rejects(tmp_path / "one")) == 31
    again = score(tmp_path / "birds.csv", "--output", tmp_path / "one", *common)
    assert again.returncode == 0
    assert "is complete already: nothing to do" in again.stderr
    assert data_digests(tmp_path / "one") == digests


@pytest.mark.slow
def test_csv_gzip_parquet_and_folders_give_the_same_scores(tmp_path):
    source = mixed_file(tmp_path / "birds.csv", rows=500, bad=(1, "Atlantis"))  # an island
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "birds.csv.gz").write_bytes(gzip.compress(source.read_bytes()))
    (tmp_path / "folder" / "_SUCCESS").write_text("")  # not an input: starts with _
    frame = pacsv.read_csv(source, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    pq.write_table(frame, tmp_path / "birds.parquet")
    results = {}
    for name, given in [
        ("csv", source),
        ("gzip", tmp_path / "folder"),
        ("parquet", tmp_path / "birds.parquet"),
    ]:
        output = tmp_path / f"out-{name}"
        result = score(
            given, "--model", MODEL, "--output", output, "--keep", "id", "--chunk-rows", 100
        )
        assert result.returncode == 0, result.stderr
        results[name] = scored(output).drop(columns=["source_file"])
    assert results["csv"]["source_row"].iloc[0] == 3  # the first good row is on line 3
    assert results["parquet"]["source_row"].iloc[0] == 2  # ... and is Parquet's second row
    assert (
        results["csv"].drop(columns="source_row").equals(results["gzip"].drop(columns="source_row"))
    )
    assert results["csv"][["id", "predicted_species"]].equals(
        results["parquet"][["id", "predicted_species"]]
    )
    assert (results["csv"]["source_row"] == results["gzip"]["source_row"]).all()
    folder = json.loads((tmp_path / "out-gzip" / "run.json").read_text())
    assert [i["path"] for i in folder["inputs"]] == [
        f"{(tmp_path / 'folder').as_posix()}/birds.csv.gz"
    ]
    assert folder["inputs"][0]["format"] == "csv.gz"


def test_csv_output_on_request(tmp_path):
    write_csv(tmp_path / "birds.csv", penguin_rows(5))
    result = score(
        tmp_path / "birds.csv",
        "--model",
        "body-mass-regressor",
        "--output",
        tmp_path / "out",
        "--format",
        "csv",
        "--keep",
        "id",
    )
    assert result.returncode == 2  # the regressor needs the species, which this file lacks
    assert "has no column species, which the model needs" in result.stderr
    rows = penguin_rows(5)
    species = [["Adelie", *row] for row in rows]
    write_csv(tmp_path / "birds.csv", species, ["species", *HEADER])
    result = score(
        tmp_path / "birds.csv",
        "--model",
        "body-mass-regressor",
        "--output",
        tmp_path / "out",
        "--format",
        "csv",
        "--keep",
        "id",
    )
    assert result.returncode == 0, result.stderr
    (part,) = (tmp_path / "out" / "scored").iterdir()
    assert part.name == "part-00000-000000.csv"
    header, *lines = part.read_text().splitlines()
    assert header == "source_file,source_row,id,predicted_body_mass_g,model_version"
    assert len(lines) == 5 and all(2000 < float(line.split(",")[3]) < 7500 for line in lines)


def test_too_many_rejects_exit_with_3_and_keep_the_output(tmp_path):
    mixed_file(tmp_path / "birds.csv", rows=300)  # 4 bad rows of 300: 1.3%
    strict = score(
        tmp_path / "birds.csv",
        "--model",
        MODEL,
        "--output",
        tmp_path / "strict",
        "--max-reject-fraction",
        "0.01",
    )
    assert strict.returncode == 3, strict.stderr
    assert "more than 1.0% of the rows were rejected: exit 3" in strict.stdout
    assert (
        json.loads((tmp_path / "strict" / "run.json").read_text())["status"] == "too many rejects"
    )
    assert len(scored(tmp_path / "strict")) == 296
    lenient = score(
        tmp_path / "birds.csv",
        "--model",
        MODEL,
        "--output",
        tmp_path / "lenient",
        "--max-reject-fraction",
        "0.02",
    )
    assert lenient.returncode == 0, lenient.stderr


# --- resuming: only into the output of the same job -----------------------------------------


def test_an_output_from_another_input_or_model_is_never_resumed(tmp_path):
    source = mixed_file(tmp_path / "birds.csv", rows=200)
    common = ["--model", MODEL, "--output", tmp_path / "out"]
    assert score(source, *common).returncode == 0
    before = data_digests(tmp_path / "out")

    source.write_bytes(source.read_bytes().replace(b"Torgersen", b"Dream", 1))
    changed = score(source, *common)
    assert changed.returncode == 2
    assert f"{source.as_posix()} has changed since (sha256 " in changed.stderr

    mixed_file(source, rows=200)  # back to what it was
    assert "--chunk-rows was 50000, now 50" in score(source, *common, "--chunk-rows", 50).stderr
    assert (
        "--backend was onnx, now sklearn" in score(source, *common, "--backend", "sklearn").stderr
    )

    models = tmp_path / "models"
    shutil.copytree(REPO_ROOT / "models", models)
    manifest = models / MODEL / "1" / "manifest.json"
    manifest.write_text(manifest.read_text().replace("Predicts a penguin", "Guesses a penguin"))
    sign_as_trusted(manifest.parent)  # another model, from a trusted publisher
    other = score(source, *common, "--models", models)
    assert other.returncode == 2
    assert "it was made by species-classifier v1 (manifest " in other.stderr
    assert "Choose a new --output folder" in other.stderr
    assert data_digests(tmp_path / "out") == before


# --- exactly once: kill -9 at any moment, then resume ----------------------------------------


def chunk_lines(ledger) -> int:
    text = ledger.read_text() if ledger.exists() else ""
    return text.count('"chunk"')


def kill_when(process, ledger, chunks: int) -> bool:
    """SIGKILL the job once its ledger lists ``chunks`` chunks; False if it ended first."""
    while process.poll() is None:
        if chunk_lines(ledger) >= chunks:
            process.kill()  # SIGKILL: no handler, no clean-up, as a crash or the OOM killer
            process.wait()
            return True
        time.sleep(0.002)
    return False


def assert_exactly_once(output, reference):
    """The same data files as an uninterrupted run, and each row in them once."""
    assert data_digests(output) == data_digests(reference)
    rows = scored(output)["source_row"]
    assert rows.is_unique
    assert not list(output.rglob("*.tmp")) and not (output / "_rejects").exists()


@pytest.mark.slow
def test_killed_at_several_points_the_job_resumes_with_every_row_exactly_once(tmp_path):
    source = mixed_file(tmp_path / "birds.csv", rows=40_000)
    common = ["--model", MODEL, "--keep", "id", "--chunk-rows", 500, "--threads", 1]
    reference = tmp_path / "reference"
    assert score(source, "--output", reference, *common).returncode == 0
    output, ledger = tmp_path / "out", tmp_path / "out" / "_ledger.jsonl"
    kills = 0
    for chunks in (0, 3, 30, 60):
        process = subprocess.Popen(
            command(source, "--output", output, *common),
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        kills += kill_when(process, ledger, chunks)
    assert kills >= 3, "the job ended before it could be killed: use a larger file"
    assert 0 < chunk_lines(ledger) < 80
    final = score(source, "--output", output, *common)
    assert final.returncode == 0, final.stderr
    assert "resuming: " in final.stderr
    assert_exactly_once(output, reference)
    record = json.loads((output / "run.json").read_text())
    assert record["rows"] == json.loads((reference / "run.json").read_text())["rows"]
    assert record["attempts"] >= 3


def _ledger_lines(output) -> list[str]:
    """The ledger without its ``finished`` line: a job that has not ended yet."""
    lines = (output / "_ledger.jsonl").read_text().splitlines()
    return [line for line in lines if '"finished"' not in line]


def cut_last_line(output):
    lines = _ledger_lines(output)
    (output / "_ledger.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:25])


def renamed_but_not_recorded(output):
    (output / "_ledger.jsonl").write_text("\n".join(_ledger_lines(output)[:-1]) + "\n")


def temporary_file_left_and_not_finished(output):
    (output / "scored" / ".part-00000-000001.parquet.0123.tmp").write_bytes(b"half a part")
    (output / "_ledger.jsonl").write_text("\n".join(_ledger_lines(output)) + "\n")


def committed_part_lost_since(output):
    (output / "scored" / "part-00000-000002.parquet").unlink()


@pytest.mark.slow
@pytest.mark.parametrize(
    "crash",
    [
        cut_last_line,
        renamed_but_not_recorded,
        temporary_file_left_and_not_finished,
        committed_part_lost_since,
    ],
)
def test_each_crash_state_resumes_to_the_same_files(tmp_path, crash):
    """The states a crash can leave, made on purpose: each resumes to the same files."""
    source = mixed_file(tmp_path / "birds.csv", rows=2_000)
    common = ["--model", MODEL, "--keep", "id", "--chunk-rows", 400]
    reference, output = tmp_path / "reference", tmp_path / "out"
    assert score(source, "--output", reference, *common).returncode == 0
    shutil.copytree(reference, output)
    crash(output)
    result = score(source, "--output", output, *common)
    assert result.returncode == 0, result.stderr
    assert "complete already" not in result.stderr
    assert_exactly_once(output, reference)


# --- progress: a bar on a terminal, plain lines in a log -------------------------------------


@pytest.mark.skipif(os.name == "nt", reason="pseudo-terminals are a POSIX feature")
def test_a_terminal_gets_a_progress_bar_and_a_log_gets_none(tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    source = mixed_file(tmp_path / "birds.csv", rows=3000)
    common = ["--model", MODEL, "--chunk-rows", 500]
    piped = score(source, "--output", tmp_path / "piped", *common)
    assert piped.returncode == 0
    assert "\r" not in piped.stderr and "%|" not in piped.stderr

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    process = subprocess.Popen(
        command(source, "--output", tmp_path / "terminal", *common),
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    shown = b""
    with contextlib.suppress(OSError):  # the terminal closes when the job ends
        while chunk := os.read(controller, 4096):
            shown += chunk
    os.close(controller)
    assert process.wait(timeout=120) == 0
    text = shown.decode(errors="replace")
    assert "scoring: 100%|" in text and "rows/s" in text


def test_a_model_that_does_not_verify_fails_with_1_before_anything_is_written(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(REPO_ROOT / "models", models)
    (models / MODEL / "1" / "model.onnx").write_bytes(b"not the model that was saved")
    write_csv(tmp_path / "birds.csv", penguin_rows(3))
    result = score(
        tmp_path / "birds.csv", "--model", MODEL, "--output", tmp_path / "out", "--models", models
    )
    assert result.returncode == 1, result.stderr
    assert "model.onnx has sha256" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_write_cut_short_during_the_run_leaves_no_temporary_file(tmp_path):
    """A Dask worker killed in the middle of writing a part leaves its temporary file; its
    chunk is done again elsewhere, so the finished folder must not keep the leftover."""
    from apps.batch.commit import TEMPORARY
    from apps.batch.output import SCORED, Output

    output = Output.open(tmp_path / "out", {"job": "test"})
    leftover = tmp_path / "out" / SCORED / f".part-00000-000001.parquet.dead{TEMPORARY}"
    leftover.write_bytes(b"half a part")  # after open: the start-of-run clean-up is over
    output.finish({"status": "complete"})
    assert not leftover.exists()
    assert sorted(p.name for p in (tmp_path / "out" / SCORED).iterdir()) == []

"""The output folder and its ledger: what makes a job resumable, and its output exactly once.

The folder holds ``scored/`` (one part file per chunk), ``rejects.csv``, ``run.json`` and
``_ledger.jsonl``. The ledger's first line records what the output is made from (the
inputs' sha256, the model and its manifest's sha256, the settings); each further line
records one committed chunk, appended and fsync'd only *after* the chunk's files were
renamed into place. So after a crash at any moment, every chunk in the ledger is whole
on disk, and every other chunk is simply done again, giving the same bytes.
"""

import json
import shutil
from pathlib import Path

from apps.batch.commit import append_line, remove_temporary_files, write_atomically

LEDGER = "_ledger.jsonl"
SCORED = "scored"
REJECT_PARTS = "_rejects"
REJECTS = "rejects.csv"
RUN_RECORD = "run.json"


class OutputError(Exception):
    """The output folder cannot take this job's output (it holds another job's)."""


class Output:
    """An output folder, opened for a job with this ``identity``; resumes if it can."""

    def __init__(self, folder: str | Path, identity: dict):
        self.folder, self.identity = Path(folder), identity
        self.done: dict[tuple[int, int], dict] = {}
        self.finished = False
        self.attempts = 0
        self.first_started: str | None = None

    @classmethod
    def open(cls, folder: str | Path, identity: dict) -> "Output":
        """Start a new output folder, or reopen one that the same job began."""
        output = cls(folder, identity)
        ledger = output.folder / LEDGER
        if output.folder.exists() and not output.folder.is_dir():
            raise OutputError(f"{folder} is a file, not a folder: choose a new --output folder")
        if ledger.is_file():
            output._resume(ledger)
        elif output.folder.exists() and any(output.folder.iterdir()):
            raise OutputError(
                f"{folder} is not empty and was not written by this command: "
                "choose a new --output folder"
            )
        else:
            (output.folder / SCORED).mkdir(parents=True, exist_ok=True)
            write_atomically(ledger, (_line({"identity": identity}) + "\n").encode())
        if not output.finished:
            for name in (SCORED, REJECT_PARTS):
                (output.folder / name).mkdir(exist_ok=True)
            output._remove_temporary_files()
        return output

    def _remove_temporary_files(self) -> None:
        """Drop what writes cut short left behind (a crash, a killed worker): never committed."""
        for folder in (self.folder / SCORED, self.folder / REJECT_PARTS, self.folder):
            remove_temporary_files(folder)

    def _resume(self, ledger: Path) -> None:
        lines = ledger.read_text(encoding="utf-8").splitlines()
        entries = []
        for number, line in enumerate(lines):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                if number < len(lines) - 1:
                    raise OutputError(f"{ledger} is damaged (line {number + 1})") from None
                # the last line, cut short by a crash: its chunk is done again
        if not entries or "identity" not in entries[0]:
            raise OutputError(f"{ledger} has no identity line: choose a new --output folder")
        reasons = differences(entries[0]["identity"], self.identity)
        if reasons:
            raise OutputError(
                f"{self.folder} holds the output of another job: {'; '.join(reasons)}. "
                "Choose a new --output folder, or delete this one to start again."
            )
        chunks = [e for e in entries[1:] if "chunk" in e]
        finished = any("finished" in e for e in entries[1:])
        self.done = {tuple(e["chunk"]): e for e in chunks if self._whole(e, finished)}
        lost = len(self.done) < len(chunks)  # files gone since: those chunks are done again
        if finished and lost:  # and so are those whose rejects were merged into rejects.csv
            self.done = {tuple(e["chunk"]): e for e in chunks if self._whole(e, False)}
        others = [e for e in entries[1:] if "chunk" not in e and not (lost and "finished" in e)]
        self.finished = finished and not lost
        self.attempts = sum("attempt" in e for e in others)
        self.first_started = next((e["started"] for e in others if "attempt" in e), None)
        kept = [entries[0], *others, *self.done.values()]
        if len(kept) != len(entries) or len(lines) != len(entries):
            write_atomically(ledger, "".join(_line(e) + "\n" for e in kept).encode())

    def _whole(self, entry: dict, finished: bool) -> bool:
        """Whether a committed chunk's files are all there, with their recorded sizes.

        Once the job has finished, its rejects live in ``rejects.csv``, not in parts.
        """
        if finished and entry.get("rejects") and not (self.folder / REJECTS).is_file():
            return False
        return all(
            (self.folder / name).is_file() and (self.folder / name).stat().st_size == size
            for name, size in entry["files"].items()
            if not (finished and name.startswith(REJECT_PARTS))
        )

    def begin_attempt(self, started: str) -> None:
        self.attempts += 1
        append_line(self.folder / LEDGER, _line({"attempt": self.attempts, "started": started}))

    def record(self, entry: dict) -> None:
        """Note a chunk whose files are committed: from now on it is never done again."""
        append_line(self.folder / LEDGER, _line(entry))
        self.done[tuple(entry["chunk"])] = entry

    def finish(self, run_record: dict) -> None:
        """Merge the chunks' rejects into ``rejects.csv``, write ``run.json``, and say so.

        Each step can be repeated: until the ledger says ``finished``, a rerun does all
        of them again from the committed chunks, with the same result. A worker killed in
        the middle of a write (its chunk was done again elsewhere) left a temporary file:
        every chunk is committed now, so those go.
        """
        if not self.finished:
            self._remove_temporary_files()
            parts = [
                self.folder / entry["rejects"]
                for _, entry in sorted(self.done.items())
                if entry.get("rejects")
            ]
            write_atomically(self.folder / REJECTS, _concatenated_csv(parts, REJECTS_HEADER))
            text = json.dumps(run_record, indent=2, sort_keys=True) + "\n"
            write_atomically(self.folder / RUN_RECORD, text.encode())
            append_line(self.folder / LEDGER, _line({"finished": True}))
            self.finished = True
        shutil.rmtree(self.folder / REJECT_PARTS, ignore_errors=True)  # merged: not needed

    def run_record(self) -> dict:
        return json.loads((self.folder / RUN_RECORD).read_text(encoding="utf-8"))


REJECTS_HEADER = b"source_file,source_row,field,message\n"
"""The first line of ``rejects.csv``, and of each chunk's part (see scoring.score)."""


def _concatenated_csv(parts: list[Path], header: bytes):
    """The CSV files' rows one after the other, under one header, read a file at a time."""
    yield header
    for part in parts:
        with open(part, "rb") as file:
            file.readline()  # its own header
            yield file.read()


def differences(old: dict, new: dict) -> list[str]:
    """Why an output made with identity ``old`` cannot be continued with ``new``."""
    reasons = []
    if old["model"] != new["model"]:
        was, now = (
            f"{m['name']} v{m['version']} (manifest {m['manifest_sha256'][:12]}...)"
            for m in (old["model"], new["model"])
        )
        reasons.append(f"it was made by {was}, this run uses {now}")
    labels = [i["path"] for i in old["inputs"]], [i["path"] for i in new["inputs"]]
    if labels[0] != labels[1]:
        reasons.append(
            f"it was made from {', '.join(labels[0])}; this run reads {', '.join(labels[1])}"
        )
    else:
        for was, now in zip(old["inputs"], new["inputs"], strict=True):
            if was["sha256"] != now["sha256"]:
                reasons.append(
                    f"{now['path']} has changed since (sha256 {was['sha256'][:12]}... then, "
                    f"{now['sha256'][:12]}... now)"
                )
    for setting in ("backend", "chunk_rows", "format", "keep"):
        if old.get(setting) != new.get(setting):
            reasons.append(
                f"--{setting.replace('_', '-')} was {old.get(setting)}, now {new.get(setting)}"
            )
    return reasons


def _line(entry: dict) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"))

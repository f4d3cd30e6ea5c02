"""Writing a file so that it is either there, whole, or not there at all.

A process killed while writing leaves a half-written file. So each file is written
under a temporary name, flushed to the disk (``fsync``), and only then renamed to its
final name: a rename within a folder is atomic, so a reader (or a rerun) sees the old
state or the new one, never a mix. The folder is synced too, so that the rename itself
survives a power cut. The same name always gets the same bytes here, so writing a file
twice (a task that Dask runs again) changes nothing.
"""

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

TEMPORARY = ".tmp"
"""Suffix of files being written; whatever has it after a crash is garbage."""


def write_atomically(path: Path, data: bytes | memoryview | Iterable[bytes]) -> None:
    """Write ``data`` (bytes, or pieces of bytes) to ``path`` with the temporary file,
    fsync and rename protocol."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}{TEMPORARY}")
    try:
        with open(temporary, "wb") as file:
            for piece in [data] if isinstance(data, bytes | memoryview) else data:
                file.write(piece)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)  # atomic; replaces an older copy, also on Windows
    finally:
        temporary.unlink(missing_ok=True)
    sync_folder(path.parent)


def append_line(path: Path, line: str) -> None:
    """Add a line to a log file and wait until it is on the disk."""
    with open(path, "a", encoding="utf-8", newline="\n") as file:
        file.write(line + "\n")
        file.flush()
        os.fsync(file.fileno())


def sync_folder(folder: Path) -> None:
    """Make a folder's entries (a rename, a new file) durable; a no-op on Windows."""
    if os.name == "nt":  # Windows cannot open a folder as a file; NTFS journals renames
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_temporary_files(folder: Path) -> int:
    """Delete what killed writers left behind; returns how many files there were."""
    leftovers = [p for p in folder.glob(f".*{TEMPORARY}") if p.is_file()]
    for path in leftovers:
        path.unlink(missing_ok=True)
    return len(leftovers)

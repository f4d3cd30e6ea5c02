"""Writing a new version into the registry: all of it, or nothing.

The files of a version are written into a hidden folder beside the versions, each one
flushed to disk, and the folder is renamed to its number only when it is complete. The
registry lists only numbered folders that hold a manifest, so no reader ever sees half
a version, and a crash leaves nothing but a hidden folder behind. The registry itself
computes each file's sha256 from the bytes it writes: the fingerprints in a manifest
are never a caller's claim. Small files that change (a model's aliases) are replaced
atomically, by one writer at a time.
"""

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from apps.registry.errors import RegistryError
from apps.registry.manifest import MANIFEST_FILE, Manifest, sha256_bytes

LOCK_SECONDS = 10.0
"""How long a writer waits for another one; a lock older than this was left by a crash."""


def _write(path: Path, content: bytes) -> None:
    with open(path, "wb") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())


def _stage(staging: Path, files: dict[str, tuple[str, bytes]], facts: dict, version: int):
    """Fill the hidden folder with the files and their manifest, ready to be renamed."""
    artifacts = {}
    for file_name, (fmt, content) in files.items():
        _write(staging / file_name, content)
        artifacts[file_name] = {
            "format": fmt,
            "sha256": sha256_bytes(content),
            "bytes": len(content),
        }
    manifest = Manifest(
        {**facts, "name": staging.parent.name, "version": version, "artifacts": artifacts}
    )
    manifest.write(staging)
    with open(staging / MANIFEST_FILE, "rb+") as file:
        os.fsync(file.fileno())
    return manifest


def publish(
    model_dir: Path,
    files: dict[str, tuple[str, bytes]],
    facts: dict,
    version: int | None = None,
    sign: Callable[[Path], object] | None = None,
) -> Manifest:
    """Write a version of the model in ``model_dir``: ``version``, or the next free number.
    ``sign(folder)`` signs the manifest before the version appears, so that no reader ever
    sees it unsigned.

    Two writers may pick the same next number: the rename of the second one fails, and it
    takes the number after. An explicit ``version`` that exists already is refused.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    number = version
    while True:
        if number is None:
            taken = [
                int(p.name) for p in model_dir.iterdir() if p.name.isascii() and p.name.isdigit()
            ]
            number = max(taken, default=0) + 1
        staging = Path(tempfile.mkdtemp(dir=model_dir, prefix=".staging-"))
        try:
            manifest = _stage(staging, files, facts, number)
            if sign is not None:
                sign(staging)
            os.rename(staging, model_dir / str(number))
        except BaseException as error:  # the number was taken meanwhile, or a write failed
            shutil.rmtree(staging, ignore_errors=True)
            if not isinstance(error, OSError):
                raise
            if not (model_dir / str(number)).exists():
                raise RegistryError(f"cannot write {model_dir.name} v{number}: {error}") from None
            if version is not None:
                raise RegistryError(f"{model_dir.name} v{number} exists already") from None
            number = None
            continue
        _sync_folder(model_dir)
        return manifest


def _sync_folder(path: Path) -> None:
    """Make a rename durable: flush the folder itself (POSIX; Windows has no such call)."""
    if os.name != "nt":
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def replace_file(path: Path, text: str) -> None:
    """Replace a file atomically: a temporary file beside it, flushed, renamed over it.

    Windows refuses to replace a file that another process is reading at that instant
    (an API worker polling it): the rename is tried again for a moment.
    """
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        for attempt in range(50):
            try:
                os.replace(temporary, path)
                break
            except PermissionError:
                if attempt == 49:
                    raise
                time.sleep(0.01)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def locked(folder: Path, name: str = ".lock") -> Iterator[None]:
    """Hold a lock on ``folder``: a file that is created only if it does not exist yet,
    which works the same on every OS. A lock older than ``LOCK_SECONDS`` is taken over."""
    lock = folder / name
    deadline = time.monotonic() + LOCK_SECONDS
    while True:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            try:
                if time.time() - lock.stat().st_mtime > LOCK_SECONDS:
                    lock.unlink(missing_ok=True)  # left behind by a writer that crashed
                    continue
            except FileNotFoundError:
                continue
            if time.monotonic() > deadline:
                raise RegistryError(f"{folder.name}: another process holds {name}") from None
            time.sleep(0.05)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)

"""Key files for tests: the lines a server reads, made from keys the test chooses."""

from pathlib import Path

from apps.api.keys import ApiKey, digest


def key_line(name: str, key: str, scopes: tuple[str, ...] = ("predict",)) -> str:
    """The key file's line for ``key``, as ``python3 course.py key new`` writes it."""
    return ApiKey(name, frozenset(scopes), digest(key)).line()


def write_key_file(path: Path, *keys: str, scopes: tuple[str, ...] = ("predict",)) -> Path:
    """A key file holding the hashes of ``keys`` (named key-1, key-2, ...), all with ``scopes``."""
    lines = [key_line(f"key-{i}", key, scopes) for i, key in enumerate(keys, start=1)]
    path.write_text("# name  scopes  sha256\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path

"""API keys: made at random, kept as hashes, checked in constant time, each with scopes.

A key file (``API_KEYS_FILE``) holds one line per key, never the key itself::

    # name          scopes          sha256 of the key
    ui-2026-11      predict         sha256:0b6f...
    ops-2026-11     predict,admin   sha256:9c1e...

Whoever reads the file (a backup, a log of the container's mounts, a colleague's
screen) learns names and scopes, not keys. A plain SHA-256 is enough here because our
keys are 256 random bits: a slow password hash (argon2, scrypt) protects guessable
passwords, and would cost every request tens of milliseconds for nothing. Two lines
with the same scope are two valid keys: rotation adds the new key, moves the clients,
then removes the old line (docs/calling-the-api.md#rotating-a-key).

``python -m apps.api.keys new --name NAME --scope predict`` makes a key and prints it
with its line (``python3 course.py key ...`` does the same).
"""

import argparse
import hashlib
import hmac
import logging
import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

SCOPES = ("predict", "admin")
"""``predict``: the model routes; ``admin``: routes that change what the server does."""
HASH_PREFIX = "sha256:"
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MIN_KEY_LENGTH = 20
log = logging.getLogger(__name__)


class KeyFileError(ValueError):
    """A key file that the server must not start with; the message says how to fix it."""


def digest(key: str) -> bytes:
    """The SHA-256 of a key: what the key file stores, and what a request's key is hashed to."""
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class ApiKey:
    """One accepted key: a name for logs, its scopes, and the hash of the secret."""

    name: str
    scopes: frozenset[str]
    digest: bytes

    def line(self) -> str:
        """The key file's line for this key."""
        return f"{self.name}  {','.join(sorted(self.scopes))}  {HASH_PREFIX}{self.digest.hex()}"


def make_key(name: str, scopes: list[str]) -> tuple[str, ApiKey]:
    """A new random key (43 URL-safe characters, 256 bits) and its entry."""
    key = secrets.token_urlsafe(32)
    return key, ApiKey(check_name(name), check_scopes(scopes), digest(key))


def check_name(name: str) -> str:
    """A key's name: letters, digits, ``.``, ``_``, ``-``; no spaces (it is a column)."""
    if not KEY_NAME.fullmatch(name):
        raise KeyFileError(f"{name[:64]!r} is not a key name: letters, digits, '.', '_', '-'")
    return name


def check_scopes(scopes: list[str]) -> frozenset[str]:
    """Known scopes only: a typo such as ``admn`` must not silently grant nothing."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise KeyFileError(f"scopes must be some of {', '.join(SCOPES)}; not {unknown or 'none'}")
    return frozenset(scopes)


def parse_line(line: str) -> ApiKey:
    """One line of a key file: ``name scopes sha256:<64 hex digits>``."""
    fields = line.split()
    if len(fields) != 3 or not fields[2].startswith(HASH_PREFIX):
        raise KeyFileError("is not 'name scopes sha256:<hash>'")
    name, scopes, hashed = fields
    try:
        value = bytes.fromhex(hashed.removeprefix(HASH_PREFIX))
    except ValueError:
        value = b""
    if len(value) != hashlib.sha256().digest_size:
        raise KeyFileError("has a hash that is not 64 hexadecimal digits")
    return ApiKey(check_name(name), check_scopes(scopes.split(",")), value)


def read_key_file(path: Path) -> tuple[ApiKey, ...]:
    """Every key of a key file; refuse a file the server must not trust.

    A file that holds no key is an error, not "no authentication": an empty secret (a
    command that failed while writing it, say) must not open every route. Messages
    name the line, never its text: a key pasted by mistake must not reach a log.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "it is not UTF-8 text"
        raise KeyFileError(f"API_KEYS_FILE: cannot read {path}: {reason}") from None
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            keys.append(parse_line(line))
        except KeyFileError as error:
            raise KeyFileError(
                f"API_KEYS_FILE {path}, line {number}, {error}: the file holds hashes of keys, "
                "never keys (`python3 course.py key new --help` makes a key and its line)"
            ) from None
    if not keys:
        raise KeyFileError(
            f"API_KEYS_FILE names {path}, which holds no key (only blank lines or "
            "comments): add a key's line, or unset API_KEYS_FILE to run without keys"
        )
    for field, values in (("name", [k.name for k in keys]), ("key", [k.digest for k in keys])):
        if len(set(values)) != len(values):
            raise KeyFileError(f"API_KEYS_FILE {path}: two lines have the same {field}")
    return tuple(keys)


def plain_keys(keys: tuple[str, ...], scopes: frozenset[str], label: str) -> tuple[ApiKey, ...]:
    """Keys given in clear (``API_KEYS``, ``API_ADMIN_KEYS``): for a laptop and tests only."""
    return tuple(ApiKey(f"{label}-{i}", scopes, digest(k)) for i, k in enumerate(keys, start=1))


@dataclass(frozen=True)
class KeyRing:
    """The keys in force at one moment."""

    keys: tuple[ApiKey, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.keys)

    def match(self, presented: str) -> ApiKey | None:
        """The entry of a presented key, or None.

        The presented key is hashed once, then compared with every entry with
        ``hmac.compare_digest``, without stopping at the first match: the time taken
        says nothing about which key, or how much of one, was right.
        """
        given = digest(presented)
        found = [entry for entry in self.keys if hmac.compare_digest(given, entry.digest)]
        return found[0] if found else None


class KeySource:
    """The keys in force: those given in clear, plus a key file read again when it changes.

    Rotation needs no restart: add the new key's line, and the next request of every
    worker sees it (one ``stat`` per request tells). A file that becomes unreadable or
    invalid leaves the keys read before in force, and says so in the log.
    """

    def __init__(self, fixed: tuple[ApiKey, ...] = (), path: Path | None = None):
        self.fixed, self.path = fixed, path
        self._stamp = self._stamp_now() if path else None
        self._ring = KeyRing(fixed + (read_key_file(path) if path else ()))

    def _stamp_now(self) -> tuple[int, int, int] | None:
        if self.path is None:
            return None
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size, info.st_ino

    def current(self) -> KeyRing:
        """The key ring, after reading the key file again if it changed."""
        if self.path is None:
            return self._ring
        stamp = self._stamp_now()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._ring = KeyRing(self.fixed + read_key_file(self.path))
            except KeyFileError as error:
                log.error("%s; the keys read before stay in force", error)
            else:
                log.info("key file read again: %d keys", len(self._ring.keys))
        return self._ring


def write_private(path: Path, text: str, append: bool = False) -> None:
    """Write a secret's file readable by its owner only (0600 where the OS has modes).

    Appending writes the line in one call and keeps the file's inode, so that a server
    with the file bind-mounted (Docker, Podman) sees the change.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    descriptor = os.open(path, flags, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as file:
        file.write(text)


def add_line(path: Path, entry: ApiKey) -> None:
    """Append a key's line to a key file, refusing a name the file already has."""
    existing = read_key_file(path) if path.is_file() and path.stat().st_size else ()
    if entry.name in {k.name for k in existing}:
        raise KeyFileError(f"{path} already has a key named {entry.name}")
    text = path.read_text(encoding="utf-8") if existing else ""
    write_private(
        path, ("\n" if text and not text.endswith("\n") else "") + entry.line() + "\n", True
    )


def remove_line(path: Path, name: str) -> None:
    """Remove the line of the key named ``name``; refuse to remove the last key."""
    keys = read_key_file(path)
    if name not in {k.name for k in keys}:
        raise KeyFileError(f"{path} has no key named {name}; it has {[k.name for k in keys]}")
    if len(keys) == 1:
        raise KeyFileError(f"{name} is the only key of {path}: add its successor first")
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if not line.strip() or line.lstrip().startswith("#") or line.split()[0] != name
    ]
    with open(path, "r+", encoding="utf-8", newline="\n") as file:  # same inode, see above
        file.write("\n".join(kept) + "\n")
        file.truncate()


def command_line() -> argparse.ArgumentParser:
    """``new``, ``hash``, ``list`` and ``remove``: everything a rotation needs."""
    parser = argparse.ArgumentParser(
        prog="python3 course.py key", description="Make, list and remove API keys."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="make a key; print it and its line for the key file")
    hashing = commands.add_parser("hash", help="the line for a key read from standard input")
    for sub in (new, hashing):
        sub.add_argument("--name", required=True, help="a name for logs and rotation: ui-2026-11")
        sub.add_argument(
            "--scope", action="append", choices=SCOPES, help="predict (default); repeat for more"
        )
    new.add_argument("--add-to", type=Path, metavar="KEY_FILE", help="append the line to it")
    new.add_argument("--save-key", type=Path, metavar="FILE", help="write the key there (0600)")
    listing = commands.add_parser("list", help="the names and scopes of a key file's keys")
    listing.add_argument("key_file", type=Path)
    remove = commands.add_parser("remove", help="remove a key's line from a key file")
    remove.add_argument("key_file", type=Path)
    remove.add_argument("--name", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a refused file or name exits with 1 and the reason."""
    args = command_line().parse_args(argv)
    try:
        if args.command == "new":
            key, entry = make_key(args.name, args.scope or ["predict"])
            if args.add_to:
                add_line(args.add_to, entry)
                print(f"added {entry.name} ({','.join(sorted(entry.scopes))}) to {args.add_to}")
            else:
                print(f"line: {entry.line()}\n      (add it to the key file API_KEYS_FILE names)")
            if args.save_key:
                write_private(args.save_key, key + "\n")
                print(f"saved its key to {args.save_key}")
            else:
                print(f"key:  {key}\n      (shown once: give it to the client)")
        elif args.command == "hash":
            key = sys.stdin.readline().strip()
            if len(key) < MIN_KEY_LENGTH:
                raise KeyFileError(f"a key needs {MIN_KEY_LENGTH} characters or more")
            print(
                ApiKey(
                    check_name(args.name), check_scopes(args.scope or ["predict"]), digest(key)
                ).line()
            )
        elif args.command == "list":
            for entry in read_key_file(args.key_file):
                print(f"{entry.name}  {','.join(sorted(entry.scopes))}")
        else:
            remove_line(args.key_file, args.name)
            print(f"removed {args.name} from {args.key_file}")
    except KeyFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

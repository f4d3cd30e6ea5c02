"""Contributor tool: the images' pinned requirements, with the hashes pip must check.

    python tools/hash_pins.py            # rewrite hashes/requirements-*.txt from the pins
    python tools/hash_pins.py --check    # exit 1 if a hash file no longer matches its pins

The Dockerfiles install ``hashes/requirements-*.txt`` with ``pip --require-hashes``: pip
refuses any file whose SHA-256 is not listed, so a package replaced on the index (or by
someone between the index and the build) cannot reach an image, and an unpinned package
cannot slip in. For each pin, every file the index has for that exact version (wheels for
each platform, the sdist) is listed, so the same list works on Linux x86-64 and ARM.

The hashes come from the package index's simple API (PEP 691 JSON, the index pip itself
uses), never from a file downloaded here; run this after changing a pin in the
``requirements-*.txt`` of an image. tests/test_hash_pins.py checks, offline, that each
hash file lists exactly the pins of its requirements file, and that a wheel found in
pip's local caches has its hash listed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import requests
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ("requirements-serve.txt", "requirements-serve-onnx.txt", "requirements-ui.txt")
IMAGES += ("requirements-batch.txt",)
OUT = ROOT / "hashes"
INDEX = "https://pypi.org/simple"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^\s;#]+)")


def pins(path: Path) -> dict[str, tuple[str, str]]:
    """{canonical name: (name as written, version)} of a requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            found[canonicalize_name(match["name"])] = (match["name"], match["version"])
    return found


def version_of(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def index_hashes(name: str, version: str, session: requests.Session) -> list[str]:
    """SHA-256 of every file the index has for ``name==version``, sorted."""
    answer = session.get(
        f"{INDEX}/{canonicalize_name(name)}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=60,
    )
    answer.raise_for_status()
    wanted = Version(version)
    hashes = {
        entry["hashes"]["sha256"]
        for entry in answer.json()["files"]
        if version_of(entry["filename"]) == wanted and "sha256" in entry["hashes"]
    }
    if not hashes:
        raise LookupError(f"the index has no file for {name}=={version}")
    return sorted(hashes)


def render(source: str, hashed: dict[str, tuple[str, str, list[str]]]) -> str:
    lines = [
        f"# {source} with the SHA-256 of every file the index has for each pin, for",
        "# pip install --require-hashes (the Dockerfiles). Made by tools/hash_pins.py: do",
        "# not edit; change the pin in the requirements file, then run the tool again.",
    ]
    for name, version, hashes in (hashed[key] for key in sorted(hashed)):
        lines.append(f"{name}=={version} \\")
        lines += [f"    --hash=sha256:{digest} \\" for digest in hashes[:-1]]
        lines.append(f"    --hash=sha256:{hashes[-1]}")
    return "\n".join(lines) + "\n"


def hashed_pins(path: Path) -> dict[str, tuple[str, list[str]]]:
    """{canonical name: (version, hashes)} of a hash file."""
    found: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            current = canonicalize_name(match["name"])
            found[current] = (match["version"], [])
        elif "--hash=sha256:" in line and current:
            found[current][1].append(line.split("--hash=sha256:")[1].rstrip(" \\"))
    return found


def check(root: Path = ROOT) -> list[str]:
    """What differs between each requirements file and its hash file."""
    problems = []
    for source in IMAGES:
        target = root / "hashes" / source
        if not target.exists():
            problems.append(f"hashes/{source} is missing")
            continue
        wanted = {key: version for key, (_, version) in pins(root / source).items()}
        have = hashed_pins(target)
        if {key: version for key, (version, _) in have.items()} != wanted:
            problems.append(f"hashes/{source} does not list the pins of {source}")
        problems += [f"{source}: {key} has no hash" for key, (_, h) in have.items() if not h]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check, offline")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        print("\n".join(problems) or "every hash file matches its pins")
        return 1 if problems else 0
    OUT.mkdir(exist_ok=True)
    with requests.Session() as session:
        for source in IMAGES:
            hashed = {
                key: (name, version, index_hashes(name, version, session))
                for key, (name, version) in pins(ROOT / source).items()
            }
            (OUT / source).write_text(render(source, hashed))
            print(f"hashes/{source}: {len(hashed)} pins")
    return 0


if __name__ == "__main__":
    sys.exit(main())

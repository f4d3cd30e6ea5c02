"""The pinned environment is the same everywhere: requirements.txt, environment.yml, installed.

Students install with pip (course.py) or with conda (environment.yml); both must give the
exact versions the course was tested with, or notebooks drift apart from their stored outputs.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"
ENVIRONMENT = ROOT / "environment.yml"


def normalise(name: str) -> str:
    """Return the PEP 503 form of a name, since pip accepts Flask, flask and fla_sk alike."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(lines: list[str]) -> list[str]:
    """Keep the package lines: drop comments, blanks and the editable install of the course."""
    kept = []
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-e")):
            kept.append(line)
    return kept


def read_requirements() -> list[str]:
    """Read the package lines of requirements.txt, the source of truth for the pins."""
    return requirement_lines(REQUIREMENTS.read_text(encoding="utf-8").splitlines())


def read_environment_pip() -> list[str]:
    """Read the pip list of environment.yml, through which conda users get their packages."""
    data = yaml.safe_load(ENVIRONMENT.read_text(encoding="utf-8"))
    for entry in data["dependencies"]:
        if isinstance(entry, dict) and "pip" in entry:
            return requirement_lines([str(item) for item in entry["pip"]])
    raise AssertionError("environment.yml has no pip: list")


def pins(lines: list[str]) -> dict[str, tuple[str, str]]:
    """Map each normalised name to (version, marker), the parts that must agree."""
    result = {}
    for line in lines:
        requirement = Requirement(line)
        version = str(requirement.specifier).removeprefix("==")
        result[normalise(requirement.name)] = (version, str(requirement.marker or ""))
    return result


def test_requirements_and_environment_pin_the_same_versions() -> None:
    """A conda user must get exactly what a pip user gets."""
    from_requirements = pins(read_requirements())
    from_environment = pins(read_environment_pip())
    differences = [
        f"{name}: requirements.txt {from_requirements.get(name)} "
        f"!= environment.yml {from_environment.get(name)}"
        for name in sorted(from_requirements.keys() | from_environment.keys())
        if from_requirements.get(name) != from_environment.get(name)
    ]
    assert not differences, "pins differ:\n" + "\n".join(differences)


@pytest.mark.parametrize("source", [read_requirements, read_environment_pip])
def test_every_line_is_an_exact_pin(source) -> None:
    """A range would let pip pick newer releases, and results would change under students."""
    loose = [
        line for line in source() if not re.fullmatch(r"==[^,*]+", str(Requirement(line).specifier))
    ]
    assert not loose, "not pinned with ==:\n" + "\n".join(loose)


def test_no_package_is_pinned_twice() -> None:
    """Two lines for one package would leave it to pip to choose, or fail the install."""
    names = [normalise(Requirement(line).name) for line in read_requirements()]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"pinned more than once: {duplicates}"


def test_installed_versions_match_the_pins() -> None:
    """The tests must run against the pinned versions, not whatever happens to be installed."""
    problems = []
    for line in read_requirements():
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue  # needed on another platform only (see the markers in requirements.txt)
        wanted = str(requirement.specifier).removeprefix("==")
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{requirement.name}: pinned {wanted}, not installed")
            continue
        if installed != wanted:
            problems.append(f"{requirement.name}: pinned {wanted}, installed {installed}")
    assert not problems, "environment differs from requirements.txt:\n" + "\n".join(problems)

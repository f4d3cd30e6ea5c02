"""Single entry point of the course: set up the environment, start the apps, test, lint.

Usage:  python course.py setup | start [args...] | train [model...] | key [args...]
                         | test [pytest args...] | lint

Uses only the standard library so that it runs on a fresh Python (3.11.5 or newer) on
Linux, macOS and Windows, before anything else is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".course-setup-stamp"
# soupsieve, pinned in requirements.txt, needs 3.11.5; earlier 3.11 releases fail in pip.
MIN_PYTHON = (3, 11, 5)
PYTEST_NO_TESTS = 5


def say(message: str) -> None:
    """Print a progress line at once, so it shows before a long pip run starts."""
    print(f"[course] {message}", flush=True)


def venv_python() -> Path:
    """Return the interpreter of .venv: its place differs between Windows and the rest."""
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def check_python() -> None:
    """Stop early with a clear message, rather than let pip fail on an old Python."""
    if sys.version_info < MIN_PYTHON:
        wanted = ".".join(map(str, MIN_PYTHON))
        found = ".".join(map(str, sys.version_info[:3]))
        sys.exit(f"[course] Python {wanted} or newer is needed; this is Python {found}.")


def running_in_venv() -> bool:
    """Tell whether this script already runs on .venv's Python, which must not be rebuilt."""
    return Path(sys.prefix).resolve() == VENV.resolve()


def requirements_digest() -> str:
    """Hash the files that decide what is installed, to know when to reinstall."""
    digest = hashlib.sha256()
    for name in ("requirements.txt", "pyproject.toml"):
        digest.update(name.encode())
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def run(*args: str | Path) -> int:
    """Run a command from the repository root and return its exit code (never raise)."""
    return subprocess.run([str(arg) for arg in args], cwd=ROOT, check=False).returncode


def setup() -> int:
    """Create .venv and install the pinned packages, doing only what has changed."""
    check_python()
    python = venv_python()
    if not python.exists() and not running_in_venv():
        say(f"creating the virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = requirements_digest()
    if STAMP.exists() and STAMP.read_text(encoding="utf-8").strip() == digest:
        say("environment is up to date")
        return install_browser_runtime()
    say("installing the pinned packages (the first time takes a few minutes)")
    code = run(python, "-m", "pip", "install", "-r", "requirements.txt")
    if code == 0:
        say("installing the course package (apps) in editable mode")
        code = run(python, "-m", "pip", "install", "--no-deps", "-e", ".")
    if code != 0:
        say(f"installation failed (exit code {code})")
        return code
    STAMP.write_text(digest + "\n", encoding="utf-8")
    say("environment is ready")
    return install_browser_runtime()


def install_browser_runtime() -> int:
    """Download onnxruntime-web for the in-browser page (notebook 10) once, checked by hash.

    ``python -m apps.edge runtime`` does the work (standard library only) and skips the
    download when the files are already there and intact. Only that page needs them, so
    a failed download (no network, a proxy) is reported with how to retry, and the rest
    of the course still starts.
    """
    if run(venv_python(), "-m", "apps.edge", "runtime") != 0:
        say("the in-browser page will not work until `python3 course.py setup` succeeds online")
    return 0


def hand_over(*args: str | Path) -> int:
    """Run a long-lived command (the stack) so that every way of stopping it reaches it.

    Linux and macOS: the command replaces this process (``exec``). It keeps this process
    id, terminal and process group, so Ctrl-C, ``kill`` (SIGTERM) and a closed terminal
    (SIGHUP) aimed at ``course.py`` reach the stack itself, which stops its servers and
    only then exits. A parent left in between would have to relay each signal and wait
    for the clean-up; with ``exec`` there is no parent to get wrong.

    Windows has no real ``exec`` (``os.execv`` starts a new process and ends this one,
    which hands the console back to the shell too early). There the command runs as a
    child in the same console: Ctrl-C and Ctrl-Break reach every process of the console,
    the stack included, so this process ignores them and waits until the stack is done.
    """
    command = [str(arg) for arg in args]
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name != "nt":
        os.chdir(ROOT)
        os.execv(command[0], command)
    for name in ("SIGINT", "SIGBREAK"):
        signal.signal(getattr(signal, name), lambda signum, frame: None)
    return subprocess.run(command, cwd=ROOT, check=False).returncode


def start(args: list[str]) -> int:
    """Set up, then run the course's main job: check the models, start the API and the UI."""
    return setup() or hand_over(venv_python(), "-m", "apps.stack", *args)


def train(args: list[str]) -> int:
    """Set up, then train a new version of the models (all, or those named)."""
    return setup() or run(venv_python(), "-m", "apps.training", *args)


def key(args: list[str]) -> int:
    """Set up, then make, list or remove API keys (python -m apps.api.keys)."""
    return setup() or run(venv_python(), "-m", "apps.api.keys", *args)


def test(args: list[str]) -> int:
    """Set up, then run pytest; a run that collected nothing counts as a failure."""
    code = setup() or run(venv_python(), "-m", "pytest", *args)
    if code == PYTEST_NO_TESTS:
        print("no tests were collected: the suite is broken", file=sys.stderr)
        return 1
    return code


AUDITED = ("requirements.txt", *sorted(p.name for p in ROOT.glob("requirements-*.txt")))
"""Every pinned list: the course's environment and each image's."""


NOT_AUDITED = 3
"""``audit``'s exit code when some package could not be checked (no advisory service)."""


def audit(args: list[str]) -> int:
    """Set up, then check every pinned package against known vulnerabilities (pip-audit).

    Exit 0: every package checked, none vulnerable. 1: a known vulnerability. 3: some
    package could not be checked (offline, say). pip-audit itself reports such a
    package and still exits 0 unless ``--strict``, so an audit that checked nothing
    would pass: here ``--strict`` is always on, and the two failures are told apart.
    The pins are audited as written (``--no-deps --disable-pip``): nothing is installed.
    Extra arguments go to pip-audit, e.g. ``-s osv --osv-url URL`` for another advisory
    service, or ``--ignore-vuln ID`` for an advisory you have judged and accepted.
    """
    code = setup()
    if code:
        return code
    files = [arg for name in AUDITED for arg in ("-r", name)]
    options = ["--strict", "--no-deps", "--disable-pip", "--progress-spinner", "off"]
    command = [str(venv_python()), "-m", "pip_audit", *options, *files, *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    print(result.stdout, end="")
    print(result.stderr, end="", file=sys.stderr)
    if result.returncode == 0:
        say("audit: every pinned package was checked; no known vulnerability")
        return 0
    if "known vulnerabilit" in result.stderr:  # "Found 2 known vulnerabilities in 1 package"
        say("audit: FAILED, see the vulnerabilities above")
        return 1
    say("audit: NOT DONE, some package could not be checked (see above): no advisory")
    say("service answered, or it did not know the package; nothing was assumed safe")
    return NOT_AUDITED


def lint() -> int:
    """Set up, then check the code and its formatting with ruff, and apps/ with mypy, as CI does.

    mypy reads its settings (which files, which libraries lack types) from pyproject.toml.
    """
    python = venv_python()
    code = setup() or run(python, "-m", "ruff", "check", ".")
    code = code or run(python, "-m", "ruff", "format", "--check", ".")
    return code or run(python, "-m", "mypy")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the subcommand; Ctrl-C exits quietly with 130."""
    parser = argparse.ArgumentParser(prog="course.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup", help="create .venv and install the pinned packages")
    commands.add_parser(
        "start",
        help="set up, check the models, then start the API and the UI (python -m apps.stack)",
    )
    commands.add_parser(
        "train",
        help="set up, then train a new version of the models (python -m apps.training)",
    )
    commands.add_parser(  # --help goes through, to the key command's own help
        "key",
        add_help=False,
        help="set up, then make, list or remove API keys (python -m apps.api.keys)",
    )
    commands.add_parser("test", help="set up, then run the tests and notebooks (pytest)")
    commands.add_parser("lint", help="set up, then run ruff check, ruff format --check and mypy")
    commands.add_parser(
        "audit", help="set up, then check every pinned package for known vulnerabilities"
    )
    args, rest = parser.parse_known_args(argv)
    if rest and args.command not in ("start", "train", "key", "test", "audit"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if args.command == "setup":
            return setup()
        if args.command == "start":
            return start(rest)
        if args.command == "train":
            return train(rest)
        if args.command == "key":
            return key(rest)
        if args.command == "test":
            return test(rest)
        if args.command == "audit":
            return audit(rest)
        return lint()
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

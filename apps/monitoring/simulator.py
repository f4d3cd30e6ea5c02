"""Weeks of realistic traffic through the real API, with drift, and late ground truth.

Birds are drawn from the penguins data. Most requests carry one bird, some a few; each
prediction may get its true label days later, as field biologists confirm species (or
weigh birds). From ``drift_week`` on, a scenario changes the world:

* ``pounds``: one field station's scale is recalibrated to pounds, and its app, which
  expects kilograms, sends the reading times 1,000: most of its birds are refused by
  the API (above the schema's maximum), the lighter ones get through, far too heavy;
* ``new-colony``: Chinstrap penguins settle on Torgersen, where the model has only ever
  seen Adelies, and most birds the teams measure now come from that new colony;
* ``heavier``: the birds get heavier, a little more every week (a good season).

A simulation needs simulated time: the API is started with
``PREDICTION_LOG_SIMULATED_TIME=on``, and every request says what time it is in the
``X-Simulated-Time`` header. Never turn that setting on in production.
"""

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from apps import data
from apps.processes import free_port, running

START = datetime(2026, 3, 2, tzinfo=UTC)
"""A Monday: the default first simulated day (fixed, so that runs can be compared)."""
SCENARIOS = ("none", "pounds", "new-colony", "heavier")
POUND_GRAMS = 453.59237


def drifted(birds: pd.DataFrame, scenario: str, weeks_in: int, rng) -> pd.DataFrame:
    """The birds as the field teams measure them, ``weeks_in`` weeks into a scenario.

    The truth that comes back later is measured too: the species, and the body mass as
    the scale shows it (so a wrong scale also spoils the body-mass regressor's truth).
    """
    birds = birds.copy()
    if scenario == "pounds":
        station = rng.random(len(birds)) < 0.5
        pounds = (birds.loc[station, "body_mass_g"] / POUND_GRAMS * 1000).round()
        birds.loc[station, "body_mass_g"] = pounds
    elif scenario == "heavier":
        birds["body_mass_g"] = birds["body_mass_g"] + 150.0 * (weeks_in + 1)
    return birds


def draw_birds(penguins: pd.DataFrame, count: int, scenario: str, weeks_in: int | None, rng):
    """``count`` birds of one week; ``weeks_in`` None means before the drift."""
    birds = penguins.iloc[rng.integers(0, len(penguins), size=count)].reset_index(drop=True)
    if weeks_in is None:
        return birds
    if scenario == "new-colony":  # 70% of the birds now come from the new colony
        colony = penguins[penguins["species"] == "Chinstrap"]
        settlers = rng.random(count) < 0.7
        chosen = colony.iloc[rng.integers(0, len(colony), size=int(settlers.sum()))]
        birds.loc[settlers, :] = chosen.assign(island="Torgersen").to_numpy()
    return drifted(birds, scenario, weeks_in, rng)


@dataclass
class Event:
    """A request to send, or a truth to send back, at a simulated time."""

    at: datetime
    kind: str  # "predict" or "feedback"
    request_id: str
    records: list[dict] = field(default_factory=list)
    truths: list = field(default_factory=list)  # one per record
    row: int = 0
    truth: object = None


def plan_week(birds: pd.DataFrame, start: datetime, names: list[str], target: str, rng):
    """One week of requests (mostly single birds, some small batches) at random times."""
    events, position = [], 0
    while position < len(birds):
        size = 1 if rng.random() < 0.8 else int(rng.integers(2, 6))
        batch = birds.iloc[position : position + size]
        position += size
        records = batch[names].astype(object).where(batch[names].notna(), None)
        at = start + timedelta(seconds=float(rng.uniform(0, 7 * 86400)))
        events.append(
            Event(
                at,
                "predict",
                uuid.uuid4().hex,
                records.to_dict("records"),
                batch[target].tolist(),
            )
        )
    return events


def feedback_for(event: Event, share: float, delay_days: tuple, rng) -> list[Event]:
    """The truths that will come back for a request: some rows, days later."""
    returned = []
    for row, truth in enumerate(event.truths):
        if truth is None or truth != truth or rng.random() >= share:
            continue
        at = event.at + timedelta(days=float(rng.uniform(*delay_days)))
        returned.append(Event(at, "feedback", event.request_id, row=row, truth=truth))
    return returned


class Sender:
    """Sends events to the API from a few threads, each with its own HTTP session."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, threads: int = 4):
        import threading
        from concurrent.futures import ThreadPoolExecutor

        self.base = f"{base_url.rstrip('/')}/v1/models/{model}"
        self.api_key, self.local = api_key, threading.local()
        self.pool = ThreadPoolExecutor(threads)

    def _session(self):
        import requests

        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            if self.api_key:
                self.local.session.headers["X-API-Key"] = self.api_key
        return self.local.session

    def _send(self, event: Event) -> int:
        headers = {"X-Request-ID": event.request_id, "X-Simulated-Time": event.at.isoformat()}
        body: dict[str, object]
        if event.kind == "predict":
            url, body = f"{self.base}/predict", {"records": event.records}
        else:
            body = {"request_id": event.request_id, "row": event.row, "truth": event.truth}
            url = f"{self.base}/feedback"
        with self._session().post(url, json=body, headers=headers, timeout=30) as response:
            if response.status_code not in (200, 422):
                raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:300]}")
            return response.status_code

    def metadata(self) -> dict:
        """The model's metadata (its input columns), from the API."""
        with self._session().get(self.base, timeout=30) as response:
            response.raise_for_status()
            return response.json()

    def send_all(self, events: list[Event]) -> list[int]:
        """Send events concurrently; their HTTP statuses, in order."""
        return list(self.pool.map(self._send, events))

    def close(self) -> None:
        self.pool.shutdown()


def simulate(
    base_url: str,
    model: str = "species-classifier",
    scenario: str = "pounds",
    weeks: int = 8,
    per_week: int = 250,
    drift_week: int = 5,
    start: datetime = START,
    label_share: float = 0.6,
    delay_days: tuple[float, float] = (3, 21),
    seed: int = 0,
    api_key: str | None = None,
) -> pd.DataFrame:
    """Run the simulation through the API at ``base_url``; one summary row per week.

    Weeks are numbered from 1; the scenario starts in ``drift_week``. Truths due after
    the last simulated day are not sent: they have not arrived yet.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}, not {scenario!r}")
    rng = np.random.default_rng(seed)
    classifier = model == "species-classifier"
    target = "species" if classifier else "body_mass_g"
    sender = Sender(base_url, model, api_key)
    columns = sender.metadata()["input_schema"]["columns"]
    names = [column["name"] for column in columns]
    penguins = data.load_data().dropna(subset=[target])
    end = start + timedelta(weeks=weeks)
    pending: list[Event] = []
    for week in range(weeks):
        weeks_in = week + 1 - drift_week if week + 1 >= drift_week else None
        birds = draw_birds(penguins, per_week, scenario, weeks_in, rng)
        pending += plan_week(birds, start + timedelta(weeks=week), names, target, rng)
    summary = []
    try:
        for day in range(weeks * 7):
            day_end = start + timedelta(days=day + 1)
            due = sorted((e for e in pending if e.at < day_end), key=lambda e: e.at)
            pending = [e for e in pending if e.at >= day_end]
            predictions = [e for e in due if e.kind == "predict"]
            for event, status in zip(predictions, sender.send_all(predictions), strict=True):
                summary.append((day // 7 + 1, "rows", len(event.records)))
                if status == 422:
                    summary.append((day // 7 + 1, "refused rows", len(event.records)))
                    continue
                returned = feedback_for(event, label_share, delay_days, rng)
                pending += [e for e in returned if e.at < end]
            feedback = [e for e in due if e.kind == "feedback"]
            sender.send_all(feedback)
            summary += [(day // 7 + 1, "truths sent", 1) for _ in feedback]
    finally:
        sender.close()
    table = pd.DataFrame(summary, columns=["week", "what", "count"])
    table = table.pivot_table(index="week", columns="what", values="count", aggfunc="sum")
    columns = ["rows", "refused rows", "truths sent"]
    return table.reindex(range(1, weeks + 1)).reindex(columns=columns).fillna(0).astype(int)


@contextlib.contextmanager
def local_api(database: str, workers: int = 2) -> Iterator[str]:
    """Start the API (``python -m apps.api``) for a simulation; yield its URL; stop it.

    It logs to ``database``, trusts the simulated time, keeps every row (no retention:
    simulated weeks may lie in the past) and listens on a free port of 127.0.0.1. The
    stop is graceful (SIGTERM, or CTRL-BREAK on Windows), so the log is flushed.
    """
    port = free_port()
    env = {
        **os.environ,
        "MONITORING_DB_URL": str(database),
        "PREDICTION_LOG_SIMULATED_TIME": "on",
        "PREDICTION_LOG_RETENTION_DAYS": "0",
        "API_WORKERS": str(workers),
        "API_KEYS": "",
        "API_KEYS_FILE": "",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "apps.api", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with running(command, f"{url}/health/ready", env):
        yield url

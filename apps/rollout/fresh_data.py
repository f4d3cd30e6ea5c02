"""The fresh data a retraining learns from: the labelled production rows, split for good.

Every prediction whose truth came back (feedback, notebook 07) is an example of the
world as it is now. A retraining adds them to the original training data. Part of them
is held out to judge the result, and which part is decided by a hash of each row's
request id and position: the same row always falls on the same side, whenever the
retraining runs and whatever rows arrived since. So no version is ever tested on a row
that an earlier version learnt from, and the gate stays fair retraining after
retraining.
"""

import hashlib

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from apps import data
from apps.monitoring import store

HELD_OUT_SHARE = 0.25
"""The share of labelled production rows kept for judging, as in the original split."""


def labelled_frame(engine: Engine, spec) -> pd.DataFrame:
    """The labelled rows of model ``spec.name``: its input columns, the truth as its target
    column, and ``key`` (request id and row) and ``logged_at``; sorted by key.

    A row logged twice (a request id sent twice) counts once, as in the drift report.
    """
    names = [column.name for column in spec.features]
    rows = {}
    for row in store.labelled_rows(engine, spec.name):
        truth = row["true_label"] if row["true_label"] is not None else row["true_value"]
        entry = {name: row["inputs"].get(name) for name in names}
        entry.update({spec.target: truth, "logged_at": row["logged_at"]})
        rows[f"{row['request_id']}/{row['row_index']}"] = entry
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=[*names, spec.target, "logged_at"])
    frame = frame.rename_axis("key").reset_index().sort_values("key", ignore_index=True)
    for column in spec.features:  # missing values as NaN, as in the original data
        values = frame[column.name]
        if column.type == "number":
            frame[column.name] = pd.to_numeric(values).astype(float)
        else:
            frame[column.name] = values.astype(object).where(values.notna(), np.nan)
    return frame


def held_out(frame: pd.DataFrame, share: float = HELD_OUT_SHARE) -> np.ndarray:
    """True for the rows kept out of training: those whose key hashes below ``share``."""
    positions = [
        int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
        for key in frame["key"]
    ]
    return np.asarray(positions, dtype=float) < share


def fingerprint(frame: pd.DataFrame) -> str:
    """The sha256 of rows, as :func:`apps.data.fingerprint` computes it for the original data."""
    return data.fingerprint(frame.drop(columns=["logged_at"], errors="ignore"))

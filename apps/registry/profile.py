"""The reference profile: what the training data looked like, saved with the model.

A model is only as good as the match between the data it meets and the data it learnt
from. Training records that data here, column by column (the values or their quantiles,
the category counts, the share of missing values) together with what the model
predicted on held-out rows. Monitoring (notebook 07) compares production traffic with
it. It is a file of the model version (``reference_profile.json``), pinned in the
manifest like every other file, so it cannot change after training. NumPy only.
"""

import json
import math
from collections.abc import Mapping, Sequence

import numpy as np

PROFILE_FILE = "reference_profile.json"
PROFILE_FORMAT = 1
MAX_VALUES = 1_000
"""Numeric columns keep all their values up to this many, else this many quantiles."""


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def numeric_summary(values: Sequence) -> dict:
    """Count, missing count, mean, standard deviation and the sorted values (or quantiles).

    Keeping the values themselves lets the drift tests compare whole distributions (the
    Kolmogorov-Smirnov test needs them); past ``MAX_VALUES`` evenly spaced quantiles
    stand in for them, which describes the distribution just as well.
    """
    numbers = np.array([np.nan if _missing(v) else v for v in values], dtype=np.float64)
    present = np.sort(numbers[~np.isnan(numbers)])
    kept = present
    if len(present) > MAX_VALUES:
        kept = np.quantile(present, np.linspace(0, 1, MAX_VALUES), method="inverted_cdf")
    return {
        "type": "number",
        "count": len(numbers),
        "missing": int(np.isnan(numbers).sum()),
        "mean": round(float(present.mean()), 6) if len(present) else None,
        "std": round(float(present.std(ddof=1)), 6) if len(present) > 1 else None,
        "values": [round(float(v), 6) for v in kept],
    }


def category_summary(values: Sequence, categories: Sequence[str]) -> dict:
    """Count, missing count, and how often each known category occurs (zeros included)."""
    present = [v for v in values if not _missing(v)]
    return {
        "type": "category",
        "count": len(values),
        "missing": len(values) - len(present),
        "counts": {c: sum(1 for v in present if v == c) for c in categories},
    }


def build_profile(
    frame: Mapping[str, Sequence | np.ndarray],
    columns: Sequence[Mapping],
    predictions: Sequence,
    classes: Sequence[str] = (),
    source: str = "",
) -> dict:
    """The profile of the training rows ``frame`` and of held-out ``predictions``.

    ``columns`` are the manifest's input columns; ``classes`` (a classifier's labels)
    make the predictions a category, else they are numbers.
    """
    summaries = {}
    for column in columns:
        values = list(frame[column["name"]])
        if column["type"] == "category":
            summaries[column["name"]] = category_summary(values, column["categories"])
        else:
            summaries[column["name"]] = numeric_summary(values)
        summaries[column["name"]]["nullable"] = bool(column.get("nullable", True))
    predicted = list(predictions)
    prediction = category_summary(predicted, classes) if classes else numeric_summary(predicted)
    return {
        "format": PROFILE_FORMAT,
        "source": source,
        "rows": next(iter(summaries.values()))["count"] if summaries else 0,
        "columns": summaries,
        "prediction": {**prediction, "nullable": False},
    }


def profile_bytes(profile: dict) -> bytes:
    """The file's bytes: compact JSON with sorted keys, so the same profile hashes the same."""
    return (json.dumps(profile, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")

"""Turn what a caller has (a dict, a list of dicts, a DataFrame) into JSON the API accepts.

JSON has no NaN, and the API reads ``null`` as a missing value; NumPy numbers are not
JSON at all. Converting here means a caller can pass pandas rows or NumPy values as
they are, instead of meeting a ``TypeError`` deep inside ``json.dumps``. pandas is
imported only by the functions that need it, so the client stays light for callers
that never use DataFrames.
"""

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def json_value(value: Any) -> Any:
    """A JSON-safe copy of one value: NaN becomes None, NumPy scalars plain Python."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # NumPy scalar -> int, float, str, bool
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None  # pandas' missing-value markers
    return value


def as_records(records: Mapping | Sequence[Mapping]) -> list[dict]:
    """One record (a mapping) or many (a sequence of mappings) as a list of JSON-safe dicts."""
    if isinstance(records, Mapping):
        records = [records]
    if isinstance(records, str | bytes) or not isinstance(records, Sequence):
        raise TypeError(
            f"records must be a dict or a list of dicts, not {type(records).__name__}; "
            "use predict_frame() for a DataFrame"
        )
    cleaned = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise TypeError(f"record {index} is a {type(record).__name__}, not a dict")
        cleaned.append({str(key): json_value(value) for key, value in record.items()})
    return cleaned


def frame_to_records(frame: "pd.DataFrame") -> list[dict]:
    """Every row of a DataFrame as a record, with None for missing values.

    All columns are sent: a misspelled or extra column gets a clear 422 from the API,
    where dropping it here would silently turn it into a missing value and a worse
    prediction.
    """
    subset = frame.astype(object)
    subset = subset.where(subset.notna(), None)
    return as_records(subset.to_dict("records"))


def predictions_to_frame(frame: "pd.DataFrame", predictions: list[dict]) -> "pd.DataFrame":
    """The input rows, plus ``prediction`` and one ``probability_<class>`` per class."""
    if len(predictions) != len(frame):
        raise ValueError(f"{len(predictions)} predictions for {len(frame)} rows")
    result = frame.copy()
    result["prediction"] = [p["prediction"] for p in predictions]
    classes = list(predictions[0].get("probabilities", {})) if predictions else []
    for name in classes:
        result[f"probability_{name}"] = [p["probabilities"][name] for p in predictions]
    return result

"""A batch of predictions, and its one JSON-friendly form shared by every app.

The API returns it, the UI shows it, the batch job writes it: all three get the same
labels, probabilities and field names from here.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class Prediction:
    """Outputs for a batch of rows: labels or values, and class probabilities if any."""

    outputs: np.ndarray
    probabilities: np.ndarray | None
    classes: list[str]

    def as_records(self) -> list[dict]:
        """One ``{"prediction": ..., "probabilities": {class: p}}`` dict per row."""
        outputs = self.outputs.tolist()
        if self.probabilities is None:
            return [{"prediction": value} for value in outputs]
        return [
            {"prediction": label, "probabilities": dict(zip(self.classes, row, strict=True))}
            for label, row in zip(outputs, self.probabilities.tolist(), strict=True)
        ]

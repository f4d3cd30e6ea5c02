"""Live performance from feedback: accuracy or error per window, with its uncertainty.

Ground truth arrives late and only for some rows, so a window's accuracy rests on few
labels: each figure comes with a confidence interval and the number of labelled rows
behind it. A proportion (accuracy) gets the **Wilson score interval**, which stays
inside [0, 1] and keeps its promised coverage for small counts and for accuracies near
100%, where the textbook "p ± 1.96 standard errors" interval fails badly.
"""

import math

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def wilson_interval(successes: int, total: int, confidence: float = CONFIDENCE):
    """The Wilson score interval (low, high) for a proportion; (0, 1) with no data."""
    if total == 0:
        return 0.0, 1.0
    z = stats.norm.ppf(0.5 + confidence / 2)
    share = successes / total
    centre = (share + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total))
    half /= 1 + z * z / total
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values, confidence: float = CONFIDENCE):
    """A t interval (low, high) for the mean of ``values``; (nan, nan) under two values."""
    values = np.asarray(values, float)
    if len(values) < 2:
        return math.nan, math.nan
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * stats.sem(values)
    return float(values.mean() - half), float(values.mean() + half)


def classification_figures(predicted: list | np.ndarray, true: list | np.ndarray) -> dict:
    """Accuracy (with its Wilson interval) and balanced accuracy of labelled rows."""
    predicted, true = np.asarray(predicted, object), np.asarray(true, object)
    labelled = len(true)
    correct = int((predicted == true).sum())
    low, high = wilson_interval(correct, labelled)
    recalls = [float((predicted[true == c] == c).mean()) for c in sorted(set(true.tolist()))]
    return {
        "labelled": labelled,
        "accuracy": correct / labelled if labelled else None,
        "accuracy_low": low if labelled else None,
        "accuracy_high": high if labelled else None,
        "balanced_accuracy": float(np.mean(recalls)) if recalls else None,
    }


def regression_figures(predicted: list, true: list) -> dict:
    """Mean absolute error (with a t interval) of labelled rows."""
    errors = np.abs(np.asarray(predicted, float) - np.asarray(true, float))
    low, high = mean_interval(errors)
    labelled = len(errors)
    return {
        "labelled": labelled,
        "mae": float(errors.mean()) if labelled else None,
        "mae_low": None if math.isnan(low) else low,
        "mae_high": None if math.isnan(high) else high,
    }

"""Drift tests: is a window of production data distributed like the reference?

Each input column, and the model's predictions, get a test of "same distribution":

* numbers: the two-sample **Kolmogorov-Smirnov** test (the largest gap between the two
  cumulative distributions);
* categories: the **chi-square** test of homogeneity on the table of counts;
* missing values: **Fisher's exact test** on the shares of missing values.

The reference is itself a sample, so every test is a two-sample test: comparing with the
reference as if it were the truth would ring false alarms. A p-value says whether a
difference could be chance, not whether it matters: with enough rows, a trivial shift
is "significant". So each distribution also gets the **Population Stability Index**, a
size of the shift, and a column drifts only when its test is significant after the
**Holm** correction for testing many columns at once *and* the shift is big enough.
"""

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
"""The family-wise false alarm rate: the chance that a window with no drift is flagged."""
PSI_THRESHOLD = 0.1
"""A shift smaller than this is not worth an alarm (rule of thumb: < 0.1 none, > 0.25 major)."""
MISSING_CHANGE = 0.05
"""A change in the share of missing values smaller than this is not worth an alarm."""
BINS = 10
"""PSI compares shares of rows in the reference's deciles."""
MIN_ROWS = 30
"""Windows with fewer rows are shown but not tested: too few to say anything."""


def ks_test(reference, current) -> tuple[float, float]:
    """Kolmogorov-Smirnov statistic (largest gap between the two CDFs) and p-value."""
    result = stats.ks_2samp(np.asarray(current, float), np.asarray(reference, float))
    return float(result.statistic), float(result.pvalue)


def chi_square_test(reference_counts, current_counts) -> tuple[float, float]:
    """Chi-square test of homogeneity: do both samples share one set of category shares?

    Categories that neither sample has are left out; with fewer than two left there is
    nothing to compare (statistic 0, p-value 1).
    """
    table = np.array([reference_counts, current_counts], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    return float(statistic), float(p_value)


def missing_test(reference_missing, reference_rows, current_missing, current_rows) -> float:
    """Fisher's exact test p-value: is the share of missing values the same in both?"""
    if reference_missing + current_missing == 0:
        return 1.0
    table = [
        [reference_missing, reference_rows - reference_missing],
        [current_missing, current_rows - current_missing],
    ]
    return float(stats.fisher_exact(table).pvalue)


def psi(reference_shares, current_shares, floor: float = 1e-4) -> float:
    """Population Stability Index: sum of (current - reference) * ln(current / reference).

    Shares of zero are raised to ``floor``, since a bin empty on one side would make the
    logarithm infinite.
    """
    reference = np.maximum(np.asarray(reference_shares, float), floor)
    current = np.maximum(np.asarray(current_shares, float), floor)
    return float(np.sum((current - reference) * np.log(current / reference)))


def decile_edges(reference_values) -> np.ndarray:
    """Bin edges at the reference's deciles (repeated edges merged)."""
    quantiles = np.quantile(np.asarray(reference_values, float), np.linspace(0, 1, BINS + 1)[1:-1])
    return np.unique(quantiles)


def bin_shares(values, edges: np.ndarray) -> np.ndarray:
    """The share of ``values`` in each bin; bin i holds edges[i-1] < value <= edges[i]."""
    values = np.asarray(values, float)
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def holm(p_values) -> list[float]:
    """Holm's step-down adjustment: reject where adjusted p < alpha, and the chance of any
    false alarm among all the tests stays below alpha, whatever their dependence."""
    p_values = np.asarray(p_values, float)
    count = len(p_values)
    order = np.argsort(p_values)
    scaled = np.minimum(1.0, (count - np.arange(count)) * p_values[order])
    adjusted = np.empty(count)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.tolist()


@dataclass
class Test:
    """One test of one column in one window."""

    column: str  # an input column, or "prediction"
    test: str  # "ks", "chi2" or "missing"
    statistic: float
    p_value: float
    effect: float  # PSI, or the change in the share of missing values
    adjusted_p: float = 1.0
    drift: bool = False

    def as_dict(self) -> dict:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _present(values) -> list:
    return [v for v in values if v is not None and v == v]  # v == v is False for NaN


def column_tests(name: str, summary: dict, values: list) -> list[Test]:
    """The distribution test (with its PSI) and the missing-values test of one column."""
    present = _present(values)
    tests = []
    if summary["type"] == "number":
        reference = summary["values"]
        if present and reference:
            statistic, p_value = ks_test(reference, present)
            edges = decile_edges(reference)
            shift = psi(bin_shares(reference, edges), bin_shares(present, edges))
            tests.append(Test(name, "ks", statistic, p_value, shift))
    else:
        categories = list(summary["counts"])
        reference = [summary["counts"][c] for c in categories]
        current = [sum(1 for v in present if v == c) for c in categories]
        if present:
            statistic, p_value = chi_square_test(reference, current)
            shares = np.array(reference) / max(sum(reference), 1)
            shift = psi(shares, np.array(current) / len(present))
            tests.append(Test(name, "chi2", statistic, p_value, shift))
    if summary.get("nullable", True) and values:  # a required column is never missing
        missing, rows = len(values) - len(present), len(values)
        change = missing / rows - summary["missing"] / max(summary["count"], 1)
        p_value = missing_test(summary["missing"], summary["count"], missing, rows)
        tests.append(Test(name, "missing", abs(change), p_value, change))
    return tests


def compare(profile: dict, columns: dict[str, list], predictions: list, alpha=ALPHA) -> list[Test]:
    """Every test of a window (its input columns and predictions) against the reference.

    Holm's correction runs over all the window's tests together; a test flags drift when
    its adjusted p-value is below ``alpha`` and its effect is large enough.
    """
    tests = []
    for name, summary in profile["columns"].items():
        tests += column_tests(name, summary, columns.get(name, []))
    tests += column_tests("prediction", profile["prediction"], predictions)
    for test, adjusted in zip(tests, holm([t.p_value for t in tests]), strict=True):
        test.adjusted_p = adjusted
        big = PSI_THRESHOLD if test.test != "missing" else MISSING_CHANGE
        test.drift = adjusted < alpha and abs(test.effect) >= big
    return tests

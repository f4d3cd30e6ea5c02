"""Every statistic of apps.monitoring, checked against an independent computation.

The drift tests and the performance figures call SciPy; here each result is recomputed
another way: by brute force from the definition (the largest gap between two empirical
CDFs, every split of a small sample, every 2x2 table with the same margins), from
another SciPy function, or with scikit-learn. A wrong argument order, a one-sided test
where a two-sided one is meant, a missing continuity setting: each would show here.
"""

import itertools
import math

import numpy as np
import pytest
from scipy import optimize, special, stats
from sklearn import metrics

from apps.monitoring import drift, performance


def ecdf_gap(a, b) -> float:
    """The KS statistic from its definition: the largest gap between the two ECDFs."""
    points = np.concatenate([a, b])
    fa = np.array([(np.asarray(a) <= x).mean() for x in points])
    fb = np.array([(np.asarray(b) <= x).mean() for x in points])
    return float(np.abs(fa - fb).max())


def test_ks_statistic_is_the_largest_gap_between_the_two_ecdfs():
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = rng.normal(0, 1, rng.integers(5, 60)).round(1)  # rounding makes ties
        b = rng.normal(0.3, 1.2, rng.integers(5, 60)).round(1)
        assert drift.ks_test(a, b)[0] == pytest.approx(ecdf_gap(a, b), abs=1e-12)


def test_ks_p_value_equals_the_exact_permutation_distribution_on_small_samples():
    """Every way of splitting the pooled values into groups of the two sizes, counted."""
    rng = np.random.default_rng(2)
    for n, m in ((5, 4), (6, 6), (7, 5)):
        a, b = rng.normal(0, 1, n), rng.normal(0.8, 1, m)
        observed = ecdf_gap(a, b)
        pooled = np.concatenate([a, b])
        gaps = [
            ecdf_gap(pooled[list(chosen)], np.delete(pooled, list(chosen)))
            for chosen in itertools.combinations(range(n + m), n)
        ]
        exact = np.mean([g >= observed - 1e-12 for g in gaps])
        assert drift.ks_test(b, a)[1] == pytest.approx(exact, abs=1e-9)


def test_ks_p_value_agrees_with_a_permutation_test_on_window_sized_samples():
    rng = np.random.default_rng(3)
    reference, window = rng.normal(0, 1, 258), rng.normal(0.15, 1, 200)
    observed = ecdf_gap(reference, window)
    pooled = np.concatenate([reference, window])
    gaps = []
    for _ in range(2000):
        shuffled = rng.permutation(pooled)
        gaps.append(stats.ks_2samp(shuffled[:258], shuffled[258:]).statistic)
    estimate = np.mean(np.array(gaps) >= observed - 1e-12)
    p_value = drift.ks_test(reference, window)[1]
    assert abs(p_value - estimate) < 4 * math.sqrt(estimate * (1 - estimate) / 2000) + 0.005


def test_chi_square_matches_the_formula_and_the_chi2_survival_function():
    cases = [([50, 30, 20], [40, 45, 15]), ([120, 90, 40], [10, 160, 30]), ([7, 3], [2, 9])]
    for reference, current in cases:
        table = np.array([reference, current], float)
        expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
        statistic = float(((table - expected) ** 2 / expected).sum())
        dof = table.shape[1] - 1
        p_value = float(special.gammaincc(dof / 2, statistic / 2))  # chi2's upper tail
        assert drift.chi_square_test(reference, current) == pytest.approx((statistic, p_value))


def test_chi_square_ignores_categories_absent_from_both_and_needs_two_categories():
    assert drift.chi_square_test([50, 0, 20], [40, 0, 15]) == pytest.approx(
        drift.chi_square_test([50, 20], [40, 15])
    )
    assert drift.chi_square_test([50, 0], [40, 0]) == (0.0, 1.0)


def fisher_by_hand(a: int, b: int, c: int, d: int) -> float:
    """Two-sided Fisher p-value: the tables with the same margins, no likelier than ours."""
    row1, col1, total = a + b, a + c, a + b + c + d

    def probability(x: int) -> float:
        return math.comb(col1, x) * math.comb(total - col1, row1 - x) / math.comb(total, row1)

    observed = probability(a)
    low, high = max(0, row1 + col1 - total), min(row1, col1)
    return sum(p for x in range(low, high + 1) if (p := probability(x)) <= observed * (1 + 1e-7))


def test_missing_share_test_is_fishers_exact_test():
    cases = ((2, 258, 9, 200), (11, 258, 4, 200), (0, 258, 3, 40), (5, 50, 5, 50))
    for ref_missing, ref_rows, cur_missing, cur_rows in cases:
        a, c = ref_missing, cur_missing
        expected = fisher_by_hand(a, ref_rows - a, c, cur_rows - c)
        assert drift.missing_test(ref_missing, ref_rows, cur_missing, cur_rows) == pytest.approx(
            min(expected, 1.0)
        )
    assert drift.missing_test(0, 258, 0, 200) == 1.0


def test_psi_is_the_symmetric_kullback_leibler_divergence():
    rng = np.random.default_rng(4)
    for _ in range(10):
        p, q = rng.dirichlet(np.ones(10)), rng.dirichlet(np.ones(10))
        expected = float(special.rel_entr(q, p).sum() + special.rel_entr(p, q).sum())
        assert drift.psi(p, q) == pytest.approx(expected)
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert drift.psi([1.0, 0.0], [0.0, 1.0]) == pytest.approx(2 * (1 - 1e-4) * math.log(1e4))


def test_deciles_and_bin_shares_count_like_numpy_histogram():
    rng = np.random.default_rng(5)
    reference, current = rng.normal(0, 1, 258), rng.normal(0.5, 1, 200)
    edges = drift.decile_edges(reference)
    assert len(edges) == 9
    assert drift.bin_shares(reference, edges) == pytest.approx(np.full(10, 0.1), abs=0.01)
    # np.histogram bins are [a, b); ours are (a, b]: mirror the values to compare
    counts, _ = np.histogram(-current, bins=np.concatenate([[-np.inf], -edges[::-1], [np.inf]]))
    assert drift.bin_shares(current, edges) == pytest.approx(counts[::-1] / len(current))


def holm_by_hand(p_values: list[float], alpha: float) -> list[bool]:
    """Holm's procedure as stated: walk up the sorted p-values until one fails."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    for rank, index in enumerate(order):
        if p_values[index] > alpha / (len(p_values) - rank):
            break
        rejected[index] = True
    return rejected


def test_holm_adjusted_p_values_reject_exactly_what_holms_procedure_rejects():
    rng = np.random.default_rng(6)
    for _ in range(200):
        p_values = (rng.random(rng.integers(1, 15)) ** 3).tolist()
        adjusted = drift.holm(p_values)
        for alpha in (0.01, 0.05, 0.1):
            assert [a <= alpha for a in adjusted] == holm_by_hand(p_values, alpha)
        assert all(a >= p for a, p in zip(adjusted, p_values, strict=True))


def test_a_column_drifts_only_when_significant_and_large_enough():
    profile = {
        "columns": {
            "x": {
                "type": "number",
                "values": np.linspace(0, 1, 300).tolist(),
                "count": 300,
                "missing": 0,
                "nullable": True,
            },
        },
        "prediction": {
            "type": "category",
            "counts": {"a": 50, "b": 50},
            "count": 100,
            "missing": 0,
            "nullable": False,
        },
    }
    same = {"x": np.linspace(0, 1, 200).tolist()}
    shifted = {"x": (np.linspace(0, 1, 200) + 0.5).tolist()}
    tests = drift.compare(profile, same, ["a", "b"] * 100)
    assert [t.test for t in tests] == ["ks", "missing", "chi2"]  # no missing test on predictions
    assert not any(t.drift for t in tests)
    tests = drift.compare(profile, shifted, ["a"] * 150 + ["b"] * 50)
    assert {t.column for t in tests if t.drift} == {"x", "prediction"}
    with_missing = {"x": [None] * 60 + np.linspace(0, 1, 140).tolist()}
    tests = drift.compare(profile, with_missing, ["a", "b"] * 100)
    (missing,) = [t for t in tests if t.test == "missing"]
    assert missing.drift and missing.effect == pytest.approx(0.3)


def wilson_by_root_finding(successes: int, total: int, confidence=0.95) -> tuple[float, float]:
    """The Wilson interval is where the score test stops rejecting: solve for it."""
    z = stats.norm.ppf(0.5 + confidence / 2)
    share = successes / total

    def score(p):
        return abs(share - p) / math.sqrt(p * (1 - p) / total) - z

    tiny = 1e-12
    low = 0.0 if successes == 0 else optimize.brentq(score, tiny, min(share, 1 - tiny))
    high = 1.0 if successes == total else optimize.brentq(score, max(share, tiny), 1 - tiny)
    return low, high


@pytest.mark.parametrize(
    ("successes", "total"), [(0, 10), (3, 10), (10, 10), (95, 100), (149, 150)]
)
def test_wilson_interval_inverts_the_score_test(successes, total):
    expected = wilson_by_root_finding(successes, total)
    assert performance.wilson_interval(successes, total) == pytest.approx(expected, abs=1e-9)
    assert performance.wilson_interval(0, 0) == (0.0, 1.0)


def test_mean_interval_is_scipys_t_interval():
    values = np.random.default_rng(7).exponential(200, 40)
    expected = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert performance.mean_interval(values) == pytest.approx(expected)


def test_classification_and_regression_figures_match_scikit_learn():
    rng = np.random.default_rng(8)
    true = rng.choice(["Adelie", "Chinstrap", "Gentoo"], 120, p=[0.5, 0.2, 0.3])
    predicted = np.where(rng.random(120) < 0.85, true, rng.choice(["Adelie", "Gentoo"], 120))
    figures = performance.classification_figures(predicted.tolist(), true.tolist())
    assert figures["labelled"] == 120
    assert figures["accuracy"] == pytest.approx(metrics.accuracy_score(true, predicted))
    assert figures["balanced_accuracy"] == pytest.approx(
        metrics.balanced_accuracy_score(true, predicted)
    )
    correct = int((true == predicted).sum())
    assert (figures["accuracy_low"], figures["accuracy_high"]) == pytest.approx(
        wilson_by_root_finding(correct, 120), abs=1e-9
    )
    mass, guess = rng.normal(4200, 800, 60), rng.normal(4200, 800, 60)
    figures = performance.regression_figures(guess.tolist(), mass.tolist())
    assert figures["mae"] == pytest.approx(metrics.mean_absolute_error(mass, guess))
    assert figures["mae_low"] < figures["mae"] < figures["mae_high"]

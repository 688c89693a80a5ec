"""Tests of surrogates.quality on hand-made arrays with known metric values."""

import numpy as np
import pytest

from surrogates.gp_surrogate import lognormal_moments
from surrogates.quality import quality_columns, quality_report

Y = np.array([100.0, 200.0, 50.0, 10.0])
MEAN = np.array([105.0, 190.0, 9.0, 20.0])  # rel. errors 5 %, 5 %, 82 %, 100 %
STD = np.array([10.0, 1.0, 100.0, 1.0])  # |error| 5, 10, 41, 10 -> inside, out, inside, out


def test_point_metrics_exact():
    r = quality_report(Y, MEAN, STD, log_normal=False)
    assert r["mape"] == pytest.approx(48.0)
    assert r["within_10pct"] == pytest.approx(0.5)
    # ranks y = [3, 4, 2, 1], mean = [3, 4, 1, 2]: sum d^2 = 2 -> 1 - 6 * 2 / (4 * 15) = 0.8
    assert r["spearman"] == pytest.approx(0.8)
    assert r["coverage_95"] == pytest.approx(0.5)


def test_spearman_uses_average_ranks_for_ties():
    r = quality_report(np.array([1.0, 1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4))
    # ranks [1.5, 1.5, 3, 4] vs [1, 2, 3, 4]
    a, b = np.array([1.5, 1.5, 3, 4]) - 2.5, np.array([1.0, 2, 3, 4]) - 2.5
    assert r["spearman"] == pytest.approx((a @ b) / np.sqrt((a @ a) * (b @ b)))


def test_log_normal_coverage_uses_log_space_interval():
    mu, sigma = np.log(np.array([10.0, 20.0, 30.0, 40.0])), np.full(4, 0.3)
    mean, std = lognormal_moments(mu, sigma)
    y = np.exp(mu + sigma * np.array([0.0, 1.9, 2.0, -3.0]))  # z inside, inside, out, out
    assert quality_report(y, mean, std)["coverage_95"] == pytest.approx(0.5)
    # the Gaussian interval of the same moments is mean * [0.398, 1.602]; y / mean is
    # [0.956, 1.690, 1.742, 0.389], so only the z = 0 point is inside
    assert quality_report(y, mean, std, log_normal=False)["coverage_95"] == pytest.approx(0.25)


def test_columns_match_single_reports():
    y2 = np.column_stack([Y, Y[::-1]])
    m2 = np.column_stack([MEAN, MEAN * 1.2])
    s2 = np.column_stack([STD, STD])
    cols = quality_columns(y2, m2, s2, log_normal=False)
    for k in range(2):
        single = quality_report(y2[:, k], m2[:, k], s2[:, k], log_normal=False)
        for name, value in single.items():
            assert cols[name][k] == pytest.approx(value)
    assert cols["spearman"][1] == pytest.approx(-0.8)


@pytest.mark.parametrize(
    ("y", "mean", "std", "match"),
    [
        (Y, MEAN[:3], STD, "one non-empty shape"),
        (np.array([1.0, np.nan, 1.0, 1.0]), MEAN, STD, "y_true_ms contains NaN"),
        (Y, np.array([1.0, np.inf, 1.0, 1.0]), STD, "mean_ms contains NaN or inf"),
        (np.array([1.0, 0.0, 1.0, 1.0]), MEAN, STD, "> 0 ms"),
        (Y, MEAN, -STD, "std_ms >= 0"),
    ],
)
def test_bad_input(y, mean, std, match):
    with pytest.raises(ValueError, match=match):
        quality_report(y, mean, std)


def test_wrong_rank():
    with pytest.raises(ValueError, match=r"expected \(n, K\)"):
        quality_columns(Y, MEAN, STD)
    with pytest.raises(ValueError, match=r"expected \(n,\)"):
        quality_report(Y[:, None], MEAN[:, None], STD[:, None])

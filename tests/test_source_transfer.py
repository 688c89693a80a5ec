"""SourceTransfer: proxy choice, artefact exclusion, leave-one-out least squares."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from surrogates.source_transfer import SourceTransfer, loo_ols_error


def pool(seed=0, N=800, S=12):
    """(sources log-ms (N, S), target log-ms (N,)): the target is affine in source 5."""
    rng = np.random.default_rng(seed)
    sources = rng.standard_normal((N, 3)) @ rng.standard_normal((3, S)) + 0.3 * rng.standard_normal(
        (N, S)
    )
    target = 3.0 + 0.2 * sources[:, 5] + 0.01 * rng.standard_normal(N)  # ~20 ms, +-50 %
    return rng, sources, target


def test_loo_ols_error_matches_refitting_without_each_point():
    rng = np.random.default_rng(1)
    F, y = rng.standard_normal((12, 3)), rng.standard_normal(12)
    brute = np.zeros(3)
    for j in range(3):
        for i in range(12):
            rest = np.arange(12) != i
            b, a = np.polyfit(F[rest, j], y[rest], 1)
            brute[j] += (y[i] - a - b * F[i, j]) ** 2 / 12
    np.testing.assert_allclose(loo_ols_error(F, y), brute)


def test_the_affine_proxy_is_found_and_ranks_the_pool():
    rng, sources, target = pool()
    rows = rng.choice(len(target), 10, replace=False)
    model = SourceTransfer(sources).fit(rows, np.exp(target[rows]))
    assert model.proxy == 5
    assert set(model.evidence) == {"proxy", "pcs", "all"}
    median, std = model.predict()
    assert spearmanr(median, target).statistic > 0.99
    assert median.shape == std.shape == (len(target),)


def test_artefact_readings_are_left_out():
    rng, sources, target = pool(seed=2)
    rows = rng.choice(len(target), 12, replace=False)
    y_ms = np.exp(target[rows])
    clean = SourceTransfer(sources).fit(rows, y_ms).predict()[0]
    y_ms[:2] = np.exp(target[rows[:2]]) / 2000  # non-functional cells timed at ~0 ms
    dirty = SourceTransfer(sources).fit(rows, y_ms).predict()[0]
    np.testing.assert_allclose(dirty, clean, rtol=0.05)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="finite"):
        SourceTransfer(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="n_pcs"):
        SourceTransfer(np.zeros((5, 2)), n_pcs=3)

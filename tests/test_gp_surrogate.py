"""Tests of surrogates.gp_surrogate.GPSurrogate on smooth synthetic latency functions."""

import numpy as np
import pytest

from surrogates.gp_surrogate import GPSurrogate, lognormal_moments


def latency_ms(X: np.ndarray) -> np.ndarray:
    """Smooth positive function of 4 features, 1..~25 ms."""
    return np.exp(np.sin(2.0 * X[:, 0]) + X[:, 1] ** 2 + 0.8 * X[:, 2] + 0.5 * X[:, 2] * X[:, 3])


def analytic_prior_ms(X: np.ndarray) -> np.ndarray:
    """A crude analytic estimate that only knows the linear part of latency_ms."""
    return np.exp(0.8 * X[:, 2])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X, X_test = rng.random((80, 4)), rng.random((300, 4))
    return X, latency_ms(X), X_test, latency_ms(X_test)


def mape(pred: np.ndarray, true: np.ndarray) -> float:
    return float(100 * np.mean(np.abs(pred / true - 1)))


def test_recovers_smooth_function(data):
    X, y, X_test, y_test = data
    gp = GPSurrogate().fit(X, y)
    mean, std = gp.predict(X_test)
    assert mean.shape == std.shape == (300,)
    assert mape(mean, y_test) < 2.0
    assert gp.n_points == 80
    assert np.all(std > 0)
    # the training points are interpolated up to the (small) fitted noise
    assert mape(gp.predict(X)[0], y) < 1.0


def test_prior_mean_is_used_and_required(data):
    X, y, X_test, y_test = data
    gp = GPSurrogate().fit(X, y, prior_ms=analytic_prior_ms(X))
    assert gp.uses_prior
    mean, _ = gp.predict(X_test, prior_ms=analytic_prior_ms(X_test))
    assert mape(mean, y_test) < 2.0
    # the residual model alone (prior of 1 ms everywhere) is far off
    wrong, _ = gp.predict(X_test, prior_ms=np.ones(300))
    assert mape(wrong, y_test) > 20.0
    with pytest.raises(ValueError, match="prior_ms is required"):
        gp.predict(X_test)


def test_predict_is_lognormal_moments_of_predict_log(data):
    X, y, X_test, _ = data
    gp = GPSurrogate().fit(X[:30], y[:30])
    mu, sigma = gp.predict_log(X_test)
    mean, std = gp.predict(X_test)
    np.testing.assert_allclose(mean, np.exp(mu + sigma**2 / 2))
    np.testing.assert_allclose(std, mean * np.sqrt(np.exp(sigma**2) - 1))
    np.testing.assert_allclose(lognormal_moments(np.zeros(1), np.zeros(1)), ([1.0], [0.0]))
    _, sigma_f = gp.predict_log(X_test, observation_noise=False)
    assert np.all(sigma_f <= sigma + 1e-12)


def test_linear_kernel_recovers_log_linear_map_from_few_points():
    rng = np.random.default_rng(2)
    w = np.array([0.5, -0.2, 0.3, 0.0, 0.1])
    X, X_test = rng.standard_normal((8, 5)), 2.0 * rng.standard_normal((200, 5))
    y, y_test = np.exp(1.0 + X @ w), np.exp(1.0 + X_test @ w)  # test also extrapolates
    linear = GPSurrogate(kernel="linear").fit(X, y)
    rbf = GPSurrogate().fit(X, y)
    assert mape(linear.predict(X_test)[0], y_test) < 2.0
    assert mape(rbf.predict(X_test)[0], y_test) > 10.0
    with pytest.raises(ValueError, match="kernel must be one of"):
        GPSurrogate(kernel="matern")


def test_condition_shrinks_std_where_data_added():
    rng = np.random.default_rng(1)
    X = rng.random((60, 3))
    X[:, 0] *= 0.6  # no data for x0 > 0.6
    f = lambda Z: latency_ms(np.column_stack([Z, np.zeros(len(Z))]))  # noqa: E731
    gp = GPSurrogate().fit(X, f(X))
    X_far = rng.random((40, 3))
    X_far[:, 0] = 0.8 + 0.2 * X_far[:, 0]
    _, sigma_before = gp.predict_log(X_far)
    mean_before, _ = gp.predict(X_far)
    gp.condition(X_far[:20], f(X_far[:20]))
    assert gp.n_points == 80
    _, sigma_after = gp.predict_log(X_far)
    mean_after, _ = gp.predict(X_far)
    assert np.all(sigma_after <= sigma_before + 1e-9)
    assert np.median(sigma_after[:20] / sigma_before[:20]) < 0.5  # at the new points
    assert np.median(sigma_after[20:] / sigma_before[20:]) < 0.5  # near them
    assert mape(mean_after[20:], f(X_far[20:])) < mape(mean_before[20:], f(X_far[20:]))
    # conditioning twice keeps working
    gp.condition(X_far[20:25], f(X_far[20:25]))
    assert gp.n_points == 85


def test_bad_input_errors(data):
    X, y, _, _ = data
    bad_X = X.copy()
    bad_X[3, 1] = np.nan
    cases = [
        (lambda: GPSurrogate().fit(bad_X, y), "X contains NaN or inf"),
        (lambda: GPSurrogate().fit(X, np.where(np.arange(80) == 5, -1.0, y)), "> 0 ms"),
        (lambda: GPSurrogate().fit(X, np.where(np.arange(80) == 5, np.inf, y)), "NaN or inf"),
        (lambda: GPSurrogate().fit(X, y[:-1]), r"shape \(80,\)"),
        (lambda: GPSurrogate().fit(X[:, 0], y), r"\(n, d\) array"),
        (lambda: GPSurrogate().fit(X, y, prior_ms=np.zeros(80)), "prior_ms must be > 0"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
    gp = GPSurrogate().fit(X[:20], y[:20])
    with pytest.raises(ValueError, match="3 features, expected 4"):
        gp.predict(X[:, :3])
    with pytest.raises(ValueError, match="fitted without a prior"):
        gp.predict(X, prior_ms=np.ones(80))
    with pytest.raises(ValueError, match=r"y_new_ms must have shape \(2,\)"):
        gp.condition(X[:2], y[:3])
    with pytest.raises(RuntimeError, match="not fitted"):
        GPSurrogate().predict(X)

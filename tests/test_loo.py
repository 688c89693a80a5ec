"""Closed-form leave-one-out predictions equal the Gaussian conditional on the other points."""

import numpy as np
import pytest
import torch

from surrogates.gp_surrogate import GPSurrogate


def test_loo_equals_the_conditional_given_the_other_points():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(15, 2))
    log_prior = rng.uniform(0, 1, 15)
    y_ms = np.exp(1 + np.sin(4 * X[:, 0]) + X[:, 1] + log_prior + 0.05 * rng.standard_normal(15))
    gp = GPSurrogate().fit(X, y_ms, prior_ms=np.exp(log_prior))
    mu, sd = gp.loo_log()
    model = gp._model  # the fitted botorch model: its kernel, noise, mean and scaling
    tf = model.outcome_transform
    with torch.no_grad():
        K = model.covar_module(model.input_transform(torch.as_tensor(X))).to_dense().numpy()
    Ky = K + model.likelihood.noise.item() * np.eye(15)
    r = (np.log(y_ms) - log_prior - tf.means.item()) / tf.stdvs.item()
    m = model.mean_module.constant.item()
    for i in range(15):
        rest = np.arange(15) != i
        w = np.linalg.solve(Ky[np.ix_(rest, rest)], Ky[rest, i])
        cond_mu = m + w @ (r[rest] - m)
        cond_sd = np.sqrt(Ky[i, i] - w @ Ky[rest, i])
        expected = cond_mu * tf.stdvs.item() + tf.means.item() + log_prior[i]
        assert np.isclose(mu[i], expected, atol=1e-6)
        assert np.isclose(sd[i], cond_sd * tf.stdvs.item(), atol=1e-6)


def test_loo_refuses_a_conditioned_model():
    X = np.linspace(0, 1, 8)[:, None]
    gp = GPSurrogate().fit(X, np.exp(X[:, 0]))
    gp.condition(np.array([[0.5]]), np.array([1.6]))
    with pytest.raises(RuntimeError, match="condition"):
        gp.loo_log()

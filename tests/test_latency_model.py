"""Tests of the GP latency models (multi-task and independent) and their contract."""

import numpy as np
import pytest

from surrogates.cluster_gp import ClusterGP
from surrogates.independent_latency import IndependentLatencyModel
from surrogates.latency_model import LatencyModel, gp_latency_model
from surrogates.multitask_latency import MultiTaskLatencyModel


def latency_ms(X: np.ndarray) -> np.ndarray:
    """Smooth positive function of 3 features (cluster 0's latency), 1..~12 ms."""
    return np.exp(np.sin(3.0 * X[:, 0]) + X[:, 1] ** 2 + 0.5 * X[:, 2])


SCALE = np.array([1.0, 1.3, 1.0])  # cluster 1 is 1.3 x slower; cluster 2 never measured


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.random((30, 3)), rng.random((3, 3)), rng.random((200, 3))


def fitted(transfer: bool, data, **kwargs) -> ClusterGP:
    X0, X1, _ = data
    cs = gp_latency_model(3, transfer, fit_timeout_s=None, **kwargs)  # deterministic
    cs.add(0, X0, latency_ms(X0))
    cs.add(1, X1, SCALE[1] * latency_ms(X1))
    return cs


def mape(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    return 100 * np.mean(np.abs(pred / true - 1), axis=0)


@pytest.fixture(scope="module")
def transfer_model(data):
    return fitted(True, data)


@pytest.fixture(scope="module")
def independent_model(data):
    return fitted(False, data)


def test_transfer_predicts_sparse_cluster_better(data, transfer_model, independent_model):
    X_test = data[2]
    truth = latency_ms(X_test)[:, None] * SCALE
    mean_t, std_t = transfer_model.predict(X_test)
    mean_i, _ = independent_model.predict(X_test)
    assert mean_t.shape == std_t.shape == (200, 3)
    err_t, err_i = mape(mean_t, truth), mape(mean_i, truth)
    assert err_t[0] < 5.0 and err_i[0] < 5.0  # the well-measured cluster
    assert err_t[1] < 10.0  # 3 points suffice with transfer ...
    assert err_i[1] > 2 * err_t[1]  # ... but not without


def test_empty_cluster_uses_pooled_data_with_inflated_std(data, independent_model):
    X_test = data[2]
    mu, sigma = independent_model.predict_log(X_test)
    assert np.all(sigma[:, 2] >= independent_model.fallback_log_std)
    assert np.all(sigma[:, 2] > sigma[:, 0])
    # the pooled GP is dominated by cluster 0's 30 points
    assert mape(np.exp(mu[:, 2]), latency_ms(X_test)) < 15.0
    assert independent_model.n_points(0) == 30
    assert independent_model.n_points(1) == 3
    assert independent_model.n_points(2) == 0


@pytest.mark.parametrize("transfer", [True, False])
def test_refit_every_conditions_between_refits(data, transfer, monkeypatch):
    cs = fitted(transfer, data, refit_every=10)
    X_test = data[2]
    _, sigma_before = cs.predict_log(X_test)
    fits = []
    monkeypatch.setattr(cs, "fit", lambda: fits.append(1))
    X_new = X_test[:5]
    cs.add(1, X_new, SCALE[1] * latency_ms(X_new))
    _, sigma_after = cs.predict_log(X_test)
    assert not fits  # 5 < 10 new points: conditioned, not refitted
    assert cs.n_points(1) == 8
    # conditioned on them: sigma (observation noise included) at the new points shrank;
    # the multi-task GP measured 0.63 with botorch 0.18.1 (0.6 failed there, before and
    # after the split of ClusterSurrogate), the independent GPs less
    assert np.median(sigma_after[:5, 1] / sigma_before[:5, 1]) < 0.7
    cs.add(0, X_test[5:10], latency_ms(X_test[5:10]))
    cs.refit()
    assert fits == [1]  # 10 new points: full refit


def test_prior_mean(data):
    X0, X1, X_test = data
    prior = lambda X: np.exp(0.5 * X[:, 2])  # noqa: E731
    cs = MultiTaskLatencyModel(2, fit_timeout_s=None)
    cs.add(0, X0, latency_ms(X0), prior_ms=prior(X0))
    cs.add(1, X1, SCALE[1] * latency_ms(X1), prior_ms=prior(X1))
    mean, _ = cs.predict(X_test, prior_ms=prior(X_test))
    assert np.all(mape(mean, latency_ms(X_test)[:, None] * SCALE[:2]) < 10.0)
    with pytest.raises(ValueError, match="prior_ms is required"):
        cs.predict(X_test)
    with pytest.raises(ValueError, match="every add"):
        cs.add(0, X1, latency_ms(X1))


def test_bad_input(data):
    X0, _, _ = data
    cs = MultiTaskLatencyModel(2)
    with pytest.raises(RuntimeError, match="no data"):
        cs.predict(X0)
    with pytest.raises(ValueError, match=r"cluster must be in 0\.\.1"):
        cs.add(2, X0, latency_ms(X0))
    with pytest.raises(ValueError, match="> 0 ms"):
        cs.add(0, X0, -latency_ms(X0))
    cs.add(0, X0, latency_ms(X0))
    with pytest.raises(ValueError, match="expected 3"):
        cs.add(1, X0[:, :2], latency_ms(X0))
    with pytest.raises(ValueError, match="refit_every >= 1"):
        IndependentLatencyModel(2, refit_every=0)
    with pytest.raises(ValueError, match="fallback_log_std >= 0"):
        IndependentLatencyModel(2, fallback_log_std=-1.0)


def test_both_models_satisfy_the_latency_model_contract(transfer_model, independent_model):
    assert isinstance(transfer_model, MultiTaskLatencyModel)
    assert isinstance(independent_model, IndependentLatencyModel)
    for model in (transfer_model, independent_model):
        assert isinstance(model, LatencyModel) and model.n_clusters == 3

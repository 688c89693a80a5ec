"""FleetGP: artefact rejection, winsorised outliers, median predictions, joint samples."""

import numpy as np
import pytest

from surrogates.artefacts import artefact_mask, artefact_mask_by_group
from surrogates.fleet_gp import FleetGP


def fleet(seed=0, n=120, d=3):
    """Three clusters whose log latency is an affine map of one shared function."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, d))
    shared = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + 0.5 * X[:, 2]
    truth = np.column_stack([3 + shared, 2.5 + 0.8 * shared, 1 + 1.3 * shared])  # log ms
    return rng, X, truth


def test_artefact_mask_flags_only_far_readings():
    rng = np.random.default_rng(1)
    log_y = np.log(25.7) + 0.6 * rng.standard_normal(300)
    log_y[:12] = np.log(0.011)  # raspi4's non-functional cells
    log_y[12] = np.log(25.7 * 30)  # a stall, 30x the median
    mask = artefact_mask(log_y)
    assert mask[:13].all()
    assert not mask[13:].any()


def test_artefact_mask_spares_small_samples_and_tight_devices():
    assert not artefact_mask(np.log([1.0, 1.0, 0.001, 1.0])).any()  # fewer than 5 readings
    tight = np.log(np.linspace(1.0, 8.0, 50))  # 8x spread, under the 10x floor
    assert not artefact_mask(tight).any()
    with pytest.raises(ValueError, match="finite 1-D"):
        artefact_mask(np.array([np.nan, 1.0]))


def test_artefact_mask_by_group_uses_each_groups_own_distribution():
    log_y = np.concatenate([np.zeros(10) + 0.1 * np.arange(10) / 10, np.log(100) + np.zeros(10)])
    group = np.repeat([0, 1], 10)
    assert not artefact_mask_by_group(log_y, group).any()  # 100x apart, but in different groups
    log_y[15] = 0.0
    assert np.flatnonzero(artefact_mask_by_group(log_y, group)).tolist() == [15]


def test_planted_artefacts_are_excluded_and_do_not_move_predictions():
    rng, X, truth = fleet()
    clean, dirty = FleetGP(3, structure="calibrated"), FleetGP(3, structure="calibrated")
    planted = []
    for k in range(3):
        idx = rng.choice(len(X), 25, replace=False)
        y = np.exp(truth[idx, k] + 0.03 * rng.standard_normal(25))
        clean.add(k, X[idx], y)
        y_dirty = y.copy()
        if k == 0:
            y_dirty[:4] = 0.011  # orders of magnitude below the cluster's ~20 ms
            planted = [0, 1, 2, 3]
        dirty.add(k, X[idx], y_dirty)
    dirty.refit()
    assert np.flatnonzero(dirty.artefacts).tolist() == planted
    error = {}
    for name, model in (("clean", clean), ("dirty", dirty)):
        median, _ = model.predict(X)
        error[name] = np.abs(np.log(median) - truth).mean()
    assert error["clean"] < 0.05
    assert error["dirty"] < error["clean"] + 0.01


def test_moderate_outlier_is_winsorised():
    rng, X, truth = fleet(seed=2)
    model = FleetGP(3, structure="independent")
    for k in range(3):
        idx = rng.choice(len(X), 30, replace=False)
        y = np.exp(truth[idx, k] + 0.02 * rng.standard_normal(30))
        if k == 1:
            y[0] *= 3.0  # a 3x reading: not an artefact, but far off the model
        model.add(k, X[idx], y)
    model.refit()
    assert not model.artefacts.any()
    assert model.n_winsorised >= 1


def test_median_prediction_and_joint_samples():
    rng, X, truth = fleet(seed=3)
    model = FleetGP(3, structure="calibrated")
    for k in range(3):
        idx = rng.choice(len(X), 20, replace=False)
        model.add(k, X[idx], np.exp(truth[idx, k]))
    mu, sigma = model.predict_log(X[:7])
    median, std = model.predict(X[:7])
    np.testing.assert_allclose(median, np.exp(mu))  # the median, not exp(mu + sigma^2 / 2)
    assert median.shape == std.shape == (7, 3) and (std > 0).all()
    samples = model.posterior_samples(X[:7], 4000, seed=1)
    assert samples.shape == (4000, 7, 3)
    np.testing.assert_allclose(np.log(samples).mean(0), mu, atol=4 * sigma.max() / np.sqrt(4000))
    np.testing.assert_array_equal(samples, model.posterior_samples(X[:7], 4000, seed=1))
    corr = model.task_correlation()
    assert corr.shape == (3, 3) and corr[0, 1] > 0.9  # planted: one shared function


def test_prior_must_be_given_consistently():
    model = FleetGP(2)
    model.add(0, np.zeros((2, 1)) + [[0.0], [1.0]], np.array([1.0, 2.0]), prior_ms=np.ones(2))
    with pytest.raises(ValueError, match="every add"):
        model.add(1, np.zeros((1, 1)), np.array([1.0]))
    with pytest.raises(ValueError, match="structure"):
        FleetGP(2, structure="shared")


def test_same_data_same_predictions_whatever_the_thread_count():
    import torch

    rng, X, truth = fleet(seed=4)
    idx = rng.choice(len(X), 20, replace=False)
    outputs = []
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model = FleetGP(3, structure="icm", seed=7)
            for k in range(3):
                model.add(k, X[idx], np.exp(truth[idx, k]))
            outputs.append((*model.predict(X), model.posterior_samples(X[:5], 16, seed=3)))
    finally:
        torch.set_num_threads(before)
    for a, b in zip(*outputs, strict=True):
        np.testing.assert_array_equal(a, b)

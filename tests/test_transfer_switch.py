"""TransferSwitch: transfer is chosen where clusters share a ranking, switched off where not."""

import json

import numpy as np
import pytest

from surrogates.transfer_switch import TransferSwitch


def planted_fleet(shared: bool, seed: int = 0, n: int = 150):
    """(X, truth log-ms (n, 3)): clusters affine in one function, or three unrelated ones."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 4))
    if shared:
        f = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + 0.5 * X[:, 2]
        fs = [f, f, f]
    else:
        fs = [np.sin(3 * X[:, 0]), np.cos(4 * X[:, 1]) * X[:, 3], 4 * (X[:, 2] - 0.5) ** 2]
    affine = [(3, 1), (2.5, 0.8), (1, 1.3)]
    truth = np.column_stack([a + b * f for (a, b), f in zip(affine, fs, strict=True)])
    return rng, X, truth


def fitted(shared: bool, n_target: int, n_source: int = 30, seed: int = 0) -> tuple:
    """A switch with ``n_source`` points on clusters 0 and 1 and ``n_target`` on cluster 2."""
    rng, X, truth = planted_fleet(shared, seed)
    switch = TransferSwitch(3)
    for k, n in enumerate((n_source, n_source, n_target)):
        idx = rng.choice(len(X), n, replace=False)
        switch.add(k, X[idx], np.exp(truth[idx, k] + 0.03 * rng.standard_normal(n)))
    switch.refit()
    median, _ = switch.predict(X)
    return switch, np.abs(np.log(median[:, 2]) - truth[:, 2]).mean()


@pytest.mark.parametrize("n_target", [5, 10])
def test_transfer_is_chosen_on_a_fleet_that_shares_its_ranking(n_target):
    switch, error = fitted(shared=True, n_target=n_target)
    assert switch.choice in ("calibrated", "icm")
    scores = switch.evidence["loo_nats_per_point"]
    assert scores[switch.choice] > scores["independent"] + 0.1
    assert error < 0.05  # the sparse cluster is predicted from the others


@pytest.mark.parametrize("n_target", [5, 10])
def test_transfer_is_switched_off_on_a_fleet_without_shared_ranking(n_target):
    switch, _ = fitted(shared=False, n_target=n_target)
    assert switch.choice == "independent"


def test_more_target_data_is_never_worse():
    errors = [fitted(shared=True, n_target=n, seed=1)[1] for n in (10, 20, 50)]
    assert errors[1] <= errors[0] * 1.1 and errors[2] <= errors[1] * 1.1, errors


def test_evidence_is_json_ready_and_names_the_choice():
    switch, _ = fitted(shared=True, n_target=5)
    evidence = json.loads(json.dumps(switch.evidence))
    assert evidence["choice"] == switch.choice
    assert set(evidence["loo_nats_per_point"]) == {"independent", "calibrated", "icm"}
    assert evidence["n_points"] == 65


def test_structures_are_compared_again_only_when_the_data_grow_by_regrow():
    switch, _ = fitted(shared=True, n_target=10)  # 70 points, compared at 70
    rng, X, truth = planted_fleet(shared=True, seed=5)
    others = [name for name in switch.models if name != switch.choice]

    def add(n: int) -> None:
        switch.add(2, X[:n], np.exp(truth[:n, 2]))

    add(10)  # 80 < 1.25 * 70: only the chosen structure is refitted
    switch.refit()
    assert not switch.models[switch.choice].is_stale
    assert all(switch.models[name].is_stale for name in others)
    assert switch.evidence["compared_at_points"] == 70
    add(10)  # 90 >= 87.5: every structure again
    switch.refit()
    assert not any(model.is_stale for model in switch.models.values())
    assert switch.evidence["compared_at_points"] == 90


def test_a_prediction_after_new_data_refits_the_chosen_structure_alone():
    switch, _ = fitted(shared=True, n_target=10)  # 70 points, compared at 70
    rng, X, truth = planted_fleet(shared=True, seed=6)
    others = [name for name in switch.models if name != switch.choice]
    assert not switch.is_stale
    switch.add(2, X[:30], np.exp(truth[:30, 2]))  # 100 >= 1.25 * 70, but no explicit refit
    assert switch.is_stale
    median, _ = switch.predict(X)
    assert not switch.is_stale and not switch.models[switch.choice].is_stale
    assert all(switch.models[name].is_stale for name in others)
    assert switch.evidence["compared_at_points"] == 70 and switch.evidence["n_points"] == 100
    assert np.abs(np.log(median[:, 2]) - truth[:, 2]).mean() < 0.05

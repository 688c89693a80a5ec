"""Fleet EHVI: botorch's value against a brute-force Monte-Carlo EHVI on a tiny fleet."""

import moocore
import numpy as np
import pytest

from surrogates.fleet_ehvi import (
    choose_pairs,
    fleet_objectives,
    front_partitioning,
    log_ehvi,
    noise_floor_hv,
)

WEIGHTS = np.array([0.7, 0.3])
SCALE = np.array([1.0, 10.0, 10.0])
REF = np.array([1.0, 20.0, 25.0])
FRONT = np.array([[0.2, 12.0, 15.0], [0.5, 8.0, 11.0], [0.8, 6.0, 9.0]])


def tiny_fleet(seed=0, S=4000, n=6):
    """(S, n, 3) samples: accuracy loss and two correlated cluster latencies in ms."""
    rng = np.random.default_rng(seed)
    loss_mu = rng.uniform(0.2, 0.8, n)
    lat_mu = rng.uniform(np.log(6), np.log(14), n)
    z = rng.standard_normal((S, n, 2))
    z[..., 1] = 0.6 * z[..., 0] + 0.8 * z[..., 1]  # correlated clusters
    lat = np.exp(lat_mu[None, :, None] + [0.0, 0.3] + 0.25 * z)
    loss = loss_mu + 0.05 * rng.standard_normal((S, n))
    return np.concatenate([loss[..., None], lat], axis=-1)


def brute_force_ehvi(samples, observe=None):
    """Mean over samples of the exact hypervolume gain of each candidate, scaled space."""
    if observe is not None:
        held = np.broadcast_to(samples.mean(0, keepdims=True), samples.shape).copy()
        held[..., observe] = samples[..., observe]
        samples = held
    F = fleet_objectives(samples, WEIGHTS) / SCALE  # (S, n, 3)
    front, ref = FRONT / SCALE, REF / SCALE
    base = moocore.hypervolume(front, ref=ref)
    gain = np.zeros(F.shape[:2])
    for s in range(F.shape[0]):
        for i in range(F.shape[1]):
            if (F[s, i] < ref).all():
                gain[s, i] = moocore.hypervolume(np.vstack([front, F[s, i]]), ref=ref) - base
    return gain.mean(0)


@pytest.mark.parametrize("observe", [None, 0, 1, 2])
def test_log_ehvi_matches_brute_force_monte_carlo(observe):
    samples = tiny_fleet()
    exact = brute_force_ehvi(samples, observe)
    ours = np.exp(log_ehvi(samples, WEIGHTS, FRONT, REF, SCALE, observe))
    assert exact.max() > 1e-3  # the fleet is not trivial: some candidates improve the front
    big = exact > 1e-4
    np.testing.assert_allclose(ours[big], exact[big], rtol=0.05)
    assert (ours[~big] < 2e-4).all()
    assert np.argmax(ours) == np.argmax(exact)


def test_decoupled_value_ignores_a_cluster_that_never_sets_the_worst_case():
    samples = tiny_fleet(seed=1)
    samples[..., 1] *= 0.2  # cluster 1 is always much faster: only cluster 2 is the max
    samples[..., 1] = samples[..., 1].mean(0)  # and its latency is certain
    one = np.exp(log_ehvi(samples, WEIGHTS, FRONT, REF, SCALE, observe=1))
    two = np.exp(log_ehvi(samples, WEIGHTS, FRONT, REF, SCALE, observe=2))
    assert (one <= two + 1e-9).all() and two.max() > 1e-3


def test_choose_pairs_prefers_cheap_outputs_and_skips_measured_pairs():
    samples = tiny_fleet(seed=2, S=512)
    measured = np.zeros((6, 3), dtype=bool)
    costs = np.array([np.inf, 1.0, 1.0])  # accuracy is not measured here
    pairs = choose_pairs(samples, WEIGHTS, FRONT, REF, SCALE, costs, measured, batch_size=4)
    assert len(pairs) == 4 and all(j in (1, 2) for _, j, _ in pairs)
    assert len({(i, j) for i, j, _ in pairs}) == 4
    first = pairs[0]
    measured[first[0], first[1]] = True
    again = choose_pairs(samples, WEIGHTS, FRONT, REF, SCALE, costs, measured, batch_size=1)
    assert (again[0][0], again[0][1]) != (first[0], first[1])
    pricey = np.array([np.inf, 1.0, 1e6])
    cheap_first = choose_pairs(samples, WEIGHTS, FRONT, REF, SCALE, pricey, measured, 1)
    assert cheap_first[0][1] == 1


def test_noise_floor_is_one_points_noise_and_grows_with_noise():
    small = noise_floor_hv(FRONT, REF, SCALE, 0.01)
    large = noise_floor_hv(FRONT, REF, SCALE, 0.05)
    assert 0 < small < large
    one = FRONT[1:2]  # one point: its box minus the box of its 1 % slower self
    box = np.prod(REF / SCALE - one[0] / SCALE)
    shrunk = (REF[0] - one[0, 0]) * np.prod(REF[1:] / SCALE[1:] - 1.01 * one[0, 1:] / SCALE[1:])
    assert np.isclose(noise_floor_hv(one, REF, SCALE, 0.01), box - shrunk)


def test_ehvi_runs_without_botorch_compiling_its_fused_kernel():
    from botorch.acquisition.multi_objective import logei

    log_ehvi(tiny_fleet(S=8), WEIGHTS, FRONT, REF, SCALE)
    assert logei._C is None  # the PyTorch path: the same numbers on every machine


def test_one_partitioning_of_a_front_serves_every_output_exactly():
    samples = tiny_fleet(S=64)
    partitioning = front_partitioning(FRONT, REF, SCALE)
    for observe in (None, 0, 1, 2):  # the same object, reused by every call
        shared = log_ehvi(samples, WEIGHTS, FRONT, REF, SCALE, observe, partitioning)
        fresh = log_ehvi(samples, WEIGHTS, FRONT, REF, SCALE, observe)
        np.testing.assert_array_equal(shared, fresh)
    # the caller's partitioning (the acquisition's, shared with its stopping rule) gives
    # the pairs and values of one built inside
    args = (samples, WEIGHTS, FRONT, REF, SCALE, np.ones(3), np.zeros((samples.shape[1], 3)), 3)
    given = choose_pairs(*args, partitioning=partitioning)
    assert given == choose_pairs(*args) and len(given) == 3

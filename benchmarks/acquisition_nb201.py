r"""The search-v2 acquisition on the NB201 four-device fleet, outside the search loop.

A stand-alone loop over the recorded NAS-Bench-201 fleet of ``problems/nb201_fleet.py``
(``samsung_s7``, ``raspi4``, ``eyeriss``, ``fpga``; accuracy is the recorded CIFAR-10
validation accuracy, exact and free), to measure what the new surrogate parts do before
they are wired into ``FleetSearch``:

1. Initial design: the problem's anchors and ``--n-init`` random cells, on every cluster.
2. Rounds: refit the latency model (``--model``: ``switch`` = ``TransferSwitch``, or one
   ``FleetGP`` structure); draw ``--samples`` joint posterior samples of every cell's
   latency on every cluster; keep the cells on the first ``--layers`` non-dominated layers
   of the posterior-median objectives (the enumerable space stands in for NSGA-II run to
   convergence on the posterior); pick ``--batch`` (cell, cluster) pairs by decoupled EHVI
   (``surrogates.fleet_ehvi.choose_pairs``; ``--acquisition random`` picks random open
   pairs among the same cells instead, as a control); measure them (recorded value times
   log-normal noise of ``--noise``).
3. Until the budget minus ``M * K`` (the final verification) is spent.
4. Final front: ``front_choice.greedy_hv_subset`` of at most ``M`` cells on the posterior-
   median objectives of every cell, each measured on every cluster; the verified
   non-dominated front is scored on the recorded values.

Score: hypervolume fraction of the exact front, with the scaling and reference point of
``benchmarks.compare`` (baseline-scaled, reference ``(loss_0 + 0.1, 1.1, 1.1)``).
Run::

    python -m benchmarks.acquisition_nb201 [--seeds 5] [--first-seed 100] [--budget 200]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
import warnings
from pathlib import Path

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from moo_compress.front_choice import greedy_hv_subset
from moo_compress.nb201 import all_cells, nb201_true_front
from surrogates.fleet_ehvi import (
    choose_pairs,
    fleet_objectives,
    hypervolume_inside,
    log_ehvi,
    noise_floor_hv,
)
from surrogates.fleet_gp import STRUCTURES, FleetGP
from surrogates.transfer_switch import TransferSwitch

PROBLEM_FILE = Path(__file__).resolve().parents[1] / "problems" / "nb201_fleet.py"
LOSS_MARGIN, LATENCY_REFERENCE = 0.10, 1.1


def load_problem(seed: int):
    r"""``NB201Fleet(seed)`` from ``problems/nb201_fleet.py``."""
    spec = importlib.util.spec_from_file_location("nb201_fleet_problem", PROBLEM_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.NB201Fleet(seed)


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, float]:
    r"""One loop; returns the HV fraction, measurements and timings."""
    problem = load_problem(seed)
    rng = np.random.default_rng(seed)
    cells = all_cells()
    feats = problem.features(cells)
    true_lat = problem.clusters.true_cluster_latency(cells)  # (N, K) ms
    loss = 1.0 - problem.evaluator.data.valid_accuracy(cells)
    weights = np.asarray(problem.clusters.weights, dtype=float)
    K = true_lat.shape[1]
    truth = nb201_true_front(problem)
    base = int(np.flatnonzero((cells == problem.baseline()).all(1))[0])
    base_F = truth.F[base]
    scale = np.array([1.0, base_F[1], base_F[2]])
    ref = np.array([base_F[0] + LOSS_MARGIN, LATENCY_REFERENCE, LATENCY_REFERENCE])
    true_hv = hypervolume_inside(truth.front_F / scale, ref)

    model = (
        TransferSwitch(K, seed=seed)
        if args.model == "switch"
        else FleetGP(K, structure=args.model, seed=seed)
    )
    measured = np.zeros((len(cells), K), dtype=bool)
    observed = np.full((len(cells), K), np.nan)

    def measure(i: int, k: int) -> None:
        value = true_lat[i, k] * np.exp(args.noise * rng.standard_normal())
        measured[i, k], observed[i, k] = True, value
        model.add(k, feats[[i]], np.array([value]))

    anchors = [int(np.flatnonzero((cells == a).all(1))[0]) for a in problem.anchors()]
    initial = np.unique(
        np.concatenate([anchors, rng.choice(len(cells), args.n_init, replace=False)])
    )
    for i in initial:
        for k in range(K):
            measure(int(i), k)
    spendable = args.budget - args.M * K
    acq_times, stopped = [], False
    while measured.sum() < spendable:
        model.refit()
        t0, c0 = time.perf_counter(), time.process_time()
        median, _ = model.predict(feats)
        F_med = fleet_objectives(np.column_stack([loss, median]), weights)
        layers = NonDominatedSorting().do(F_med, n_stop_if_ranked=4 * args.batch)
        pool = np.concatenate(layers[: args.layers])
        lat_samples = model.posterior_samples(feats[pool], args.samples, seed=seed)
        samples = np.concatenate(
            [np.broadcast_to(loss[pool], lat_samples.shape[:2])[..., None], lat_samples], -1
        )
        seen = measured.any(1)
        front = F_med[seen][NonDominatedSorting().do(F_med[seen], only_non_dominated_front=True)]
        open_pairs = np.column_stack([np.ones(len(pool), bool), measured[pool]])  # loss known
        n = int(min(args.batch, spendable - measured.sum()))
        costs = np.array([np.inf] + [1.0] * K)
        if args.acquisition == "ehvi":
            picks = choose_pairs(samples, weights, front, ref * scale, scale, costs, open_pairs, n)
            best = np.exp(log_ehvi(samples, weights, front, ref * scale, scale).max())
            floor = noise_floor_hv(front, ref * scale, scale, args.noise)
            stopped = args.early_stop and best < floor
        else:
            free = np.argwhere(~open_pairs[:, 1:])
            chosen = free[rng.choice(len(free), min(n, len(free)), replace=False)]
            picks = [(int(i), int(k) + 1, 0.0) for i, k in chosen]
        acq_times.append((time.perf_counter() - t0, time.process_time() - c0))
        if not picks or stopped:
            break
        for i, j, _ in picks:
            measure(int(pool[i]), j - 1)

    model.refit()
    median, _ = model.predict(feats)
    F_med = fleet_objectives(np.column_stack([loss, median]), weights)
    nd = NonDominatedSorting().do(F_med, only_non_dominated_front=True)
    chosen = nd[greedy_hv_subset(F_med[nd] / scale, args.M, ref)]
    verified = truth.F[chosen]  # every cluster measured: the recorded values
    verified = verified[np.isfinite(verified).all(1)]
    nd_v = verified[NonDominatedSorting().do(verified, only_non_dominated_front=True)]
    spent = int(measured.sum()) + len(chosen) * K
    out = {
        "hv_fraction": hypervolume_inside(nd_v / scale, ref) / true_hv,
        "measurements": spent,
        "acq_wall_s": float(np.mean([w for w, _ in acq_times])) if acq_times else 0.0,
        "acq_cpu_s": float(np.mean([c for _, c in acq_times])) if acq_times else 0.0,
        "acq_cpu_s_max": float(np.max([c for _, c in acq_times])) if acq_times else 0.0,
        "stopped_early": stopped,
        "front_points": len(nd_v),
    }
    if isinstance(model, TransferSwitch):
        out["choice"] = model.choice
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=200, help="latency measurements")
    parser.add_argument("--M", type=int, default=16, help="most reported configurations")
    parser.add_argument("--n-init", type=int, default=8, help="random cells of the design")
    parser.add_argument("--batch", type=int, default=8, help="pairs per round")
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3, help="posterior front layers kept")
    parser.add_argument("--noise", type=float, default=0.03, help="log-normal sigma")
    parser.add_argument("--model", choices=("switch", *STRUCTURES), default="switch")
    parser.add_argument("--acquisition", choices=("ehvi", "random"), default="ehvi")
    parser.add_argument("--early-stop", action="store_true")
    args = parser.parse_args()
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            t0 = time.perf_counter()
            r = run_seed(args, seed)
            rows.append(r)
            print(f"seed {seed}: {r} ({time.perf_counter() - t0:.0f} s)", flush=True)
    hvf = np.array([r["hv_fraction"] for r in rows])
    print(
        f"{args.model}/{args.acquisition}, budget {args.budget}, M {args.M}: HV fraction "
        f"{hvf.mean():.4f} +- {hvf.std(ddof=1) if len(hvf) > 1 else 0:.4f} over seeds "
        f"{args.first_seed}-{args.first_seed + args.seeds - 1}; acquisition step (predict all "
        f"cells, sample the pool, choose pairs): CPU mean "
        f"{np.mean([r['acq_cpu_s'] for r in rows]):.2f} s, max "
        f"{np.max([r['acq_cpu_s_max'] for r in rows]):.2f} s; wall mean "
        f"{np.mean([r['acq_wall_s'] for r in rows]):.2f} s"
    )


if __name__ == "__main__":
    main()

r"""Per-cluster GP latency surrogates for ResNet50 on a field-aged Jetson Xavier NX fleet.

Run::

    python -m benchmarks.surrogate_resnet50 [--per-cluster 100] [--test 1000] [--seed 0] \
        [--threads 1]

``--threads`` sets torch's thread count for every GP fit (default 1: on a small machine shared
with other jobs, more threads made some fits several times slower, depending on the load; the
timing table shows both).

Setting (the HDAP problem of ``problems/resnet50_hdap.py``): torchvision ResNet50 (random
weights, latency only) at 1x3x224x224, ``SearchSpace.from_model(granularity="block",
prune_cross_block=False, bit_widths=(8, 16, 32))`` (n_var = 68: 16 prune genes, 52 bit
genes), ``Fleet.field_aged(jetson-xavier-nx, n=500, seed)`` clustered with ``cluster_fleet``
into ``K`` clusters, each with one representative device (``FleetClusters``).

Data:

- Training: one scrambled-Sobol design (``initial_design``, seeded) of max(``--per-cluster``,
  500) configs; its first ``n`` rows are exactly ``initial_design(n)``. Every training config
  is measured on every cluster's representative:
  ``representatives[k].measure(space.decode(x)).median_ms`` (median of 5 noisy samples, ms).
  Learning curve at n = 10, 25, 50, 100 configs per cluster (capped at
  ``--per-cluster``, which is always included).
- Test: ``--test`` configs drawn uniformly from the integer box ``[xl, xu]``. Two noiseless
  truths per cluster: the representative's ``true_latency_ms`` (what the surrogate is trained
  to predict; the main metrics) and the mean true latency of the cluster's member devices
  (``fleet.true_latency_ms``, what the fleet objectives stand for).

Surrogate: the multi-task or independent GP latency model (``gp_latency_model``) on log
latency, ``maxiter=50, fit_timeout_s=None`` (the
search's setting), ``transfer=True`` (``MultiTaskGP``) or ``False`` (one GP per cluster).
Features: ``config_features`` with 4 stages (the search's default); the ablation at 50 configs
per cluster adds 1 and 8 stages and the raw genes (pruning ratio of each prune gene,
``log2(bits)`` of each bit gene).

Metrics (``surrogates.quality.quality_columns``, i.e. ``quality_report`` per cluster): MAPE
(%), share within +-10 % (%), Spearman rank correlation, coverage (%) of the central 95 %
log-normal predictive interval. The issue's target is MAPE <= 5 % and Spearman >= 0.95 with
<= 100 measurements per cluster (HDAP: 5,000 per model); "target met" is judged on the
numbers of its row (vs the representative's truth), "clusters met" counts the clusters that
meet it on their own.

Timing: full fit of 500 points (one GP on 500 configs of cluster 0; a MultiTaskGP and K
independent GPs on 500 / K configs per cluster) and prediction of a population of 200 on
every cluster (first call after the fit, which builds the caches, and later calls), each at
``--threads`` torch threads and at torch's default thread count; targets < 5 s and < 0.2 s.
Fits: median of 3; warm predictions: median of 5 populations. Feature computation (costs +
features of 200 configs) is timed apart. A second fit-setting table compares maxiter 50 with
300, and a third one how much the MultiTaskGP depends on its random initial task covariance
(5 torch seeds; every fit is preceded by ``torch.manual_seed``, so each row is reproducible).
Nothing here asserts: the script prints what it measured.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torchvision
from rich.console import Console
from rich.table import Table

from moo_compress.clustering import cluster_fleet
from moo_compress.devices.skus import get_sku
from moo_compress.fleet import Fleet
from moo_compress.fleet_clusters import FleetClusters
from moo_compress.search_space import SearchSpace
from surrogates.active_learning import initial_design
from surrogates.cluster_gp import ClusterGP
from surrogates.features import config_features, stage_bounds
from surrogates.latency_model import gp_latency_model
from surrogates.quality import quality_columns

CURVE_N = (10, 25, 50, 100)
ABLATION_N = 50
SMALL_N = 25
MAXITER = 50
MAXITER_ALT = 300
STAGES = (4, 1, 8)
MAIN_FEATURES = "stages=4"
RAW_FEATURES = "raw genes"
FEATURES = (*(f"stages={s}" for s in STAGES), RAW_FEATURES)
TARGET_MAPE = 5.0
TARGET_SPEARMAN = 0.95
TIMING_POINTS = 500
POP_SIZE = 200
FIT_REPEATS = 3
INIT_SEEDS = 5
WARM_PREDICTS = 5
TARGET_FIT_S = 5.0
TARGET_PREDICT_S = 0.2

console = Console(width=180)


@dataclass(frozen=True)
class Setting:
    r"""The search space, the fleet and its clusters."""

    space: SearchSpace
    fleet: Fleet
    clusters: FleetClusters

    @property
    def k(self) -> int:
        return self.clusters.k


@dataclass(frozen=True)
class Data:
    r"""Measured training data and noiseless test truths.

    Attributes:
        train: Feature set name -> ``(n_design, d)`` features of the design.
        y_ms: ``(n_design, K)`` measured latency (ms) of the design on each representative.
        test: Feature set name -> ``(n_test, d)`` features of the test configs.
        truth_rep: ``(n_test, K)`` true latency (ms) on each representative.
        truth_members: ``(n_test, K)`` mean true latency (ms) over each cluster's members.
    """

    train: dict[str, np.ndarray]
    y_ms: np.ndarray
    test: dict[str, np.ndarray]
    truth_rep: np.ndarray
    truth_members: np.ndarray


@dataclass(frozen=True)
class Run:
    r"""One fitted surrogate scored on the test set: metric -> ``(K,)`` per truth."""

    fit_s: float
    vs_rep: dict[str, np.ndarray]
    vs_members: dict[str, np.ndarray]

    def mean(self, metric: str, members: bool = False) -> float:
        return float(np.mean((self.vs_members if members else self.vs_rep)[metric]))

    @property
    def met(self) -> np.ndarray:
        r"""``(K,)`` whether each cluster meets the target (vs the representative)."""
        return (self.vs_rep["mape"] <= TARGET_MAPE) & (self.vs_rep["spearman"] >= TARGET_SPEARMAN)

    @property
    def mean_met(self) -> bool:
        return self.mean("mape") <= TARGET_MAPE and self.mean("spearman") >= TARGET_SPEARMAN


# ---------------------------------------------------------------------- setting and data
def build_setting(seed: int) -> Setting:
    r"""ResNet50 HDAP space, field-aged fleet of 500 Xavier NX units, clustered."""
    torch.manual_seed(seed)
    model, x = torchvision.models.resnet50(), torch.randn(1, 3, 224, 224)
    space = SearchSpace.from_model(
        model, x, granularity="block", prune_cross_block=False, bit_widths=(8, 16, 32)
    )
    fleet = Fleet.field_aged(get_sku("jetson-xavier-nx"), n=500, seed=seed)
    fleet.bind(space)
    clusters = FleetClusters.from_clustering(fleet, cluster_fleet(fleet, seed=seed))
    return Setting(space, fleet, clusters)


def raw_genes(space: SearchSpace, X: np.ndarray) -> np.ndarray:
    r"""``(N, n_var)`` gene values: pruning ratio per prune gene, ``log2(bits)`` per bit gene."""
    X = space.check(X)
    p = len(space.prune_genes)
    ratios = np.asarray(space.ratios)[X[:, :p]]
    log_bits = np.log2(np.asarray(space.bit_widths, dtype=float))[X[:, p:]]
    return np.hstack([ratios, log_bits])


def feature_sets(space: SearchSpace, X: np.ndarray) -> dict[str, np.ndarray]:
    r"""Every feature set of ``FEATURES`` for ``(N, n_var)`` configs (costs evaluated once)."""
    layers = space.costs(X).layers
    unpruned = space.costs(space.unpruned()).layers.macs[0]
    out = {f"stages={s}": config_features(layers, stage_bounds(unpruned, s)) for s in STAGES}
    out[RAW_FEATURES] = raw_genes(space, X)
    return out


def measure(setting: Setting, X: np.ndarray) -> np.ndarray:
    r"""``(N, K)`` measured median latency (ms) of each config on each representative."""
    space = setting.space
    return np.array(
        [
            [rep.measure(space.decode(x)).median_ms for rep in setting.clusters.representatives]
            for x in X
        ]
    )


def member_truth(setting: Setting, X: np.ndarray) -> np.ndarray:
    r"""``(N, K)`` mean true latency (ms) over the member devices of each cluster."""
    true = setting.fleet.true_latency_ms(X)
    labels = setting.clusters.labels
    return np.column_stack([true[:, labels == k].mean(axis=1) for k in range(setting.k)])


def random_configs(space: SearchSpace, n: int, rng: np.random.Generator) -> np.ndarray:
    r"""``(n, n_var)`` configs uniform over the integer box ``[xl, xu]``."""
    return rng.integers(space.xl, space.xu + 1, size=(n, space.n_var))


def build_data(setting: Setting, n_design: int, n_test: int, seed: int) -> Data:
    r"""Measure the Sobol design on every cluster; features and truths of the test set."""
    space = setting.space
    design = initial_design(space.xl, space.xu, n_design, seed)
    test = random_configs(space, n_test, np.random.default_rng(seed))
    reps = setting.clusters.representatives
    truth_rep = np.column_stack([rep.true_latency_ms(test) for rep in reps])
    return Data(
        train=feature_sets(space, design),
        y_ms=measure(setting, design),
        test=feature_sets(space, test),
        truth_rep=truth_rep,
        truth_members=member_truth(setting, test),
    )


# ---------------------------------------------------------------------- surrogates
def surrogate(
    F: np.ndarray, y_ms: np.ndarray, n: int, transfer: bool, maxiter: int = MAXITER
) -> ClusterGP:
    r"""A GP latency model holding the first ``n`` rows of ``F`` / ``y_ms`` per cluster."""
    k = y_ms.shape[1]
    cs = gp_latency_model(k, transfer, maxiter=maxiter, fit_timeout_s=None)
    for c in range(k):
        cs.add(c, F[:n], y_ms[:n, c])
    return cs


class Evaluator:
    r"""Fits and scores surrogates on ``Data``, each configuration once (cached).

    The torch generator is seeded before every fit (``init_seed``, default ``seed``): the
    MultiTaskGP draws its initial task covariance factor from it, so without this a fit would
    depend on what ran before it.
    """

    def __init__(self, data: Data, seed: int) -> None:
        self.data = data
        self.seed = seed
        self._runs: dict[tuple, Run] = {}

    def __call__(
        self,
        n: int,
        transfer: bool,
        features: str = MAIN_FEATURES,
        maxiter: int = MAXITER,
        init_seed: int | None = None,
    ) -> Run:
        key = (n, transfer, features, maxiter, self.seed if init_seed is None else init_seed)
        if key not in self._runs:
            self._runs[key] = self._evaluate(*key)
        return self._runs[key]

    def _evaluate(self, n: int, transfer: bool, features: str, maxiter: int, init_seed: int) -> Run:
        data = self.data
        cs = surrogate(data.train[features], data.y_ms, n, transfer, maxiter)
        torch.manual_seed(init_seed)
        start = time.perf_counter()
        cs.fit()
        fit_s = time.perf_counter() - start
        mean_ms, std_ms = cs.predict(data.test[features])
        return Run(
            fit_s,
            quality_columns(data.truth_rep, mean_ms, std_ms),
            quality_columns(data.truth_members, mean_ms, std_ms),
        )


# ---------------------------------------------------------------------- timing
@dataclass(frozen=True)
class Timing:
    r"""Seconds of one fit (median of repeats) and of predicting one population."""

    fit_s: float
    cold_predict_s: float
    warm_predict_s: float


def time_model(build: Callable[[], ClusterGP], pops: list[np.ndarray], seed: int) -> Timing:
    r"""Time ``fit`` of fresh surrogates from ``build`` and ``predict`` on ``pops``."""
    fits = []
    for _ in range(FIT_REPEATS):
        cs = build()
        torch.manual_seed(seed)
        start = time.perf_counter()
        cs.fit()
        fits.append(time.perf_counter() - start)
    predicts = []
    for pop in pops:
        start = time.perf_counter()
        cs.predict(pop)
        predicts.append(time.perf_counter() - start)
    return Timing(statistics.median(fits), predicts[0], statistics.median(predicts[1:]))


def timing_models(data: Data, k: int) -> dict[str, Callable[[], ClusterGP]]:
    r"""Builders of the three timed surrogates, each on about ``TIMING_POINTS`` points."""
    F, y = data.train[MAIN_FEATURES], data.y_ms
    m = math.ceil(TIMING_POINTS / k)
    return {
        f"one GP, cluster 0 ({TIMING_POINTS} pts)": lambda: surrogate(
            F, y[:, :1], TIMING_POINTS, transfer=False
        ),
        f"MultiTaskGP ({k} x {m} pts)": lambda: surrogate(F, y, m, transfer=True),
        f"independent GPs ({k} x {m} pts)": lambda: surrogate(F, y, m, transfer=False),
    }


def default_features(space: SearchSpace, X: np.ndarray) -> np.ndarray:
    r"""The search's surrogate inputs: costs of ``X``, then ``config_features`` (4 stages)."""
    stages = stage_bounds(space.costs(space.unpruned()).layers.macs[0], STAGES[0])
    return config_features(space.costs(X).layers, stages)


def time_features(space: SearchSpace, pop: np.ndarray) -> float:
    r"""Seconds to compute the default features of one population (median of 5)."""
    times = []
    for _ in range(5):
        start = time.perf_counter()
        default_features(space, pop)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_timings(
    data: Data, setting: Setting, thread_counts: list[int], seed: int
) -> dict[tuple[int, str], Timing]:
    r"""Timings of every model at every torch thread count (restored afterwards)."""
    rng = np.random.default_rng(seed + 1)
    space = setting.space
    pops = [
        default_features(space, random_configs(space, POP_SIZE, rng))
        for _ in range(1 + WARM_PREDICTS)
    ]
    before = torch.get_num_threads()
    out = {}
    try:
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for name, build in timing_models(data, setting.k).items():
                out[threads, name] = time_model(build, pops, seed)
    finally:
        torch.set_num_threads(before)
    return out


# ---------------------------------------------------------------------- tables
def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def pct(share: float) -> str:
    return f"{100 * share:.1f}"


def setting_table(setting: Setting, data: Data) -> Table:
    table = Table(title=f"Setting: {setting.space.describe()}")
    for col in (
        "cluster",
        "size",
        "representative",
        "main profile",
        "mean true ms (rep)",
        "rep vs member-mean MAPE %",
    ):
        table.add_column(col, justify="right")
    labels, profiles = setting.clusters.labels, setting.fleet.profiles
    gap = 100 * np.abs(data.truth_rep / data.truth_members - 1).mean(axis=0)
    for k, rep in enumerate(setting.clusters.representatives):
        names, counts = np.unique(profiles[labels == k], return_counts=True)
        main = f"{names[counts.argmax()]} ({100 * counts.max() / counts.sum():.0f} %)"
        table.add_row(
            str(k),
            str(setting.clusters.sizes[k]),
            rep.device_id,
            main,
            f"{data.truth_rep[:, k].mean():.2f}",
            f"{gap[k]:.2f}",
        )
    return table


def cluster_table(run: Run, title: str) -> Table:
    table = Table(title=title)
    for col in (
        "cluster",
        "MAPE %",
        "within ±10 %",
        "Spearman",
        "95 % cov. %",
        "MAPE % (members)",
        "Spearman (members)",
        "target met",
    ):
        table.add_column(col, justify="right")
    rep, mem = run.vs_rep, run.vs_members
    for k in range(len(rep["mape"])):
        table.add_row(
            str(k),
            f"{rep['mape'][k]:.2f}",
            pct(rep["within_10pct"][k]),
            f"{rep['spearman'][k]:.3f}",
            pct(rep["coverage_95"][k]),
            f"{mem['mape'][k]:.2f}",
            f"{mem['spearman'][k]:.3f}",
            yes_no(run.met[k]),
        )
    table.add_row(
        "mean",
        f"{run.mean('mape'):.2f}",
        pct(run.mean("within_10pct")),
        f"{run.mean('spearman'):.3f}",
        pct(run.mean("coverage_95")),
        f"{run.mean('mape', True):.2f}",
        f"{run.mean('spearman', True):.3f}",
        yes_no(run.mean_met),
    )
    return table


def summary_columns(table: Table, first: tuple[str, ...]) -> None:
    for col in (
        *first,
        "MAPE %",
        "worst MAPE %",
        "within ±10 %",
        "Spearman",
        "worst Spearman",
        "95 % cov. %",
        "MAPE % (members)",
        "fit s",
        "target met",
        "clusters met",
    ):
        table.add_column(col, justify="right")


def summary_row(table: Table, first: tuple[str, ...], run: Run) -> None:
    rep = run.vs_rep
    table.add_row(
        *first,
        f"{run.mean('mape'):.2f}",
        f"{rep['mape'].max():.2f}",
        pct(run.mean("within_10pct")),
        f"{run.mean('spearman'):.3f}",
        f"{rep['spearman'].min():.3f}",
        pct(run.mean("coverage_95")),
        f"{run.mean('mape', True):.2f}",
        f"{run.fit_s:.2f}",
        yes_no(run.mean_met),
        f"{run.met.sum()}/{len(run.met)}",
    )


def mode_name(transfer: bool) -> str:
    return "MultiTaskGP" if transfer else "independent"


def curve_table(evaluate: Evaluator, sizes: list[int]) -> Table:
    table = Table(
        title=f"Learning curve and transfer ablation ({MAIN_FEATURES} features, mean over clusters)"
    )
    summary_columns(table, ("n / cluster", "model"))
    for n in sizes:
        for transfer in (True, False):
            summary_row(table, (str(n), mode_name(transfer)), evaluate(n, transfer))
    return table


def feature_table(evaluate: Evaluator, n: int) -> Table:
    table = Table(title=f"Feature ablation at {n} configs per cluster")
    summary_columns(table, ("features", "d", "model"))
    for features in FEATURES:
        d = str(evaluate.data.train[features].shape[1])
        for transfer in (True, False):
            summary_row(table, (features, d, mode_name(transfer)), evaluate(n, transfer, features))
    return table


def maxiter_table(evaluate: Evaluator, sizes: list[int]) -> Table:
    table = Table(
        title=f"Fit setting: L-BFGS maxiter {MAXITER} vs {MAXITER_ALT} "
        f"(fit_timeout_s=None, {MAIN_FEATURES})"
    )
    summary_columns(table, ("n / cluster", "model", "maxiter"))
    for n in sizes:
        for transfer in (True, False):
            for maxiter in (MAXITER, MAXITER_ALT):
                run = evaluate(n, transfer, maxiter=maxiter)
                summary_row(table, (str(n), mode_name(transfer), str(maxiter)), run)
    return table


def init_table(evaluate: Evaluator, sizes: list[int]) -> Table:
    seeds = range(evaluate.seed, evaluate.seed + INIT_SEEDS)
    table = Table(
        title=f"MultiTaskGP init sensitivity: {INIT_SEEDS} torch seeds of the random "
        f"task-covariance init ({MAIN_FEATURES}); mean over clusters, then "
        "mean (min-max) over seeds"
    )
    for col in (
        "n / cluster",
        "maxiter",
        "MAPE %",
        "Spearman",
        "95 % cov. %",
        "fit s",
        "seeds target met",
        "clusters met",
    ):
        table.add_column(col, justify="right")
    for n in sizes:
        for maxiter in (MAXITER, MAXITER_ALT):
            runs = [evaluate(n, True, maxiter=maxiter, init_seed=s) for s in seeds]
            mape = [r.mean("mape") for r in runs]
            rho = [r.mean("spearman") for r in runs]
            table.add_row(
                str(n),
                str(maxiter),
                spread(mape, ".2f"),
                spread(rho, ".3f"),
                pct(np.mean([r.mean("coverage_95") for r in runs])),
                f"{np.mean([r.fit_s for r in runs]):.2f}",
                f"{sum(r.mean_met for r in runs)}/{len(runs)}",
                f"{sum(r.met.sum() for r in runs)}/{sum(len(r.met) for r in runs)}",
            )
    return table


def spread(values: list[float], fmt: str) -> str:
    return f"{np.mean(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def timing_table(timings: dict[tuple[int, str], Timing], feature_s: float) -> Table:
    table = Table(
        title=f"Timing: fit (median of {FIT_REPEATS}) and predict {POP_SIZE} configs "
        f"on every cluster; features of {POP_SIZE} configs: {feature_s:.3f} s; "
        f"1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    for col in (
        "torch threads",
        "model",
        "fit s",
        f"fit < {TARGET_FIT_S:g} s",
        "predict s (first)",
        f"predict s (median of {WARM_PREDICTS})",
        f"predict < {TARGET_PREDICT_S:g} s (first)",
    ):
        table.add_column(col, justify="right")
    for (threads, name), t in timings.items():
        table.add_row(
            str(threads),
            name,
            f"{t.fit_s:.2f}",
            yes_no(t.fit_s < TARGET_FIT_S),
            f"{t.cold_predict_s:.3f}",
            f"{t.warm_predict_s:.3f}",
            yes_no(t.cold_predict_s < TARGET_PREDICT_S),
        )
    return table


# ---------------------------------------------------------------------- summary
def smallest_n(evaluate: Evaluator, sizes: list[int], transfer: bool) -> str:
    r"""Smallest curve size whose mean meets the target, with the all-clusters one."""
    mean = next((n for n in sizes if evaluate(n, transfer).mean_met), None)
    every = next((n for n in sizes if evaluate(n, transfer).met.all()), None)
    return f"{mean or 'none'} (mean) / {every or 'none'} (every cluster)"


def brief(run: Run) -> str:
    return (
        f"MAPE {run.mean('mape'):.2f} % (worst cluster {run.vs_rep['mape'].max():.2f} %), "
        f"Spearman {run.mean('spearman'):.3f} (worst {run.vs_rep['spearman'].min():.3f})"
    )


def summary(
    setting: Setting,
    evaluate: Evaluator,
    sizes: list[int],
    args: argparse.Namespace,
    timings: dict[tuple[int, str], Timing],
    wall_s: float,
) -> str:
    n_max, n_abl = sizes[-1], min(ABLATION_N, sizes[-1])
    main = evaluate(n_max, True)
    lines = [
        f"- Setting: ResNet50 HDAP space (n_var={setting.space.n_var}), 500 field-aged Xavier "
        f"NX units, K={setting.k} clusters (sizes {setting.clusters.sizes.tolist()}), seed "
        f"{args.seed}, {args.test} random test configs, GP maxiter={MAXITER}, "
        f"fit_timeout_s=None, {args.threads} torch thread(s).",
        f"- MultiTaskGP, {MAIN_FEATURES}, {n_max}/cluster: {brief(main)}, within ±10 % "
        f"{pct(main.mean('within_10pct'))} %, 95 % coverage {pct(main.mean('coverage_95'))} %; "
        f"vs member means MAPE {main.mean('mape', True):.2f} %; target met: "
        f"{yes_no(main.mean_met)} ({main.met.sum()}/{setting.k} clusters).",
        f"- Smallest n/cluster meeting the target: MultiTaskGP {smallest_n(evaluate, sizes, True)}"
        f"; independent {smallest_n(evaluate, sizes, False)}.",
    ]
    lines += [
        f"- n={n}: MultiTaskGP {brief(evaluate(n, True))}; independent {brief(evaluate(n, False))}."
        for n in sizes
        if n <= SMALL_N
    ]
    lines.append(
        f"- Features at {n_abl}/cluster (MultiTaskGP): "
        + "; ".join(
            f"{f} MAPE {evaluate(n_abl, True, f).mean('mape'):.2f} % / Spearman "
            f"{evaluate(n_abl, True, f).mean('spearman'):.3f}"
            for f in FEATURES
        )
        + "."
    )
    seeds = range(evaluate.seed, evaluate.seed + INIT_SEEDS)
    lines += [
        f"- MultiTaskGP, {n}/cluster over {INIT_SEEDS} init seeds: "
        + "; ".join(
            f"maxiter {it} MAPE "
            + spread(
                [evaluate(n, True, maxiter=it, init_seed=s).mean("mape") for s in seeds], ".2f"
            )
            + " %"
            for it in (MAXITER, MAXITER_ALT)
        )
        + "."
        for n in fit_sizes(sizes)
    ]
    lines.append(
        "- Timing: "
        + "; ".join(
            f"{name} @ {threads} thr: fit {t.fit_s:.2f} s, predict {t.cold_predict_s:.3f} s"
            for (threads, name), t in timings.items()
        )
        + "."
    )
    lines.append(f"- Wall time of the benchmark: {wall_s:.0f} s.")
    return "\n".join(lines)


# ---------------------------------------------------------------------- main
def curve_sizes(per_cluster: int) -> list[int]:
    return sorted({n for n in CURVE_N if n < per_cluster} | {per_cluster})


def fit_sizes(sizes: list[int]) -> list[int]:
    r"""Sizes of the fit-setting tables: a small one and the largest."""
    return sorted({min(SMALL_N, sizes[-1]), sizes[-1]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--per-cluster",
        type=int,
        default=100,
        help="largest number of training configs per cluster",
    )
    parser.add_argument("--test", type=int, default=1000, help="held-out random configs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for the GP fits (the timing also runs torch's default)",
    )
    args = parser.parse_args()
    if args.per_cluster < 2 or args.test < 2 or args.threads < 1:
        parser.error("need --per-cluster >= 2, --test >= 2 and --threads >= 1")

    start = time.perf_counter()
    default_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    setting = build_setting(args.seed)
    sizes = curve_sizes(args.per_cluster)
    n_design = max(args.per_cluster, TIMING_POINTS)
    data = build_data(setting, n_design, args.test, args.seed)
    console.log(
        f"setting, {n_design} x {setting.k} measurements and test truths: "
        f"{time.perf_counter() - start:.0f} s"
    )
    console.print(setting_table(setting, data))

    evaluate = Evaluator(data, args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch / gpytorch internals
        for transfer in (True, False):
            console.print(
                cluster_table(
                    evaluate(sizes[-1], transfer),
                    f"{mode_name(transfer)}, {MAIN_FEATURES} features, {sizes[-1]} configs per "
                    f"cluster; truth: representative (members: cluster-mean of its devices)",
                )
            )
        console.print(curve_table(evaluate, sizes))
        console.print(feature_table(evaluate, min(ABLATION_N, sizes[-1])))
        console.print(maxiter_table(evaluate, fit_sizes(sizes)))
        console.print(init_table(evaluate, fit_sizes(sizes)))
        thread_counts = sorted({args.threads, default_threads})
        timings = run_timings(data, setting, thread_counts, args.seed)
    feature_s = time_features(
        setting.space, random_configs(setting.space, POP_SIZE, np.random.default_rng(args.seed + 2))
    )
    console.print(timing_table(timings, feature_s))
    console.print("\nSummary (markdown):\n")
    console.print(
        summary(setting, evaluate, sizes, args, timings, time.perf_counter() - start),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


if __name__ == "__main__":
    main()

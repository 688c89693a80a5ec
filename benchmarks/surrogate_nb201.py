r"""Latency transfer to an unseen device with 10 measurements, on real NAS-Bench-201 data.

Protocol (per target device and seed):

1. The target column of ``latency_help_ms.csv`` is hidden. Transfer sources are all other
   device columns of the file except the target's own batch-size variants (``titan_rtx_1``
   excludes ``titan_rtx_32`` and ``titan_rtx_256``); sources are fully measured.
2. Features of each of the 15,625 cells (standardised over the table, so no target data):
   ``ops``: the 6 edge ops as integers 0..4 (order ``none, skip_connect, nor_conv_1x1,
   nor_conv_3x3, avg_pool_3x3``), one-hot expanded to 30 columns; ``src``: log latency on
   every source device; ``src+ops``: both.
3. Target measurements (table look-ups) are chosen by uncertainty sampling with the
   surrogate itself: ``n_init`` cells uniformly at random (seeded), then repeatedly the
   unmeasured cell with the largest predictive log-space std of the surrogate refitted on
   the measurements so far, up to the largest ``--n-target``. Each smaller ``--n-target``
   is scored on the first cells of the same sequence, so "more data" means the same
   measurements plus more.
4. The surrogate fitted on the first ``n`` measurements predicts every cell; the report
   compares with the hidden column (Spearman, MAPE, share within 10 %, 95 % coverage).
5. Ceilings (:func:`transfer_ceiling`), from the whole target column: the best single
   source's Spearman (no proxy with a monotone calibration ranks better) and that of a
   least-squares fit on every source (about the best a linear transfer ranks).

Models (``--models``):

- ``linear``: a ``GPSurrogate`` with the linear kernel on the ``src`` features (Bayesian
  linear regression on all source devices), log-normal mean as the point prediction.
- ``switch``: ``surrogates.source_transfer.SourceTransfer``: a single proxy source, the
  first principal components of the sources or all sources, chosen per fit by
  leave-one-out evidence; artefact readings of the target left out; median prediction.
  It is scored on the same measurements as ``linear`` (the linear model's uncertainty
  sampling picks them): the comparison is of models on equal data, and one switch fit
  per ``n`` instead of per step keeps the run short.

Devices (``--devices``): ``dev`` are the eight HELP devices of ``TARGETS``, used while
designing the models; ``held-out`` are the eight ``HELD_OUT`` devices of
``latency_oneproxy_ms.csv`` (1,999 cells each, sources: every HELP column on the same
cells), chosen before any tuning and never used for it.

An ablation (``--kernels``, ``dev`` only, first ``--n-target``) compares feature sets of
the single-GP model by mean Spearman (the RBF kernel is ~50x slower here, as its fits on
10 points in 24 dimensions run into the optimiser caps). Nothing is tuned per device. Run::

    python -m benchmarks.surrogate_nb201 [--data DIR] [--n-target 10 20 50] [--seeds 5]
        [--first-seed 0] [--devices dev|held-out] [--models linear switch]

The data folder is ``--data``, else ``$MOO_COMPRESS_NB201``, else ``../shared/data/nb201``
relative to the repository root.
"""

from __future__ import annotations

import argparse
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr

from moo_compress.nb201 import OPS, data_dir, encode_ops
from surrogates.gp_surrogate import KERNELS, GPSurrogate, lognormal_moments
from surrogates.quality import quality_report
from surrogates.source_transfer import SourceTransfer

TARGETS = (
    "raspi4",
    "pixel3",
    "pixel2",
    "samsung_a50",
    "eyeriss",
    "fpga",
    "gold_6240",
    "titan_rtx_1",
)
HELD_OUT = (
    "eagle_cpu_855",
    "eagle_gpu_855",
    "eagle_dsp_855",
    "eagle_jetson",
    "eagle_tpu",
    "rice_edgegpu",
    "true_a76",
    "true_vpu",
)
"""Devices of ``latency_oneproxy_ms.csv`` held out from design (named before any tuning)."""
MODELS = ("linear", "switch")
HELP_SPEARMAN_10 = 0.932  # HELP (NeurIPS 2021), 10 samples per unseen device


@dataclass(frozen=True)
class Variant:
    r"""One surrogate configuration: a feature set and a GP kernel."""

    features: str  # "ops", "src" or "src+ops"
    kernel: str  # GPSurrogate kernel

    @property
    def name(self) -> str:
        return f"{self.features} ({self.kernel})"


FEATURE_SETS = ("ops", "src", "src+ops")


def device_group(column: str) -> str:
    r"""Device of a HELP column without its batch-size suffix (``titan_rtx_32 -> titan_rtx``)."""
    return re.sub(r"_(1|32|256)$", "", column)


def standardise(a: np.ndarray) -> np.ndarray:
    r"""Centre and scale the columns of ``(n, k)`` ``a``; constant columns are only centred."""
    std = a.std(axis=0)
    return (a - a.mean(axis=0)) / np.where(std > 0, std, 1.0)


def features(latency: pd.DataFrame, ops: np.ndarray, target: str, kind: str) -> np.ndarray:
    r"""``(n, k)`` standardised features of all cells for predicting ``target``.

    Args:
        latency: ``(n, devices)`` latency table in ms.
        ops: ``(n, 6)`` op indices from ``encode_ops``.
        target: Target column, hidden together with its batch-size variants.
        kind: ``"ops"``, ``"src"`` or ``"src+ops"``.
    """
    sources = [c for c in latency.columns if device_group(c) != device_group(target)]
    blocks = {
        "src": np.log(latency[sources].to_numpy()),
        "ops": np.eye(len(OPS))[ops].reshape(len(ops), -1),
    }
    return standardise(np.column_stack([blocks[k] for k in kind.split("+")]))


Predictor = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``(rows, y_ms) -> (mu, sigma)``: fit on measured rows, log-ms prediction of every cell."""


def gp_predictor(X: np.ndarray, kernel: str) -> Predictor:
    r"""A ``GPSurrogate`` on features ``(n, k)`` ``X`` (the ``linear`` model and the ablation)."""
    return lambda rows, y_ms: GPSurrogate(kernel=kernel).fit(X[rows], y_ms).predict_log(X)


def switch_predictor(sources_log: np.ndarray) -> Predictor:
    r"""``SourceTransfer`` on ``(n, S)`` source log latencies (the ``switch`` model)."""
    model = SourceTransfer(sources_log)
    return lambda rows, y_ms: model.fit(rows, y_ms).predict_log()


def select_by_uncertainty(
    predictor: Predictor, y_ms: np.ndarray, n_target: int, n_init: int, seed: int
) -> np.ndarray:
    r"""Indices of ``n_target`` rows to measure: ``n_init`` random, then max predictive std.

    Args:
        predictor: The surrogate, refitted after every measurement.
        y_ms: ``(n,)`` hidden latency in ms; only the chosen rows are read.
        n_target: Measurement budget.
        n_init: Random measurements before the surrogate chooses.
        seed: Seed of the random start.
    """
    chosen = list(np.random.default_rng(seed).choice(len(y_ms), size=n_init, replace=False))
    while len(chosen) < n_target:
        _, sigma = predictor(np.array(chosen), y_ms[chosen])
        sigma[chosen] = -np.inf
        chosen.append(int(np.argmax(sigma)))
    return np.array(chosen)


def run_one(
    predictor: Predictor,
    y_ms: np.ndarray,
    n_targets: tuple[int, ...],
    n_init: int,
    seed: int,
    median: bool,
    selector: Predictor | None = None,
) -> dict[int, dict[str, float]]:
    r"""Quality of the predictions from the first ``n`` measurements, for each ``n``.

    ``median``: rank (Spearman) and MAPE by ``exp(mu)`` instead of the log-normal mean;
    the coverage uses the log-normal in both cases. ``selector``: the surrogate whose
    uncertainty picks the measurements (default: ``predictor`` itself).
    """
    idx = select_by_uncertainty(selector or predictor, y_ms, max(n_targets), n_init, seed)
    scores = {}
    for n in n_targets:
        mu, sigma = predictor(idx[:n], y_ms[idx[:n]])
        mean_ms, std_ms = lognormal_moments(mu, sigma)
        scores[n] = quality_report(y_ms, mean_ms, std_ms)
        if median:
            point = quality_report(y_ms, np.exp(mu), np.zeros_like(mu), log_normal=False)
            scores[n].update(spearman=point["spearman"], mape=point["mape"])
            scores[n].update(within_10pct=point["within_10pct"])
    return scores


def device_table(data: str | None, devices: str, target: str) -> tuple[pd.DataFrame, pd.Series]:
    r"""``(sources, target)``: source latency table (ms) and the target column, same rows."""
    folder = data_dir(data)
    help_table = pd.read_csv(folder / "latency_help_ms.csv")
    if devices == "dev":
        latency = help_table.drop(columns=["nb201_index", "arch_str"])
        sources = [c for c in latency.columns if device_group(c) != device_group(target)]
        return latency[sources], latency[target]
    other = pd.read_csv(folder / "latency_oneproxy_ms.csv")[["nb201_index", target]]
    joined = help_table.merge(other, on="nb201_index")
    joined = joined[joined[target] > 0]  # rice_edgetpu-style -1: not measured
    return joined.drop(columns=["nb201_index", "arch_str", target]), joined[target]


@dataclass(frozen=True)
class Ceiling:
    r"""How well the sources can rank one target at best, from every cell of the target.

    Attributes:
        best_source: The source column whose latency ranks the target best.
        best_source_spearman: Its Spearman with the target over every cell: what a
            single proxy with any monotone calibration (``a + b * log`` included) ranks,
            however many target measurements fit the calibration.
        linear_spearman: Spearman of the least-squares fit of the target's log latency
            on the log latencies of every source (plus a constant), fitted on every cell
            (in-sample): about what a linear transfer model, such as ``linear``, ranks with
            unlimited target measurements.
    """

    best_source: str
    best_source_spearman: float
    linear_spearman: float


def transfer_ceiling(sources: pd.DataFrame, y_ms: pd.Series) -> Ceiling:
    r"""The :class:`Ceiling` of ``(n, S)`` source latencies in ms for the ``(n,)`` target."""
    log_src, log_y = np.log(sources.to_numpy()), np.log(y_ms.to_numpy())
    rho = np.array([spearmanr(column, log_y)[0] for column in log_src.T])
    A = np.column_stack([log_src, np.ones(len(log_y))])
    fitted = A @ np.linalg.lstsq(A, log_y, rcond=None)[0]
    best = int(np.nanargmax(rho))
    return Ceiling(sources.columns[best], float(rho[best]), float(spearmanr(fitted, log_y)[0]))


def evaluate_model(
    model: str,
    data: str | None,
    devices: str,
    targets: tuple[str, ...],
    n_targets: tuple[int, ...],
    n_init: int,
    seeds: tuple[int, ...],
) -> dict[int, pd.DataFrame]:
    r"""``{n: (targets, metrics)}`` seed-averaged quality of one model."""
    rows: dict[int, dict[str, pd.Series]] = {n: {} for n in n_targets}
    for target in targets:
        sources, y = device_table(data, devices, target)
        log_src = np.log(sources.to_numpy())
        linear = gp_predictor(standardise(log_src), "linear")
        predictor = switch_predictor(log_src) if model == "switch" else linear
        runs = [
            run_one(predictor, y.to_numpy(), n_targets, n_init, s, model == "switch", linear)
            for s in seeds
        ]
        for n in n_targets:
            rows[n][target] = pd.DataFrame([r[n] for r in runs]).mean()
    return {n: pd.DataFrame(r).T for n, r in rows.items()}


def evaluate_features(
    latency: pd.DataFrame,
    ops: np.ndarray,
    variant: Variant,
    targets: tuple[str, ...],
    n_target: int,
    n_init: int,
    seeds: tuple[int, ...],
) -> pd.Series:
    r"""Seed-averaged Spearman per target device of one feature-set ablation variant."""
    out = {}
    for target in targets:
        predictor = gp_predictor(features(latency, ops, target, variant.features), variant.kernel)
        y_ms = latency[target].to_numpy()
        runs = [run_one(predictor, y_ms, (n_target,), n_init, s, False) for s in seeds]
        out[target] = np.mean([r[n_target]["spearman"] for r in runs])
    return pd.Series(out)


def main_table(result: pd.DataFrame, title: str) -> Table:
    r"""Per-device metrics and their mean."""
    table = Table(title=title)
    for col in ("device", "Spearman", "MAPE %", "within 10 %", "95 % coverage"):
        table.add_column(col, justify="left" if col == "device" else "right")
    for device, r in [*result.iterrows(), ("mean", result.mean())]:
        table.add_row(
            device,
            f"{r.spearman:.3f}",
            f"{r.mape:.1f}",
            f"{100 * r.within_10pct:.0f} %",
            f"{100 * r.coverage_95:.0f} %",
        )
    return table


def curve_table(results: dict[str, dict[int, pd.DataFrame]]) -> Table:
    r"""Mean Spearman per model and number of target measurements, with the worst device."""
    table = Table(title="Mean Spearman (worst device) by number of target measurements")
    table.add_column("model")
    n_targets = sorted(next(iter(results.values())))
    for n in n_targets:
        table.add_column(f"n = {n}", justify="right")
    for model, by_n in results.items():
        cells = []
        for n in n_targets:
            rho = by_n[n].spearman
            cells.append(f"{rho.mean():.3f} ({rho.min():.3f} {rho.idxmin()})")
        table.add_row(model, *cells)
    return table


def ceiling_table(ceilings: dict[str, Ceiling], where: str) -> Table:
    r"""Per-device :class:`Ceiling` and the means."""
    table = Table(title=f"Transfer ceilings, fitted on every cell of the target ({where})")
    for col in ("device", "best single source", "its Spearman", "linear on all sources"):
        table.add_column(col, justify="left" if col.startswith(("device", "best")) else "right")
    for device, c in ceilings.items():
        table.add_row(
            device, c.best_source, f"{c.best_source_spearman:.3f}", f"{c.linear_spearman:.3f}"
        )
    table.add_row(
        "mean",
        "",
        f"{np.mean([c.best_source_spearman for c in ceilings.values()]):.3f}",
        f"{np.mean([c.linear_spearman for c in ceilings.values()]):.3f}",
    )
    return table


def ablation_table(spearman: pd.DataFrame) -> Table:
    r"""``(devices, variants)`` mean Spearman and the per-variant mean."""
    table = Table(title="Ablation: mean Spearman per feature set (kernel)")
    table.add_column("device")
    for name in spearman.columns:
        table.add_column(name, justify="right")
    for device, r in [*spearman.iterrows(), ("mean", spearman.mean())]:
        table.add_row(device, *(f"{v:.3f}" for v in r))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", help="NB201 data folder (default: $MOO_COMPRESS_NB201 or ../shared/data/nb201)"
    )
    parser.add_argument(
        "--n-target", type=int, nargs="+", default=[10, 20, 50], help="target measurements"
    )
    parser.add_argument("--n-init", type=int, default=2, help="random ones among them")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--devices", choices=("dev", "held-out"), default="dev")
    parser.add_argument("--targets", nargs="+", help="default: the devices of --devices")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument(
        "--kernels",
        nargs="*",
        default=[],
        choices=KERNELS,
        help="kernels of the feature ablation on dev devices (default: no ablation)",
    )
    args = parser.parse_args()
    n_targets = tuple(sorted(set(args.n_target)))
    if not 1 <= args.n_init <= n_targets[0] or n_targets[0] < 3:
        parser.error("need 1 <= --n-init <= smallest --n-target, and --n-target >= 3")
    folder = data_dir(args.data)
    for name in ("latency_help_ms.csv", "latency_oneproxy_ms.csv"):
        if not (folder / name).is_file():
            parser.error(f"{folder / name} not found; pass --data or set MOO_COMPRESS_NB201")
    known = TARGETS if args.devices == "dev" else HELD_OUT
    targets = tuple(args.targets or known)
    if set(targets) - set(known):
        parser.error(f"unknown {args.devices} devices: {sorted(set(targets) - set(known))}")
    seeds = tuple(range(args.first_seed, args.first_seed + args.seeds))

    console = Console()
    results = {}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch/gpytorch internals
        for model in args.models:
            t0 = time.perf_counter()
            results[model] = evaluate_model(
                model, args.data, args.devices, targets, n_targets, args.n_init, seeds
            )
            means = ", ".join(f"{n}: {r.spearman.mean():.3f}" for n, r in results[model].items())
            console.log(f"{model}: mean Spearman {means} ({time.perf_counter() - t0:.0f} s)")
        if args.kernels and args.devices == "dev":
            table = pd.read_csv(folder / "latency_help_ms.csv")
            latency = table.drop(columns=["nb201_index", "arch_str"])
            ops = encode_ops(table["arch_str"])
            variants = [Variant(f, k) for k in args.kernels for f in FEATURE_SETS]
            spearman = pd.DataFrame(
                {
                    v.name: evaluate_features(
                        latency, ops, v, targets, n_targets[0], args.n_init, seeds
                    )
                    for v in variants
                }
            )
    wall = time.perf_counter() - start

    where = f"{args.devices} devices, seeds {seeds[0]}-{seeds[-1]}"
    for model, by_n in results.items():
        for n, result in by_n.items():
            console.print(
                main_table(
                    result,
                    f"{model}: {n} target measurements ({args.n_init} random, then max std), "
                    f"all cells predicted, mean of {len(seeds)} seeds ({where})",
                )
            )
    console.print(curve_table(results))
    ceilings = {t: transfer_ceiling(*device_table(args.data, args.devices, t)) for t in targets}
    console.print(ceiling_table(ceilings, args.devices))
    if args.kernels and args.devices == "dev":
        console.print(ablation_table(spearman))
    console.print(f"HELP reference: Spearman {HELP_SPEARMAN_10} with 10 samples (meta-learned).")
    console.print(
        f"wall time {wall:.0f} s for {len(args.models)} model(s) x {len(targets)} devices x "
        f"{len(seeds)} seeds ({where})"
    )


if __name__ == "__main__":
    main()

r"""Latency transfer to an unseen device with 10 measurements, on real NAS-Bench-201 data.

Protocol (per target device and seed):

1. The target column of ``latency_help_ms.csv`` is hidden. Transfer sources are all other
   device columns of the file except the target's own batch-size variants (``titan_rtx_1``
   excludes ``titan_rtx_32`` and ``titan_rtx_256``); sources are fully measured.
2. Features of each of the 15,625 cells (standardised over the table, so no target data):
   ``ops``: the 6 edge ops as integers 0..4 (order ``none, skip_connect, nor_conv_1x1,
   nor_conv_3x3, avg_pool_3x3``), one-hot expanded to 30 columns; ``src``: log latency on
   every source device; ``src+ops``: both.
3. Exactly ``n_target`` target measurements (table look-ups) are chosen by uncertainty
   sampling with the surrogate itself: ``n_init`` cells uniformly at random (seeded), then
   repeatedly the unmeasured cell with the largest predictive std of a ``GPSurrogate``
   refitted on the measurements so far.
4. A ``GPSurrogate`` fitted on the ``n_target`` measurements predicts all 15,625 cells; the
   report compares with the hidden column (Spearman, MAPE, share within 10 %, 95 % coverage).

The main table uses the ``src`` features with the linear kernel; an ablation compares the
feature sets by mean Spearman, for each kernel in ``--kernels`` (default: linear only; the
RBF kernel is ~50x slower here, as its fits on 10 points in 24 dimensions run into the
optimiser caps). Nothing is tuned per device. Run::

    python -m benchmarks.surrogate_nb201 [--data DIR] [--n-target 10] [--seeds 3]

The data folder is ``--data``, else ``$MOO_COMPRESS_NB201``, else ``../shared/data/nb201``
relative to the repository root.
"""

from __future__ import annotations

import argparse
import re
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from moo_compress.nb201 import OPS, data_dir, encode_ops
from surrogates.gp_surrogate import KERNELS, GPSurrogate
from surrogates.quality import quality_report

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
HELP_SPEARMAN_10 = 0.932  # HELP (NeurIPS 2021), 10 samples per unseen device


@dataclass(frozen=True)
class Variant:
    r"""One surrogate configuration: a feature set and a GP kernel."""

    features: str  # "ops", "src" or "src+ops"
    kernel: str  # GPSurrogate kernel

    @property
    def name(self) -> str:
        return f"{self.features} ({self.kernel})"


MAIN = Variant("src", "linear")
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


def select_by_uncertainty(
    X: np.ndarray, y_ms: np.ndarray, kernel: str, n_target: int, n_init: int, seed: int
) -> np.ndarray:
    r"""Indices of ``n_target`` rows to measure: ``n_init`` random, then max predictive std.

    Args:
        X: ``(n, k)`` features of all candidates.
        y_ms: ``(n,)`` hidden latency in ms; only the chosen rows are read.
        kernel: ``GPSurrogate`` kernel.
        n_target: Measurement budget.
        n_init: Random measurements before the GP chooses.
        seed: Seed of the random start.
    """
    chosen = list(np.random.default_rng(seed).choice(len(X), size=n_init, replace=False))
    while len(chosen) < n_target:
        gp = GPSurrogate(kernel=kernel).fit(X[chosen], y_ms[chosen])
        _, sigma = gp.predict_log(X)
        sigma[chosen] = -np.inf
        chosen.append(int(np.argmax(sigma)))
    return np.array(chosen)


def run_one(
    X: np.ndarray, y_ms: np.ndarray, kernel: str, n_target: int, n_init: int, seed: int
) -> dict[str, float]:
    r"""Measure ``n_target`` cells, fit, and score the prediction of all cells."""
    idx = select_by_uncertainty(X, y_ms, kernel, n_target, n_init, seed)
    mean_ms, std_ms = GPSurrogate(kernel=kernel).fit(X[idx], y_ms[idx]).predict(X)
    return quality_report(y_ms, mean_ms, std_ms)


def evaluate(
    latency: pd.DataFrame,
    ops: np.ndarray,
    variant: Variant,
    targets: tuple[str, ...],
    n_target: int,
    n_init: int,
    seeds: int,
) -> pd.DataFrame:
    r"""Seed-averaged quality metrics, one row per target device."""
    rows = {}
    for target in targets:
        X = features(latency, ops, target, variant.features)
        y_ms = latency[target].to_numpy()
        runs = [run_one(X, y_ms, variant.kernel, n_target, n_init, s) for s in range(seeds)]
        rows[target] = pd.DataFrame(runs).mean()
    return pd.DataFrame(rows).T


def main_table(result: pd.DataFrame, title: str) -> Table:
    r"""Per-device metrics of ``evaluate`` and their mean."""
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
    parser.add_argument("--n-target", type=int, default=10, help="measurements on the target")
    parser.add_argument("--n-init", type=int, default=2, help="random ones among them")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument(
        "--kernels",
        nargs="*",
        default=["linear"],
        choices=KERNELS,
        help="kernels of the feature ablation (none: main variant only)",
    )
    args = parser.parse_args()
    if not 1 <= args.n_init <= args.n_target:
        parser.error("need 1 <= --n-init <= --n-target")

    help_csv = data_dir(args.data) / "latency_help_ms.csv"
    if not help_csv.is_file():
        parser.error(f"{help_csv} not found; pass --data or set MOO_COMPRESS_NB201")
    table = pd.read_csv(help_csv)
    latency = table.drop(columns=["nb201_index", "arch_str"])
    ops = encode_ops(table["arch_str"])
    unknown = sorted(set(args.targets) - set(latency.columns))
    if unknown:
        parser.error(f"unknown target devices: {unknown}")

    console = Console()
    ablation = [Variant(f, k) for k in args.kernels for f in FEATURE_SETS]
    variants = ablation if MAIN in ablation else [MAIN, *ablation]
    results = {}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch/gpytorch internals
        for variant in variants:
            t0 = time.perf_counter()
            results[variant] = evaluate(
                latency, ops, variant, tuple(args.targets), args.n_target, args.n_init, args.seeds
            )
            console.log(
                f"{variant.name}: mean Spearman {results[variant].spearman.mean():.3f} "
                f"({time.perf_counter() - t0:.0f} s)"
            )
    wall = time.perf_counter() - start

    console.print(
        main_table(
            results[MAIN],
            f"{MAIN.name}: {args.n_target} target measurements ({args.n_init} random, then max GP "
            f"std), all 15,625 cells predicted, mean of {args.seeds} seeds",
        )
    )
    if len(variants) > 1:
        spearman = pd.DataFrame({v.name: r.spearman for v, r in results.items()})
        console.print(ablation_table(spearman))
    console.print(f"HELP reference: Spearman {HELP_SPEARMAN_10} with 10 samples (meta-learned).")
    console.print(
        f"wall time {wall:.0f} s for {len(variants)} variant(s) x "
        f"{len(args.targets)} devices x {args.seeds} seeds"
    )


if __name__ == "__main__":
    main()

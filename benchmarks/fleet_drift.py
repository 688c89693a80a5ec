"""How much does drift across a fleet change which compressed ResNet-50 is fastest?

Run: ``python -m benchmarks.fleet_drift [--configs 500] [--devices 500] [--speed-devices 10000]``

1. SKU sanity check: unpruned ResNet-50 (224x224, batch 1) latency per SKU and
   bit-width, and MLPerf-Tiny ResNet-8 (32x32) on the MCU.
2. For the Jetson and Cortex-A SKUs, 500 random configs of a block-granularity
   ResNet-50 space with bits (8, 16, 32); field-aged and factory-fresh fleets are
   clustered on probe measurements; between the two most different clusters
   (largest distance of centred log probe centroids, see :func:`most_different`)
   it reports: the share of config pairs within 5 % MACs of each other whose
   latency order swaps; the Spearman correlation of the cluster-mean latencies;
   and, under MACs budgets (10th/25th/50th percentile of the sample's MACs), how
   much slower cluster B runs cluster A's fastest config than its own fastest.
   When the fleet clusters into k = 1, the comparison uses a forced k = 2 split.
3. Clustering speed and accuracy: a field-aged fleet of 10,000 devices, timed end to
   end (probe measurements + clustering), adjusted Rand index vs the true profiles.

Latencies are the simulator's noiseless ones (evaluation only); clustering sees only
noisy measurements.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
import torchvision
from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr
from sklearn.metrics import adjusted_rand_score
from torch import nn

from moo_compress.clustering import Clustering, cluster_fleet
from moo_compress.costs import evaluate_costs
from moo_compress.devices import SKUS, get_sku
from moo_compress.fleet import Fleet
from moo_compress.search_space import SearchSpace

console = Console(width=200)


# ---------------------------------------------------------------------- models
class _Residual(nn.Module):
    """MLPerf-Tiny ResNet-8 block: two 3x3 convs, 1x1 conv shortcut on a stride."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride) if stride > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(y + self.shortcut(x))


def resnet8() -> nn.Module:
    """MLPerf-Tiny image-classification ResNet-8 (CIFAR-10, 32x32 input)."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 1, 1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        _Residual(16, 16, 1),
        _Residual(16, 32, 2),
        _Residual(32, 64, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def unpruned_ms(space: SearchSpace, sku_name: str, bits: int) -> tuple[float, float]:
    """(latency ms, MACs) of the unpruned model with every layer at ``bits``."""
    keep = space.keep_matrix(space.unpruned()[None])
    costs = evaluate_costs(space.table, keep, np.full((1, len(space.layer_names)), bits))
    return float(get_sku(sku_name).latency_ms(costs.layers)[0]), float(costs.layers.macs.sum())


def sku_table(r50: SearchSpace) -> None:
    r8 = SearchSpace.from_model(resnet8().eval(), torch.randn(1, 3, 32, 32), bit_widths=(8,))
    table = Table(title="SKU sanity check: unpruned model, every layer at the bit-width")
    for col in ("SKU", "model", "bits", "MACs (M)", "latency (ms)"):
        table.add_column(col)
    for name, sku in SKUS.items():
        for bits in sorted(sku.supported_bits, reverse=True):
            ms, macs = unpruned_ms(r50, name, bits)
            table.add_row(name, "ResNet-50 224", str(bits), f"{macs / 1e6:.0f}", f"{ms:.3f}")
    ms, macs = unpruned_ms(r8, "mpic-riscv", 8)
    table.add_row("mpic-riscv", "ResNet-8 32 (MLPerf Tiny)", "8", f"{macs / 1e6:.1f}", f"{ms:.3f}")
    console.print(table)


# ---------------------------------------------------------------------- metrics
def most_different(clustering: Clustering) -> tuple[int, int]:
    """The two clusters whose probe profiles differ most in shape.

    A uniform slow-down changes no ranking, so each cluster's log probe centroid is
    centred (its mean over probes removed) before the distances are taken.
    """
    log = np.log(clustering.centroid_ms)
    shape = log - log.mean(1, keepdims=True)
    dist = ((shape[:, None] - shape[None]) ** 2).sum(-1)
    a, b = np.unravel_index(np.argmax(dist), dist.shape)
    return int(a), int(b)


BUDGET_PERCENTILES = (10, 25, 50)
"""MACs budgets (percentiles of the sample's MACs) at which best configs are compared."""


def drift_metrics(lat_a: np.ndarray, lat_b: np.ndarray, macs: np.ndarray) -> dict[str, float]:
    """Rank disagreement of two (N,) latency vectors over N configs of (N,) MACs:
    config pairs within 5 % MACs, the share (%) of them whose latency order differs,
    and the Spearman correlation.
    """
    i, j = np.triu_indices(len(macs), k=1)
    close = np.abs(macs[i] - macs[j]) <= 0.05 * np.maximum(macs[i], macs[j])
    i, j = i[close], j[close]
    swapped = np.sign(lat_a[i] - lat_a[j]) != np.sign(lat_b[i] - lat_b[j])
    return {
        "pairs": len(i),
        "swap %": 100 * float(swapped.mean()) if len(i) else float("nan"),
        "spearman": float(spearmanr(lat_a, lat_b).statistic),
    }


def fastest_within(
    space: SearchSpace,
    latency: Callable[[np.ndarray], np.ndarray],
    budget: float,
    start: np.ndarray,
    seed: int,
    generations: int = 30,
) -> np.ndarray:
    """(n_var,) the fastest config under a MACs budget found by a small mutation search.

    Starts from the configs of ``start`` (P, n_var) within budget; each generation
    mutates 3 genes of copies of the 16 fastest and keeps those within budget.
    """
    rng = np.random.default_rng(seed)
    pool = start[space.costs(start).macs <= budget]
    for _ in range(generations):
        elite = pool[np.argsort(latency(pool))[:16]]
        children = elite[rng.integers(len(elite), size=64)]
        genes = rng.integers(space.n_var, size=64 * 3)
        rows = np.repeat(np.arange(64), 3)
        children[rows, genes] = rng.integers(space.xl[genes], space.xu[genes] + 1)
        children = children[space.costs(children).macs <= budget]
        pool = np.unique(np.vstack([elite, children]), axis=0)
    return pool[np.argmin(latency(pool))]


def best_config_regret(
    space: SearchSpace, fleet: Fleet, members_a: np.ndarray, members_b: np.ndarray, X: np.ndarray
) -> list[float]:
    """Per MACs budget: how much slower (%) cluster B runs A's fastest config than
    B's fastest (both found by :func:`fastest_within` on the cluster-mean latency)."""
    macs = space.costs(X).macs
    regrets = []
    for budget in np.percentile(macs, BUDGET_PERCENTILES):

        def on(members: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
            return lambda Y: fleet.true_latency_ms(Y, members).mean(1)

        best_a = fastest_within(space, on(members_a), budget, X, seed=1)
        best_b = fastest_within(space, on(members_b), budget, X, seed=2)
        lat_b = on(members_b)(np.vstack([best_a, best_b]))
        regrets.append(100 * float(lat_b[0] / lat_b.min() - 1))
    return regrets


def fleet_study(space: SearchSpace, sku_name: str, n_configs: int, n_devices: int) -> Table:
    rng = np.random.default_rng(0)
    X = rng.integers(space.xl, space.xu + 1, size=(n_configs, space.n_var))
    macs = space.costs(X).macs
    table = Table(title=f"{sku_name}: {n_configs} random ResNet-50 configs, {n_devices} devices")
    for col in (
        "fleet",
        "spread 5-95 % (max/min)",
        "k (sil.)",
        "ARI",
        "A / B (size)",
        "pairs",
        "swap %",
        "spearman",
        "A-best slower on B % (MACs p10/p25/p50)",
    ):
        table.add_column(col)
    for kind in ("field_aged", "factory_fresh"):
        fleet = getattr(Fleet, kind)(get_sku(sku_name), n_devices, seed=1)
        fleet.bind(space)
        dense = fleet.true_latency_ms(space.unpruned()[None])[0]
        p5, p50, p95 = np.percentile(dense, [5, 50, 95])
        clustering = cluster_fleet(fleet)
        auto_k, sil = clustering.k, clustering.silhouette
        if clustering.k == 1:  # compare the two halves k-means finds anyway
            clustering = cluster_fleet(fleet, k=2)
        a, b = most_different(clustering)
        members_a = np.flatnonzero(clustering.labels == a)
        members_b = np.flatnonzero(clustering.labels == b)
        lat = fleet.true_latency_ms(X)
        m = drift_metrics(lat[:, members_a].mean(1), lat[:, members_b].mean(1), macs)
        regret = best_config_regret(space, fleet, members_a, members_b, X)
        table.add_row(
            kind,
            f"{100 * (p95 - p5) / p50:.1f} % ({dense.max() / dense.min():.2f}x)",
            f"{auto_k} ({sil:.2f})",
            f"{adjusted_rand_score(fleet.profiles, clustering.labels):.3f}",
            f"{a} / {b} ({clustering.sizes[a]} / {clustering.sizes[b]})",
            str(m["pairs"]),
            f"{m['swap %']:.1f}",
            f"{m['spearman']:.3f}",
            " / ".join(f"{r:.1f}" for r in regret),
        )
    return table


def speed_study(space: SearchSpace, n_devices: int) -> Table:
    table = Table(title=f"Clustering {n_devices} field-aged devices (end to end)")
    for col in ("SKU", "seconds", "k", "silhouette", "ARI vs profiles"):
        table.add_column(col)
    for sku_name in ("jetson-xavier-nx", "cortex-a72"):
        fleet = Fleet.field_aged(get_sku(sku_name), n_devices, seed=2)
        fleet.bind(space)
        start = time.perf_counter()
        clustering = cluster_fleet(fleet)
        seconds = time.perf_counter() - start
        ari = adjusted_rand_score(fleet.profiles, clustering.labels)
        table.add_row(
            sku_name,
            f"{seconds:.2f}",
            str(clustering.k),
            f"{clustering.silhouette:.3f}",
            f"{ari:.3f}",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=500)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--speed-devices", type=int, default=10_000)
    args = parser.parse_args()
    torch.manual_seed(0)
    space = SearchSpace.from_model(
        torchvision.models.resnet50().eval(),
        torch.randn(1, 3, 224, 224),
        granularity="block",
        bit_widths=(8, 16, 32),
    )
    console.print(space.describe())
    sku_table(space)
    for sku_name in ("jetson-xavier-nx", "cortex-a72"):
        console.print(fleet_study(space, sku_name, args.configs, args.devices))
    console.print(speed_study(space, args.speed_devices))


if __name__ == "__main__":
    main()

"""Speed benchmark: compressed models really run faster on this CPU, and the engine is fast.

Usage::

    python -m benchmarks.local_cpu_speedup [--threads 1] [--model resnet50] [--rounds 3]

Times, with :class:`~moo_compress.devices.local_cpu.LocalCPUDevice` (batch 1, random
weights and inputs: latency only), four configurations of a block-granularity search
space with bit-widths (8, 32): unpruned float32, unpruned int8, every prune gene at
ratio 0.5 in float32, and the same in int8. The protected first conv and last linear
layer stay float32 in the int8 configurations. The four are measured round-robin for
``--rounds`` rounds, so that a change of machine load hits all of them; the table pools
the samples of all rounds and shows the spread of the per-round medians.

Then times the compression engine: ``compress`` and ``to_int8`` on the pruned model and
the analytic ``space.costs`` of 10,000 random configurations, best and median of
``--rounds`` runs, against their targets (3 s, 10 s, 1 s, judged on the best run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torchvision
from rich.console import Console
from rich.table import Table

from moo_compress.compress import compress
from moo_compress.devices.local_cpu import LocalCPUDevice
from moo_compress.int8 import to_int8
from moo_compress.measurement import Measurement, median_rel_halfwidth
from moo_compress.search_space import SearchSpace

PRUNE_RATIO = 0.5
N_RANDOM = 10_000


def _wall_s(fn: Callable[[], object]) -> float:
    """Wall-clock duration of ``fn()`` in s."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _configs(space: SearchSpace) -> dict[str, np.ndarray]:
    half = space.ratios.index(PRUNE_RATIO)
    configs = {}
    for pruned in (False, True):
        for bits in (32, 8):
            x = space.unpruned(bits)
            x[: len(space.prune_genes)] = half if pruned else 0
            name = f"{'50 % pruned' if pruned else 'unpruned'} {'int8' if bits == 8 else 'fp32'}"
            configs[name] = x
    return configs


def latency_table(space: SearchSpace, device: LocalCPUDevice, rounds: int, title: str) -> Table:
    """Measure the four configurations round-robin; one table row each."""
    configs = _configs(space)
    runs: dict[str, list[Measurement]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, x in configs.items():
            runs[name].append(device.measure(space.decode(x)))
    table = Table(title=title)
    columns = (
        "config",
        "median ms",
        "IQR ms",
        "rounds min-max",
        "samples",
        "CI95 ±%",
        "GMACs",
        "speed-up",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "config" else "right")
    medians = {name: [m.median_ms for m in ms] for name, ms in runs.items()}
    baseline = None
    for name, x in configs.items():
        pooled = Measurement(device.device_id, sum((m.samples_ms for m in runs[name]), ()))
        baseline = baseline or pooled.median_ms
        table.add_row(
            name,
            f"{pooled.median_ms:.1f}",
            f"{pooled.spread_ms:.1f}",
            f"{min(medians[name]):.1f}-{max(medians[name]):.1f}",
            str(len(pooled.samples_ms)),
            f"{100 * median_rel_halfwidth(pooled.samples_ms):.1f}",
            f"{space.costs(x).macs[0] / 1e9:.2f}",
            f"{baseline / pooled.median_ms:.2f}x",
        )
    return table


def engine_table(model: torch.nn.Module, space: SearchSpace, rounds: int) -> Table:
    """Time compress, to_int8 and space.costs ``rounds`` times each."""
    config = space.decode(_configs(space)["50 % pruned int8"])
    compressed = compress(model, config)
    batches = [torch.randn(config.input_shape) for _ in range(2)]
    population = np.random.default_rng(0).integers(
        space.xl, space.xu + 1, size=(N_RANDOM, space.n_var)
    )
    steps = {
        "compress (50 % pruned int8)": (lambda: compress(model, config), 3.0),
        "to_int8 (same model)": (lambda: to_int8(compressed, batches), 10.0),
        f"space.costs x {N_RANDOM:,}": (lambda: space.costs(population), 1.0),
    }
    table = Table(title=f"compression engine, {rounds} run(s) each")
    for column in ("step", "best s", "median s", "target s", "ok"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for step, (fn, target) in steps.items():
        seconds = [_wall_s(fn) for _ in range(rounds)]
        best = min(seconds)
        table.add_row(
            step,
            f"{best:.3f}",
            f"{statistics.median(seconds):.3f}",
            f"{target:.0f}",
            "yes" if best < target else "NO",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads while timing")
    parser.add_argument("--model", default="resnet50", help="torchvision classification model")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin rounds / engine runs")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="timing cap per measure")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 110))

    torch.manual_seed(0)
    model = torchvision.models.get_model(args.model).eval()
    example = torch.randn(1, 3, 224, 224)
    space = SearchSpace.from_model(model, example, granularity="block", bit_widths=(8, 32))
    console.print(space.describe())

    device = LocalCPUDevice(
        f"local-cpu-t{args.threads}", threads=args.threads, max_seconds=args.max_seconds
    )
    device.bind(space)
    console.print(f"{os.cpu_count()} CPU(s), 1-min load average before: {os.getloadavg()[0]:.2f}")
    title = f"{args.model}, batch 1, 224x224, {args.threads} thread(s), {args.rounds} round(s)"
    console.print(latency_table(space, device, args.rounds, title))
    console.print(engine_table(model, space, args.rounds))
    console.print(f"1-min load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Speed benchmark: compressed models really run faster on this CPU, in each runtime.

Usage::

    python -m benchmarks.local_cpu_speedup [--threads 1] [--model resnet50] [--rounds 3]
        [--run RUN_DIR] [--runtimes torch,onnxruntime,openvino]

Times, at batch 1 with random weights and inputs (latency only), configurations of a
block-granularity search space with bit-widths (8, 32): unpruned float32, unpruned
int8, every prune gene at ratio 0.5 in float32 and in int8, and, with ``--run``, the
knee of that finished run (its model must be ``--model``). The protected first conv and
last linear layer stay float32 in the int8 configurations. Each runtime is a device:

* ``torch``: :class:`~moo_compress.devices.local_cpu.LocalCPUDevice` (torch eager;
  int8 layers run as float32, torch has no maintained int8 CPU kernels);
* ``onnxruntime``: :class:`~moo_compress.devices.onnxruntime.OnnxRuntimeDevice` (the
  exported ONNX file, QDQ int8 run by ONNX Runtime's integer kernels);
* ``openvino``: :class:`~moo_compress.devices.openvino.OpenVINODevice` (the same file),
  when openvino is installed.

The configurations are measured round-robin for ``--rounds`` rounds, so that a change of
machine load hits all of them; a table pools the samples of all rounds, shows the spread
of the per-round medians and the speed-up over the same runtime's unpruned float32 model.
Then the ONNX file sizes: float32 and int8 with every layer at 8 bits, unpruned.
Then the compression engine: ``compress`` and the analytic ``space.costs`` of 10,000
random configurations, best and median of ``--rounds`` runs, against their targets
(3 s and 1 s, judged on the best run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torchvision
from rich.console import Console
from rich.table import Table

from moo_compress.compress import compress
from moo_compress.config import CompressionConfig
from moo_compress.devices.host_cpu import HostCPUDevice
from moo_compress.devices.local_cpu import LocalCPUDevice
from moo_compress.devices.onnxruntime import OnnxRuntimeDevice, exported_model
from moo_compress.measurement import Measurement, median_rel_halfwidth
from moo_compress.search_space import SearchSpace

PRUNE_RATIO = 0.5
N_RANDOM = 10_000
RUNTIMES = ("torch", "onnxruntime", "openvino")


def _wall_s(fn: Callable[[], object]) -> float:
    """Wall-clock duration of ``fn()`` in s."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _configs(space: SearchSpace, run: Path | None) -> dict[str, np.ndarray]:
    half = space.ratios.index(PRUNE_RATIO)
    configs = {}
    for pruned in (False, True):
        for bits in (32, 8):
            x = space.unpruned(bits)
            x[: len(space.prune_genes)] = half if pruned else 0
            name = f"{'50 % pruned' if pruned else 'unpruned'} {'int8' if bits == 8 else 'fp32'}"
            configs[name] = x
    if run is not None:
        summary = json.loads((run / "summary.json").read_text())
        front = pd.read_csv(run / "front.csv")
        config = CompressionConfig.from_json(front["config"].iloc[summary["knee_row"]])
        configs[f"knee of {run.name} (row {summary['knee_row']})"] = space.encode(config)
    return configs


def _device(runtime: str, threads: int, max_seconds: float) -> HostCPUDevice:
    kinds: dict[str, type[HostCPUDevice]] = {
        "torch": LocalCPUDevice,
        "onnxruntime": OnnxRuntimeDevice,
    }
    if runtime == "openvino":
        from moo_compress.devices.openvino import OpenVINODevice

        kinds["openvino"] = OpenVINODevice
    return kinds[runtime](f"{runtime}-t{threads}", threads=threads, max_seconds=max_seconds)


def latency_table(
    space: SearchSpace, configs: dict[str, np.ndarray], devices: list[HostCPUDevice], rounds: int,
    title: str,
) -> Table:  # fmt: skip
    """Measure every configuration on every device round-robin; one row per pair."""
    runs: dict[tuple[str, str], list[Measurement]] = {}
    for _ in range(rounds):
        for name, x in configs.items():
            for device in devices:
                m = device.measure(space.decode(x))
                runs.setdefault((device.device_id, name), []).append(m)
    table = Table(title=title)
    columns = ("runtime", "config", "median ms", "IQR ms", "rounds min-max", "samples",
               "CI95 ±%", "GMACs", "speed-up")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("runtime", "config") else "right")
    for device in devices:
        baseline = None
        for name, x in configs.items():
            ms = runs[(device.device_id, name)]
            pooled = Measurement(device.device_id, sum((m.samples_ms for m in ms), ()))
            medians = [m.median_ms for m in ms]
            baseline = baseline or pooled.median_ms
            table.add_row(
                device.device_id,
                name,
                f"{pooled.median_ms:.1f}",
                f"{pooled.spread_ms:.1f}",
                f"{min(medians):.1f}-{max(medians):.1f}",
                str(len(pooled.samples_ms)),
                f"{100 * median_rel_halfwidth(pooled.samples_ms):.1f}",
                f"{space.costs(x).macs[0] / 1e9:.2f}",
                f"{baseline / pooled.median_ms:.2f}x",
            )
    return table


def size_table(model: torch.nn.Module, space: SearchSpace) -> Table:
    """ONNX file sizes of the unpruned model in float32 and with every layer at 8 bits."""
    table = Table(title="ONNX file size, unpruned")
    for column in ("model", "bytes", "MB", "of float32"):
        table.add_column(column, justify="left" if column == "model" else "right")
    float_config = space.decode(space.unpruned(32))
    sizes = {}
    for name, bits in (("float32", 32), ("int8, every layer", 8)):
        config = CompressionConfig(
            float_config.input_shape, float_config.channels, {k: bits for k in float_config.bits}
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            path.write_bytes(exported_model(model, config).SerializeToString())
            sizes[name] = path.stat().st_size
    for name, size in sizes.items():
        share = size / sizes["float32"]
        table.add_row(name, f"{size:,}", f"{size / 1e6:.1f}", f"{100 * share:.1f} %")
    return table


def engine_table(model: torch.nn.Module, space: SearchSpace, rounds: int) -> Table:
    """Time compress and space.costs ``rounds`` times each."""
    config = space.decode(_configs(space, None)["50 % pruned int8"])
    population = np.random.default_rng(0).integers(
        space.xl, space.xu + 1, size=(N_RANDOM, space.n_var)
    )
    steps = {
        "compress (50 % pruned int8)": (lambda: compress(model, config), 3.0),
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
    parser.add_argument("--threads", type=int, default=1, help="threads while timing")
    parser.add_argument("--model", default="resnet50", help="torchvision classification model")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin rounds / engine runs")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="timing cap per measure")
    parser.add_argument("--run", type=Path, help="a finished run whose knee is timed too")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 120))

    torch.manual_seed(0)
    model = torchvision.models.get_model(args.model).eval()
    example = torch.randn(1, 3, 224, 224)
    space = SearchSpace.from_model(model, example, granularity="block", bit_widths=(8, 32))
    console.print(space.describe())
    devices = [_device(r, args.threads, args.max_seconds) for r in args.runtimes.split(",")]
    for device in devices:
        device.bind(space)
    console.print(f"{os.cpu_count()} CPU(s), 1-min load average before: {os.getloadavg()[0]:.2f}")
    title = f"{args.model}, batch 1, 224x224, {args.threads} thread(s), {args.rounds} round(s)"
    configs = _configs(space, args.run)
    console.print(latency_table(space, configs, devices, args.rounds, title))
    console.print(size_table(model, space))
    console.print(engine_table(model, space, args.rounds))
    console.print(f"1-min load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

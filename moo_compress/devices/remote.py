"""Sketch: a device timed on remote hardware reached over SSH or ADB.

This is a starting point for adding real hardware, not a tested integration: it has only
been exercised with stand-in transports (one of them runs the real benchmark script on
this machine). The flow of one measurement is:

1. compress and calibrate the configuration on this machine and export it to ONNX
   (:func:`~moo_compress.devices.onnxruntime.exported_model`: the same QDQ file
   :class:`~moo_compress.devices.onnxruntime.OnnxRuntimeDevice` times here, int8
   layers as integer weights behind QuantizeLinear/DequantizeLinear);
2. copy it to the remote unit (:meth:`Transport.push`);
3. run a benchmark there (:meth:`Transport.run`) and parse the latencies it prints.

Why ONNX and not a ``torch.export`` ``.pt2`` (TorchScript is deprecated):

* it measures what is deployed: ONNX Runtime on the unit runs the 8-bit layers with
  its integer kernels (QLinearConv), where a ``.pt2`` program runs every layer as
  float32 (fake quantisation);
* it is safe to load: an ONNX file is a protobuf of graph and tensors, and
  ``onnxruntime.InferenceSession`` runs no Python code from it. ``torch.export.load``
  unpickles parts of a ``.pt2`` archive ("Never load data from an untrusted source",
  its documentation says);
* the unit needs only ``onnxruntime`` and ``numpy``, not torch.

Expected remote output: one line per timed pass in the ``--report_pep`` format of
PyTorch's mobile benchmark observer, one JSON object after a fixed prefix::

    PyTorchObserver {"type": "NET", "unit": "us", "metric": "latency", "value": "8123"}

``unit`` is ``"us"`` or ``"ms"``; other lines are ignored. :data:`BENCH_SCRIPT` is a
small Python script that prints it, for units with Python, ``numpy`` and
``onnxruntime`` (a Jetson or a Raspberry Pi over SSH, a phone with Termux over ADB);
any other benchmark that prints those lines works with its own ``command`` template.

Caveats: :data:`BENCH_SCRIPT` runs ONNX Runtime's CPU execution provider (a unit with a
GPU or NPU needs its provider in the script); the model is exported and pushed again
for every measurement (exports are shared with the ONNX Runtime devices, see
:func:`~moo_compress.devices.onnxruntime.exported_model`), and the remote directory is
never cleaned.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Protocol

from moo_compress.config import CompressionConfig
from moo_compress.device import Device
from moo_compress.devices.host_cpu import on_host_thread
from moo_compress.devices.onnxruntime import ONNX_BITS, exported_model
from moo_compress.measurement import Measurement
from moo_compress.onnx_export import save_onnx

PEP_PREFIX = "PyTorchObserver "
_UNIT_TO_MS = {"us": 1e-3, "ms": 1.0}

BENCH_SCRIPT = '''\
"""Time an ONNX model at batch 1 with ONNX Runtime's CPU execution provider and a fixed
number of intra-op threads; print one PyTorchObserver line per timed pass (ms)."""
import json, sys, time
import numpy as np
import onnxruntime as ort
path, shape, warmup, repeats, threads = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
options = ort.SessionOptions()
options.intra_op_num_threads = threads
options.inter_op_num_threads = 1
options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
options.add_session_config_entry("session.x64quantprecision", "1")
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
x = np.random.default_rng(0).standard_normal([int(d) for d in shape.split(",")])
feed = {session.get_inputs()[0].name: x.astype(np.float32)}
for _ in range(warmup):
    session.run(None, feed)
for _ in range(repeats):
    start = time.perf_counter()
    session.run(None, feed)
    ms = (time.perf_counter() - start) * 1e3
    print("PyTorchObserver " + json.dumps(
        {"type": "NET", "unit": "ms", "metric": "latency", "value": str(ms)}))
'''
"""Remote benchmark for units with Python, numpy and onnxruntime (copy it with
:func:`install_bench_script`); the session options are those of
:func:`~moo_compress.onnx_export.session`."""

PYTHON_COMMAND = "python3 {dir}/bench.py {model} {shape} {warmup} {repeats} {threads}"
"""Command template running :data:`BENCH_SCRIPT`."""


class Transport(Protocol):
    """How to reach one remote unit."""

    def push(self, local: Path, remote: str) -> None:
        """Copy the file ``local`` to the path ``remote`` on the unit."""

    def run(self, command: str, timeout_s: float) -> str:
        """Run the shell ``command`` on the unit and return its standard output."""


def _call(argv: Sequence[str], timeout_s: float) -> str:
    """Run ``argv`` locally; return stdout or raise ``RuntimeError`` with its stderr."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)!r} exited with {done.returncode}: {done.stderr.strip()[-500:]}"
        )
    return done.stdout


class SSHTransport:
    """A host reached with the ``ssh``/``scp`` clients (key-based login assumed).

    Args:
        host: ``host`` or ``user@host``, as ``ssh`` takes it.
        port: SSH port.
        options: Extra ``ssh``/``scp`` options, e.g. ``("-i", "~/.ssh/jetson")``.
        copy_timeout_s: Limit on one ``scp``, in s.
    """

    def __init__(
        self, host: str, port: int = 22, options: Sequence[str] = (), copy_timeout_s: float = 120
    ) -> None:
        self.host = host
        self.port = port
        self.options = tuple(options)
        self.copy_timeout_s = copy_timeout_s

    def push(self, local: Path, remote: str) -> None:
        _call(
            ["scp", "-q", "-P", str(self.port), *self.options, str(local), f"{self.host}:{remote}"],
            self.copy_timeout_s,
        )

    def run(self, command: str, timeout_s: float) -> str:
        return _call(["ssh", "-p", str(self.port), *self.options, self.host, command], timeout_s)


class ADBTransport:
    """An Android unit reached with the ``adb`` client.

    Args:
        serial: ``adb -s`` serial of the unit (None: the only one attached).
        copy_timeout_s: Limit on one ``adb push``, in s.
    """

    def __init__(self, serial: str | None = None, copy_timeout_s: float = 120) -> None:
        self.serial = serial
        self.copy_timeout_s = copy_timeout_s

    def _adb(self) -> list[str]:
        return ["adb", "-s", self.serial] if self.serial else ["adb"]

    def push(self, local: Path, remote: str) -> None:
        _call([*self._adb(), "push", str(local), remote], self.copy_timeout_s)

    def run(self, command: str, timeout_s: float) -> str:
        return _call([*self._adb(), "shell", command], timeout_s)


def parse_latency_ms(output: str) -> tuple[float, ...]:
    """Latencies in ms from the ``PyTorchObserver`` latency lines of ``output``.

    Raises:
        ValueError: if no such line is found or one is malformed, quoting the output.
    """
    samples = []
    for line in output.splitlines():
        _, found, payload = line.partition(PEP_PREFIX)
        if not found:
            continue
        try:
            record = json.loads(payload)
            if record.get("metric") != "latency":
                continue
            samples.append(float(record["value"]) * _UNIT_TO_MS[record["unit"]])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed benchmark line {line.strip()!r}: {exc!r}") from exc
    if not samples:
        raise ValueError(
            f"no '{PEP_PREFIX.strip()}' latency line in the remote output: {output.strip()[:300]!r}"
        )
    return tuple(samples)


def install_bench_script(transport: Transport, remote_dir: str) -> None:
    """Copy :data:`BENCH_SCRIPT` to ``{remote_dir}/bench.py`` on the unit."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.py"
        path.write_text(BENCH_SCRIPT)
        transport.push(path, f"{remote_dir}/bench.py")


class RemoteDevice(Device):
    """A unit timed remotely: export to ONNX, push, run the benchmark, parse (ms).

    Args:
        device_id: Name of the unit.
        transport: How to reach it (:class:`SSHTransport`, :class:`ADBTransport`, ...).
        supported_bits: Bit-widths the unit runs; a subset of
            :data:`~moo_compress.devices.onnxruntime.ONNX_BITS` (<= 8 as QDQ, 16 and 32
            as float32).
        command: Benchmark command template with placeholders ``{dir}``, ``{model}``
            (the pushed ``.onnx`` file), ``{shape}`` (comma-separated), ``{warmup}``,
            ``{repeats}`` and ``{threads}``, e.g. :data:`PYTHON_COMMAND`.
        remote_dir: Working directory on the unit (it must exist).
        warmup, repeats: Untimed and timed passes on the unit.
        threads: Intra-op threads of the runtime on the unit.
        calibration_batches, seed: Seeded random batches that calibrate the activation
            ranges before export (as the ONNX Runtime devices do).
        timeout_s: Limit on one benchmark run, in s.
    """

    def __init__(
        self,
        device_id: str,
        transport: Transport,
        supported_bits: Collection[int] = frozenset({8, 32}),
        command: str = PYTHON_COMMAND,
        remote_dir: str = "/tmp/moo_compress",
        warmup: int = 5,
        repeats: int = 30,
        threads: int = 1,
        calibration_batches: int = 2,
        seed: int = 0,
        timeout_s: float = 300,
    ) -> None:
        unsupported = sorted(set(supported_bits) - ONNX_BITS)
        if unsupported:
            raise ValueError(
                f"device {device_id!r}: bit-width(s) {unsupported} cannot be exported; "
                f"allowed: {sorted(ONNX_BITS)}"
            )
        if min(warmup, repeats - 1, threads - 1, calibration_batches - 1) < 0:
            raise ValueError(
                f"device {device_id!r}: need warmup >= 0, repeats >= 1, threads >= 1 and "
                f"calibration_batches >= 1; got {warmup}, {repeats}, {threads}, "
                f"{calibration_batches}"
            )
        super().__init__(device_id, frozenset(supported_bits))
        self.transport = transport
        self.command = command
        self.remote_dir = remote_dir
        self.warmup = warmup
        self.repeats = repeats
        self.threads = threads
        self.calibration_batches = calibration_batches
        self.seed = seed
        self.timeout_s = timeout_s

    def measure(self, config: CompressionConfig) -> Measurement:
        """Export ``config``'s model to ONNX, push it, time it on the unit (ms).

        The export runs on this machine's host thread
        (:func:`~moo_compress.devices.host_cpu.on_host_thread`), so it never overlaps a
        timing on this CPU; the push and the remote run do not hold that thread.

        Raises:
            ValueError: if the device is unbound, ``config`` has unsupported bits, the
                model cannot be exported (naming the layer), or the remote output holds
                no parsable latency.
            RuntimeError: if a transport command fails.
        """
        if self.space is None:
            raise ValueError(f"device {self.device_id!r} is not bound; call bind(space) first")
        self.check(config)
        model = self.space.model
        proto = on_host_thread(
            lambda: exported_model(model, config, self.calibration_batches, self.seed)
        )
        remote_model = f"{self.remote_dir}/{config.digest}.onnx"
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "model.onnx"
            save_onnx(proto, local)
            self.transport.push(local, remote_model)
        output = self.transport.run(
            self.command.format(
                dir=self.remote_dir,
                model=remote_model,
                shape=",".join(str(d) for d in config.input_shape),
                warmup=self.warmup,
                repeats=self.repeats,
                threads=self.threads,
            ),
            self.timeout_s,
        )
        return Measurement(self.device_id, parse_latency_ms(output))

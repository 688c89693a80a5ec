"""Sketch: a device timed on remote hardware reached over SSH or ADB.

This is a starting point for adding real hardware, not a tested integration: it has only
been exercised with an in-process stand-in transport. The flow of one measurement is:

1. build the compressed model on this machine (:func:`build_runnable`, the same model
   :class:`~moo_compress.devices.local_cpu.LocalCPUDevice` times) and save it as
   TorchScript (``torch.jit.trace``);
2. copy it to the remote unit (:meth:`Transport.push`);
3. run a benchmark there (:meth:`Transport.run`) and parse the latencies it prints.

Expected remote output: one line per timed pass in the ``--report_pep`` format of
PyTorch's ``speed_benchmark_torch`` binary (``binaries/speed_benchmark_torch.cc``)::

    PyTorchObserver {"type": "NET", "unit": "us", "metric": "latency", "value": "8123"}

``unit`` is ``"us"`` or ``"ms"``; other lines are ignored. :data:`BENCH_SCRIPT` is a
small Python script printing that format, for hosts with a Python ``torch`` (e.g. a
Jetson over SSH); on Android use ``speed_benchmark_torch`` built for the phone.

Caveats: TorchScript is deprecated in recent torch (it still works in 2.x and is what
``speed_benchmark_torch`` loads); a longer-lived integration would export with
``torch.export``/ExecuTorch or ONNX (:mod:`moo_compress.onnx_export`, whose QDQ file
carries the int8 layers) and parse that runtime's output instead. Every layer runs as
float32 in the TorchScript model (:func:`build_runnable`); a unit that runs float16 or
int8 natively needs its own export in a subclass.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import warnings
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Protocol

import torch

from moo_compress.config import CompressionConfig
from moo_compress.device import Device
from moo_compress.devices.local_cpu import build_runnable
from moo_compress.measurement import Measurement

PEP_PREFIX = "PyTorchObserver "
_UNIT_TO_MS = {"us": 1e-3, "ms": 1.0}

BENCH_SCRIPT = '''\
"""Time a TorchScript model at batch 1; print one PyTorchObserver line per pass (ms)."""
import json, sys, time
import torch
path, shape, warmup, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if "x86" not in torch.backends.quantized.supported_engines:
    torch.backends.quantized.engine = "qnnpack"
model = torch.jit.load(path).eval()
x = torch.randn([int(d) for d in shape.split(",")])
with torch.inference_mode():
    for _ in range(warmup):
        model(x)
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        ms = (time.perf_counter() - start) * 1e3
        print("PyTorchObserver " + json.dumps(
            {"type": "NET", "unit": "ms", "metric": "latency", "value": str(ms)}))
'''
"""Remote benchmark for hosts with Python and torch (copy it with :func:`install_bench_script`)."""

PYTHON_COMMAND = "python3 {dir}/bench.py {model} {shape} {warmup} {repeats}"
"""Command template running :data:`BENCH_SCRIPT` (SSH hosts)."""

SPEED_BENCHMARK_COMMAND = (
    "{dir}/speed_benchmark_torch --model={model} --input_dims={shape} --input_type=float "
    "--warmup={warmup} --iter={repeats} --report_pep=true"
)
"""Command template running PyTorch's ``speed_benchmark_torch`` binary (Android over ADB)."""


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
    """A unit timed remotely: export, push, run the benchmark, parse (samples in ms).

    Args:
        device_id: Name of the unit.
        transport: How to reach it (:class:`SSHTransport`, :class:`ADBTransport`, ...).
        supported_bits: Bit-widths the unit runs.
        command: Benchmark command template with placeholders ``{dir}``, ``{model}``,
            ``{shape}`` (comma-separated), ``{warmup}`` and ``{repeats}``, e.g.
            :data:`PYTHON_COMMAND` or :data:`SPEED_BENCHMARK_COMMAND`.
        remote_dir: Working directory on the unit (it must exist).
        warmup, repeats: Untimed and timed passes on the unit.
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
        timeout_s: float = 300,
    ) -> None:
        super().__init__(device_id, frozenset(supported_bits))
        self.transport = transport
        self.command = command
        self.remote_dir = remote_dir
        self.warmup = warmup
        self.repeats = repeats
        self.timeout_s = timeout_s

    def measure(self, config: CompressionConfig) -> Measurement:
        """Build, export and push ``config``'s model, time it on the unit (ms).

        Raises:
            ValueError: if the device is unbound, ``config`` has unsupported bits, or
                the remote output holds no parsable latency.
            RuntimeError: if a transport command fails.
        """
        if self.space is None:
            raise ValueError(f"device {self.device_id!r} is not bound; call bind(space) first")
        self.check(config)
        model = build_runnable(self.space.model, config)
        remote_model = f"{self.remote_dir}/{config.digest}.pt"
        with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
            local = Path(tmp) / "model.pt"
            torch.jit.trace(model, torch.zeros(config.input_shape)).save(str(local))
            self.transport.push(local, remote_model)
        output = self.transport.run(
            self.command.format(
                dir=self.remote_dir,
                model=remote_model,
                shape=",".join(str(d) for d in config.input_shape),
                warmup=self.warmup,
                repeats=self.repeats,
            ),
            self.timeout_s,
        )
        return Measurement(self.device_id, parse_latency_ms(output))

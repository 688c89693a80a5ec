"""Tests of the remote-device sketch with stand-in transports (no SSH/ADB needed): one
keeps what is pushed and answers with canned output, one is this machine running the
real benchmark script."""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from moo_compress.devices import remote
from moo_compress.devices.remote import (
    BENCH_SCRIPT,
    PYTHON_COMMAND,
    ADBTransport,
    RemoteDevice,
    SSHTransport,
    install_bench_script,
    parse_latency_ms,
)
from moo_compress.onnx_export import PRECISE_INT8, session
from moo_compress.search_space import SearchSpace

INPUT = (1, 3, 16, 16)


def pep(value: float, unit: str = "us", metric: str = "latency") -> str:
    return (
        f'PyTorchObserver {{"type": "NET", "unit": "{unit}", "metric": "{metric}", '
        f'"value": "{value}"}}'
    )


CANNED_OUTPUT = "\n".join(
    [
        "Starting benchmark.",
        "Running warmup runs.",
        "Main runs.",
        pep(8100),
        pep(8000),
        pep(8300),
        "Main run finished. Microseconds per iter: 8133.3. Iters per second: 122.95",
    ]
)


class CannedTransport:
    """Stand-in unit: keeps pushed files, answers every command with canned output."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.pushed: dict[str, bytes] = {}
        self.commands: list[str] = []

    def push(self, local: Path, remote: str) -> None:
        self.pushed[remote] = local.read_bytes()

    def run(self, command: str, timeout_s: float) -> str:
        self.commands.append(command)
        return self.output


class LocalShellTransport:
    """Stand-in unit that is this machine: copies files, runs commands in a subprocess."""

    def push(self, local: Path, remote: str) -> None:
        shutil.copy(local, remote)

    def run(self, command: str, timeout_s: float) -> str:
        argv = shlex.split(command)
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    ).eval()
    return SearchSpace.from_model(model, torch.randn(INPUT), bit_widths=(8, 32))


def test_measure_pushes_int8_onnx_and_parses_output(space: SearchSpace) -> None:
    transport = CannedTransport(CANNED_OUTPUT)
    device = RemoteDevice("pixel-7", transport, remote_dir="/data/local/tmp", threads=4)
    device.bind(space)
    config = space.decode(space.unpruned(8))
    m = device.measure(config)
    assert m.samples_ms == pytest.approx((8.1, 8.0, 8.3))
    assert m.device_id == "pixel-7"
    model_path = f"/data/local/tmp/{config.digest}.onnx"
    assert list(transport.pushed) == [model_path]
    assert transport.commands == [f"python3 /data/local/tmp/bench.py {model_path} 1,3,16,16 5 30 4"]
    proto = onnx.load_from_string(transport.pushed[model_path])
    onnx.checker.check_model(proto, full_check=True)
    int8 = {t.name for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8}
    at_8_bits = {f"{layer}.weight_quantized" for layer, b in config.bits.items() if b == 8}
    assert at_8_bits and at_8_bits <= int8  # the int8 layers' weights are stored as integers
    assert session(proto).run(None, {"input": np.zeros(INPUT, np.float32)})[0].shape == (1, 10)


def test_garbage_output_raises_clear_value_error(space: SearchSpace) -> None:
    device = RemoteDevice("jetson-1", CannedTransport("Segmentation fault (core dumped)"))
    device.bind(space)
    with pytest.raises(ValueError, match="no 'PyTorchObserver' latency line.*Segmentation"):
        device.measure(space.decode(space.unpruned(32)))


@pytest.mark.parametrize(
    "line",
    [
        "PyTorchObserver {not json",
        'PyTorchObserver {"metric": "latency", "unit": "ns", "value": "1"}',
        'PyTorchObserver {"metric": "latency", "unit": "ms", "value": "fast"}',
        'PyTorchObserver {"metric": "latency", "unit": "ms"}',
    ],
)
def test_malformed_line_raises_value_error(line: str) -> None:
    with pytest.raises(ValueError, match="malformed benchmark line"):
        parse_latency_ms(line)


def test_parse_ignores_other_lines_and_metrics() -> None:
    output = "\n".join(["hello", pep(5, metric="memory"), pep(2.5, unit="ms"), pep(1500)])
    assert parse_latency_ms(output) == pytest.approx((2.5, 1.5))


def test_zero_latency_is_rejected_by_measurement(space: SearchSpace) -> None:
    device = RemoteDevice("jetson-1", CannedTransport(pep(0)))
    device.bind(space)
    with pytest.raises(ValueError, match="allowed: finite values > 0"):
        device.measure(space.decode(space.unpruned(32)))


def test_unbound_and_unsupported_bits_raise(space: SearchSpace) -> None:
    device = RemoteDevice("jetson-1", CannedTransport(pep(1)))
    config = space.decode(space.unpruned(32))
    with pytest.raises(ValueError, match="not bound"):
        device.measure(config)
    device.bind(space)
    with pytest.raises(ValueError, match="4 bits"):
        device.measure(dataclasses.replace(config, bits={n: 4 for n in config.bits}))


def test_bench_script_end_to_end(space: SearchSpace, tmp_path: Path) -> None:
    """The real remote script, run on this machine as if it were the unit."""
    transport = LocalShellTransport()
    install_bench_script(transport, str(tmp_path))
    assert (tmp_path / "bench.py").read_text() == BENCH_SCRIPT
    key, value = PRECISE_INT8  # exact int8 on x86 without VNNI, as onnx_export.session
    assert f'add_session_config_entry("{key}", "{value}")' in BENCH_SCRIPT
    device = RemoteDevice(
        "this-host",
        transport,
        command=PYTHON_COMMAND.replace("python3", sys.executable),
        remote_dir=str(tmp_path),
        warmup=1,
        repeats=4,
    )
    device.bind(space)
    for bits in (8, 32):
        config = space.decode(space.unpruned(bits))
        m = device.measure(config)
        assert len(m.samples_ms) == 4 and m.median_ms > 0
        assert (tmp_path / f"{config.digest}.onnx").is_file()


def test_bad_arguments_raise_one_clear_value_error() -> None:
    with pytest.raises(ValueError, match=r"bit-width\(s\) \[3\] cannot be exported; allowed"):
        RemoteDevice("jetson-1", CannedTransport(pep(1)), supported_bits={3, 8})
    with pytest.raises(ValueError, match="repeats >= 1"):
        RemoteDevice("jetson-1", CannedTransport(pep(1)), repeats=0)


class Recorder:
    """Replaces subprocess.run in the remote module; records argv."""

    def __init__(self, returncode: int = 0, stdout: str = "ok") -> None:
        self.calls: list[list[str]] = []
        self.returncode = returncode
        self.stdout = stdout

    def __call__(self, argv: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        self.calls.append(argv)
        return subprocess.CompletedProcess(argv, self.returncode, self.stdout, "boom")


def test_ssh_transport_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(remote.subprocess, "run", recorder)
    ssh = SSHTransport("nvidia@jetson-017", port=2222, options=("-i", "key"))
    ssh.push(Path("/tmp/m.pt"), "/tmp/moo/m.pt")
    assert ssh.run("python3 /tmp/moo/bench.py", timeout_s=5) == "ok"
    assert recorder.calls == [
        ["scp", "-q", "-P", "2222", "-i", "key", "/tmp/m.pt", "nvidia@jetson-017:/tmp/moo/m.pt"],
        ["ssh", "-p", "2222", "-i", "key", "nvidia@jetson-017", "python3 /tmp/moo/bench.py"],
    ]


def test_adb_transport_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(remote.subprocess, "run", recorder)
    ADBTransport("R58M123").push(Path("/tmp/m.pt"), "/data/local/tmp/m.pt")
    ADBTransport().run("ls", timeout_s=5)
    assert recorder.calls == [
        ["adb", "-s", "R58M123", "push", "/tmp/m.pt", "/data/local/tmp/m.pt"],
        ["adb", "shell", "ls"],
    ]


def test_failed_transport_command_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote.subprocess, "run", Recorder(returncode=255))
    with pytest.raises(RuntimeError, match="exited with 255: boom"):
        SSHTransport("unreachable").run("true", timeout_s=5)

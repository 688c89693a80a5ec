"""OnnxRuntimeDevice: times the exported ONNX file with ONNX Runtime at a fixed thread
count; OpenVINODevice on the same pattern (when openvino is installed)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from moo_compress.devices.onnxruntime import OnnxRuntimeDevice
from moo_compress.search_space import SearchSpace

TIMING = {"warmup": 1, "min_repeats": 5, "max_repeats": 20, "max_seconds": 0.3}


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    ).eval()  # fmt: skip
    return SearchSpace.from_model(model, torch.randn(1, 3, 16, 16), bit_widths=(4, 8, 32))


@pytest.mark.parametrize("bits", [32, 8, 4])
def test_measures_the_exported_model(space, bits):
    device = OnnxRuntimeDevice("ort-2", threads=2, **TIMING)
    device.bind(space)
    config = space.decode(space.unpruned(bits))
    m = device.measure(config)
    assert m.device_id == "ort-2" and 5 <= len(m.samples_ms) <= 20
    assert all(math.isfinite(s) and s > 0 for s in m.samples_ms)
    sess = device.built(config)
    assert sess.get_session_options().intra_op_num_threads == 2
    ops = {n for n in _node_types(device, config)}
    assert ("QuantizeLinear" in ops) == (bits <= 8)


def _node_types(device: OnnxRuntimeDevice, config) -> set[str]:
    from moo_compress.devices.onnxruntime import exported_model

    proto = exported_model(device.space.model, config, device.calibration_batches, device.seed)
    return {n.op_type for n in proto.graph.node}


def test_two_devices_share_one_export_and_differ_in_threads(space):
    devices = [OnnxRuntimeDevice(f"ort-t{t}", threads=t, **TIMING) for t in (1, 2)]
    config = space.decode(space.unpruned(8))
    for device in devices:
        device.bind(space)
        device.measure(config)
    threads = [d.built(config).get_session_options().intra_op_num_threads for d in devices]
    assert threads == [1, 2]


def test_unbound_device_and_bad_options_raise(space):
    with pytest.raises(ValueError, match="not bound"):
        OnnxRuntimeDevice(**TIMING).measure(space.decode(space.unpruned(32)))
    with pytest.raises(ValueError, match="calibration_batches"):
        OnnxRuntimeDevice(calibration_batches=0)


def test_openvino_device_measures_the_same_file(space):
    ov = pytest.importorskip("openvino")
    from moo_compress.devices.openvino import OpenVINODevice

    device = OpenVINODevice("ov-1", threads=1, **TIMING)
    device.bind(space)
    config = space.decode(space.unpruned(8))
    m = device.measure(config)
    assert m.median_ms > 0 and len(m.samples_ms) >= 5
    compiled = device.built(config).get_compiled_model()
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
    # float layers in float32, not OpenVINO's bfloat16 default on CPUs that have it
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32

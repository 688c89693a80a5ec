"""ONNX export: QDQ integer layers with integer weights, checker-valid, ONNX Runtime
agrees with the fake-quant PyTorch model; torch.export round trip; file size."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import pytest
import torch
import torchvision
from onnx import TensorProto, numpy_helper
from torch import nn

from moo_compress.compress import compress
from moo_compress.config import CompressionConfig
from moo_compress.digits import load_digits_splits
from moo_compress.export import export_model, frozen_fake_quant
from moo_compress.fake_quant import calibrate
from moo_compress.onnx_export import OPSET, agreement, export_onnx, session
from moo_compress.resnet8 import load_or_train_resnet8
from moo_compress.search_space import SearchSpace


def _all_bits(space: SearchSpace, bits: int, ratio_index: int = 0) -> CompressionConfig:
    """Every quantisable layer at ``bits`` (protected ones too), prune genes at a ratio."""
    x = space.unpruned(32)
    x[: len(space.prune_genes)] = ratio_index
    config = space.decode(x)
    return CompressionConfig(config.input_shape, config.channels, {k: bits for k in config.bits})


def _weight_types(proto: onnx.ModelProto) -> dict[str, int]:
    """Initializer name -> element type, for the weights of Conv/Gemm layers."""
    types = {i.name: i.data_type for i in proto.graph.initializer}
    return {name: t for name, t in types.items() if name.endswith(".weight_quantized")} | {
        name: t for name, t in types.items() if name.endswith(".weight")
    }


@pytest.fixture(scope="module")
def digits():
    splits = load_digits_splits(0)
    model = load_or_train_resnet8(seed=0)
    space = SearchSpace.from_model(model, splits.images["train"][:1], bit_widths=(2, 4, 8, 32))
    return model, space, splits


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_digits_resnet8_round_trip_agrees_on_real_data(digits, bits):
    model, space, splits = digits
    config = _all_bits(space, bits, ratio_index=2)
    calibration = [splits.images["train"][:256]]
    twin = calibrate(compress(model, config), calibration)
    proto = export_onnx(twin, calibration)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == OPSET
    expected = TensorProto.INT8 if bits == 8 else TensorProto.INT4
    weights = _weight_types(proto)
    assert weights and set(weights.values()) == {expected}  # every layer is integer
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    top1, max_diff = agreement(twin, session(proto), splits.images["test"])
    print(f"digits ResNet-8 at {bits} bits: top-1 agreement {top1:.4f}, max-abs {max_diff:.4g}")
    assert top1 >= 0.99
    assert np.isfinite(max_diff)


@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    space = SearchSpace.from_model(
        model, torch.randn(1, 3, 224, 224), granularity="block", bit_widths=(8, 32)
    )
    return model, space


def test_resnet18_int8_agrees_and_is_a_quarter_of_the_float_file(resnet18):
    model, space = resnet18
    generator = torch.Generator().manual_seed(1)
    calibration = [torch.randn(4, 3, 224, 224, generator=generator) for _ in range(2)]
    sizes, twins = {}, {}
    for bits in (32, 8):
        twin = calibrate(compress(model, _all_bits(space, bits)), calibration)
        proto = export_onnx(twin, calibration)
        sizes[bits] = len(proto.SerializeToString())
        twins[bits] = (twin, proto)
    assert sizes[8] <= 0.30 * sizes[32]
    twin, proto = twins[8]
    inputs = torch.randn(24, 3, 224, 224, generator=generator)
    top1, max_diff = agreement(twin, session(proto), inputs, batch=8)
    print(f"ResNet18 at 8 bits: top-1 agreement {top1:.4f}, max-abs {max_diff:.4g}, ONNX file")
    print(f"{sizes[8]:,} of {sizes[32]:,} bytes ({sizes[8] / sizes[32]:.1%})")
    assert top1 >= 0.99, (top1, max_diff)
    types = {i.data_type for i in proto.graph.initializer if i.name.endswith("_quantized")}
    assert types == {TensorProto.INT8}


def test_mobilenet_v2_mixed_precision_round_trip():
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2().eval()
    example = torch.randn(1, 3, 96, 96)
    space = SearchSpace.from_model(model, example, granularity="block", bit_widths=(4, 8, 32))
    x = space.unpruned(8)
    x[len(space.prune_genes) :: 3] = space.bit_widths.index(4)  # some layers at 4 bits
    x[len(space.prune_genes) + 1 :: 3] = space.bit_widths.index(32)  # some float
    x[: len(space.prune_genes)] = 3
    config = space.decode(x)
    calibration = [torch.randn(8, 3, 96, 96, generator=torch.Generator().manual_seed(2))]
    twin = calibrate(compress(model, config), calibration)
    proto = export_onnx(twin, calibration)
    onnx.checker.check_model(proto, full_check=True)
    types = {i.data_type for i in proto.graph.initializer if i.name.endswith("_quantized")}
    assert types == {TensorProto.INT8, TensorProto.INT4}
    floats = [n for n, b in config.bits.items() if b == 32]
    inits = {i.name: i for i in proto.graph.initializer}
    assert floats and all(inits[f"{n}.weight"].data_type == TensorProto.FLOAT for n in floats)
    out = session(proto).run(None, {"input": example.numpy()})[0]
    with torch.no_grad():
        assert out.shape == twin(example).shape


def test_int4_weights_are_packed_two_per_byte(digits):
    model, space, splits = digits
    calibration = [splits.images["train"][:64]]
    twin = calibrate(compress(model, _all_bits(space, 4)), calibration)
    proto = export_onnx(twin, calibration)
    for init in proto.graph.initializer:
        if init.name.endswith(".weight_quantized"):
            assert len(init.raw_data) == (int(np.prod(init.dims)) + 1) // 2
            values = numpy_helper.to_array(init)
            assert values.min() >= -7 and values.max() <= 7


class Histogram(nn.Module):
    """torch.export traces it; ONNX has no histc."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.histc(x, bins=4).sum() * 0


def test_unexportable_layer_is_named_and_other_formats_are_written(tmp_path, capsys):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), Histogram(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4)
    ).eval()
    config = CompressionConfig((1, 3, 8, 8), {}, {"0": 8, "4": 32})
    calibration = [torch.randn(4, 3, 8, 8)]
    twin = calibrate(compress(model, config), calibration)
    files = export_model(twin, config, tmp_path, calibration)
    assert "state_dict.pt" in files and "model.pt2" in files and "model.onnx" not in files
    report = json.loads((tmp_path / "export.json").read_text())
    assert "layer '2' (Histogram)" in report["errors"]["onnx"]
    assert "histc" in report["errors"]["onnx"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: onnx not written: ")


def test_pt2_loads_back_and_matches_the_fake_quant_model(digits, tmp_path):
    model, space, splits = digits
    config = _all_bits(space, 4, ratio_index=1)
    calibration = [splits.images["train"][:128]]
    twin = calibrate(compress(model, config), calibration)
    export_model(twin, config, tmp_path, calibration, formats=("pt2",))
    loaded = torch.export.load(tmp_path / "model.pt2").module()
    x = splits.images["test"][:1]
    with torch.no_grad():
        assert torch.allclose(loaded(x), twin(x), atol=1e-5)
        assert torch.allclose(frozen_fake_quant(twin)(x), twin(x), atol=1e-6)
    report = json.loads((tmp_path / "export.json").read_text())
    assert set(report) == {"config_digest", "errors", "pt2"} and report["errors"] == {}


def test_export_raises_no_deprecation_warning(digits, tmp_path):
    model, space, splits = digits
    calibration = [splits.images["train"][:64]]
    twin = calibrate(compress(model, _all_bits(space, 8)), calibration)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_model(twin, space.decode(space.unpruned(8)), tmp_path, calibration)
    messages = [str(w.message) for w in caught]
    deprecated = [m for m in messages if "deprecat" in m.lower() and ("jit" in m or ".ao" in m)]
    assert deprecated == []


def test_torchlib_ops_are_listed_once_per_process():
    apis = pytest.importorskip("onnxscript._framework_apis.torch_2_11")
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    ).eval()
    x = torch.randn(1, 3, 8, 8)
    first, second = export_onnx(model, [x]), export_onnx(model, [x])
    assert first.SerializeToString() == second.SerializeToString()
    info = apis.get_torchlib_ops.cache_info()
    assert info.misses == 1 and info.hits >= 1

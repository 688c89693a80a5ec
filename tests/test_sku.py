"""Tests of the SKU latency model (moo_compress.devices.sku / skus)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from moo_compress.costs import LayerCosts, evaluate_costs
from moo_compress.devices import CORTEX_A72, JETSON_XAVIER_NX, MPIC_RISCV, SKUS, get_sku
from moo_compress.devices import sku as sku_module
from moo_compress.search_space import SearchSpace


def conv(
    c_in: float, c_out: float, bits: int, *, hw: int = 28, depthwise: bool = False
) -> LayerCosts:
    """LayerCosts of one 3x3 conv (N=1, L=1) on an hw x hw map, no bias."""
    kernel, spatial = 9, hw * hw

    def one(v: float) -> np.ndarray:
        return np.array([[float(v)]])

    weights = kernel * c_out if depthwise else kernel * c_in * c_out
    return LayerCosts(
        names=("conv",),
        macs=one(weights * spatial),
        weight_elems=one(weights),
        bias_elems=one(0),
        in_channels=one(c_in),
        out_channels=one(c_out),
        bits=one(bits),
        in_act_elems=one(c_in * spatial),
        out_act_elems=one(c_out * spatial),
        kernel=np.array([kernel]),
        depthwise=np.array([depthwise]),
        out_spatial=np.array([spatial]),
    )


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    torch.manual_seed(0)
    return SearchSpace.from_model(
        torchvision.models.resnet18(), torch.randn(1, 3, 64, 64), granularity="block"
    )


@pytest.mark.parametrize("name", sorted(SKUS))
def test_latency_falls_monotonically_with_pruning(space: SearchSpace, name: str) -> None:
    sku = get_sku(name)
    n_prune = len(space.prune_genes)
    X = np.zeros((len(space.ratios), space.n_var), dtype=int)
    X[:, :n_prune] = np.arange(len(space.ratios))[:, None]
    bits = np.full((len(X), len(space.layer_names)), max(sku.supported_bits))
    layers = evaluate_costs(space.table, space.keep_matrix(X), bits).layers
    lat = sku.latency_ms(layers)
    assert np.all(np.diff(lat) <= 1e-12)
    assert lat[-1] < 0.5 * lat[0]


def test_channel_alignment_steps() -> None:
    def compute_ms(c: int, bits: int) -> float:
        return float(JETSON_XAVIER_NX.layer_times(conv(c, c, bits))[0][0, 0])

    # FP16 tensor cores pad to 8: 17 and 24 cost the same, 16 is a step below.
    assert compute_ms(16, 16) < compute_ms(17, 16) == compute_ms(24, 16) < compute_ms(25, 16)
    # INT8 pads to 16: 17, 24 and 32 cost the same.
    assert compute_ms(16, 8) < compute_ms(17, 8) == compute_ms(24, 8) == compute_ms(32, 8)
    # FP32 CUDA cores have no alignment: every channel counts.
    assert compute_ms(16, 32) < compute_ms(17, 32) < compute_ms(24, 32)


def test_depthwise_pads_its_channel_count_once() -> None:
    def compute_ms(c: int) -> float:
        return float(JETSON_XAVIER_NX.layer_times(conv(c, c, 8, depthwise=True))[0][0, 0])

    assert compute_ms(17) == compute_ms(32)
    assert compute_ms(64) == pytest.approx(2 * compute_ms(32))  # linear, not quadratic


def test_cache_regime_on_cortex_a72() -> None:
    small = conv(16, 16, 8, hw=14)  # a few kB: fits the 1 MB L2
    big = conv(256, 256, 32, hw=56)  # MBs of activations: DRAM
    _, cache, dram = CORTEX_A72.layer_times(small)
    assert cache[0, 0] > 0 and dram[0, 0] == 0
    _, cache, dram = CORTEX_A72.layer_times(big)
    assert cache[0, 0] == 0 and dram[0, 0] > 0
    assert JETSON_XAVIER_NX.layer_times(small)[1][0, 0] == 0  # no cache modelled


def test_mpic_uses_the_diagonal_of_the_published_table() -> None:
    for bits, macs_per_cycle in ((2, 6.5), (4, 3.5), (8, 2.1)):
        layer = conv(32, 32, bits)  # 32 is a multiple of every MPIC alignment
        compute = MPIC_RISCV.layer_times(layer)[0][0, 0]
        assert compute == pytest.approx(layer.macs[0, 0] / (macs_per_cycle * 250e6) * 1e3)


def test_drift_factors_scale_the_right_terms() -> None:
    sku = JETSON_XAVIER_NX
    compute_bound = conv(256, 256, 32)  # FP32: compute-bound
    base = sku.latency_ms(compute_bound)[0] - sku.overhead_ms(1)
    slow = sku.latency_ms(compute_bound, compute=0.5)[0] - sku.overhead_ms(1)
    assert slow == pytest.approx(2 * base)
    fixed = sku.overhead_ms(1)
    assert sku.latency_ms(compute_bound, bandwidth=0.9)[0] == pytest.approx(base + fixed)
    assert sku.latency_ms(compute_bound, overhead=2.0)[0] == pytest.approx(base + 2 * fixed)


def test_matrix_matches_per_device_latency_across_chunks(
    space: SearchSpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    X = rng.integers(space.xl, space.xu + 1, size=(7, space.n_var))
    layers = space.costs(X).layers
    c, b, o = rng.uniform(0.4, 1.2, size=(3, 5))
    # blocks of 3 configurations: 7 configs take 3 blocks
    monkeypatch.setattr(sku_module, "_CHUNK_ELEMS", 3 * 5 * len(layers.names))
    matrix = CORTEX_A72.latency_matrix(layers, c, b, o)
    assert matrix.shape == (7, 5)
    for d in range(5):
        np.testing.assert_allclose(matrix[:, d], CORTEX_A72.latency_ms(layers, c[d], b[d], o[d]))


def test_unknown_sku_name_lists_allowed_names() -> None:
    allowed = "cortex-a72.*jetson-xavier-nx.*mpic-riscv"
    with pytest.raises(ValueError, match=f"unknown SKU 'tpu'; allowed: .*{allowed}"):
        get_sku("tpu")


def test_unsupported_bit_width_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"does not support bit-width\(s\) \[4\]"):
        JETSON_XAVIER_NX.latency_ms(conv(16, 16, 4))
    with pytest.raises(ValueError, match="allowed: \\[2, 4, 8\\]"):
        MPIC_RISCV.latency_ms(conv(16, 16, 16))


def test_invalid_drift_is_rejected() -> None:
    with pytest.raises(ValueError, match="finite and > 0"):
        JETSON_XAVIER_NX.latency_ms(conv(16, 16, 8), compute=0.0)


def test_int8_falls_back_to_fp16_on_the_nano() -> None:
    from moo_compress.devices import JETSON_NANO

    for layer in (conv(64, 64, 8), conv(512, 512, 8, hw=7)):  # compute- and memory-heavy
        as_fp16 = LayerCosts(**{**layer.__dict__, "bits": np.full_like(layer.bits, 16)})
        nano = [t[0, 0] for t in JETSON_NANO.layer_times(layer)]
        assert nano == [t[0, 0] for t in JETSON_NANO.layer_times(as_fp16)]
        # The Xavier NX has an int8 path: int8 beats fp16 there.
        assert JETSON_XAVIER_NX.latency_ms(layer)[0] < JETSON_XAVIER_NX.latency_ms(as_fp16)[0]


def test_unaligned_channels_fall_back_where_the_runtime_does_not_pad() -> None:
    fast = sku_module.Precision(peak_gmacs=1000.0, efficiency=1.0, align=8)
    slow = sku_module.Precision(peak_gmacs=100.0, efficiency=1.0, align=1)
    strict = sku_module.Precision(peak_gmacs=1000.0, efficiency=1.0, align=8, unaligned=slow)
    common = {
        "dram_gbs": 1e6,
        "dram_efficiency": 1.0,
        "layer_overhead_ms": 0.0,
        "inference_overhead_ms": 0.0,
    }
    padding = sku_module.SKU("padding", {16: fast}, **common)
    no_padding = sku_module.SKU("no-padding", {16: strict}, **common)

    def compute_ms(sku: sku_module.SKU, c_in: int, c_out: int) -> float:
        return float(sku.layer_times(conv(c_in, c_out, 16))[0][0, 0])

    assert compute_ms(no_padding, 16, 16) == compute_ms(padding, 16, 16)
    # 17 channels: padded to 24 at the fast rate, or 17 at a tenth of the rate.
    assert compute_ms(padding, 17, 16) == pytest.approx(24 * 16 * 9 * 784 / 1e9)
    assert compute_ms(no_padding, 17, 16) == pytest.approx(17 * 16 * 9 * 784 / 1e8)
    assert compute_ms(no_padding, 16, 17) == pytest.approx(16 * 17 * 9 * 784 / 1e8)
    # Depthwise: only the output channels count.
    depthwise = conv(17, 16, 16, depthwise=True)
    assert no_padding.layer_times(depthwise)[0][0, 0] == padding.layer_times(depthwise)[0][0, 0]


def test_ri5cy_runs_sub_byte_layers_slower_than_8_bit_mpic_faster() -> None:
    from moo_compress.devices import RI5CY_RISCV

    ri5cy = {b: RI5CY_RISCV.layer_times(conv(32, 32, b))[0][0, 0] for b in (2, 4, 8)}
    mpic = {b: MPIC_RISCV.layer_times(conv(32, 32, b))[0][0, 0] for b in (2, 4, 8)}
    assert ri5cy[2] > ri5cy[4] > ri5cy[8]
    assert mpic[2] < mpic[4] < mpic[8]
    assert ri5cy[8] / mpic[8] == pytest.approx(1.1, rel=0.01)
    assert ri5cy[2] / mpic[2] == pytest.approx(4.9, rel=0.01)


def test_winograd_speeds_up_3x3_fp32_on_arm_nn_only() -> None:
    from moo_compress.devices import SKUS

    armnn, legacy = SKUS["cortex-a72-armnn"], SKUS["cortex-a72-tflite-legacy"]
    three = conv(64, 64, 32, hw=14)
    one = LayerCosts(**{**three.__dict__, "kernel": np.array([1])})
    compute = {
        s.name: [s.layer_times(c)[0][0, 0] for c in (three, one)]
        for s in (CORTEX_A72, armnn, legacy)
    }
    assert compute["cortex-a72-armnn"][0] == pytest.approx(compute["cortex-a72"][0] / 2.0)
    assert compute["cortex-a72-armnn"][1] == compute["cortex-a72"][1]  # 1x1: no Winograd
    int8 = conv(64, 64, 8, hw=14)
    assert armnn.layer_times(int8)[0][0, 0] == CORTEX_A72.layer_times(int8)[0][0, 0]
    # The legacy runtime: fp32 far slower, int8 a little: quantising pays off more there.
    gain = {s.name: s.latency_ms(three)[0] / s.latency_ms(int8)[0] for s in (CORTEX_A72, legacy)}
    assert gain["cortex-a72-tflite-legacy"] > 2 * gain["cortex-a72"]
    with pytest.raises(ValueError, match="kernel_speedup"):
        sku_module.Precision(1.0, 1.0, 1, kernel_speedup=((9, 0.0),))

"""Roofline features: padded MACs and the compute-/memory-bound split, by hand."""

import numpy as np
import pytest

from moo_compress.costs import LayerCosts
from surrogates.features import padded_macs, roofline_features


def layers(c_in, c_out, bits, depthwise=(False, False)):
    """Two 3x3 convolutions at 4x4 output, one configuration."""
    c_in, c_out, bits = (np.array([v], dtype=float) for v in (c_in, c_out, bits))
    macs = np.where(depthwise, 9 * c_out * 16, 9 * c_in * c_out * 16)
    weights = np.where(depthwise, 9 * c_out, 9 * c_in * c_out)
    return LayerCosts(
        names=("a", "b"),
        macs=macs,
        weight_elems=weights,
        bias_elems=np.zeros((1, 2)),
        in_channels=c_in,
        out_channels=c_out,
        bits=bits,
        in_act_elems=c_in * 16,
        out_act_elems=c_out * 16,
        kernel=np.array([9, 9]),
        depthwise=np.array(depthwise),
        out_spatial=np.array([16, 16]),
    )


def test_padding_rounds_channels_up_to_the_vector_width():
    lc = layers([3, 57], [57, 16], [8, 8], depthwise=(False, True))
    macs = padded_macs(lc, align=8)
    assert macs[0, 0] == 9 * 8 * 64 * 16  # 3 -> 8 in, 57 -> 64 out
    assert macs[0, 1] == 9 * 16 * 16  # depthwise: 16 channels, already aligned
    np.testing.assert_array_equal(padded_macs(lc, align=1), lc.macs)
    with pytest.raises(ValueError, match="align"):
        padded_macs(lc, align=0)


def test_layers_split_into_compute_and_memory_bound_by_the_knee():
    lc = layers([64, 64], [64, 64], [32, 8], depthwise=(False, True))
    F = roofline_features(lc, np.array([0, 1]), align=8, knee_macs_per_byte=10.0)
    assert F.shape == (1, 8)
    # layer a: 589,824 MACs over 147,456 + 8,192 bytes (intensity 3.8): memory-bound
    # layer b (depthwise int8): 9,216 MACs over 576 + 2,048 bytes (3.5): memory-bound
    np.testing.assert_allclose(F[0, :6], 0.0)
    np.testing.assert_allclose(F[0, 6:], [(147_456 + 8_192) / 1e6, (576 + 2_048) / 1e6])
    low_knee = roofline_features(lc, np.array([0, 1]), knee_macs_per_byte=1.0)
    # columns: int s0, s1 · half s0, s1 · float s0, s1 · memory s0, s1; both compute-bound
    np.testing.assert_allclose(low_knee[0], [0, 9_216 / 1e9, 0, 0, 589_824 / 1e9, 0, 0, 0])

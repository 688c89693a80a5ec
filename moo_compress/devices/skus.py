"""Preset SKUs: two edge GPUs, an Arm CPU on three runtimes and two revisions of a RISC-V
MCU.

Every number is either taken from the cited datasheet / paper or marked *assumption*
with the reasoning behind it. "Unpruned ResNet-50" latencies below are what
:meth:`SKU.latency_ms` yields for torchvision's ResNet-50 at 1x3x224x224, batch 1,
every layer at the stated bit-width, nominal drift (computed with
``python -m benchmarks.fleet_drift``, table "SKU sanity check").
"""

from __future__ import annotations

from dataclasses import replace

from moo_compress.devices.sku import SKU, Precision

JETSON_XAVIER_NX = SKU(
    name="jetson-xavier-nx",
    precisions={
        # FP32 on the 384 CUDA cores: 384 x 1 FMA x 1.1 GHz = 422 GMAC/s (NVIDIA Jetson
        # Xavier NX module datasheet: 384-core Volta GPU, 1100 MHz max). CUDA-core FP32
        # kernels have no channel-multiple requirement (align 1). Efficiency 0.6:
        # assumption, CUDA-core GEMMs reach 50-70 % of peak at batch 1.
        32: Precision(peak_gmacs=422.4, efficiency=0.6, align=1),
        # FP16 on the 48 tensor cores: 6 TFLOPS FP16 = 3000 GMAC/s (datasheet).
        # Tensor-core kernels need channels % 8 == 0 in FP16 (NVIDIA Deep Learning
        # Performance Guide, "Channels in and out"; TensorRT reports the format
        # "Channel major FP16 format where channel % 8 == 0").
        16: Precision(peak_gmacs=3000.0, efficiency=0.4, align=8),
        # INT8 on the tensor cores: 12 TOPS on the GPU (the 21 TOPS headline includes the
        # two NVDLA engines) = 6000 GMAC/s (datasheet). INT8 tensor-core kernels need
        # channels % 16 == 0 (NVIDIA Deep Learning Performance Guide; GTC'19 S9926
        # "Tensor Core Performance: The Ultimate Guide").
        8: Precision(peak_gmacs=6000.0, efficiency=0.35, align=16),
        # Efficiencies 0.4 / 0.35: assumption, batch-1 tensor-core utilisation on a small
        # GPU is typically 25-40 %; chosen so that INT8 ResNet-50 lands near MLPerf.
    },
    # 128-bit LPDDR4x at 1866 MHz = 51.2 GB/s (datasheet); 70 % achieved (assumption,
    # typical sustained fraction of LPDDR4x on Tegra).
    dram_gbs=51.2,
    dram_efficiency=0.7,
    # 5 us per layer: assumption, the gap between back-to-back TensorRT kernels (launch
    # is asynchronous, but each small batch-1 kernel has a ramp-up / tail of a few us).
    layer_overhead_ms=0.005,
    # 0.1 ms: assumption, input upload + stream synchronisation.
    inference_overhead_ms=0.1,
)
"""NVIDIA Jetson Xavier NX (15 W mode), TensorRT; bits {8, 16, 32} = INT8, FP16, FP32.

Unpruned ResNet-50 (model): INT8 2.744 ms, FP16 4.431 ms, FP32 16.726 ms.
Published: MLPerf Inference v1.0 closed, NVIDIA "Xavier_NX_TRT" ResNet-50 SingleStream,
INT8 TensorRT: median 2.567 ms, 90th percentile 2.585 ms
(github.com/mlcommons/inference_results_v1.0,
closed/NVIDIA/results/Xavier_NX_TRT/resnet50/SingleStream/performance/run_1/mlperf_log_summary.txt).
"""

CORTEX_A72 = SKU(
    name="cortex-a72",
    precisions={
        # Raspberry Pi 4 (BCM2711): 4 x Cortex-A72 at 1.5 GHz (Raspberry Pi 4 product
        # brief). One 128-bit FMLA per cycle per core (Arm Cortex-A72
        # Software Optimization Guide, Q-form FMLA throughput 1/cycle): 4 FP32 lanes x
        # 4 cores x 1.5 GHz = 24 GMAC/s.
        # Align 4 = FP32 lanes in a 128-bit NEON register.
        32: Precision(peak_gmacs=24.0, efficiency=0.3, align=4),
        # FP16: the A72 is Armv8.0-A, without FP16 arithmetic (FEAT_FP16 is Armv8.2), so
        # FP16 is stored 8 per register (align 8) but widened and computed in FP32:
        # same peak, slightly lower efficiency for the conversions (assumption).
        16: Precision(peak_gmacs=24.0, efficiency=0.27, align=8),
        # INT8: no SDOT on Armv8.0; SMULL/SMLAL + SADALP kernels (gemmlowp/ruy) reach
        # about twice the FP32 MAC rate (assumption, ruy's Armv8.0 int8 kernels).
        # Align 16 = INT8 lanes in a 128-bit register.
        8: Precision(peak_gmacs=48.0, efficiency=0.3, align=16),
        # Efficiency 0.3: assumption, batch-1 im2col+GEMM on 4 threads with a fork/join
        # per layer reaches 20-40 % of peak on these cores.
    },
    # 32-bit LPDDR4-3200 = 12.8 GB/s (BCM2711); 35 % achieved: assumption, STREAM-like
    # copies on a Pi 4 sustain about 4-5 GB/s.
    dram_gbs=12.8,
    dram_efficiency=0.35,
    # Shared 1 MB L2 (BCM2711); 24 GB/s = 16 B/cycle at 1.5 GHz out of L2: assumption.
    cache_bytes=1 << 20,
    cache_gbs=24.0,
    # 50 us per layer: assumption, thread-pool fork/join + im2col buffer set-up.
    layer_overhead_ms=0.05,
    # 0.5 ms: assumption, interpreter invoke + input copy.
    inference_overhead_ms=0.5,
)
"""Arm Cortex-A72 quad-core (Raspberry Pi 4, 1.5 GHz), bits {8, 16, 32}.

Unpruned ResNet-50 (model): FP32 578.2 ms, FP16 665.2 ms (no native
FP16 on Armv8.0: converted), INT8 323.0 ms.
Published: MLPerf Inference v0.5 closed, dividiti "rpi4-tflite-v1.15" ResNet-50
SingleStream (FP32, TFLite 1.15): median 1890 ms
(github.com/mlcommons/inference_results_v0.5,
closed/dividiti/results/rpi4-tflite-v1.15/resnet/singlestream/performance/run_1/mlperf_log_summary.txt).
The model assumes an optimised NEON runtime (ArmNN / XNNPACK class); TFLite 1.15's
kernels were several times slower, so the model is faster than that figure.
"""

CORTEX_A72_ARMNN = replace(
    CORTEX_A72,
    name="cortex-a72-armnn",
    precisions={
        **CORTEX_A72.precisions,
        # Arm NN on the Compute Library runs FP32 3x3 convolutions with Winograd
        # (NEWinogradConvolutionLayer): F(2x2, 3x3) needs 2.25x fewer multiplies than
        # direct convolution (Lavin & Gray, CVPR 2016). Achieved speed-up 2.0 over the
        # GEMM path: assumption (transforms cost part of the saving). Its int8 path
        # (gemmlowp-style GEMM) has no Winograd.
        32: replace(CORTEX_A72.precisions[32], kernel_speedup=((9, 2.0),)),
    },
)
"""Raspberry Pi 4 units running Arm NN: the same hardware as :data:`CORTEX_A72`, another
runtime. FP32 3x3 convolutions cost about what int8 ones do, so quantising them pays
off little, while 1x1 layers still gain 2x.

Unpruned ResNet-50 (model): FP32 449.7 ms, INT8 323.0 ms.
"""

CORTEX_A72_TFLITE_LEGACY = replace(
    CORTEX_A72,
    name="cortex-a72-tflite-legacy",
    precisions={
        # TensorFlow Lite 1.x's built-in kernels, before the XNNPACK delegate. FP32
        # efficiency 0.092 = 0.3 x 578 / 1890: scaled so that unpruned ResNet-50 FP32
        # lands at MLPerf Inference v0.5's dividiti "rpi4-tflite-v1.15" median of 1890 ms
        # (see CORTEX_A72). FP16 is converted to FP32: the same factor.
        32: replace(CORTEX_A72.precisions[32], efficiency=0.092),
        16: replace(CORTEX_A72.precisions[16], efficiency=0.083),
        # INT8 on TFLite's own quantised kernels (ruy/gemmlowp): XNNPACK's quantised
        # inference is about 30 % faster on average (TensorFlow blog, "Faster Quantized
        # Inference with XNNPACK", 2021), so 0.3 / 1.3 = 0.23.
        8: replace(CORTEX_A72.precisions[8], efficiency=0.23),
    },
)
"""Raspberry Pi 4 units on an old TensorFlow Lite build without XNNPACK: FP32 is about 3x
slower than :data:`CORTEX_A72` (XNNPACK-class), int8 only 1.3x, so quantising pays off
about 4-5x there against 1.8x on an up-to-date unit.

Unpruned ResNet-50 (model): FP32 1874 ms, INT8 420 ms.
"""

_MPIC_MHZ = 250.0
"""MPIC clock (Ottavi et al., ISVLSI 2020)."""

MPIC_RISCV = SKU(
    name="mpic-riscv",
    precisions={
        # MACs/cycle of the MPIC mixed-precision dot-product kernels (Ottavi et al. 2020,
        # "A Mixed-Precision RISC-V Processor for Extreme-Edge DNN Inference", Table of
        # MAC/cycle by activation x weight bits; also used by Motetti et al., IEEE TC
        # 2024). Our search space gives one bit-width per layer to weights and input
        # activations, so the diagonal applies: a2w2 6.5, a4w4 3.5, a8w8 2.1.
        # These are measured kernel throughputs, so efficiency 1. Align = values per
        # 32-bit register (32 / bits): SIMD lanes of the packed dot products.
        2: Precision(peak_gmacs=6.5 * _MPIC_MHZ / 1e3, efficiency=1.0, align=16),
        4: Precision(peak_gmacs=3.5 * _MPIC_MHZ / 1e3, efficiency=1.0, align=8),
        8: Precision(peak_gmacs=2.1 * _MPIC_MHZ / 1e3, efficiency=1.0, align=4),
    },
    # On-chip L2 SRAM -> core over one 32-bit port: 4 B/cycle x 250 MHz = 1 GB/s
    # (assumption: single-core PULP-style system, no cache).
    dram_gbs=1.0,
    dram_efficiency=1.0,
    # 1000 cycles = 4 us per layer: assumption, DMA / im2col buffer set-up.
    layer_overhead_ms=1000 / (_MPIC_MHZ * 1e3),
    inference_overhead_ms=0.0,
)
"""Single-core MPIC RISC-V MCU at 250 MHz, bits {2, 4, 8} (weights = activations).

Unpruned ResNet-50 (model): 8-bit 7864 ms (2-bit 2831 ms), but it does not fit: 25.5 M weights
need ~25 MB at 8 bits against a few hundred kB of on-chip SRAM.
MLPerf-Tiny ResNet-8 (CIFAR-10, 32x32, 12.6 M MACs; model, 8-bit): 24.1 ms. Published for
comparison (different core): MLPerf Tiny v1.0 closed, OctoML microTVM+CMSIS-NN on the
nRF5340-DK (Cortex-M33, 128 MHz), image classification: median 3.163 inf/s = 316 ms
(github.com/mlcommons/tiny_results_v1.0,
closed/OctoML/results/microtvm_cmsis_nn/NRF5340-DK/ic/performance/results.txt); the MPIC
does 2.1 8-bit MAC/cycle against ~0.3 for that Cortex-M33 run.
"""

_NANO_FP16 = Precision(peak_gmacs=235.9, efficiency=0.6, align=2)
"""FP16 on the Nano's CUDA cores (its int8 layers run on this path too)."""

JETSON_NANO = SKU(
    name="jetson-nano",
    precisions={
        # FP32 on the 128 Maxwell CUDA cores: 128 x 1 FMA x 921.6 MHz = 118 GMAC/s
        # (NVIDIA Jetson Nano module datasheet: 128-core Maxwell GPU, 921 MHz max;
        # 472 GFLOPS FP16 = 2 x the FP32 rate). Efficiency 0.6 as the Xavier NX's CUDA
        # cores (assumption).
        32: Precision(peak_gmacs=118.0, efficiency=0.6, align=1),
        # FP16: packed half2 FMAs, 2 x the FP32 rate = 236 GMAC/s (datasheet's 472
        # GFLOPS). No tensor cores; half2 packs two channels (align 2).
        16: _NANO_FP16,
        # INT8: Maxwell (sm_53) has no DP4A int8 dot product, and TensorRT reports no
        # fast int8 on the Nano (IBuilder::platformHasFastInt8() is false; see e.g.
        # github.com/ceccocats/tkDNN/issues/26: "Int8 support: 0" on the Nano). An
        # engine built with int8 and fp16 enabled runs those layers with the fp16
        # kernels, moving fp16 data: no speed-up over fp16 (assumption: fp16 enabled,
        # as every Nano deployment guide does).
        8: Precision(
            peak_gmacs=_NANO_FP16.peak_gmacs,
            efficiency=_NANO_FP16.efficiency,
            align=_NANO_FP16.align,
            storage_bits=16,
        ),
    },
    # 64-bit LPDDR4 at 1600 MHz = 25.6 GB/s (datasheet); 70 % achieved, as the Xavier NX
    # (assumption).
    dram_gbs=25.6,
    dram_efficiency=0.7,
    # 10 us per layer, 0.2 ms per inference: assumption, twice the Xavier NX's (four
    # Cortex-A57 cores at 1.43 GHz launch the kernels instead of six Carmel cores).
    layer_overhead_ms=0.01,
    inference_overhead_ms=0.2,
)
"""NVIDIA Jetson Nano (10 W MAXN mode), TensorRT; bits {8, 16, 32}, int8 run as fp16.

The product-line predecessor of the Xavier NX (same module form factor and carrier
board pinout), one Maxwell GPU generation older and with half the memory bus: HDAP
evaluated on a fleet of Xavier NX and Nano units.
Unpruned ResNet-50 (model): FP16 = INT8 (fallback) 30.1 ms, FP32 58.9 ms.
Published for comparison: NVIDIA's Jetson Nano deep-learning inference benchmarks
(developer.nvidia.com/embedded/jetson-nano-dl-inference-benchmarks) list ResNet-50
224x224, TensorRT FP16, batch 1 at 36 FPS (about 28 ms).
"""

RI5CY_RISCV = SKU(
    name="ri5cy-riscv",
    precisions={
        # The RI5CY core MPIC extends (Ottavi et al., ISVLSI 2020), with the XpulpV2 SIMD
        # dot products on 4 x 8-bit lanes but no sub-byte ones. 8-bit: MPIC is 1.1x
        # faster at its best-matched kernel (the paper's 1.1-4.9x range), so 2.1 / 1.1
        # = 1.9 MAC/cycle.
        8: Precision(peak_gmacs=1.9 * _MPIC_MHZ / 1e3, efficiency=1.0, align=4),
        # Sub-byte operands are unpacked to 8 bits in software before the 8-bit dot
        # product (the PULP-NN mixed-precision kernels, Bruschi et al., CF 2020), so
        # 4- and 2-bit layers run SLOWER than 8-bit ones. 2-bit: MPIC's largest
        # speed-up over RI5CY, 4.9x, gives 6.5 / 4.9 = 1.33 MAC/cycle. 4-bit: 1.4
        # MAC/cycle, assumption (the same unpacking work per MAC, slightly cheaper).
        # Weights stay packed in memory (sub-byte storage).
        4: Precision(peak_gmacs=1.4 * _MPIC_MHZ / 1e3, efficiency=1.0, align=8),
        2: Precision(peak_gmacs=1.33 * _MPIC_MHZ / 1e3, efficiency=1.0, align=16),
    },
    # The same SoC around the core as MPIC_RISCV (assumption: one board, two core
    # revisions): 1 GB/s L2 port, 4 us per layer.
    dram_gbs=1.0,
    dram_efficiency=1.0,
    layer_overhead_ms=1000 / (_MPIC_MHZ * 1e3),
    inference_overhead_ms=0.0,
)
"""Single-core RI5CY (XpulpV2) RISC-V MCU at 250 MHz, bits {2, 4, 8}: the earlier
hardware revision of :data:`MPIC_RISCV`, without sub-byte SIMD.

MLPerf-Tiny ResNet-8 (model): 8-bit 26.7 ms, 4-bit 37.9 ms, 2-bit 43.4 ms (MPIC: 24.1,
15.2 and 8.9 ms).
"""

SKUS: dict[str, SKU] = {
    s.name: s
    for s in (
        JETSON_XAVIER_NX,
        JETSON_NANO,
        CORTEX_A72,
        CORTEX_A72_ARMNN,
        CORTEX_A72_TFLITE_LEGACY,
        MPIC_RISCV,
        RI5CY_RISCV,
    )
}
"""All presets by name."""


def get_sku(name: str) -> SKU:
    """The preset SKU called ``name``.

    Raises:
        ValueError: for an unknown name, listing the allowed ones.
    """
    try:
        return SKUS[name]
    except KeyError:
        raise ValueError(f"unknown SKU {name!r}; allowed: {sorted(SKUS)}") from None

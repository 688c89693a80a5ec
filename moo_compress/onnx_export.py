"""ONNX export of a compressed model: QDQ integer layers, integer weights in the file.

:func:`export_onnx` turns the output of :func:`~moo_compress.compress.compress` (already
calibrated, see :func:`~moo_compress.fake_quant.calibrate`) into an ONNX model of opset
:data:`OPSET` that ONNX Runtime, TensorRT and OpenVINO read:

* The physically pruned float graph comes from ``torch.onnx.export`` (torch.export
  based; its optimiser folds each BatchNorm into the convolution before it).
* A layer at ``b <= 8`` bits becomes QuantizeLinear/DequantizeLinear ("QDQ") pairs:
    - weights are stored as integers, per output channel, symmetric, narrow range
      ``[-(2**(b-1) - 1), 2**(b-1) - 1]``: INT8 for ``b > 4``, packed INT4 for
      ``b <= 4`` (2-bit weights use the INT4 container), read through a
      DequantizeLinear with ``axis=0``. Folding BatchNorm scales each output channel by
      a constant, and per-channel symmetric quantisation commutes with that, so the
      integers are those of the fake-quantised layer;
    - its input activation gets the fake-quantised layer's own scale and zero point
      (per tensor, ``[0, 2**b - 1]``) in a UINT8 QDQ pair, clamped in front (Min, Max)
      below 8 bits. Not UINT4: ONNX Runtime 1.32's Clip/Quantize fusion fails on a UINT4
      zero point (a ReLU6 before a 4-bit layer), and it has no 4-bit kernels to gain
      from one. Not a Clip: that fusion drops such a Clip and changes the outputs;
    - at 8 bits, its output (after a ReLU that follows it) is quantised too, so that ONNX
      Runtime fuses the layer into an integer kernel (QLinearConv, QGemm; there are no
      sub-8-bit ones, so 2- and 4-bit layers run dequantised, in float32). That tensor reuses
      the next layer's input parameters where it feeds a quantised layer; otherwise
      (e.g. a residual branch) it gets UINT8 parameters from the min/max seen on the
      calibration batches. These output points are the one difference from the
      fake-quant PyTorch model (one more 8-bit rounding), measured by
      :func:`agreement`.
* 16- and 32-bit layers stay float32 (16-bit layers are float16 only in the accuracy
  emulation; the file keeps them float32).

The input is named ``input`` with a dynamic batch dimension; the output is ``logits``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import io
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from moo_compress.fake_quant import QuantizedLayer, unwrap

OPSET = 21
"""ONNX opset of the exported files (the first with INT4/UINT4 Quantize/Dequantize)."""

PRECISE_INT8 = ("session.x64quantprecision", "1")
"""ONNX Runtime session config entry that deployments of the exported file on x86 CPUs
without VNNI need (see :func:`session`)."""

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


class OnnxExportError(ValueError):
    """The model cannot be exported to ONNX; the message names the first layer that
    cannot."""


@dataclass(frozen=True)
class _LayerQuant:
    """Integer parameters of one fake-quantised layer."""

    bits: int
    act_scale: float
    act_zero_point: int


def export_onnx(
    compressed: nn.Module, calibration: Sequence[torch.Tensor], opset: int = OPSET
) -> onnx.ModelProto:
    """The ONNX model of a compressed, calibrated model (see the module docstring).

    Args:
        compressed: Output of :func:`~moo_compress.compress.compress`, with activation
            ranges calibrated (:func:`~moo_compress.fake_quant.calibrate`). Not modified.
        calibration: Input batches, each (B, *input_shape[1:]); they set the ranges of
            quantised outputs that feed no quantised layer.
        opset: ONNX opset (>= 21).

    Returns:
        A model that ``onnx.checker.check_model(..., full_check=True)`` accepts.

    Raises:
        OnnxExportError: if ``torch.onnx.export`` fails, naming the first layer that
            cannot be exported on its own.
        ValueError: if ``calibration`` is empty or ``opset < 21``.
    """
    if opset < OPSET:
        raise ValueError(f"opset {opset} is not allowed; allowed: >= {OPSET}")
    batches = [b.detach().float() for b in calibration]
    if not batches:
        raise ValueError("export_onnx needs at least one calibration batch")
    quant = _layer_quants(compressed)
    float_model, _ = unwrap(copy.deepcopy(compressed))
    proto = _export_float(float_model.eval(), batches[0], opset)
    if quant:
        proto = _QDQBuilder(proto, quant).build(batches)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def save_onnx(proto: onnx.ModelProto, path) -> None:
    """Write ``proto`` to ``path`` (weights inside the file)."""
    onnx.save_model(proto, str(path))


def session(model: onnx.ModelProto | bytes | str, threads: int = 1) -> ort.InferenceSession:
    """An ONNX Runtime CPU session of ``model`` computing with ``threads`` threads.

    Graph optimisations are all on, so QDQ layers run ONNX Runtime's integer kernels.
    The thread count is fixed for the session's life (intra-op ``threads``, inter-op
    1, sequential execution). :data:`PRECISE_INT8` is set: on x86 CPUs without VNNI
    ONNX Runtime's default uint8 x int8 kernel saturates its 16-bit intermediate sums
    (top-1 agreement of the digits ResNet-8 at 8 bits fell to 0.958 on an AVX2 EPYC);
    it then takes its exact uint8 x uint8 kernel instead, and other CPUs are unaffected.
    """
    options = ort.SessionOptions()
    options.add_session_config_entry(*PRECISE_INT8)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, x: torch.Tensor) -> np.ndarray:
    """(B, classes) logits of ``sess`` on a batch ``x``."""
    return sess.run(None, {INPUT_NAME: x.detach().float().numpy()})[0]


def agreement(
    reference: nn.Module, sess: ort.InferenceSession, inputs: torch.Tensor, batch: int = 64
) -> tuple[float, float]:
    """Top-1 agreement in [0, 1] and max-abs logit difference between ``reference``
    (the fake-quant PyTorch model) and ``sess`` on ``inputs`` (N, ...)."""
    agree, worst = 0, 0.0
    reference.eval()
    with torch.no_grad():
        for chunk in inputs.split(batch):
            expected = reference(chunk).numpy()
            got = run(sess, chunk)
            agree += int((expected.argmax(1) == got.argmax(1)).sum())
            worst = max(worst, float(np.abs(expected - got).max()))
    return agree / len(inputs), worst


# ---------------------------------------------------------------------- float export
def _layer_quants(model: nn.Module) -> dict[str, _LayerQuant]:
    """Layer name (as in the unwrapped model) -> its integer parameters, for every
    fake-quantised layer of 8 bits or fewer."""
    quant = {}
    for name, module in model.named_modules():
        if isinstance(module, QuantizedLayer) and module.bits <= 8:
            fq = module.act_quant
            quant[name] = _LayerQuant(
                module.bits, float(fq.scale.reshape(-1)[0]), int(fq.zero_point.reshape(-1)[0])
            )
    return quant


_TORCHLIB_APIS = "onnxscript._framework_apis.torch_2_11"
_TORCHLIB_LOCK = threading.Lock()


def _reuse_torchlib_ops() -> None:
    """Make onnxscript compute its list of torch-library ops once per process.

    ``torch.onnx.export`` rebuilds its op registry on every call, and onnxscript's
    ``get_torchlib_ops`` re-parses the source of about 500 functions for it: 0.5 of
    the 1.3 s of CPU time that exporting a small CNN took here. The list depends only
    on the installed onnxscript and is only read, so its memoised version (the same
    list) replaces the function in that module the first time this runs. Nothing
    changes with an onnxscript that lacks the module (the module torch 2.14 imports).
    """
    with _TORCHLIB_LOCK:
        try:
            apis = importlib.import_module(_TORCHLIB_APIS)
        except ImportError:
            return
        ops = getattr(apis, "get_torchlib_ops", None)
        if ops is not None and not hasattr(ops, "cache_info"):
            apis.get_torchlib_ops = functools.cache(ops)


def _export_float(model: nn.Module, example: torch.Tensor, opset: int) -> onnx.ModelProto:
    """The float ONNX graph of ``model`` (BatchNorm folded), dynamic batch."""
    _reuse_torchlib_ops()
    x = example[:1]
    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            program = torch.onnx.export(
                model,
                (x,),
                dynamo=True,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
    except Exception as exc:
        raise OnnxExportError(_first_unexportable(model, x, opset, exc)) from exc
    return program.model_proto


def _first_unexportable(model: nn.Module, x: torch.Tensor, opset: int, exc: Exception) -> str:
    """One line naming the first leaf layer that cannot be exported on its own."""
    inputs: dict[str, tuple] = {}

    def record(name: str):
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            inputs.setdefault(name, args)

        return hook

    hooks = [
        module.register_forward_hook(record(name))
        for name, module in model.named_modules()
        if not list(module.children())
    ]
    with contextlib.suppress(Exception), torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    modules = dict(model.named_modules())
    for name, args in inputs.items():
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                torch.onnx.export(modules[name], args, dynamo=True, opset_version=opset)
        except Exception as layer_exc:
            reason = _first_line(layer_exc)
            return f"ONNX cannot export layer {name!r} ({type(modules[name]).__name__}): {reason}"
    return f"ONNX cannot export {type(model).__name__}: {_first_line(exc)}"


def _first_line(exc: Exception) -> str:
    """The most telling line of an exporter error: the first one of its "Exception
    summary" when there is one, without terminal colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "## Exception summary" in lines and lines.index("## Exception summary") + 1 < len(lines):
        line = lines[lines.index("## Exception summary") + 1]
        return re.sub(r"^<class '(?:[\w.]+\.)?(\w+)'>", r"\1", line)
    return lines[0] if lines else type(exc).__name__


# ---------------------------------------------------------------------- QDQ rewrite
class _QDQBuilder:
    """Rewrites a float ONNX graph into QDQ form for the layers of ``quant``."""

    def __init__(self, proto: onnx.ModelProto, quant: dict[str, _LayerQuant]) -> None:
        self.proto = proto
        self.graph = proto.graph
        self.quant = quant
        self.inits = {i.name: i for i in self.graph.initializer}
        self.new_nodes: list[onnx.NodeProto] = []
        self.new_inits: list[onnx.TensorProto] = []
        self.pairs: dict[tuple, str] = {}  # (tensor, scale, zp, bits) -> dequantised name
        self.counter = 0

    def build(self, calibration: Sequence[torch.Tensor]) -> onnx.ModelProto:
        layers = self._quantised_nodes()
        missing = sorted(set(self.quant) - {name for name, _ in layers})
        if missing:
            raise OnnxExportError(
                f"layer {missing[0]!r} has no Conv/Gemm with weight {missing[0] + '.weight'!r} "
                "in the exported graph"
            )
        eight = [node for name, node in layers if self.quant[name].bits == 8]
        outputs = [t for t in dict.fromkeys(self._output_tensor(n) for n in eight) if t]
        inputs = {node.input[0] for _, node in layers}
        ranges = self._calibrate([t for t in outputs if t not in inputs], calibration)
        for name, node in layers:
            self._quantise_weight(node, name)
            q = self.quant[name]
            node.input[0] = self._pair(node.input[0], q.act_scale, q.act_zero_point, q.bits)
        for tensor in outputs:
            self._quantise_output(tensor, ranges)
        self.graph.initializer.extend(self.new_inits)
        nodes = list(self.graph.node) + self.new_nodes
        del self.graph.node[:]
        self.graph.node.extend(_toposort(nodes, self.graph))
        return self.proto

    # -------------------------------------------------------------- graph queries
    def _quantised_nodes(self) -> list[tuple[str, onnx.NodeProto]]:
        found = []
        for node in self.graph.node:
            if node.op_type in ("Conv", "Gemm") and len(node.input) > 1:
                weight = node.input[1]
                name = weight.removesuffix(".weight")
                if weight.endswith(".weight") and name in self.quant and weight in self.inits:
                    found.append((name, node))
        return found

    def _consumers(self, tensor: str) -> list[onnx.NodeProto]:
        return [n for n in list(self.graph.node) + self.new_nodes if tensor in n.input]

    def _output_tensor(self, node: onnx.NodeProto) -> str | None:
        """The tensor to quantise after ``node``: the output of a ReLU that is its only
        consumer, else its own output; None for a graph output (logits stay float)."""
        tensor = node.output[0]
        consumers = self._consumers(tensor)
        if len(consumers) == 1 and consumers[0].op_type == "Relu":
            tensor = consumers[0].output[0]
        if tensor in {o.name for o in self.graph.output}:
            return None
        return tensor

    # -------------------------------------------------------------- rewrites
    def _name(self, base: str) -> str:
        self.counter += 1
        return f"{base}__qdq{self.counter}"

    def _quantise_weight(self, node: onnx.NodeProto, layer: str) -> None:
        bits = self.quant[layer].bits
        weight = node.input[1]
        w = numpy_helper.to_array(self.inits[weight]).astype(np.float32)
        q_max = 2 ** (bits - 1) - 1
        amax = np.abs(w.reshape(len(w), -1)).max(1)
        scale = (np.maximum(amax, 1e-12) / q_max).astype(np.float32)
        q = np.clip(np.rint(w / scale.reshape(-1, *[1] * (w.ndim - 1))), -q_max, q_max)
        q = q.astype(np.int8)
        self.graph.initializer.remove(self.inits.pop(weight))
        kind = TensorProto.INT8 if bits > 4 else TensorProto.INT4
        q_name, s_name, z_name = (f"{weight}_quantized", f"{weight}_scale", f"{weight}_zero")
        self.new_inits += [
            _int_tensor(q_name, kind, q),
            numpy_helper.from_array(scale, s_name),
            _int_tensor(z_name, kind, np.zeros(len(w), np.int8)),
        ]
        self.new_nodes.append(
            helper.make_node(
                "DequantizeLinear", [q_name, s_name, z_name], [weight], axis=0, name=weight + "_dq"
            )
        )

    def _pair(self, tensor: str, scale: float, zero_point: int, bits: int) -> str:
        """The dequantised name of ``tensor`` after a Q/DQ pair (created once)."""
        key = (tensor, scale, zero_point, bits)
        if key in self.pairs:
            return self.pairs[key]
        kind, top, q_max = TensorProto.UINT8, 255, 2**bits - 1
        s_name, z_name = self._name(tensor + "_scale"), self._name(tensor + "_zero")
        self.new_inits += [
            numpy_helper.from_array(np.array(scale, np.float32), s_name),
            helper.make_tensor(z_name, kind, [], [zero_point]),
        ]
        source = tensor
        if q_max != top:  # the fake-quant range ends below the container's
            lo, hi = self._name(tensor + "_lo"), self._name(tensor + "_hi")
            self.new_inits += [
                numpy_helper.from_array(np.array(-zero_point * scale, np.float32), lo),
                numpy_helper.from_array(np.array((q_max - zero_point) * scale, np.float32), hi),
            ]
            capped, source = self._name(tensor + "_capped"), self._name(tensor + "_clipped")
            self.new_nodes += [
                helper.make_node("Min", [tensor, hi], [capped]),
                helper.make_node("Max", [capped, lo], [source]),
            ]
        quantised, dequantised = self._name(tensor + "_q"), self._name(tensor + "_dq")
        self.new_nodes += [
            helper.make_node("QuantizeLinear", [source, s_name, z_name], [quantised]),
            helper.make_node("DequantizeLinear", [quantised, s_name, z_name], [dequantised]),
        ]
        self.pairs[key] = dequantised
        return dequantised

    def _quantise_output(self, tensor: str, ranges: dict[str, tuple[float, float]]) -> None:
        """Route every consumer of ``tensor`` still reading it in float through a pair:
        the first existing one, or a calibrated UINT8 one."""
        existing = [(key, dq) for key, dq in self.pairs.items() if key[0] == tensor]
        if existing:
            dequantised = existing[0][1]
        else:
            lo, hi = ranges[tensor]
            lo, hi = min(lo, 0.0), max(hi, 0.0)
            scale = max(hi - lo, 1e-8) / 255
            zero_point = int(np.clip(round(-lo / scale), 0, 255))
            dequantised = self._pair(tensor, scale, zero_point, 8)
        for node in list(self.graph.node) + self.new_nodes:
            if node.op_type in ("QuantizeLinear", "Min") and node.input[0] == tensor:
                continue
            for i, name in enumerate(node.input):
                if name == tensor:
                    node.input[i] = dequantised

    def _calibrate(
        self, tensors: list[str], calibration: Sequence[torch.Tensor]
    ) -> dict[str, tuple[float, float]]:
        """(min, max) of each tensor of the float graph over the calibration batches
        (called before the graph is rewritten)."""
        if not tensors:
            return {}
        probe = onnx.ModelProto()
        probe.CopyFrom(self.proto)
        del probe.graph.output[:]
        probe.graph.output.extend(helper.make_empty_tensor_value_info(t) for t in tensors)
        sess = session(probe, threads=1)
        lo = {t: np.inf for t in tensors}
        hi = {t: -np.inf for t in tensors}
        for batch in calibration:
            values = sess.run(tensors, {INPUT_NAME: batch.numpy()})
            for t, value in zip(tensors, values, strict=True):
                lo[t], hi[t] = min(lo[t], float(value.min())), max(hi[t], float(value.max()))
        return {t: (lo[t], hi[t]) for t in tensors}


def _int_tensor(name: str, kind: int, values: np.ndarray) -> onnx.TensorProto:
    """An INT8 or packed INT4 initializer (two 4-bit values a byte, low nibble first)."""
    if kind == TensorProto.INT8:
        return numpy_helper.from_array(values.astype(np.int8), name)
    flat = values.astype(np.int8).reshape(-1)
    if len(flat) % 2:
        flat = np.append(flat, np.int8(0))
    nibbles = flat.view(np.uint8) & 0x0F
    packed = (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8)
    return helper.make_tensor(name, kind, list(values.shape), packed.tobytes(), raw=True)


def _toposort(nodes: list[onnx.NodeProto], graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """``nodes`` in an order where every input is produced before it is read."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(nodes)
    ordered = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise OnnxExportError(f"cycle or dangling input at node {pending[0].name!r}")
        ready_ids = {id(n) for n in ready}
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if id(n) not in ready_ids]
    return ordered

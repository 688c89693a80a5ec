"""Export of a chosen compressed model, the function that loads it back, and the CLI.

A folder written by :func:`export_model` holds, per format asked for:

* ``config.json``: the :class:`~moo_compress.config.CompressionConfig` (always);
* ``state_dict``: ``state_dict.pt``, weights of the compressed, recovered model
  (BatchNorm statistics re-estimated, activation ranges calibrated); load it with
  :func:`load_compressed`;
* ``pt2``: ``model.pt2``, a ``torch.export`` ExportedProgram of the fake-quantised model
  (activation ranges frozen, dynamic batch dimension), loadable with
  ``torch.export.load`` without moo_compress; it is loaded back and checked against
  the model before it is kept;
* ``onnx``: ``model.onnx``, opset 21, integer layers as QDQ with integer weights (see
  :mod:`moo_compress.onnx_export`), for ONNX Runtime, TensorRT or OpenVINO;
* ``export.json``: what was checked: the ExportedProgram's max-abs difference from the
  model, ONNX Runtime's top-1 agreement with the fake-quant model and max-abs logit
  difference on the evaluator's data, file sizes, and one line per format that could
  not be written. Each format is written and checked on one torch and BLAS thread
  (:func:`~moo_compress.threads.pinned_threads`), so the checks' numbers are the same on
  every machine.

Command line, for any row of a finished run (the knee by default)::

    python -m moo_compress.export RUN_DIR [--row N] [--format onnx|pt2|state_dict]
        [--out DIR] [--problem FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from moo_compress.compress import compress
from moo_compress.config import CompressionConfig
from moo_compress.fake_quant import QuantizedLayer
from moo_compress.onnx_export import (
    OnnxExportError,
    agreement,
    export_onnx,
    save_onnx,
    session,
)
from moo_compress.threads import pinned_threads
from moo_compress.weights import load_weights_file

FORMATS = ("state_dict", "pt2", "onnx")
"""Formats :func:`export_model` writes (all by default)."""

FILES = {"state_dict": "state_dict.pt", "pt2": "model.pt2", "onnx": "model.onnx"}
"""The file each format writes."""

PT2_TOLERANCE = 1e-4
"""Largest max-abs logit difference between a reloaded ExportedProgram and the model."""


def export_model(
    model: nn.Module,
    config: CompressionConfig,
    folder: Path,
    calibration: Sequence[torch.Tensor] = (),
    formats: Sequence[str] = FORMATS,
) -> list[str]:
    """Write ``model`` (compressed with ``config`` and recovered) to ``folder``.

    A format that cannot be written (e.g. a layer ONNX cannot export) does not stop the
    others: its one-line reason goes to ``export.json`` and to stderr. Exporting more
    formats of the same configuration into a folder adds to it (``export.json`` keeps
    the earlier formats' checks); a folder holding another configuration's export loses
    that export's model files, so that it never mixes two configurations.

    Args:
        model: The compressed, calibrated model (not modified).
        config: Its configuration.
        folder: Target folder (created).
        calibration: Input batches of the evaluator's data: they set the ranges of
            ONNX-only quantisation points and measure ONNX Runtime's agreement. Default:
            one seeded random batch of 8 inputs.
        formats: Any of :data:`FORMATS`.

    Returns:
        Names of the files written.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown format {unknown[0]!r}; allowed: {', '.join(FORMATS)}")
    model = model.eval()
    batches = list(calibration) or [
        torch.randn((8, *config.input_shape[1:]), generator=torch.Generator().manual_seed(0))
    ]
    folder.mkdir(parents=True, exist_ok=True)
    report = _previous_report(folder, config.digest)
    for fmt in formats:
        report.pop(fmt, None)
        report["errors"].pop(fmt, None)
    (folder / "config.json").write_text(config.to_json())
    written = ["config.json"]
    writers = {"state_dict": _write_state_dict, "pt2": _write_pt2, "onnx": _write_onnx}
    for fmt in FORMATS:
        if fmt not in formats:
            continue
        try:
            with pinned_threads():  # the checks' numbers the same on every machine
                name, checks = writers[fmt](model, config, folder, batches)
        except (OnnxExportError, ExportCheckError) as exc:
            report["errors"][fmt] = str(exc)
            print(f"warning: {fmt} not written: {exc}", file=sys.stderr)
            continue
        written.append(name)
        report[fmt] = checks | {"file": name, "bytes": (folder / name).stat().st_size}
    (folder / "export.json").write_text(json.dumps(report, indent=2) + "\n")
    return [*written, "export.json"]


def _previous_report(folder: Path, digest: str) -> dict:
    """``folder``'s ``export.json`` if it is an export of the configuration ``digest``;
    otherwise a fresh report, after removing the model files of any other export."""
    try:
        report = json.loads((folder / "export.json").read_text())
        if report.get("config_digest") == digest and isinstance(report.get("errors"), dict):
            return report
    except (OSError, ValueError):
        pass
    for name in FILES.values():
        (folder / name).unlink(missing_ok=True)
    return {"config_digest": digest, "errors": {}}


class ExportCheckError(ValueError):
    """An exported file, loaded back, does not reproduce the model."""


def _write_state_dict(model, config, folder, batches) -> tuple[str, dict]:
    torch.save(model.state_dict(), folder / FILES["state_dict"])
    return FILES["state_dict"], {}


def _write_pt2(model, config, folder, batches) -> tuple[str, dict]:
    frozen = frozen_fake_quant(model)
    x = torch.cat(list(batches))[:2].expand(2, *batches[0].shape[1:])  # a batch of 1 would
    # make torch.export specialise the batch dimension
    try:
        batch = torch.export.Dim("batch", min=1, max=4096)
        program = torch.export.export(frozen, (x,), dynamic_shapes=({0: batch},))
    except Exception as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportCheckError(f"torch.export failed: {line}") from exc
    path = folder / FILES["pt2"]
    torch.export.save(program, path)
    loaded = torch.export.load(path).module()
    with torch.no_grad():
        diff = float((loaded(x) - model(x)).abs().max())
    if diff > PT2_TOLERANCE:
        path.unlink()
        raise ExportCheckError(
            f"model.pt2 loaded back differs from the model by {diff:.3g} (> {PT2_TOLERANCE})"
        )
    return path.name, {"max_abs_diff": diff}


def _write_onnx(model, config, folder, batches) -> tuple[str, dict]:
    proto = export_onnx(model, batches)
    save_onnx(proto, folder / FILES["onnx"])
    top1, max_diff = agreement(model, session(proto), torch.cat(batches))
    return FILES["onnx"], {
        "opset": proto.opset_import[0].version,
        "top1_agreement": top1,
        "max_abs_logit_diff": max_diff,
        "inputs": int(sum(len(b) for b in batches)),
    }


class _FrozenActivationQuant(nn.Module):
    """An activation fake-quantiser with its calibrated, fixed range (what torch.export
    traces: no observer, no data-dependent branch)."""

    def __init__(self, scale: torch.Tensor, zero_point: torch.Tensor, lo: int, hi: int) -> None:
        super().__init__()
        self.scale, self.zero_point = float(scale.reshape(-1)[0]), int(zero_point.reshape(-1)[0])
        self.lo, self.hi = lo, hi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torch's fake_quantize_per_tensor_affine, in plain ops: torch.export has no
        # shape rule for it with a dynamic batch dimension
        q = torch.clamp(torch.round(x * (1.0 / self.scale)) + self.zero_point, self.lo, self.hi)
        return (q - self.zero_point) * self.scale


def frozen_fake_quant(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose activation fake-quantisers have fixed ranges; the same
    function of its input as ``model`` in eval mode with observers off."""
    import copy

    frozen = copy.deepcopy(model).eval()
    for module in frozen.modules():
        if isinstance(module, QuantizedLayer) and module.bits <= 8:
            fq = module.act_quant
            module.act_quant = _FrozenActivationQuant(
                fq.scale, fq.zero_point, fq.quant_min, fq.quant_max
            )
    return frozen


def load_compressed(base_model: nn.Module, folder: str | Path) -> nn.Module:
    """Rebuild a compressed model exported by :func:`export_model`.

    Args:
        base_model: The uncompressed architecture (its weights are replaced).
        folder: The export folder.

    Raises:
        ValueError: if the folder lacks a file, or the weights do not fit the model,
            naming the path or the first mismatching tensor.
    """
    folder = Path(folder)
    for name in ("config.json", "state_dict.pt"):
        if not (folder / name).is_file():
            raise ValueError(f"{folder / name} does not exist; export with export_model()")
    config = CompressionConfig.from_json((folder / "config.json").read_text())
    model = compress(base_model, config)
    return load_weights_file(model, folder / "state_dict.pt").eval()


# ---------------------------------------------------------------------- command line
def _parse(argv: list[str]) -> argparse.Namespace:
    # the runner's one-line parser (imported here: moo_compress.cli imports the problem
    # module, which imports this one)
    from moo_compress.cli import OneLineParser, int_at_least

    parser = OneLineParser(
        prog="python -m moo_compress.export",
        description="Export a row of a finished run's front (the knee by default).",
    )
    parser.add_argument("run_dir", type=Path, help="folder of a finished run")
    parser.add_argument(
        "--row", type=int_at_least(0), default=None, help="row of front.csv (default: knee)"
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        action="append",
        help="format to write (repeatable; default: all)",
    )
    parser.add_argument("--out", type=Path, help="target folder (default: RUN_DIR/knee or row-N)")
    parser.add_argument("--problem", type=Path, help="problem file (default: the run's own)")
    return parser.parse_args(argv)


def _run_files(run_dir: Path) -> tuple[dict, pd.DataFrame]:
    summary_path, front_path = run_dir / "summary.json", run_dir / "front.csv"
    for path in (summary_path, front_path):
        if not path.is_file():
            raise ValueError(f"{str(run_dir)!r} is not a finished run: {path.name} is missing")
    try:
        return json.loads(summary_path.read_text()), pd.read_csv(front_path)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"{str(run_dir)!r}: cannot read its outputs: {exc}") from None


def _writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"target folder {str(folder)!r} is not writable: {reason}") from None


def main(argv: list[str] | None = None) -> int:
    """Export one row of a finished run; returns the exit code (2 for bad input)."""
    from moo_compress.cli import UsageError
    from moo_compress.problem_file import ProblemFileError, load_problem_class

    try:
        args = _parse(sys.argv[1:] if argv is None else argv)
        summary, front = _run_files(args.run_dir)
        row = summary.get("knee_row") if args.row is None else args.row
        if row is None or not 0 <= row < len(front):
            raise ValueError(
                f"{str(args.run_dir)!r} has no row {row}; allowed: 0..{len(front) - 1}"
                if len(front)
                else f"{str(args.run_dir)!r} has an empty front"
            )
        problem_file = args.problem or summary.get("problem_file")
        if problem_file is None:
            raise ValueError("the run does not record its problem file; give --problem FILE")
        out = args.out or args.run_dir / ("knee" if args.row is None else f"row-{row}")
        _writable(out)
        problem = load_problem_class(Path(problem_file))(seed=int(summary.get("seed", 0)))
        config = problem.space.config_type.from_json(front["config"].iloc[row])
        formats = args.format or FORMATS
        files = problem.export(problem.space.encode(config), out, formats)
    except (UsageError, ProblemFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    errors = json.loads((out / "export.json").read_text())["errors"]
    errors = {fmt: reason for fmt, reason in errors.items() if fmt in formats}
    for fmt, reason in errors.items():
        print(f"error: {fmt}: {reason}", file=sys.stderr)
    print(f"row {row}: wrote {', '.join(files)} to {out}")
    return 2 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""What a run's floating-point results depend on besides its inputs and settings.

A search is bit-for-bit repeatable on one machine and software stack: every model fit
and evaluation runs on one thread (``moo_compress.threads``), so the same seed gives the
same front. It is not repeatable across CPUs or library versions. MKL, OpenBLAS,
oneDNN and torch pick kernels by the CPU's instruction set (AVX2, AVX-512, ...), and
kernels that add in another order round differently. A difference of about 1e-15 in
one Gaussian-process fit changes which configuration is measured next, and from there
the search's path. Measured on the main job (``problems/resnet50_hdap.py``, seed 0), see
the README's "Reliability" section.

``numeric_environment()`` records what decides those kernels, so that two runs that
differ can be told apart: it goes into ``summary.json`` and into the run's manifest, and
``--resume`` on another environment says so (``differences``).
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("torch", "numpy", "scipy", "gpytorch", "botorch", "linear_operator", "pymoo")
"""The numeric packages whose versions are recorded."""


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, else ``platform.processor()``."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def numeric_environment() -> dict[str, str]:
    """This process's numeric environment.

    Returns:
        ``{"cpu": model name, "machine": e.g. "x86_64", "torch_cpu_capability": the
        kernel set torch dispatches to (e.g. "AVX512"; ``ATEN_CPU_CAPABILITY`` lowers
        it), "python": version, and one entry per package of ``PACKAGES``: its version}``.
    """
    return {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        **{package: _version(package) for package in PACKAGES},
    }


def differences(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """``"key: recorded -> current"`` for every key whose value differs, in ``current``'s
    order; a key that only one side has counts as a difference (``"absent"``)."""
    keys = list(current) + [k for k in recorded if k not in current]
    return [
        f"{key}: {recorded.get(key, 'absent')} -> {current.get(key, 'absent')}"
        for key in keys
        if recorded.get(key) != current.get(key)
    ]

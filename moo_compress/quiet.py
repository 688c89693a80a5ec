"""The one place that quiets library warnings the user of a tool cannot act on.

Entry points call :func:`quiet_library_warnings`: the runner and ``benchmarks.compare``
in ``main()`` and, run as scripts, before they import the library (some of its imports
warn; the runner also when a process it spawns imports it as ``__mp_main__``); the
worker processes of ``benchmarks.compare --jobs`` as their initializer, before they
import anything else; the test session at start-up (``tests/conftest.py``).
Importing a library module never changes warning filters.
Warnings a module handles itself stay local to it (``warnings.catch_warnings`` around
the call, e.g. botorch's fit-cap notices in :func:`surrogates.gp_surrogate.fit_model`).
"""

from __future__ import annotations

import logging
import warnings

LIBRARY_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    # linear_operator (gpytorch's) calls torch.jit.script when imported; nothing here does
    ("`torch.jit.script` is deprecated", FutureWarning, r"torch\.jit"),
    ("Sparse invariant checks", Warning, ""),  # torch's notice on sparse tensors
    ("A not p.d., added jitter", Warning, ""),  # GP fits (linear_operator): handled
)
"""(message regex, category, module regex) of each warning ignored."""
LIBRARY_LOGGERS = ("torch.utils.cpp_extension",)
"""Loggers raised to ERROR: torch's cpp_extension logs "No CUDA runtime is found" when
a library imports it on a CPU-only machine, where nothing here builds an extension."""


def quiet_library_warnings() -> None:
    """Ignore :data:`LIBRARY_WARNINGS` and the lesser records of :data:`LIBRARY_LOGGERS`
    from now on (process-wide)."""
    for message, category, module in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)

"""The entry points' quieting of library noise the user cannot act on."""

from __future__ import annotations

import logging
import subprocess
import sys

from moo_compress.quiet import LIBRARY_LOGGERS, quiet_library_warnings


def test_torch_cpp_extension_notice_is_quieted_but_errors_are_not():
    # the first screen of a run showed "No CUDA runtime is found" from this logger
    assert "torch.utils.cpp_extension" in LIBRARY_LOGGERS
    logger = logging.getLogger("torch.utils.cpp_extension")
    logger.setLevel(logging.NOTSET)
    quiet_library_warnings()
    assert not logger.isEnabledFor(logging.WARNING)
    assert logger.isEnabledFor(logging.ERROR)


def test_the_runner_imported_by_a_spawned_worker_prints_no_library_warning():
    # a fit process spawned by `python -m moo_compress.run` imports the runner as
    # "__mp_main__" first; gpytorch's torch.jit.script notice printed mid-run from there
    code = "import runpy; runpy.run_module('moo_compress.run', run_name='__mp_main__')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr

"""The entry points' quieting of library noise the user cannot act on."""

from __future__ import annotations

import logging

from moo_compress.quiet import LIBRARY_LOGGERS, quiet_library_warnings


def test_torch_cpp_extension_notice_is_quieted_but_errors_are_not():
    # the first screen of a run showed "No CUDA runtime is found" from this logger
    assert "torch.utils.cpp_extension" in LIBRARY_LOGGERS
    logger = logging.getLogger("torch.utils.cpp_extension")
    logger.setLevel(logging.NOTSET)
    quiet_library_warnings()
    assert not logger.isEnabledFor(logging.WARNING)
    assert logger.isEnabledFor(logging.ERROR)

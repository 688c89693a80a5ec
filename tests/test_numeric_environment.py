"""The numeric environment a run records, and how two records are compared."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from moo_compress.numeric_environment import PACKAGES, differences, numeric_environment


def test_the_record_names_the_cpu_the_kernel_set_and_every_numeric_package():
    env = numeric_environment()
    assert set(env) == {"cpu", "machine", "torch_cpu_capability", "python", *PACKAGES}
    assert env["cpu"] and env["machine"]
    assert env["torch"] == torch.__version__.split("+")[0]
    assert all(isinstance(v, str) for v in env.values())


def test_the_record_follows_the_kernel_set_torch_really_dispatches_to():
    """``ATEN_CPU_CAPABILITY=default`` makes torch use its plain kernels; the record must
    say so rather than describe the CPU's best set."""
    code = "import json; from moo_compress.numeric_environment import numeric_environment as e; "
    code += "print(json.dumps(e()))"
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    lowered = json.loads(out.stdout)
    assert lowered["torch_cpu_capability"] == "DEFAULT"
    here = numeric_environment()
    assert differences(here, lowered) == (
        []
        if here["torch_cpu_capability"] == "DEFAULT"
        else [f"torch_cpu_capability: {here['torch_cpu_capability']} -> DEFAULT"]
    )


def test_differences_name_each_changed_missing_or_added_key_once():
    recorded = {"cpu": "A", "torch": "2.14.1", "numpy": "2.4.6", "old": "x"}
    current = {"cpu": "B", "torch": "2.14.1", "numpy": "2.5.0", "new": "y"}
    assert differences(recorded, current) == [
        "cpu: A -> B",
        "numpy: 2.4.6 -> 2.5.0",
        "new: absent -> y",
        "old: x -> absent",
    ]
    assert differences(current, dict(current)) == []

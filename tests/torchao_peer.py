"""Run a snippet against torchao 0.18 in a fresh subprocess and get its result as JSON.

torchao registers global Inductor passes when imported, so pt2q's tests never import it in the
pytest process. ``run_torchao(code)`` runs ``code`` in ``python -c`` (torch and torchao
imported, warnings silenced); the snippet assigns the JSON-serialisable ``result``, which comes
back decoded. ``tensor_list(t)`` turns a tensor into nested floats for that purpose.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

__all__ = ["run_torchao"]

_PRELUDE = """
import json, sys, warnings
warnings.filterwarnings("ignore")
import logging
logging.disable(logging.CRITICAL)
import torch
import torchao  # noqa: F401
def tensor_list(t):
    return t.detach().double().tolist()
"""
_MARK = "@@torchao-result@@"


def run_torchao(code: str, timeout: float = 240.0) -> Any:
    """Run ``code`` (which sets ``result``) with torchao in a subprocess; return ``result``."""
    script = _PRELUDE + textwrap.dedent(code) + f"\nprint({_MARK!r} + json.dumps(result))\n"
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"},
    )
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK) :])
    raise RuntimeError(
        f"torchao snippet failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}\n"
        f"stdout:\n{proc.stdout[-2000:]}"
    )

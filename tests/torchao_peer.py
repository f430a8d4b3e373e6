"""Run snippets against torchao 0.18 in a subprocess and get their results as JSON.

torchao registers global Inductor passes when imported, so pt2q's tests never import it in the
pytest process. A snippet is Python code that assigns a JSON-serialisable ``result``; ``torch``
and ``tensor_list(t)`` (a tensor as nested float64 lists) are in scope.

Importing torchao costs seconds, so test modules ``register(key, code)`` their snippets at import
time and read ``result(key)`` in a fixture: the first read runs every snippet registered so far
in one subprocess. ``run_torchao(code)`` runs a single snippet on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

__all__ = ["register", "result", "run_torchao"]

_CHILD = r"""
import json, logging, sys, textwrap, traceback, warnings
warnings.filterwarnings("ignore")
logging.disable(logging.CRITICAL)
import torch
import torchao  # noqa: F401

def tensor_list(t):
    return t.detach().double().tolist()

snippets = json.loads(sys.stdin.read())
out = {}
for key, code in snippets.items():
    scope = {"torch": torch, "tensor_list": tensor_list, "__name__": "torchao_snippet"}
    try:
        exec(textwrap.dedent(code), scope)
        out[key] = {"result": scope["result"]}
    except BaseException:  # noqa: BLE001
        out[key] = {"error": traceback.format_exc()}
print("@@torchao-results@@" + json.dumps(out))
"""
_MARK = "@@torchao-results@@"

_registered: dict[str, str] = {}
_results: dict[str, dict[str, Any]] = {}


def _run(snippets: dict[str, str], timeout: float) -> dict[str, dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps(snippets),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"},
    )
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK) :])
    raise RuntimeError(
        f"torchao subprocess failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    )


def _unwrap(key: str, entry: dict[str, Any]) -> Any:
    if "error" in entry:
        raise RuntimeError(f"torchao snippet {key!r} failed:\n{entry['error']}")
    return entry["result"]


def register(key: str, code: str) -> None:
    """Queue ``code`` to run with the next batch (call at test-module import time)."""
    _registered[key] = code


def result(key: str, timeout: float = 600.0) -> Any:
    """The ``result`` of the registered snippet ``key`` (runs pending snippets first)."""
    if key not in _results:
        pending = {k: c for k, c in _registered.items() if k not in _results}
        _results.update(_run(pending, timeout))
    return _unwrap(key, _results[key])


def run_torchao(code: str, timeout: float = 240.0) -> Any:
    """Run one snippet on its own subprocess and return its ``result``."""
    return _unwrap("snippet", _run({"snippet": code}, timeout)["snippet"])

"""One q/dq vocabulary: outside ``pt2q/qdq/`` (and ``pt2q/convert/``, which writes the program),
no module of pt2q recognises ``quantized_decomposed`` ops by hand.

The source of ``pt2q/``, ``quantizers/``, ``lowering/`` and ``debugger/`` is read with ``ast``
(docstrings and comments do not count). A hand match is

* a reference to a ``quantized_decomposed`` op that is not called: ``n.target ==
  qd.dequantize_per_tensor.default``, an op in a set, an op bound to a name (calling one,
  ``qd.quantize_per_tensor.default(x, ...)``, computes numerics or traces a search pattern: fine);
* a string equal to an op's name or to ``"quantized_decomposed"`` (``qdq_name(n) ==
  "quantize_per_tensor"``, a namespace compare).

Modules read the program through ``pt2q.qdq`` (views, searches, op roles) instead. ``ALLOWED``
lists the few files that hold an op table for numerics or patterns, each with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import pt2q.qdq.ops  # noqa: F401  (registers quantized_decomposed)

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("pt2q", "quantizers", "lowering", "debugger")
HOME = ("pt2q/qdq/", "pt2q/convert/")
NAMESPACE = "quantized_decomposed"

# file -> why it may name q/dq ops without calling them
ALLOWED: dict[str, str] = {
    "pt2q/affine/dynamic.py": "numeric reference: a table of the choose_qparams op it then calls",
}


def _op_names() -> frozenset[str]:
    """Every ``quantized_decomposed`` op name (``quantize_per_tensor``, ``choose_qparams``, ...)."""
    prefix = f"{NAMESPACE}::"
    return frozenset(
        name[len(prefix) :].split(".")[0]
        for name in torch._C._dispatch_get_all_op_names()
        if name.startswith(prefix)
    )


OPS = _op_names()


def hand_matches(source: str) -> list[str]:
    """``"line: what"`` for each hand match of a q/dq op in ``source`` (see the module doc)."""
    tree = ast.parse(source)
    parent: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parent[child] = node
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in OPS:
            top: ast.AST = node
            while isinstance(parent.get(top), ast.Attribute):  # .default, .tensor overloads
                top = parent[top]
            call = parent.get(top)
            if not (isinstance(call, ast.Call) and call.func is top):
                found.append(f"{node.lineno}: {ast.unparse(top)} (not called)")
        elif isinstance(node, ast.Constant) and (node.value in OPS or node.value == NAMESPACE):
            if not isinstance(parent.get(node), ast.Expr):  # a docstring
                found.append(f"{node.lineno}: string {node.value!r}")
    return found


def _scanned_files() -> list[str]:
    files = []
    for root in SCANNED:
        for path in sorted((ROOT / root).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith(HOME):
                files.append(rel)
    return files


def test_op_names_come_from_torch() -> None:
    assert {"quantize_per_tensor", "dequantize_per_channel_group", "dequantize_per_token"} <= OPS
    assert "choose_qparams_per_token_asymmetric" in OPS


def test_no_hand_match_outside_the_qdq_core() -> None:
    files = _scanned_files()
    assert len(files) > 100 and "lowering/llm/match.py" in files
    found = {
        rel: hits
        for rel in files
        if rel not in ALLOWED and (hits := hand_matches((ROOT / rel).read_text()))
    }
    assert found == {}, "read q/dq through pt2q.qdq (views / searches / ops), found: " + str(found)


@pytest.mark.parametrize("rel", sorted(ALLOWED))
def test_allowlist_entries_are_still_needed(rel: str) -> None:
    assert hand_matches((ROOT / rel).read_text()), f"{rel} no longer names q/dq ops: drop it"


HAND_MATCHES = {
    "target_compare": "ok = n.target == qd.dequantize_per_tensor.default",
    "op_set": "OPS = {torch.ops.quantized_decomposed.quantize_per_channel.default}",
    "bound_op": "DQ = qd.dequantize_per_token",
    "name_compare": 'ok = qdq_name(n) != "quantize_per_tensor"',
    "namespace_compare": 'ok = n.target.namespace == "quantized_decomposed"',
    "getattr_by_name": 'op = getattr(qd, "choose_qparams_per_token_asymmetric")',
}


@pytest.mark.parametrize("source", HAND_MATCHES.values(), ids=HAND_MATCHES.keys())
def test_a_new_hand_match_is_caught(source: str) -> None:
    (hit,) = hand_matches(source)
    assert hit.startswith("1: ")


NOT_HAND_MATCHES = {
    "numeric_call": "y = qd.quantize_per_tensor.default(x, 0.1, 0, 0, 255, torch.uint8)",
    "overload_call": "s, z = torch.ops.quantized_decomposed.choose_qparams.tensor(x, 0, 1, 1e-5, d)",
    "docstring": 'def f():\n    """Reads ``dequantize_per_tensor`` / "quantize_per_tensor"."""',
    "comment": "x = 1  # n.target == qd.dequantize_per_tensor.default",
    "message": 'raise ValueError(f"{n.name} is not a quantize_per_tensor")',
    "view": "a = act_q(n.args[0])",
}


@pytest.mark.parametrize("source", NOT_HAND_MATCHES.values(), ids=NOT_HAND_MATCHES.keys())
def test_calls_docs_and_views_are_not_hand_matches(source: str) -> None:
    assert hand_matches(source) == []

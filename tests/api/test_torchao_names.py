"""Every public name of torchao 0.18's pt2e modules imports from the mapped pt2q module (the
README's import table), and the objects are of the same kind (class / function / constant)."""

from __future__ import annotations

import importlib
import inspect

import pytest
from torchao_peer import register, result

# torchao.quantization.pt2e<suffix> -> pt2q module (the README's import table)
MODULES = {
    "": "pt2q",
    ".quantize_pt2e": "pt2q.quantize_pt2e",
    ".quantizer": "pt2q.quantizer",
    ".quantizer.quantizer": "pt2q.quantizer.quantizer",
    ".quantizer.utils": "pt2q.quantizer.utils",
    ".observer": "pt2q.observer",
    ".fake_quantize": "pt2q.fake_quantize",
    ".export_utils": "pt2q.export_utils",
    ".graph_utils": "pt2q.graph_utils",
    ".utils": "pt2q.utils",
    ".lowering": "pt2q.lowering",
    ".quantizer.x86_inductor_quantizer": "pt2q.quantizers.x86_inductor_quantizer",
    ".quantizer.embedding_quantizer": "pt2q.quantizers.embedding_quantizer",
    ".quantizer.composable_quantizer": "pt2q.quantizers.composable_quantizer",
}

_SNIPPET = """
import importlib, inspect
def kind(obj):
    if inspect.isclass(obj):
        return "class"
    if callable(obj) and not hasattr(obj, "__origin__"):
        return "callable"
    return "value"
result = {}
for suffix in MODULES:
    mod = importlib.import_module("torchao.quantization.pt2e" + suffix)
    names = getattr(mod, "__all__", None) or [
        n for n in vars(mod) if not n.startswith("_")
        and getattr(getattr(mod, n), "__module__", "").startswith("torchao")]
    result[suffix] = {n: kind(getattr(mod, n)) for n in names}
"""


register("names", f"MODULES = {list(MODULES)!r}\n{_SNIPPET}")


@pytest.fixture(scope="module")
def torchao_names() -> dict[str, dict[str, str]]:
    return result("names")


def test_every_torchao_name_is_importable_from_the_mapped_module(
    torchao_names: dict[str, dict[str, str]],
) -> None:
    missing = []
    for suffix, names in torchao_names.items():
        module = importlib.import_module(MODULES[suffix])
        missing += [f"{MODULES[suffix]}.{n}" for n in names if not hasattr(module, n)]
    assert missing == []


def _kind(obj: object) -> str:
    if inspect.isclass(obj):
        return "class"
    if callable(obj) and not hasattr(obj, "__origin__"):
        return "callable"
    return "value"


def test_names_are_the_same_kind_of_object(torchao_names: dict[str, dict[str, str]]) -> None:
    # A class stays a class (isinstance/subclassing work), a function stays callable. Typing
    # aliases (ObserverOrFakeQuantize...) and constants are values in both.
    differ = {}
    for suffix, names in torchao_names.items():
        module = importlib.import_module(MODULES[suffix])
        for name, kind in names.items():
            if not hasattr(module, name):
                continue  # reported by the test above
            ours = _kind(getattr(module, name))
            if ours != kind:
                differ[f"{MODULES[suffix]}.{name}"] = (kind, ours)
    # pt2q's ObserverOrFakeQuantize is the nn.Module class (torchao: a Union of two bases)
    assert differ == {
        "pt2q.ObserverOrFakeQuantize": ("value", "class"),
    }

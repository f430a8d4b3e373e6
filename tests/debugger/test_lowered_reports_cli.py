"""Three-way comparison with a lowered stage, reports (text, JSON, HTML) and the CLI."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch

from pt2q.debugger import debug_numerics
from pt2q.debugger.cli import main


def _wrong_zero_point_lowering(quant: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A stand-in 'kernel' for the relu output that dequantizes with zero_point + 8 (meta kept)."""
    low = copy.deepcopy(quant)
    relu = next(n for n in low.graph.nodes if n.name == "relu")
    dq = next(iter(next(iter(relu.users)).users))
    args = list(dq.args)
    args[2] = args[2] + 8  # (input, scale, zero_point, qmin, qmax, dtype)
    dq.args = tuple(args)
    low.recompile()
    return low


def test_wrong_kernel_zero_point_only_in_quant_lowered_column(convbn) -> None:
    ep, quant, xs = convbn
    report = debug_numerics(ep, quant, xs, lowered=_wrong_zero_point_lowering(quant))
    assert report.columns == [
        "float~quant",
        "float~quant:isolated",
        "float~quant:through",
        "quant~lowered",
        "float~lowered",
    ]
    conv, relu, mean, fc = report.rows
    assert relu.actual_node == "relu"
    assert relu.value("float~quant", "sqnr") > 30.0  # the reference program is fine
    assert relu.value("quant~lowered", "sqnr") < 25.0  # the kernel is not
    assert conv.value("quant~lowered", "sqnr") == math.inf  # upstream of the bug: identical
    assert report.worst_first("quant~lowered")[0].actual_node in ("relu", "mean", "linear")


def test_opaque_lowered_callable_compares_output_only(convbn) -> None:
    ep, quant, xs = convbn
    report = debug_numerics(ep, quant, xs[:1], lowered=lambda x: quant(x), isolated=False)
    assert report.output_value("quant~lowered") == math.inf
    assert all("quant~lowered" not in r.metrics for r in report.rows)


def test_text_json_html(convbn, tmp_path: Path) -> None:
    ep, quant, xs = convbn
    report = debug_numerics(ep, quant, xs[:1])
    text = report.to_text()
    assert text.startswith("Root causes (error introduced, most likely first):\n  1. ")
    lines = text.split("\n\n", 1)[1].splitlines()
    assert lines[0].split() == [
        "rank",
        "module",
        "op",
        "node",
        "sqnr[float~quant]",
        "sqnr[float~quant:isolated]",
        "sqnr[float~quant:through]",
        "clip",
        "top2",
        "range/p99.9",
        "edges",
        "flags",
        "weight",
        "min",
        "ch",
        "source",
    ]
    assert lines[2].split()[0] == "(output)"
    assert lines[-1] == "4 matched groups over 1 batches"
    worst = report.worst_first()
    assert [line.split()[3] for line in lines[3:7]] == [r.actual_node for r in worst]
    values = [r.value("float~quant", "sqnr") for r in worst]
    assert values == sorted(values)  # worst first
    assert all("conftest.py" in line or "dbg_models.py" in line for line in lines[3:7])
    data = json.loads(report.to_json(tmp_path / "r.json"))
    assert [r["module_path"] for r in data["rows"]] == ["conv", "", "", "fc"]
    assert data["rows"][0]["metrics"]["float~quant"]["sqnr"] > 30.0
    assert data["root_causes"] == [r.handle for r in report.root_causes(5)]
    page = report.to_html(tmp_path / "r.html")
    assert page.count("<svg") == 1
    # one line per column with at least two consecutive values (through: only the conv->relu)
    assert page.count("<polyline") == 2
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert page.count("<tr data-flagged=") == 4  # model order, one per matched group


@pytest.mark.parametrize(("gate", "code"), [("20", 0), ("60", 1)], ids=["pass", "fail"])
def test_cli_gate(convbn, tmp_path: Path, gate: str, code: int, capsys) -> None:
    ep, quant, xs = convbn
    torch.export.save(ep, tmp_path / "f.pt2")
    torch.export.save(torch.export.export(quant, (xs[0],)), tmp_path / "q.pt2")
    torch.save([xs[0], (xs[1],)], tmp_path / "in.pt")
    argv = ["debug", str(tmp_path / "f.pt2"), str(tmp_path / "q.pt2")]
    argv += ["--inputs", str(tmp_path / "in.pt"), "--min-sqnr", gate]
    argv += ["--json", str(tmp_path / "o.json"), "--html", str(tmp_path / "o.html")]
    argv += ["--model-explorer", str(tmp_path / "me.json")]
    assert main(argv) == code
    out = capsys.readouterr()
    assert "4 matched groups over 2 batches" in out.out
    assert out.out.startswith("Root causes (error introduced, most likely first):\n  1. ")
    me = json.loads((tmp_path / "me.json").read_text())
    assert set(me["graph"]["results"]) == {"conv2d", "batch_norm", "relu", "mean", "linear"}
    assert ("FAIL: output SQNR" in out.err) == (code == 1)
    assert (tmp_path / "o.json").exists() and (tmp_path / "o.html").exists()


def test_cli_bad_inputs_file(tmp_path: Path, capsys) -> None:
    torch.save({"x": 1}, tmp_path / "in.pt")
    argv = ["debug", "f.pt2", "q.pt2", "--inputs", str(tmp_path / "in.pt")]
    assert main(argv) == 2

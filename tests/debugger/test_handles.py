"""Stable handles: structural, surviving deepcopy, decompositions, re-export, save/load."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from dbg_models import ConvBnNet, batches
from torch.fx import GraphModule

from pt2q.debugger import generate_numeric_debug_handle, get_handle
from pt2q.debugger.groups import GraphGroups


def _handles(gm: GraphModule | torch.export.ExportedProgram) -> list[int]:
    return [h for n in gm.graph.nodes if (h := get_handle(n)) is not None]


def _by_name(gm: GraphModule) -> dict[str, int]:
    return {n.name: h for n in gm.graph.nodes if (h := get_handle(n)) is not None}


def test_separate_exports_get_equal_handles() -> None:
    x = batches((2, 3, 8, 8), 1)[0]
    a = torch.export.export(ConvBnNet(), (x,))
    b = torch.export.export(ConvBnNet(), (x,))
    generate_numeric_debug_handle(a)
    gm = b.module()
    generate_numeric_debug_handle(gm)  # a GraphModule (params as get_attr) gives the same ids
    assert _handles(a) == _handles(gm)
    assert len(set(_handles(a))) == 5  # conv2d, batch_norm, relu, mean, linear
    assert all(0 <= h < 2**48 for h in _handles(a))


def test_existing_handles_are_kept() -> None:
    ep = torch.export.export(ConvBnNet(), (batches((2, 3, 8, 8), 1)[0],))
    generate_numeric_debug_handle(ep)
    before = _handles(ep)
    generate_numeric_debug_handle(ep)
    assert _handles(ep) == before


def test_deepcopy_and_run_decompositions_keep_handles() -> None:
    ep = torch.export.export(ConvBnNet(), (batches((2, 3, 8, 8), 1)[0],))
    generate_numeric_debug_handle(ep)
    original = set(_handles(ep))
    assert set(_handles(copy.deepcopy(ep.module()))) == original
    dec = ep.run_decompositions()
    assert set(_handles(dec)) == original
    # linear -> permute + addmm share a handle; the group's representative is the last one
    groups = GraphGroups.build(dec.module())
    assert sorted(str(n.target) for n in groups.rep.values()) == [
        "<built-in function getitem>",
        "aten.addmm.default",
        "aten.convolution.default",
        "aten.mean.dim",
        "aten.relu.default",
    ]


def test_convert_reexport_keeps_handles(convbn) -> None:
    ep, quant, xs = convbn
    names = _by_name(ep.module())
    got = _by_name(quant)
    # batch_norm was folded into the conv by prepare; every other node keeps its handle
    assert got == {k: v for k, v in names.items() if k != "batch_norm"}
    re = torch.export.export(quant, (xs[0],))
    assert set(_handles(re)) == set(got.values())


_CHILD = textwrap.dedent(
    """
    import json, sys
    import torch
    from pt2q.debugger import compare_results, extract_results_from_loggers
    from pt2q.debugger import prepare_for_propagation_comparison
    f = torch.export.load(sys.argv[1]).module()
    q = torch.export.load(sys.argv[2]).module()
    x = torch.load(sys.argv[3])
    rf, rq = prepare_for_propagation_comparison(f), prepare_for_propagation_comparison(q)
    rf(x); rq(x)
    res = compare_results(extract_results_from_loggers(rf), extract_results_from_loggers(rq))
    print(json.dumps({"matched": res.matched, "absorbed": {str(k): v for k, v in res.absorbed.items()},
                      "sqnr": {str(h): float(s.results[0].sqnr) for h, s in res.items()}}))
    """
)


def test_save_load_in_fresh_process_matches(convbn, tmp_path: Path) -> None:
    ep, quant, xs = convbn
    torch.export.save(ep, tmp_path / "f.pt2")
    torch.export.save(torch.export.export(quant, (xs[0],)), tmp_path / "q.pt2")
    torch.save(xs[0], tmp_path / "x.pt")
    (tmp_path / "child.py").write_text(_CHILD)
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "child.py")]
        + [str(tmp_path / p) for p in ("f.pt2", "q.pt2", "x.pt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = _by_name(quant)
    assert out["matched"] == [expected[k] for k in ("conv2d", "relu", "mean", "linear")]
    assert out["absorbed"] == {str(expected["conv2d"]): [_by_name(ep.module())["batch_norm"]]}
    assert all(v > 30.0 for v in out["sqnr"].values()), out["sqnr"]

"""The HTML page in a real (headless) browser, the "lowered as" column from a LoweringReport,
and the Model Explorer node data validated with Model Explorer's own classes."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import dacite
import pytest
import torch
from dbg_faults import TinyBert, bert_inputs, quantize_mask_add, x86_quantize
from model_explorer.node_data_builder import GraphNodeData, ModelNodeData
from model_explorer.pytorch_exported_program_adapter_impl import (
    PytorchExportedProgramAdapterImpl,
)

from pt2q.debugger import debug_numerics
from pt2q.debugger.render_html import axis_range
from pt2q.qdq.decision import LoweringReport, LoweringStatus, NodeDecision, attach_report

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
    "--enable-logging=stderr",
    "--v=0",
]


@pytest.fixture(scope="module")
def bert_report() -> tuple:
    calib = bert_inputs(3, seed=0)
    ep, quant = x86_quantize(TinyBert(), calib)
    bad, add = quantize_mask_add(quant, 0, calib)
    report_lowered = copy.deepcopy(bad)
    decisions = [
        NodeDecision(n.name, str(n.target), None, LoweringStatus.LOWERED, "test.int8_linear")
        for n in bad.graph.nodes
        if n.target == torch.ops.aten.linear.default
    ]
    decisions.append(
        NodeDecision(add, "aten.add.Tensor", None, LoweringStatus.FLOAT, None, "mask add: float")
    )
    attach_report(report_lowered, LoweringReport("hand-built", decisions))
    report = debug_numerics(ep, bad, bert_inputs(1, seed=1), lowered=report_lowered)
    return ep, report, add


def _chromium() -> str:
    exe = shutil.which("chromium")
    assert exe, "chromium is not installed: run scripts/setup.sh (scripts/apt-packages.txt)"
    return exe


def _browser(page: Path, tmp: Path, fragment: str, *extra: str) -> subprocess.CompletedProcess:
    args = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", *extra]
    return subprocess.run(
        [*args, page.as_uri() + fragment], capture_output=True, text=True, timeout=180, check=False
    )


def _rows(dom: str) -> list[list[str]]:
    body = dom.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = []
    for tr in re.findall(r"<tr[^>]*?(?:style=\"\")?[^>]*>(.*?)</tr>", body, flags=re.S):
        rows.append([re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)])
    return rows


def test_lowered_as_column_from_a_lowering_report(bert_report) -> None:
    _, report, add = bert_report
    by_node = {r.actual_node: r for r in report.rows}
    assert by_node[add].lowered_as == "float: mask add: float"
    assert by_node["linear"].lowered_as == "lowered: test.int8_linear"
    assert "lowered as" in report.to_text().split("\n\n")[1].splitlines()[0]


def test_page_runs_in_a_real_browser(bert_report, tmp_path: Path) -> None:
    _, report, add = bert_report
    page = tmp_path / "report.html"
    text = report.to_html(page)
    # self-contained: no link, no external resource
    assert not re.search(r"(?:src|href)=|https?://(?!www\.w3\.org/2000/svg)", text)
    assert "lowered as" in text and "Root causes" in text
    proc = _browser(page, tmp_path, "#sort=5&desc=1", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert re.search(r'id="pt2q-status" data-ready="1">ready \d+ rows<', dom), dom[-500:]
    assert re.search(r'<pre id="pt2q-errors"></pre>', dom)
    assert "Uncaught" not in proc.stderr and ":ERROR:CONSOLE" not in proc.stderr
    rows = _rows(dom)
    assert len(rows) == len(report.rows)
    acc = [float(r[5]) for r in rows]  # sorted by accumulated SQNR, descending, by the page
    assert acc == sorted(acc, reverse=True)
    # filtering by the page's own script
    proc = _browser(page, tmp_path, "#filter=softmax", "--dump-dom")
    assert re.search(r'id="pt2q-count">(\d+) of (\d+) rows<', proc.stdout)
    shown, total = map(
        int, re.search(r'id="pt2q-count">(\d+) of (\d+) rows<', proc.stdout).groups()
    )
    assert total == len(report.rows) and shown == sum("softmax" in r.op for r in report.rows)
    # and a screenshot (looked at by hand when the page changes)
    png = tmp_path / "report.png"
    proc = _browser(page, tmp_path, "", "--window-size=1400,1800", f"--screenshot={png}")
    assert proc.returncode == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 50_000


def test_plot_axis_is_clipped_and_marks_the_root_causes(bert_report) -> None:
    _, report, add = bert_report
    assert axis_range([float("inf"), 759.0, 12.3, -45.0]) == (-20.0, 60.0)
    assert axis_range([float("nan")]) == (0.0, 60.0)
    svg = report.to_html().split("<svg", 1)[1].split("</svg>", 1)[0]
    assert "inf" not in re.sub(r"<title>.*?</title>", "", svg)  # inf never plotted raw
    assert svg.count('class="cause"') == len(report.root_causes(5))
    assert f"({add})" in svg  # the first root cause is labelled on the x axis


def test_model_explorer_node_data(bert_report, tmp_path: Path) -> None:
    ep, report, add = bert_report
    paths = report.to_model_explorer(tmp_path / "r.json")
    assert [p.name for p in paths] == [
        "r.json",
        "r.isolated_sqnr.json",
        "r.through_sqnr.json",
        "r.root_cause.json",
        "r.health_flags.json",
    ]
    graph = PytorchExportedProgramAdapterImpl(ep, {"const_element_count_limit": 16}).create_graph()
    ids = {n.id for n in graph.nodes}
    config = dacite.Config(strict=True)
    for path in paths:
        raw = json.loads(path.read_text())
        model = ModelNodeData(
            graphsData={k: dacite.from_dict(GraphNodeData, v, config) for k, v in raw.items()}
        )
        assert set(model.graphsData) == {graph.id}
        data = model.graphsData[graph.id]
        assert data.results and set(data.results) <= ids, set(data.results) - ids
        again = json.loads(model.to_json_string())[graph.id]  # through their classes and back
        assert all(again[k] == v for k, v in raw[graph.id].items())
    sqnr = json.loads(paths[0].read_text())["graph"]["results"]
    row = next(r for r in report.rows if r.actual_node == add)
    assert sqnr[row.ep_node]["value"] == pytest.approx(row.value("float~quant", "sqnr"))
    causes = json.loads(paths[3].read_text())["graph"]["results"]
    assert causes[row.ep_node]["value"] == 1


@pytest.mark.slow
def test_lowered_as_from_the_x86_lowering() -> None:
    from dbg_faults import TinyResNet

    from pt2q.lowering import lower_pt2e_quantized_to_x86

    gen = torch.Generator().manual_seed(0)
    calib = [(torch.randn(4, 3, 16, 16, generator=gen),) for _ in range(2)]
    ep, quant = x86_quantize(TinyResNet(), calib)
    lowered = lower_pt2e_quantized_to_x86(quant, calib[0])
    report = debug_numerics(ep, quant, calib[:1], lowered=lowered)
    convs = [r for r in report.rows if r.op == "conv2d.default"]
    assert convs and all(r.lowered_as for r in convs)
    statuses = {r.lowered_as.split(":")[0] for r in report.rows if r.lowered_as}
    assert statuses <= {"lowered", "fused", "reference", "float"}
    assert any(r.lowered_as.startswith("lowered: onednn.") for r in report.rows)
    # integer kernel outputs without declared qparams are not compared (no garbage SQNR)
    assert all(
        r.value("quant~lowered", "sqnr") > 20.0 for r in report.rows if "quant~lowered" in r.metrics
    )

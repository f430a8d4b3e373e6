"""The cost model ``debug_numerics`` documents: per batch 3 interpreter runs (float, quantized,
isolated = float + each quantized group once), constants (dequantized weights) evaluated
once per call whatever the number of batches."""

from __future__ import annotations

import torch
from torch.fx import Interpreter

from pt2q.debugger import debug_numerics, execute


def test_runs_per_batch_and_constants_once(convbn, monkeypatch) -> None:
    ep, quant, xs = convbn
    runs: list[str] = []
    executed: list[str] = []
    orig_run, orig_node = execute._Run.run, Interpreter.run_node

    def run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        runs.append(type(self).__name__)
        return orig_run(self, *args, **kwargs)

    def run_node(self, n):  # type: ignore[no-untyped-def]
        executed.append(str(n.target))
        return orig_node(self, n)

    monkeypatch.setattr(execute._Run, "run", run)
    monkeypatch.setattr(Interpreter, "run_node", run_node)
    report = debug_numerics(ep, quant, xs)  # 3 batches
    assert len(xs) == 3 and len(runs) == 3 * 3
    dq_weight = str(torch.ops.quantized_decomposed.dequantize_per_channel.default)
    n_weights = sum(str(n.target) == dq_weight for n in quant.graph.nodes)
    assert n_weights == 2 and executed.count(dq_weight) == n_weights  # once per call
    # per batch the conv runs 4 times: float run, quantized run, and in the isolated run the
    # float conv plus the quantized group evaluated on the float values
    conv = str(torch.ops.aten.conv2d.default)
    assert executed.count(conv) == 4 * 3
    assert len(report.rows) == 4

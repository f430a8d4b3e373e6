"""Which conv / linear nodes of a reference program become oneDNN int8 kernels, and why not.

Two sources, cross-checked:

* :func:`classify` reads the reference program (before Inductor) and says, per compute node,
  whether its inputs have the shape Inductor's int8 passes need and whether the kernel would be
  exact on this CPU; when not, the reason.
* :class:`KernelRecorder`, run as Inductor's post-grad custom pass, sees the compiled graph:
  a conv / linear still present as a float op (``aten.convolution``, ``addmm``, ...) did *not*
  become an int8 kernel. Its provenance (``node.meta["from_node"]``) names the reference node.

:class:`LoweringReport` joins both with Inductor's counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.fx import GraphModule, Node

from pt2q.lowering.x86.isa import CpuInt8Isa, max_exact_activation_qmax
from pt2q.lowering.x86.patterns import (
    ACTIVATION_DEQUANTIZE_OPS,
    COMPUTE_OPS,
    FP32_COMPUTE_TARGETS,
    KERNEL_COUNTERS,
    WEIGHT_DEQUANTIZE_OPS,
)

__all__ = [
    "NodeLowering",
    "LoweringReport",
    "classify",
    "is_inexact_activation",
    "KernelRecorder",
]


@dataclass(frozen=True)
class NodeLowering:
    """The fate of one conv / linear node of the reference program."""

    node: str  # name of the node in the reference program
    op: str  # e.g. "aten.linear.default"
    kernel: str | None  # "qlinear" / "qconv" when it runs as a oneDNN int8 kernel
    reason: str = ""  # why it did not, empty when it did

    @property
    def lowered(self) -> bool:
        return self.kernel is not None


@dataclass(frozen=True)
class LoweringReport:
    """What the lowering did: per-node fate, Inductor counter deltas, and the CPU it ran on."""

    isa: CpuInt8Isa
    nodes: tuple[NodeLowering, ...]
    counters: dict[str, int] = field(default_factory=dict)

    def lowered(self) -> list[str]:
        """Names of the reference nodes that run as oneDNN int8 kernels."""
        return [n.node for n in self.nodes if n.lowered]

    def not_lowered(self) -> dict[str, str]:
        """Reference node name -> reason, for conv / linear nodes left in float."""
        return {n.node: n.reason for n in self.nodes if not n.lowered}

    def kernel_counts(self) -> dict[str, int]:
        """Kernel family ("qconv", "qlinear") -> how many nodes became one."""
        counts: dict[str, int] = {}
        for n in self.nodes:
            if n.kernel is not None:
                counts[n.kernel] = counts.get(n.kernel, 0) + 1
        return counts

    def counter_mismatches(self) -> dict[str, tuple[int, int]]:
        """Kernel family -> (nodes reported lowered, Inductor prepack counter) where they differ.

        Empty when the per-node report and Inductor's own counters agree (the expected case).
        """
        counts = self.kernel_counts()
        out: dict[str, tuple[int, int]] = {}
        for family, key in KERNEL_COUNTERS.items():
            ours, inductor = counts.get(family, 0), self.counters.get(key, 0)
            if ours != inductor:
                out[family] = (ours, inductor)
        return out

    def format(self) -> str:
        """A human-readable table, one line per conv / linear node."""
        lines = [
            f"x86 int8 lowering on {self.isa.describe()}: {len(self.lowered())} of "
            f"{len(self.nodes)} conv/linear nodes run as oneDNN int8 kernels"
        ]
        for n in self.nodes:
            what = f"-> onednn.{n.kernel}_pointwise" if n.lowered else f"float: {n.reason}"
            lines.append(f"  {n.node:<32} {n.op:<22} {what}")
        return "\n".join(lines)


def _activation_reason(x: Node, isa: CpuInt8Isa) -> str:
    if not isinstance(x, Node) or x.op != "call_function":
        return f"activation input {x} is not a dequantize node (the quantizer left it float)"
    if x.target not in ACTIVATION_DEQUANTIZE_OPS:
        return (
            f"activation input {x.name} is {x.target}, not dequantize_per_tensor "
            "(the quantizer left it float)"
        )
    if is_inexact_activation(x, isa):
        qmax, dtype = x.args[4], x.args[5]
        return (
            f"activation {x.name} is {dtype} with quant_max {qmax}; on this CPU "
            f"({isa.describe()}) oneDNN's u8*s8 kernels are exact only up to quant_max "
            f"{max_exact_activation_qmax(isa, dtype)} (int16 intermediate saturates): quantize "
            "with get_default_x86_inductor_quantization_config(reduce_range=True)"
        )
    return ""


def is_inexact_activation(dq: Node, isa: CpuInt8Isa) -> bool:
    """True when activation dequantize ``dq``'s range would saturate oneDNN on ``isa``."""
    qmax, dtype = dq.args[4], dq.args[5]
    if not isinstance(dtype, torch.dtype) or not isinstance(qmax, int):
        return False
    if dtype not in (torch.uint8, torch.int8):
        return False
    return qmax > max_exact_activation_qmax(isa, dtype)


def _weight_reason(w: Node) -> str:
    if not isinstance(w, Node) or w.target not in WEIGHT_DEQUANTIZE_OPS:
        name = w.name if isinstance(w, Node) else repr(w)
        return f"weight {name} is not dequantize_per_channel of an int8 constant"
    src, axis, dtype = w.args[0], w.args[3], w.args[6]
    if not isinstance(src, Node) or src.op != "get_attr":
        return f"weight {w.name} dequantizes {src}, not a folded int8 constant (get_attr)"
    if dtype != torch.int8 or axis != 0:
        return f"weight {w.name} is {dtype} on axis {axis}; oneDNN needs int8 on axis 0"
    return ""


def classify(gm: GraphModule, isa: CpuInt8Isa) -> dict[str, tuple[str, str, str]]:
    """Reference node name -> (op, kernel family, reason) for every conv / linear node.

    ``reason`` is empty when the node has the q/dq shape Inductor lowers and the kernel is
    exact on ``isa``; otherwise it says what is missing.
    """
    out: dict[str, tuple[str, str, str]] = {}
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in COMPUTE_OPS:
            continue
        reason = _activation_reason(node.args[0], isa) or _weight_reason(node.args[1])
        out[node.name] = (str(node.target), COMPUTE_OPS[node.target], reason)
    return out


def _provenance_names(node: Node) -> set[str]:
    """All node names in ``node.meta["from_node"]``'s provenance tree."""
    names: set[str] = set()
    stack = list(node.meta.get("from_node", []) or [])
    while stack:
        src = stack.pop()
        names.add(src.name)
        stack.extend(getattr(src, "from_node", []) or [])
    return names


class KernelRecorder:
    """Inductor post-grad pass that records which reference nodes stayed float compute ops.

    Installed through ``torch._inductor.config.patch(post_grad_custom_post_pass=...)``; it only
    reads the graph. ``float_nodes`` holds, after each compilation, the names (among
    ``candidates``) whose conv / linear ran as a float op.
    """

    def __init__(self, candidates: set[str]) -> None:
        self.candidates = candidates
        self.float_nodes: set[str] = set()
        self.compilations = 0

    def __call__(self, graph: torch.fx.Graph) -> None:
        self.compilations += 1
        found: set[str] = set()
        for node in graph.nodes:
            if node.op == "call_function" and node.target in FP32_COMPUTE_TARGETS:
                found |= _provenance_names(node) & self.candidates
        self.float_nodes = found

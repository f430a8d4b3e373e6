"""Mixed precision by health: activations whose int8 range would destroy them stay float.

After calibration, every activation observer whose :func:`pt2q.health.observer_health` carries a
flag of ``FLAGS`` (range dominated by outliers, values collapsing into two bins) is taken out of
the prepared graph, so convert leaves that edge in float (the consumers read the float value;
weights keep their int8 form). This is what ``convert_pt2e``'s health warning advises, done
automatically; ``quantize(..., "auto")`` keeps it only where held-out SQNR improves.

Every node kept float by an algorithm gets its reason in ``gm.meta["pt2q"]["kept_float"]``
(node name -> reason), which convert carries to the converted program.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch.fx import GraphModule, Node

from pt2q.algorithms.batches import Batch
from pt2q.convert.qdq import observer_of
from pt2q.health import COLLAPSED, OUTLIER_DOMINATED, observer_health
from pt2q.qdq.meta import KEPT_FLOAT_KEY, KEPT_FLOAT_OPS_KEY, PT2Q_META_KEY

__all__ = ["FLAGS", "keep_unhealthy_float", "record_kept_float"]

FLAGS = (OUTLIER_DOMINATED, COLLAPSED)


def record_kept_float(gm: GraphModule, name: str, reason: str, op: bool = False) -> None:
    """Record in ``gm.meta["pt2q"]["kept_float"]`` that node ``name``'s output stays float
    (``op``: in ``["kept_float_ops"]``, that the op computes in float)."""
    key = KEPT_FLOAT_OPS_KEY if op else KEPT_FLOAT_KEY
    gm.meta.setdefault(PT2Q_META_KEY, {}).setdefault(key, {})[name] = reason


def keep_unhealthy_float(gm: GraphModule, batches: Sequence[Batch] = ()) -> list[str]:
    """Remove the unhealthy activation observers of calibrated prepared ``gm`` in place;
    returns the names of the nodes whose output (or input edge) now stays float.
    ``batches`` is unused (the health comes from what the observers saw)."""
    kept_float = []
    for node in list(gm.graph.nodes):
        obs = observer_of(gm, node)
        if obs is None:
            continue
        health = observer_health(obs)
        if health is None or not any(f in FLAGS for f in health.flags):
            continue
        src = node.args[0]
        node.replace_all_uses_with(src)
        gm.graph.erase_node(node)
        name = src.name if isinstance(src, Node) else node.name
        kept_float.append(name)
        record_kept_float(gm, name, f"keep_float: {', '.join(health.flags)}")
    gm.graph.lint()
    gm.recompile()
    return kept_float

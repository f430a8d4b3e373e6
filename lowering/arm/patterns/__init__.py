"""The ARM lowering's pattern table: one list of ``ArmPattern`` entries, applied in order.

| entries (file)       | matches                                    | becomes                                 |
| -------------------- | ------------------------------------------ | --------------------------------------- |
| ``gemm.py``          | dq x, dq w -> linear / conv2d [-> relu] -> q | pt2q_arm.linear / conv2d / dwconv2d    |
| ``dynamic.py``       | choose_qparams -> q -> dq x -> linear      | pt2q_arm.linear_dynamic                 |
| ``llm.py``           | [dq_per_token x], dq[_group] w -> linear   | pt2q_arm_llm.linear_qd8 / qc8w / qc4w   |
| ``pool.py``          | dq -> max / avg / adaptive pool [-> relu] -> q | pt2q_arm.max_pool2d / avg_pool2d    |
| ``elementwise.py``   | dq, dq -> add / mul [-> relu] -> q         | pt2q_arm.add / mul                      |
| ``qdq.py`` (last)    | int8 q / dq left alone                     | pt2q_arm.quantize / dequantize          |

To add patterns, write a module of ``PATTERNS: list[ArmPattern]`` (importing only from
``pt2q.lowering.arm.rewrite``, ``ops`` and ``pt2q.qdq``) and add it to ``PATTERNS`` below, before
``qdq.PATTERNS``: larger patterns must run before the q/dq they contain is lowered alone.
"""

from __future__ import annotations

from pt2q.lowering.arm.patterns import dynamic, elementwise, gemm, llm, pool, qdq
from pt2q.lowering.arm.rewrite import ArmPattern

__all__ = ["PATTERNS"]

PATTERNS: list[ArmPattern] = [
    *gemm.PATTERNS,
    *dynamic.PATTERNS,
    *llm.PATTERNS,
    *pool.PATTERNS,
    *elementwise.PATTERNS,
    *qdq.PATTERNS,  # last: what the op patterns left
]

"""Root-cause ranking: which nodes *introduce* the error, not which ones show it.

Everything is compared as a noise-to-signal power ratio, ``nsr = 10^(-SQNR/10)`` (+inf dB -> 0,
-inf dB -> 1e6, nan -> unknown), so errors add up the way noise powers do. For a group h:

    introduced(h) = nsr_acc(h) - max nsr_acc(inputs of h)      accumulated quality lost across h
    isolated(h)   = nsr_iso(h)                                 h alone, fed float inputs
    through(h)    = nsr_iso at h's first non-linear consumer   (see ``consumer``)
    residual(h)   = introduced(h) - max through(g) over the groups g whose consumer is h
    score(h)      = max(isolated(h), through(h), residual(h))

The residual subtracts the damage an upstream group's isolated error already explains when it
lands on h (a softmax ruined by a quantized mask-add has a large ``introduced`` but is not the
cause). Without the isolated column the score is ``introduced`` alone. Rows sort by score, then
graph order; ``why`` names the dominating term in words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["nsr", "RankInput", "rank"]

ISO, THROUGH, ACC = "float~quant:isolated", "float~quant:through", "float~quant"


def nsr(sqnr_db: float) -> float:
    """Noise-to-signal power ratio of an SQNR in dB (nan stays nan)."""
    if math.isnan(sqnr_db):
        return math.nan
    if sqnr_db == math.inf:
        return 0.0
    if sqnr_db == -math.inf:
        return 1e6
    return 10.0 ** (-sqnr_db / 10.0)


def _db(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.1f}"


class RankInput:
    """What the ranking needs of one row: its SQNR per column, input rows, consumer, names."""

    def __init__(
        self,
        key: int,
        sqnr: Mapping[str, float],
        inputs: Sequence[int],
        consumer_of: Sequence[int],
        consumer_name: str,
    ) -> None:
        self.key = key
        self.sqnr = sqnr
        self.inputs = inputs
        self.consumer_of = consumer_of  # groups whose first non-linear consumer lies in this one
        self.consumer_name = consumer_name


def _n(v: float) -> float:
    x = nsr(v)
    return 0.0 if math.isnan(x) else x


def rank(rows: Sequence[RankInput]) -> dict[int, tuple[float, str]]:
    """{key: (score, why)} for every row (see the module docstring)."""
    by_key = {r.key: r for r in rows}
    out: dict[int, tuple[float, str]] = {}
    for r in rows:
        acc = r.sqnr.get(ACC, math.nan)
        ins = [by_key[i].sqnr.get(ACC, math.nan) for i in r.inputs if i in by_key]
        worst_in = min(ins, default=math.inf)  # the worst input in dB
        introduced = max(0.0, _n(acc) - max((_n(v) for v in ins), default=0.0))
        iso = _n(r.sqnr.get(ISO, math.nan))
        through = _n(r.sqnr.get(THROUGH, math.nan))
        explained = max(
            (_n(by_key[g].sqnr.get(THROUGH, math.nan)) for g in r.consumer_of if g in by_key),
            default=0.0,
        )
        has_iso = ISO in r.sqnr
        residual = max(0.0, introduced - explained) if has_iso else introduced
        terms = {
            "isolated": iso,
            "through": through,
            "introduced": residual,
        }
        name = max(terms, key=terms.__getitem__)
        score = terms[name]
        if score == 0.0:
            why = "introduces no measurable error"
        elif name == "isolated":
            why = f"quantizing it alone gives {_db(r.sqnr.get(ISO, math.nan))} dB at its output"
        elif name == "through":
            why = (
                f"quantizing it alone gives {_db(r.sqnr.get(THROUGH, math.nan))} dB at its first "
                "non-linear "
                f"consumer {r.consumer_name} ({_db(r.sqnr.get(ISO, math.nan))} dB at its own "
                "output)"
            )
        else:
            why = f"accumulated SQNR drops from {_db(worst_in)} to {_db(acc)} dB across it"
        out[r.key] = (score, why)
    return out

"""The ``pt2q`` console script.

    pt2q debug FLOAT.pt2 QUANT.pt2 --inputs INPUTS.pt [--html OUT.html] [--json OUT.json]
               [--model-explorer OUT.json] [--min-sqnr DB] [--limit N] [--no-isolated]
               [--passthrough]

FLOAT.pt2 / QUANT.pt2 are ``torch.export.save`` files: the float program after
``generate_numeric_debug_handle`` and the re-exported quantized program made from it.
INPUTS.pt (``torch.save``): a tensor (one batch, one argument), a tuple (one batch, positional
arguments) or a list of batches (each a tensor or a tuple). Prints the root causes, then the
worst-first table; ``--model-explorer`` writes Model Explorer node-data files (the paths are
printed, ready for ``model-explorer FLOAT.pt2 --node_data_paths=...``). Exits 1 when the output
SQNR (float vs quantized) is below ``--min-sqnr``, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["main", "load_batches"]


def load_batches(path: str) -> list[Any]:
    """Batches stored in ``path`` (see the module docstring for the accepted layouts)."""
    data = torch.load(path, weights_only=True)
    if isinstance(data, torch.Tensor):
        return [(data,)]
    if isinstance(data, tuple):
        return [data]
    if isinstance(data, list) and data:
        return data
    raise ValueError(
        f"--inputs {path}: expected a tensor, a tuple of tensors or a non-empty list of "
        f"batches, found {type(data).__name__}"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pt2q", description="pt2q tools")
    sub = parser.add_subparsers(dest="command", required=True)
    debug = sub.add_parser("debug", help="per-layer numeric comparison float vs quantized")
    debug.add_argument("float_program", help="float program (.pt2) with numeric debug handles")
    debug.add_argument("quant_program", help="quantized program (.pt2) made from it")
    debug.add_argument("--inputs", required=True, help="torch.save file with the batches")
    debug.add_argument("--html", help="write a self-contained HTML report here")
    debug.add_argument("--json", help="write the JSON report here")
    debug.add_argument("--model-explorer", help="write Model Explorer node data here (+ siblings)")
    debug.add_argument("--min-sqnr", type=float, help="exit 1 when the output SQNR (dB) is below")
    debug.add_argument("--limit", type=int, default=0, help="print only the N worst rows")
    debug.add_argument("--no-isolated", action="store_true", help="skip the isolated column")
    debug.add_argument(
        "--passthrough", action="store_true", help="give view/reshape/... rows of their own"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 under the SQNR gate, 2 usage error)."""
    args = _parser().parse_args(argv)
    from pt2q.debugger.debug import debug_numerics

    try:
        float_ep = torch.export.load(args.float_program)
        quant_ep = torch.export.load(args.quant_program)
        batches = load_batches(args.inputs)
        report = debug_numerics(
            float_ep,
            quant_ep,
            batches,
            isolated=not args.no_isolated,
            passthrough=args.passthrough,
        )
    except (OSError, ValueError, RuntimeError, TypeError) as e:
        print(f"pt2q debug: {e}", file=sys.stderr)
        return 2
    print(report.to_text(limit=args.limit))
    if args.json:
        report.to_json(args.json)
    if args.html:
        report.to_html(args.html)
    if args.model_explorer:
        paths = report.to_model_explorer(args.model_explorer)
        print(f"Model Explorer: model-explorer {args.float_program} --node_data_paths=", end="")
        print(",".join(str(p) for p in paths))
    out = report.output_value()
    if args.min_sqnr is not None and not out >= args.min_sqnr:
        print(f"FAIL: output SQNR {out:.2f} dB < --min-sqnr {args.min_sqnr} dB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

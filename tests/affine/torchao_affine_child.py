"""Run in a subprocess by test_affine_vs_torchao.py (torchao registers global passes on import,
so it never enters the pytest process): computes torchao 0.18's affine results for the inputs
in argv[1] and saves them to argv[2]."""

from __future__ import annotations

import sys

import torch
from torchao.quantization import granularity as g
from torchao.quantization import quant_primitives as qp
from torchao.quantization.pt2e import _affine_quantization as aq
from torchao.quantization.pt2e import fake_quantize as fq
from torchao.quantization.utils import get_block_size


def _gran(spec: tuple) -> object:
    kind, *args = spec
    return {"tensor": g.PerTensor, "axis": g.PerAxis, "group": g.PerGroup, "row": g.PerRow,
            "token": g.PerToken, "block": g.PerBlock}[kind](*args)  # fmt: skip


def main() -> None:
    data = torch.load(sys.argv[1])
    out: dict[str, object] = {}
    out["block_sizes"] = [get_block_size(shape, _gran(gs)) for shape, gs in data["block_cases"]]
    qparams = []
    for mapping, domain, preserve, qmin, qmax in data["qparam_cases"]:
        qparams.append(
            aq.choose_qparams_affine_with_min_max(
                data["min_val"],
                data["max_val"],
                qp.MappingType[mapping],
                [],
                torch.int8,
                qmin,
                qmax,
                None,
                None,
                None,
                preserve,
                None if domain is None else qp.ZeroPointDomain[domain],
            )  # fmt: skip
        )
    out["qparams"] = qparams
    x, results = data["x"], []
    for mapping, domain, gs, qmin, qmax in data["roundtrip_cases"]:
        block = get_block_size(x.shape, _gran(gs))
        dom = qp.ZeroPointDomain[domain]
        preserve = domain != "FLOAT"
        s, z = aq._choose_qparams_affine(
            x, mapping, list(block), torch.int8, qmin, qmax, None, None, None, preserve, domain
        )
        if dom == qp.ZeroPointDomain.NONE:
            z = None
        q = aq.quantize_affine(x, block, s, z, torch.int8, qmin, qmax, dom)
        dq = aq.dequantize_affine(q, block, s, z, torch.int8, qmin, qmax, dom)
        results.append((s, z, q, dq))
    out["roundtrip"] = results
    obs = aq.AffineQuantizedMinMaxObserver(
        qp.MappingType.ASYMMETRIC, torch.uint8, g.PerGroup(16), eps=2**-12
    )
    for batch in data["batches"]:
        obs(batch)
    out["observer"] = obs.calculate_qparams()
    fake = fq.default_groupwise_fake_quant.with_args(granularity=g.PerGroup(16))()
    w = data["w"].clone().requires_grad_(True)
    y = fake(w)
    y.sum().backward()
    out["fake_quant"] = (y.detach(), w.grad)
    out["defaults"] = {
        name: (
            m.activation_post_process.mapping_type.name,
            str(m.activation_post_process.granularity),
            m.activation_post_process.target_dtype,
        )  # fmt: skip
        for name in (
            "default_affine_fake_quant",
            "default_groupwise_fake_quant",
            "default_affine_per_axis_fake_quant",
        )  # fmt: skip
        for m in [getattr(fq, name)()]
    }
    torch.save(out, sys.argv[2])


if __name__ == "__main__":
    main()

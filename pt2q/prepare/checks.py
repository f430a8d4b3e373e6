"""Input checks shared by prepare_pt2e / prepare_qat_pt2e / convert_pt2e."""

from __future__ import annotations

from typing import Any

import torch

from pt2q.errors import NotAnExportedModelError

__all__ = ["require_exported_graph_module"]


def require_exported_graph_module(model: Any, api: str) -> torch.fx.GraphModule:
    """Return ``model`` if it is a GraphModule from ``torch.export.export(...).module()``."""
    if isinstance(model, torch.export.ExportedProgram):
        raise NotAnExportedModelError(
            f"{api} expects a torch.fx.GraphModule, got a torch.export.ExportedProgram: pass "
            "`exported_program.module()` instead"
        )
    if isinstance(model, torch.fx.GraphModule):
        return model
    if isinstance(model, torch.nn.Module):
        raise NotAnExportedModelError(
            f"{api} expects an exported torch.fx.GraphModule, got the eager module "
            f"{type(model).__name__}: capture it first with "
            "`torch.export.export(model, example_args).module()`"
        )
    raise NotAnExportedModelError(
        f"{api} expects an exported torch.fx.GraphModule "
        f"(`torch.export.export(model, example_args).module()`), got {type(model).__name__}"
    )

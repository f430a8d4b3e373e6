"""Train/eval switching for exported models (``model.eval()`` does not work on them).

Interface; implemented by the QAT/BN work (stubs until then).
"""

from __future__ import annotations

import torch

__all__ = [
    "move_exported_model_to_eval",
    "move_exported_model_to_train",
    "allow_exported_model_train_eval",
]


def move_exported_model_to_eval(model: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Switch dropout and batch norm of an exported model to eval behaviour, keeping their settings."""
    raise NotImplementedError("move_exported_model_to_eval is not implemented yet")


def move_exported_model_to_train(model: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Switch dropout and batch norm of an exported model to train behaviour, keeping their settings."""
    raise NotImplementedError("move_exported_model_to_train is not implemented yet")


def allow_exported_model_train_eval(model: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Make ``model.train()`` / ``model.eval()`` call the two functions above."""
    raise NotImplementedError("allow_exported_model_train_eval is not implemented yet")

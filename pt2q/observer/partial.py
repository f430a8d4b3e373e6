"""``Cls.with_args(...)``: picklable, chainable constructors for observers and fake-quantizers."""

from __future__ import annotations

from functools import partial
from typing import Any

__all__ = ["PartialWrapper", "with_args"]


class PartialWrapper:
    """A constructor with some keyword arguments bound; calling it builds the module.

    ``with_args`` on the wrapper binds more (later values win), so
    ``MinMaxObserver.with_args(eps=1e-3).with_args(dtype=torch.int8)()`` works, and prepare can
    add the spec's dtype/range/qscheme on top of what the user bound.
    """

    def __init__(self, p: partial) -> None:
        self.p = p

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.p(*args, **kwargs)

    def with_args(self, **kwargs: Any) -> PartialWrapper:
        return PartialWrapper(partial(self.p, **kwargs))

    @property
    def target(self) -> type:
        """The class this wrapper builds (unwrapping nested partials)."""
        func: Any = self.p
        while isinstance(func, partial):
            func = func.func
        return func

    @property
    def keywords(self) -> dict[str, Any]:
        return dict(self.p.keywords)

    def __repr__(self) -> str:
        return f"{self.target.__name__}.with_args({self.keywords})"


def with_args(cls: type, **kwargs: Any) -> PartialWrapper:
    """``cls.with_args(**kwargs)``; meant to be bound as a classmethod."""
    return PartialWrapper(partial(cls, **kwargs))

"""Node metadata that pt2q carries from an original node onto the nodes it creates.

The keys themselves are defined once, in :mod:`pt2q.qdq.meta`; this module re-exports the ones
the prepare / convert passes use.
"""

from __future__ import annotations

from pt2q.qdq.meta import CARRIED_META_KEYS, QUANTIZED_OUTPUT_KEY, copy_meta

__all__ = ["CARRIED_META_KEYS", "QUANTIZED_OUTPUT_KEY", "copy_meta"]

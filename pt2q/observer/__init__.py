"""Observers owned by pt2q (not imported from torch.ao or torchao)."""

from pt2q.observer.base import NonFiniteObservationError, ObserverBase, ObserverNotCalibratedError
from pt2q.observer.partial import PartialWrapper
from pt2q.observer.qparams import calculate_qparams, default_quant_range

__all__ = [
    "NonFiniteObservationError",
    "ObserverBase",
    "ObserverNotCalibratedError",
    "PartialWrapper",
    "calculate_qparams",
    "default_quant_range",
]

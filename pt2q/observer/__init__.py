"""Observers owned by pt2q (not imported from torch.ao or torchao)."""

from pt2q.observer.base import NonFiniteObservationError, ObserverBase, ObserverNotCalibratedError
from pt2q.observer.derived import DerivedQParamsObserver
from pt2q.observer.fixed import FixedQParamsObserver
from pt2q.observer.histogram import HistogramObserver
from pt2q.observer.merge import merge_observer_state_dicts
from pt2q.observer.minmax import MinMaxObserver, PerChannelMinMaxObserver
from pt2q.observer.moving_average import (
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
)
from pt2q.observer.partial import PartialWrapper
from pt2q.observer.placeholder import PlaceholderObserver
from pt2q.observer.qparams import calculate_qparams, default_quant_range
from pt2q.observer.state_dict import get_observer_state_dict, load_observer_state_dict
from pt2q.observer.uniform import UniformObserverBase

__all__ = [
    "DerivedQParamsObserver",
    "FixedQParamsObserver",
    "MinMaxObserver",
    "PerChannelMinMaxObserver",
    "MovingAverageMinMaxObserver",
    "HistogramObserver",
    "MovingAveragePerChannelMinMaxObserver",
    "PlaceholderObserver",
    "UniformObserverBase",
    "NonFiniteObservationError",
    "ObserverBase",
    "ObserverNotCalibratedError",
    "PartialWrapper",
    "calculate_qparams",
    "default_quant_range",
    "get_observer_state_dict",
    "load_observer_state_dict",
    "merge_observer_state_dicts",
]

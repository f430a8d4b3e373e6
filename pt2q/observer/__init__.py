"""Observers owned by pt2q (not imported from torch.ao or torchao)."""

from pt2q.affine import (
    Granularity,
    MappingType,
    PerAxis,
    PerBlock,
    PerGroup,
    PerRow,
    PerTensor,
    PerToken,
    TorchAODType,
    ZeroPointDomain,
    get_block_size,
)
from pt2q.observer.affine import (
    AffineQuantizedMinMaxObserver,
    AffineQuantizedMovingAverageMinMaxObserver,
    AffineQuantizedObserverBase,
    AffineQuantizedPlaceholderObserver,
)
from pt2q.observer.base import NonFiniteObservationError, ObserverBase, ObserverNotCalibratedError
from pt2q.observer.defaults import (
    default_affine_fixed_qparams_observer,
    default_debug_observer,
    default_dynamic_quant_observer,
    default_fixed_qparams_range_0to1_observer,
    default_fixed_qparams_range_neg1to1_observer,
    default_histogram_observer,
    default_observer,
    default_per_channel_weight_observer,
    default_placeholder_observer,
    default_reuse_input_observer,
    default_symmetric_fixed_qparams_observer,
    default_weight_observer,
    per_channel_weight_observer_range_neg_127_to_127,
    weight_observer_range_neg_127_to_127,
)
from pt2q.observer.derived import DerivedObserverOrFakeQuantize, DerivedQParamsObserver
from pt2q.observer.fixed import FixedQParamsObserver
from pt2q.observer.float_qparams import (
    default_float_qparams_observer,
    default_float_qparams_observer_4bit,
)
from pt2q.observer.histogram import HistogramObserver
from pt2q.observer.merge import merge_observer_state_dicts
from pt2q.observer.minmax import MinMaxObserver, PerChannelMinMaxObserver
from pt2q.observer.moving_average import (
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
)
from pt2q.observer.partial import PartialWrapper
from pt2q.observer.passthrough import NoopObserver, RecordingObserver, ReuseInputObserver
from pt2q.observer.placeholder import PlaceholderObserver
from pt2q.observer.qparams import calculate_qparams, default_quant_range
from pt2q.observer.state_dict import get_observer_state_dict, load_observer_state_dict
from pt2q.observer.uniform import UniformObserverBase

# torchao's name for the base of min/max-statistics observers
UniformQuantizationObserverBase = UniformObserverBase

__all__ = [
    # torchao's observer module re-exports the affine vocabulary (pt2q.affine)
    "Granularity",
    "MappingType",
    "PerAxis",
    "PerBlock",
    "PerGroup",
    "PerRow",
    "PerTensor",
    "PerToken",
    "TorchAODType",
    "ZeroPointDomain",
    "get_block_size",
    "DerivedObserverOrFakeQuantize",
    "NoopObserver",
    "RecordingObserver",
    "ReuseInputObserver",
    "UniformQuantizationObserverBase",
    "default_affine_fixed_qparams_observer",
    "default_debug_observer",
    "default_dynamic_quant_observer",
    "default_fixed_qparams_range_0to1_observer",
    "default_fixed_qparams_range_neg1to1_observer",
    "default_histogram_observer",
    "default_observer",
    "default_per_channel_weight_observer",
    "default_placeholder_observer",
    "default_reuse_input_observer",
    "default_symmetric_fixed_qparams_observer",
    "default_weight_observer",
    "per_channel_weight_observer_range_neg_127_to_127",
    "weight_observer_range_neg_127_to_127",
    "AffineQuantizedMinMaxObserver",
    "AffineQuantizedMovingAverageMinMaxObserver",
    "AffineQuantizedObserverBase",
    "AffineQuantizedPlaceholderObserver",
    "default_float_qparams_observer",
    "default_float_qparams_observer_4bit",
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

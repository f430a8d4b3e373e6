"""Post-training quantization algorithms as passes on exported graphs, for any quantizer.

* ``equalize`` (cross-layer equalization + bias absorption), ``smooth`` (SmoothQuant) and
  ``shift`` (normalization outputs centred into the linears' biases): float -> equivalent
  float rewrites of the exported graph, before annotation;
* ``keep_float`` (activations with unhealthy int8 ranges stay float), ``gptq`` (weights
  rounded column by column, the error spread through the inputs' second moment),
  ``sensitivity`` (activations whose int8 costs the output most, measured, stay float),
  ``adaround`` (adaptive rounding), ``bias_correction`` (empirical) and ``mixed_precision``
  (the fewest ops left float that reach a stated target): on the calibrated prepared model, in
  that order, writing what convert folds unchanged;
* ``quantize(model, quantizer, calibration_batches, methods="auto")`` runs them and keeps each
  only where it improves held-out output SQNR; ``with_activation_observer`` picks the range
  setting (e.g. ``MSEObserver``, ``PercentileObserver``) of a quantizer config.
"""

from pt2q.algorithms.adaround import adaround
from pt2q.algorithms.bias_correction import bias_correction
from pt2q.algorithms.equalize import equalize
from pt2q.algorithms.keep_float import keep_unhealthy_float
from pt2q.algorithms.mixed_precision import keep_float_to_target
from pt2q.algorithms.quantize import METHODS, MethodResult, QuantizeReport, quantize
from pt2q.algorithms.range_setting import with_activation_observer
from pt2q.algorithms.sensitivity import keep_sensitive_float
from pt2q.algorithms.shift import shift
from pt2q.algorithms.smooth import smooth

__all__ = [
    "METHODS",
    "MethodResult",
    "QuantizeReport",
    "adaround",
    "bias_correction",
    "equalize",
    "keep_float_to_target",
    "keep_sensitive_float",
    "keep_unhealthy_float",
    "quantize",
    "shift",
    "smooth",
    "with_activation_observer",
]

"""Helpers of ``torchao.quantization.pt2e.utils`` (its ``__all__``, name for name), by concept:
``qparams`` (ranges and qparam formulas), ``modules`` (attributes, buffers, example inputs),
``nodes`` (node predicates, pattern tracing)."""

from pt2q.utils.modules import (
    create_getattr_from_value,
    get_fqn_to_example_inputs,
    get_new_attr_name_with_prefix,
    getattr_from_fqn,
    has_no_children_ignoring_parametrizations,
)
from pt2q.utils.nodes import (
    _filter_sym_size_users,
    _get_aten_graph_module_for_pattern,
    _is_conv_node,
    _is_conv_transpose_node,
    _is_sym_size_node,
)
from pt2q.utils.qparams import (
    InvalidQuantRangeError,
    calculate_qmin_qmax,
    check_min_max_valid,
    determine_qparams,
    get_qparam_dict,
    is_per_channel,
    is_per_tensor,
    to_underlying_dtype,
    validate_qmin_qmax,
)

__all__ = [
    "InvalidQuantRangeError",
    "calculate_qmin_qmax",
    "check_min_max_valid",
    "create_getattr_from_value",
    "determine_qparams",
    "get_fqn_to_example_inputs",
    "get_new_attr_name_with_prefix",
    "get_qparam_dict",
    "getattr_from_fqn",
    "has_no_children_ignoring_parametrizations",
    "is_per_channel",
    "is_per_tensor",
    "to_underlying_dtype",
    "validate_qmin_qmax",
    "_get_aten_graph_module_for_pattern",
    "_is_conv_node",
    "_is_conv_transpose_node",
    "_is_sym_size_node",
    "_filter_sym_size_users",
]

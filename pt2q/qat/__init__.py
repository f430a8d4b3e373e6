"""Quantization-aware training passes: conv-bn simulated fusion (prepare) and its fold (convert).

``fuse_conv_bn_qat`` (``pt2q.qat.fuse``) rewrites conv/linear + BN into the training form whose
weight is scaled by the BN factor before fake-quant; ``fold_conv_bn_qat`` (``pt2q.qat.fold``)
collapses that form back into a conv with folded weight/bias constants, by direct graph matching.
"""

from pt2q.qat.fold import fold_conv_bn_qat
from pt2q.qat.fuse import fuse_conv_bn_qat

__all__ = ["fuse_conv_bn_qat", "fold_conv_bn_qat"]

"""ARM backend: pt2q's NEON int8 kernels (C, ``kernels/``) and the lowering of converted
XNNPACK-style programs onto them."""

/* Quantize, scalar reference: y = clamp(round_half_even(x * inv_scale) + zp, qmin, qmax),
 * exactly quantized_decomposed.quantize_per_tensor with inv_scale = float32(1 / scale). */
#include "../common/kernels.h"
#include "../common/requant.h"

void pt2q_f32_qs8_vcvt_ukernel__scalar(size_t n, const float* x, int8_t* y, float inv_scale,
                                       int32_t zp, int32_t qmin, int32_t qmax) {
  for (size_t i = 0; i < n; i++) y[i] = pt2q_requant_f32(x[i] * inv_scale, zp, qmin, qmax);
}

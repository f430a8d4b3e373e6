/* Dequantize, scalar reference: y = (float)(x - zp) * scale (quantized_decomposed semantics). */
#include "../common/kernels.h"

void pt2q_qs8_f32_vcvt_ukernel__scalar(size_t n, const int8_t* x, float* y, int32_t zp,
                                       float scale) {
  for (size_t i = 0; i < n; i++) y[i] = (float)((int32_t)x[i] - zp) * scale;
}

/* Quantized mul, scalar reference: y = requant((a - a_zp) * (b - b_zp) * ab_mul), with
 * ab_mul = s_a * s_b / s_y. The integer product is exact (|.| <= 65025 < 2^24). */
#include "../common/kernels.h"
#include "../common/requant.h"

void pt2q_qs8_vmul_ukernel__scalar(size_t n, const int8_t* a, const int8_t* b, int8_t* y,
                                   int32_t a_zp, int32_t b_zp, float ab_mul, int32_t y_zp,
                                   int32_t qmin, int32_t qmax) {
  for (size_t i = 0; i < n; i++) {
    const int32_t prod = ((int32_t)a[i] - a_zp) * ((int32_t)b[i] - b_zp);
    y[i] = pt2q_requant_acc(prod, ab_mul, y_zp, qmin, qmax);
  }
}

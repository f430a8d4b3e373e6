/* Quantized add, scalar reference: y = requant((a - a_zp) * a_mul + (b - b_zp) * b_mul).
 * a_mul = s_a / s_y, b_mul = s_b / s_y; ReLU is qmin = y_zp. Multiply then add, never fused. */
#include "../common/kernels.h"
#include "../common/requant.h"

void pt2q_qs8_vadd_ukernel__scalar(size_t n, const int8_t* a, const int8_t* b, int8_t* y,
                                   int32_t a_zp, int32_t b_zp, float a_mul, float b_mul,
                                   int32_t y_zp, int32_t qmin, int32_t qmax) {
  for (size_t i = 0; i < n; i++) {
    const float fa = (float)((int32_t)a[i] - a_zp) * a_mul;
    const float fb = (float)((int32_t)b[i] - b_zp) * b_mul;
    y[i] = pt2q_requant_f32(fa + fb, y_zp, qmin, qmax);
  }
}

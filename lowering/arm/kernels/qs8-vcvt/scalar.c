/* Requantize, scalar reference: y = requant((float)(x - in_zp) * scale), scale = s_in / s_out. */
#include "../common/kernels.h"
#include "../common/requant.h"

void pt2q_qs8_vcvt_ukernel__scalar(size_t n, const int8_t* x, int8_t* y, int32_t in_zp,
                                   float scale, int32_t out_zp, int32_t qmin, int32_t qmax) {
  for (size_t i = 0; i < n; i++) {
    y[i] = pt2q_requant_f32((float)((int32_t)x[i] - in_zp) * scale, out_zp, qmin, qmax);
  }
}

/* Average pool, scalar reference: out = requant((sum_t in[t][c] - taps * in_zp) * scale), with
 * scale = s_in / (s_out * divisor). Padding taps point at an in_zp buffer (count_include_pad). */
#include "../common/kernels.h"
#include "../common/requant.h"

void pt2q_qs8_avgpool_ukernel__scalar(size_t pixels, size_t channels, size_t taps,
                                      const int8_t** indirection, int32_t in_zp, float scale,
                                      int8_t* out, int32_t out_zp, int32_t qmin, int32_t qmax) {
  const int32_t bias = -(int32_t)taps * in_zp;
  for (size_t p = 0; p < pixels; p++) {
    const int8_t** in = indirection + p * taps;
    for (size_t c = 0; c < channels; c++) {
      int32_t acc = bias;
      for (size_t t = 0; t < taps; t++) acc += in[t][c];
      out[p * channels + c] = pt2q_requant_acc(acc, scale, out_zp, qmin, qmax);
    }
  }
}

/* Max pool, scalar reference: out[p, c] = clamp(max over taps, qmin, qmax). */
#include "../common/kernels.h"

void pt2q_s8_maxpool_ukernel__scalar(size_t pixels, size_t channels, size_t taps,
                                     const int8_t** indirection, int8_t* out, int32_t qmin,
                                     int32_t qmax) {
  for (size_t p = 0; p < pixels; p++) {
    const int8_t** in = indirection + p * taps;
    for (size_t c = 0; c < channels; c++) {
      int32_t mx = -128;
      for (size_t t = 0; t < taps; t++) mx = in[t][c] > mx ? in[t][c] : mx;
      mx = mx < qmin ? qmin : mx;
      out[p * channels + c] = (int8_t)(mx > qmax ? qmax : mx);
    }
  }
}

/* Depthwise conv, scalar reference (packed with cr = 1). Padding taps point at a buffer of the
 * input zero point, which the folded bias cancels. */
#include "../common/kernels.h"
#include "../common/requant.h"

void pt2q_qs8_dwconv_ukernel__scalar(size_t pixels, size_t channels, size_t taps,
                                     const int8_t** indirection, const void* packed_w,
                                     int8_t* out, int32_t out_zp, int32_t qmin, int32_t qmax) {
  const size_t block = sizeof(int32_t) + sizeof(float) + taps;
  for (size_t p = 0; p < pixels; p++) {
    const int8_t** in = indirection + p * taps;
    for (size_t c = 0; c < channels; c++) {
      const char* pw = (const char*)packed_w + c * block;
      const int8_t* w = (const int8_t*)(pw + sizeof(int32_t) + sizeof(float));
      int32_t acc = *(const int32_t*)pw;
      for (size_t t = 0; t < taps; t++) acc += (int32_t)in[t][c] * (int32_t)w[t];
      out[p * channels + c] =
          pt2q_requant_acc(acc, *(const float*)(pw + sizeof(int32_t)), out_zp, qmin, qmax);
    }
  }
}

/* Depthwise weight packing: per block of cr channels, int32 bias[cr], float scale[cr], then
 * taps rows of cr int8 weights (row t = W[t, c0..c0+cr)). Channels past `channels` are zero. */
#include "../common/kernels.h"

size_t pt2q_qs8_dwconv_packed_size(size_t channels, size_t taps, size_t cr) {
  return (channels + cr - 1) / cr * (cr * (sizeof(int32_t) + sizeof(float)) + cr * taps);
}

void pt2q_qs8_dwconv_pack(size_t channels, size_t taps, size_t cr, const int8_t* w,
                          const int32_t* bias, const float* scale, void* packed_w) {
  char* out = (char*)packed_w;
  for (size_t c0 = 0; c0 < channels; c0 += cr) {
    int32_t* b = (int32_t*)out;
    float* s = (float*)(out + cr * sizeof(int32_t));
    int8_t* wp = (int8_t*)(out + cr * (sizeof(int32_t) + sizeof(float)));
    for (size_t j = 0; j < cr; j++) {
      b[j] = c0 + j < channels ? bias[c0 + j] : 0;
      s[j] = c0 + j < channels ? scale[c0 + j] : 0.0f;
    }
    for (size_t t = 0; t < taps; t++) {
      for (size_t j = 0; j < cr; j++) *wp++ = c0 + j < channels ? w[t * channels + c0 + j] : 0;
    }
    out = (char*)wp;
  }
}

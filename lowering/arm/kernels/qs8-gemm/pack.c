/* Weight packing for every qs8-gemm variant (run once, at lowering time).
 *
 * Per block of nr output channels: int32 bias[nr], float scale[nr], then round_up(k, 8) / kr
 * blocks of (nr x kr) int8 weights, block[j * kr + i] = W[n0 + j, k0 + i]. Channels past n and
 * columns past k are zero (bias 0, scale 0), so kernels may compute full tiles. */
#include <string.h>

#include "../common/kernels.h"

static size_t round_up(size_t x, size_t q) { return (x + q - 1) / q * q; }

size_t pt2q_qs8_gemm_packed_size(size_t n, size_t k, size_t nr, size_t kr) {
  (void)kr;
  return round_up(n, nr) / nr * (nr * (sizeof(int32_t) + sizeof(float)) + nr * round_up(k, 8));
}

void pt2q_qs8_gemm_pack(size_t n, size_t k, size_t nr, size_t kr, const int8_t* w,
                        const int32_t* bias, const float* scale, void* packed_w) {
  const size_t kp = round_up(k, 8);
  char* out = (char*)packed_w;
  for (size_t n0 = 0; n0 < n; n0 += nr) {
    int32_t* b = (int32_t*)out;
    float* s = (float*)(out + nr * sizeof(int32_t));
    int8_t* wp = (int8_t*)(out + nr * (sizeof(int32_t) + sizeof(float)));
    for (size_t j = 0; j < nr; j++) {
      b[j] = n0 + j < n ? bias[n0 + j] : 0;
      s[j] = n0 + j < n ? scale[n0 + j] : 0.0f;
    }
    for (size_t k0 = 0; k0 < kp; k0 += kr) {
      for (size_t j = 0; j < nr; j++) {
        for (size_t i = 0; i < kr; i++) {
          const size_t nn = n0 + j, kk = k0 + i;
          *wp++ = (nn < n && kk < k) ? w[nn * k + kk] : 0;
        }
      }
    }
    out = (char*)wp;
  }
}

/* qs8 GEMM, scalar reference: the spec every NEON variant matches bit-exactly.
 * Packed with (nr, kr) = (1, 1): per output channel n, bias, scale, then W[n, 0..kp). */
#include "../common/kernels.h"
#include "../common/requant.h"

void pt2q_qs8_gemm_ukernel__scalar(size_t m, size_t n, size_t k, const int8_t* a,
                                   size_t a_stride, const void* packed_w, int8_t* c,
                                   size_t c_stride, int32_t c_zp, int32_t qmin, int32_t qmax) {
  const size_t kp = (k + 7) / 8 * 8;
  const size_t block = sizeof(int32_t) + sizeof(float) + kp;
  for (size_t j = 0; j < n; j++) {
    const char* p = (const char*)packed_w + j * block;
    const int32_t bias = *(const int32_t*)p;
    const float scale = *(const float*)(p + sizeof(int32_t));
    const int8_t* w = (const int8_t*)(p + sizeof(int32_t) + sizeof(float));
    for (size_t i = 0; i < m; i++) {
      const int8_t* ai = a + i * a_stride;
      int32_t acc = bias;
      for (size_t kk = 0; kk < k; kk++) acc += (int32_t)ai[kk] * (int32_t)w[kk];
      c[i * c_stride + j] = pt2q_requant_acc(acc, scale, c_zp, qmin, qmax);
    }
  }
}

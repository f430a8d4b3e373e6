/* qd8-f32 GEMM (dynamic linear), scalar reference: the spec the NEON variants match bit-exactly.
 * A is int8 quantized per row (row i: zero point zp[i], scale s[i]); weights are packed by
 * pt2q_qs8_gemm_pack with (nr, kr) = (1, 1), the int32 slot holding sum_k W[n, k] and the
 * float slot the weight scale. Output is float:
 *   C[i, n] = (float)(sum_k A[i, k] * W[n, k] - zp[i] * wsum[n]) * (s[i] * ws[n]) + bias[n]
 * (one fp32 multiply, then one add: no fma). bias may be NULL (zero). */
#include "../common/kernels.h"

void pt2q_qd8_f32_gemm_ukernel__scalar(size_t m, size_t n, size_t k, const int8_t* a,
                                       size_t a_stride, const void* packed_w, float* c,
                                       size_t c_stride, const pt2q_qd8_row_params* rows,
                                       const float* bias) {
  const size_t kp = (k + 7) / 8 * 8;
  const size_t block = sizeof(int32_t) + sizeof(float) + kp;
  for (size_t j = 0; j < n; j++) {
    const char* p = (const char*)packed_w + j * block;
    const int32_t wsum = *(const int32_t*)p;
    const float ws = *(const float*)(p + sizeof(int32_t));
    const int8_t* w = (const int8_t*)(p + sizeof(int32_t) + sizeof(float));
    for (size_t i = 0; i < m; i++) {
      const int8_t* ai = a + i * a_stride;
      int32_t acc = 0;
      for (size_t kk = 0; kk < k; kk++) acc += (int32_t)ai[kk] * (int32_t)w[kk];
      acc -= rows[i].zero_point * wsum;
      const float y = (float)acc * (rows[i].scale * ws);
      c[i * c_stride + j] = y + (bias != NULL ? bias[j] : 0.0f);
    }
  }
}

/* f32-qc8w GEMM (int8wo: float activations, int8 per-channel symmetric weights), scalar
 * reference: the spec the NEON variants match bit-exactly.
 * Packed by pt2q_qs8_gemm_pack with (nr, kr) = (1, 1) (its int32 slot unused, 0; the float slot
 * the weight scale ws). Per output (i, n):
 *   p = 0;  for k in order:  p = p + A[i, k] * (float)W[n, k]
 *   C[i, n] = p * ws[n] + bias[n]           (every multiply and add rounded on its own) */
#include "../common/kernels.h"

void pt2q_f32_qc8w_gemm_ukernel__scalar(size_t m, size_t n, size_t k, const float* a,
                                        size_t a_stride, const void* packed_w, float* c,
                                        size_t c_stride, const float* bias) {
  const size_t kp = (k + 7) / 8 * 8;
  const size_t block = sizeof(int32_t) + sizeof(float) + kp;
  for (size_t j = 0; j < n; j++) {
    const char* pc = (const char*)packed_w + j * block;
    const float ws = *(const float*)(pc + sizeof(int32_t));
    const int8_t* w = (const int8_t*)(pc + sizeof(int32_t) + sizeof(float));
    for (size_t i = 0; i < m; i++) {
      const float* ai = a + i * a_stride;
      float p = 0.0f;
      for (size_t kk = 0; kk < k; kk++) p = p + ai[kk] * (float)w[kk];
      c[i * c_stride + j] = p * ws + (bias != NULL ? bias[j] : 0.0f);
    }
  }
}

/* f32-qc4w GEMM (int4wo: float activations, int4 per-group asymmetric weights with integer zero
 * points), scalar reference: the spec the NEON variants match bit-exactly.
 * Packed by pt2q_qc4w_gemm_pack with (nr, kr) = (1, 1): per channel and group, the float scale
 * ws, the int32 zero point zp and the unsigned nibbles u in [0, 15]. Per output (i, n):
 *   out = 0;  for each group g:
 *     p = 0;  for k in g, in order:  p = p + A[i, k] * (float)(u[n, k] - zp[n, g])
 *     out = out + p * ws[n, g]
 *   C[i, n] = out + bias[n]                 (every multiply and add rounded on its own) */
#include "../common/kernels.h"

void pt2q_f32_qc4w_gemm_ukernel__scalar(size_t m, size_t n, size_t k, size_t group,
                                        const float* a, size_t a_stride, const void* packed_w,
                                        float* c, size_t c_stride, const float* bias) {
  const size_t groups = k / group;
  const size_t gbytes = sizeof(float) + sizeof(int32_t) + group / 2;
  for (size_t j = 0; j < n; j++) {
    const char* pc = (const char*)packed_w + j * groups * gbytes;
    for (size_t i = 0; i < m; i++) {
      const float* ai = a + i * a_stride;
      float out = 0.0f;
      for (size_t g = 0; g < groups; g++) {
        const char* pg = pc + g * gbytes;
        const float ws = *(const float*)pg;
        const int32_t zp = *(const int32_t*)(pg + sizeof(float));
        const uint8_t* w = (const uint8_t*)(pg + sizeof(float) + sizeof(int32_t));
        float p = 0.0f;
        for (size_t s = 0; s < group / 16; s++) {
          const float* ak = ai + g * group + 16 * s;
          for (size_t t = 0; t < 8; t++) p = p + ak[t] * (float)((int32_t)(w[8 * s + t] & 0xF) - zp);
          for (size_t t = 0; t < 8; t++) p = p + ak[8 + t] * (float)((int32_t)(w[8 * s + t] >> 4) - zp);
        }
        out = out + p * ws;
      }
      c[i * c_stride + j] = out + (bias != NULL ? bias[j] : 0.0f);
    }
  }
}

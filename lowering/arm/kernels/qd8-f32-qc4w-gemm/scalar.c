/* qd8-f32-qc4w GEMM (8da4w: int8 per-row activations, int4 per-group symmetric weights), scalar
 * reference: the spec the NEON variants match bit-exactly.
 * Packed by pt2q_qc4w_gemm_pack with (nr, kr) = (1, 1): per channel and group, the float weight
 * scale ws, the int32 weight sum wsum and the signed nibbles. Per output (i, n):
 *   out = 0;  for each group g:
 *     acc = sum_{k in g} A[i, k] * W[n, k] - zp[i] * wsum[n, g]        (exact int32)
 *     out = out + (float)acc * ws[n, g]                                 (multiply, then add)
 *   C[i, n] = out * s[i] + bias[n]                                      (bias may be NULL) */
#include "../common/kernels.h"

static inline int32_t pt2q_nibble_s4(uint8_t v) { return (int32_t)(int8_t)(uint8_t)(v << 4) >> 4; }

void pt2q_qd8_f32_qc4w_gemm_ukernel__scalar(size_t m, size_t n, size_t k, size_t group,
                                            const int8_t* a, size_t a_stride,
                                            const void* packed_w, float* c, size_t c_stride,
                                            const pt2q_qd8_row_params* rows, const float* bias,
                                            int8_t* scratch) {
  (void)scratch;
  const size_t groups = k / group;
  const size_t gbytes = sizeof(float) + sizeof(int32_t) + group / 2;
  for (size_t j = 0; j < n; j++) {
    const char* pc = (const char*)packed_w + j * groups * gbytes;
    for (size_t i = 0; i < m; i++) {
      const int8_t* ai = a + i * a_stride;
      float out = 0.0f;
      for (size_t g = 0; g < groups; g++) {
        const char* pg = pc + g * gbytes;
        const float ws = *(const float*)pg;
        const int32_t wsum = *(const int32_t*)(pg + sizeof(float));
        const uint8_t* w = (const uint8_t*)(pg + sizeof(float) + sizeof(int32_t));
        int32_t acc = -rows[i].zero_point * wsum;
        for (size_t s = 0; s < group / 16; s++) {
          const int8_t* ak = ai + g * group + 16 * s;
          for (size_t t = 0; t < 8; t++) {
            acc += (int32_t)ak[t] * pt2q_nibble_s4(w[8 * s + t]);
            acc += (int32_t)ak[8 + t] * pt2q_nibble_s4((uint8_t)(w[8 * s + t] >> 4));
          }
        }
        out = out + (float)acc * ws;
      }
      c[i * c_stride + j] = out * rows[i].scale + (bias != NULL ? bias[j] : 0.0f);
    }
  }
}

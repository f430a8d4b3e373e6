/* qd8-f32 GEMM 4x16 (dynamic linear), armv8.2 dotprod: the 4x16-neon-dot qs8 inner loop with
 * a float epilogue (see scalar.c for the math). Packed with (nr, kr) = (16, 4). */
#include "../common/neon.h"
#include "../common/kernels.h"

#define PT2Q_DOT4(acc, vb, va, lane)                 \
  acc##0 = vdotq_lane_s32(acc##0, vb##0, va, lane); \
  acc##1 = vdotq_lane_s32(acc##1, vb##1, va, lane); \
  acc##2 = vdotq_lane_s32(acc##2, vb##2, va, lane); \
  acc##3 = vdotq_lane_s32(acc##3, vb##3, va, lane);

/* Row r of the tile: 16 accumulators -> 16 floats, stored up to cols. */
static inline void pt2q_qd8_store_row(const int32x4_t acc[4], const int32_t* wsum,
                                      const float* ws, const float* bias,
                                      pt2q_qd8_row_params row, float* c, size_t cols) {
  float out[16];
  const int32x4_t vzp = vdupq_n_s32(row.zero_point);
  const float32x4_t vs = vdupq_n_f32(row.scale);
  for (size_t q = 0; q < 4; q++) {
    const int32x4_t a = vsubq_s32(acc[q], vmulq_s32(vzp, vld1q_s32(wsum + 4 * q)));
    const float32x4_t s = vmulq_f32(vs, vld1q_f32(ws + 4 * q));
    float32x4_t y = vmulq_f32(vcvtq_f32_s32(a), s);
    y = vaddq_f32(y, bias != NULL ? vld1q_f32(bias + 4 * q) : vdupq_n_f32(0.0f));
    vst1q_f32(out + 4 * q, y);
  }
  for (size_t j = 0; j < cols; j++) c[j] = out[j];
}

void pt2q_qd8_f32_gemm_ukernel_4x16__neon_dot(size_t m, size_t n, size_t k, const int8_t* a,
                                              size_t a_stride, const void* packed_w, float* c,
                                              size_t c_stride, const pt2q_qd8_row_params* rows,
                                              const float* bias) {
  const size_t kp = (k + 7) / 8 * 8;
  const size_t block = 16 * (sizeof(int32_t) + sizeof(float)) + 16 * kp;
  float bias16[16];
  for (size_t j = 0; j < n; j += 16) {
    const char* pw = (const char*)packed_w + (j / 16) * block;
    const int32_t* wsum = (const int32_t*)pw;
    const float* ws = (const float*)(pw + 16 * sizeof(int32_t));
    const size_t cols = n - j < 16 ? n - j : 16;
    const float* b = NULL;
    if (bias != NULL) {
      for (size_t q = 0; q < 16; q++) bias16[q] = q < cols ? bias[j + q] : 0.0f;
      b = bias16;
    }
    for (size_t i = 0; i < m; i += 4) {
      const int8_t* a0 = a + i * a_stride;
      const int8_t* a1 = m - i > 1 ? a0 + a_stride : a0;
      const int8_t* a2 = m - i > 2 ? a1 + a_stride : a1;
      const int8_t* a3 = m - i > 3 ? a2 + a_stride : a2;
      const int8_t* w = (const int8_t*)(pw + 16 * (sizeof(int32_t) + sizeof(float)));
      int32x4_t acc00 = vdupq_n_s32(0), acc01 = acc00, acc02 = acc00, acc03 = acc00;
      int32x4_t acc10 = acc00, acc11 = acc00, acc12 = acc00, acc13 = acc00;
      int32x4_t acc20 = acc00, acc21 = acc00, acc22 = acc00, acc23 = acc00;
      int32x4_t acc30 = acc00, acc31 = acc00, acc32 = acc00, acc33 = acc00;
      for (size_t kk = 0; kk < kp; kk += 8) {
        const int8x8_t va0 = vld1_s8(a0 + kk);
        const int8x8_t va1 = vld1_s8(a1 + kk);
        const int8x8_t va2 = vld1_s8(a2 + kk);
        const int8x8_t va3 = vld1_s8(a3 + kk);
        const int8x16_t vb00 = vld1q_s8(w), vb01 = vld1q_s8(w + 16);
        const int8x16_t vb02 = vld1q_s8(w + 32), vb03 = vld1q_s8(w + 48);
        const int8x16_t vb10 = vld1q_s8(w + 64), vb11 = vld1q_s8(w + 80);
        const int8x16_t vb12 = vld1q_s8(w + 96), vb13 = vld1q_s8(w + 112);
        w += 128;
        PT2Q_DOT4(acc0, vb0, va0, 0)
        PT2Q_DOT4(acc1, vb0, va1, 0)
        PT2Q_DOT4(acc2, vb0, va2, 0)
        PT2Q_DOT4(acc3, vb0, va3, 0)
        PT2Q_DOT4(acc0, vb1, va0, 1)
        PT2Q_DOT4(acc1, vb1, va1, 1)
        PT2Q_DOT4(acc2, vb1, va2, 1)
        PT2Q_DOT4(acc3, vb1, va3, 1)
      }
      const int32x4_t r0[4] = {acc00, acc01, acc02, acc03}, r1[4] = {acc10, acc11, acc12, acc13};
      const int32x4_t r2[4] = {acc20, acc21, acc22, acc23}, r3[4] = {acc30, acc31, acc32, acc33};
      const int32x4_t* r[4] = {r0, r1, r2, r3};
      for (size_t rr = 0; rr < 4 && i + rr < m; rr++)
        pt2q_qd8_store_row(r[rr], wsum, ws, b, rows[i + rr], c + (i + rr) * c_stride + j, cols);
    }
  }
}

/* qs8 GEMM 4x16, armv8.2 dotprod: vdotq_lane_s32 (16 MACs each), 32 per 8-deep k step.
 * Packed with (nr, kr) = (16, 4): per 4 k, channels 0..3, 4..7, 8..11, 12..15, 4 bytes each.
 * Twice the columns of 4x8 per A load: 12 loads per 32 SDOTs (4x8: 8 per 16), which keeps a
 * core with one load pipe (the Cortex-A57-based model llvm-mca uses for Cortex-A76) fed. */
#include "../common/gemm_tile.h"
#include "../common/kernels.h"

#define PT2Q_DOT4(acc, vb, va, lane)                 \
  acc##0 = vdotq_lane_s32(acc##0, vb##0, va, lane); \
  acc##1 = vdotq_lane_s32(acc##1, vb##1, va, lane); \
  acc##2 = vdotq_lane_s32(acc##2, vb##2, va, lane); \
  acc##3 = vdotq_lane_s32(acc##3, vb##3, va, lane);

void pt2q_qs8_gemm_ukernel_4x16__neon_dot(size_t m, size_t n, size_t k, const int8_t* a,
                                          size_t a_stride, const void* packed_w, int8_t* c,
                                          size_t c_stride, int32_t c_zp, int32_t qmin,
                                          int32_t qmax) {
  const size_t kp = (k + 7) / 8 * 8;
  const pt2q_neon_requant_params p = pt2q_neon_requant_init(c_zp, qmin, qmax);
  const size_t block = 16 * (sizeof(int32_t) + sizeof(float)) + 16 * kp;
  for (size_t j = 0; j < n; j += 16) {
    const char* pw = (const char*)packed_w + (j / 16) * block;
    const int32_t* bias = (const int32_t*)pw;
    const float* scale = (const float*)(pw + 16 * sizeof(int32_t));
    for (size_t i = 0; i < m; i += 4) {
      PT2Q_GEMM_ROWS(a, a_stride, m, i, a0, a1, a2, a3)
      const int8_t* w = (const int8_t*)(pw + 16 * (sizeof(int32_t) + sizeof(float)));
      int32x4_t acc00 = vld1q_s32(bias), acc01 = vld1q_s32(bias + 4);
      int32x4_t acc02 = vld1q_s32(bias + 8), acc03 = vld1q_s32(bias + 12);
      int32x4_t acc10 = acc00, acc11 = acc01, acc12 = acc02, acc13 = acc03;
      int32x4_t acc20 = acc00, acc21 = acc01, acc22 = acc02, acc23 = acc03;
      int32x4_t acc30 = acc00, acc31 = acc01, acc32 = acc02, acc33 = acc03;
      for (size_t kk = 0; kk < kp; kk += 8) {
        const int8x8_t va0 = vld1_s8(a0 + kk); /* row 0, k .. k+7 */
        const int8x8_t va1 = vld1_s8(a1 + kk);
        const int8x8_t va2 = vld1_s8(a2 + kk);
        const int8x8_t va3 = vld1_s8(a3 + kk);
        /* vbL<q>: channels 4q .. 4q+3 x k+4L .. k+4L+3 */
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
      const size_t rows = m - i < 4 ? m - i : 4;
      int32x4_t lo[4][2] = {{acc00, acc01}, {acc10, acc11}, {acc20, acc21}, {acc30, acc31}};
      pt2q_gemm_store_4x8(lo, scale, c + i * c_stride + j, c_stride, rows,
                          n - j < 8 ? n - j : 8, p);
      if (n - j > 8) {
        int32x4_t hi[4][2] = {{acc02, acc03}, {acc12, acc13}, {acc22, acc23}, {acc32, acc33}};
        pt2q_gemm_store_4x8(hi, scale + 8, c + i * c_stride + j + 8, c_stride, rows,
                            n - j - 8 < 8 ? n - j - 8 : 8, p);
      }
    }
  }
}

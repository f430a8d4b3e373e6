/* qs8 GEMM 4x8, armv8.2 dotprod: vdotq_lane_s32 (16 MACs each).
 * Packed with (nr, kr) = (8, 4): per 4 k, channels 0..3 then 4..7, 4 bytes each. */
#include "../common/gemm_tile.h"
#include "../common/kernels.h"

void pt2q_qs8_gemm_ukernel_4x8__neon_dot(size_t m, size_t n, size_t k, const int8_t* a,
                                         size_t a_stride, const void* packed_w, int8_t* c,
                                         size_t c_stride, int32_t c_zp, int32_t qmin,
                                         int32_t qmax) {
  const size_t kp = (k + 7) / 8 * 8;
  const pt2q_neon_requant_params p = pt2q_neon_requant_init(c_zp, qmin, qmax);
  const size_t block = 8 * (sizeof(int32_t) + sizeof(float)) + 8 * kp;
  for (size_t j = 0; j < n; j += 8) {
    const char* pw = (const char*)packed_w + (j / 8) * block;
    const int32_t* bias = (const int32_t*)pw;
    const float* scale = (const float*)(pw + 8 * sizeof(int32_t));
    for (size_t i = 0; i < m; i += 4) {
      PT2Q_GEMM_ROWS(a, a_stride, m, i, a0, a1, a2, a3)
      const int8_t* w = (const int8_t*)(pw + 8 * (sizeof(int32_t) + sizeof(float)));
      int32x4_t acc00 = vld1q_s32(bias), acc01 = vld1q_s32(bias + 4);
      int32x4_t acc10 = acc00, acc11 = acc01, acc20 = acc00, acc21 = acc01;
      int32x4_t acc30 = acc00, acc31 = acc01;
      for (size_t kk = 0; kk < kp; kk += 8) {
        const int8x8_t va0 = vld1_s8(a0 + kk);  /* row 0, k .. k+7 */
        const int8x8_t va1 = vld1_s8(a1 + kk);
        const int8x8_t va2 = vld1_s8(a2 + kk);
        const int8x8_t va3 = vld1_s8(a3 + kk);
        const int8x16_t vb0123c0 = vld1q_s8(w);  /* channels 0..3 x k .. k+3 */
        const int8x16_t vb4567c0 = vld1q_s8(w + 16);
        const int8x16_t vb0123c1 = vld1q_s8(w + 32);  /* channels 0..3 x k+4 .. k+7 */
        const int8x16_t vb4567c1 = vld1q_s8(w + 48);
        w += 64;
        acc00 = vdotq_lane_s32(acc00, vb0123c0, va0, 0);
        acc01 = vdotq_lane_s32(acc01, vb4567c0, va0, 0);
        acc10 = vdotq_lane_s32(acc10, vb0123c0, va1, 0);
        acc11 = vdotq_lane_s32(acc11, vb4567c0, va1, 0);
        acc20 = vdotq_lane_s32(acc20, vb0123c0, va2, 0);
        acc21 = vdotq_lane_s32(acc21, vb4567c0, va2, 0);
        acc30 = vdotq_lane_s32(acc30, vb0123c0, va3, 0);
        acc31 = vdotq_lane_s32(acc31, vb4567c0, va3, 0);
        acc00 = vdotq_lane_s32(acc00, vb0123c1, va0, 1);
        acc01 = vdotq_lane_s32(acc01, vb4567c1, va0, 1);
        acc10 = vdotq_lane_s32(acc10, vb0123c1, va1, 1);
        acc11 = vdotq_lane_s32(acc11, vb4567c1, va1, 1);
        acc20 = vdotq_lane_s32(acc20, vb0123c1, va2, 1);
        acc21 = vdotq_lane_s32(acc21, vb4567c1, va2, 1);
        acc30 = vdotq_lane_s32(acc30, vb0123c1, va3, 1);
        acc31 = vdotq_lane_s32(acc31, vb4567c1, va3, 1);
      }
      int32x4_t acc[4][2] = {{acc00, acc01}, {acc10, acc11}, {acc20, acc21}, {acc30, acc31}};
      pt2q_gemm_store_4x8(acc, scale, c + i * c_stride + j, c_stride, m - i < 4 ? m - i : 4,
                          n - j < 8 ? n - j : 8, p);
    }
  }
}

/* qs8 GEMM 4x8, armv8-a baseline: int8 widened to int16, vmlal_lane_s16 (4 MACs each).
 * Packed with (nr, kr) = (8, 1): per k, the 8 channels' weights are contiguous. */
#include "../common/gemm_tile.h"
#include "../common/kernels.h"

#define PT2Q_MLAL_STEP(va, half, lane)                                    \
  do {                                                                    \
    const int16x8_t vb = vmovl_s8(vld1_s8(w));                            \
    w += 8;                                                               \
    acc00 = vmlal_lane_s16(acc00, vget_low_s16(vb), half(va##0), lane);   \
    acc01 = vmlal_lane_s16(acc01, vget_high_s16(vb), half(va##0), lane);  \
    acc10 = vmlal_lane_s16(acc10, vget_low_s16(vb), half(va##1), lane);   \
    acc11 = vmlal_lane_s16(acc11, vget_high_s16(vb), half(va##1), lane);  \
    acc20 = vmlal_lane_s16(acc20, vget_low_s16(vb), half(va##2), lane);   \
    acc21 = vmlal_lane_s16(acc21, vget_high_s16(vb), half(va##2), lane);  \
    acc30 = vmlal_lane_s16(acc30, vget_low_s16(vb), half(va##3), lane);   \
    acc31 = vmlal_lane_s16(acc31, vget_high_s16(vb), half(va##3), lane);  \
  } while (0)

void pt2q_qs8_gemm_ukernel_4x8__neon_mlal(size_t m, size_t n, size_t k, const int8_t* a,
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
        const int16x8_t va0 = vmovl_s8(vld1_s8(a0 + kk));
        const int16x8_t va1 = vmovl_s8(vld1_s8(a1 + kk));
        const int16x8_t va2 = vmovl_s8(vld1_s8(a2 + kk));
        const int16x8_t va3 = vmovl_s8(vld1_s8(a3 + kk));
        PT2Q_MLAL_STEP(va, vget_low_s16, 0);
        PT2Q_MLAL_STEP(va, vget_low_s16, 1);
        PT2Q_MLAL_STEP(va, vget_low_s16, 2);
        PT2Q_MLAL_STEP(va, vget_low_s16, 3);
        PT2Q_MLAL_STEP(va, vget_high_s16, 0);
        PT2Q_MLAL_STEP(va, vget_high_s16, 1);
        PT2Q_MLAL_STEP(va, vget_high_s16, 2);
        PT2Q_MLAL_STEP(va, vget_high_s16, 3);
      }
      int32x4_t acc[4][2] = {{acc00, acc01}, {acc10, acc11}, {acc20, acc21}, {acc30, acc31}};
      pt2q_gemm_store_4x8(acc, scale, c + i * c_stride + j, c_stride, m - i < 4 ? m - i : 4,
                          n - j < 8 ? n - j : 8, p);
    }
  }
}

/* qs8 GEMM 4x8, armv8.6 i8mm: vmmlaq_s32 (a 2x8 by 8x2 block, 32 MACs each).
 * Packed with (nr, kr) = (8, 8): per 8 k, channel pairs (0,1) (2,3) (4,5) (6,7), 16 bytes each.
 * Accumulator accRRCC holds the 2x2 block rows RR, columns CC as [r0c0, r0c1, r1c0, r1c1]. */
#include "../common/gemm_tile.h"
#include "../common/kernels.h"

void pt2q_qs8_gemm_ukernel_4x8__neon_i8mm(size_t m, size_t n, size_t k, const int8_t* a,
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
      /* [b0, b1, b0, b1] etc.: both rows of a 2x2 block start from the same bias pair */
      int32x4_t acc0101 = vcombine_s32(vld1_s32(bias), vld1_s32(bias));
      int32x4_t acc0123 = vcombine_s32(vld1_s32(bias + 2), vld1_s32(bias + 2));
      int32x4_t acc0145 = vcombine_s32(vld1_s32(bias + 4), vld1_s32(bias + 4));
      int32x4_t acc0167 = vcombine_s32(vld1_s32(bias + 6), vld1_s32(bias + 6));
      int32x4_t acc2301 = acc0101, acc2323 = acc0123, acc2345 = acc0145, acc2367 = acc0167;
      for (size_t kk = 0; kk < kp; kk += 8) {
        const int8x16_t va01 = vcombine_s8(vld1_s8(a0 + kk), vld1_s8(a1 + kk));
        const int8x16_t va23 = vcombine_s8(vld1_s8(a2 + kk), vld1_s8(a3 + kk));
        const int8x16_t vb01 = vld1q_s8(w);
        const int8x16_t vb23 = vld1q_s8(w + 16);
        const int8x16_t vb45 = vld1q_s8(w + 32);
        const int8x16_t vb67 = vld1q_s8(w + 48);
        w += 64;
        acc0101 = vmmlaq_s32(acc0101, va01, vb01);
        acc0123 = vmmlaq_s32(acc0123, va01, vb23);
        acc0145 = vmmlaq_s32(acc0145, va01, vb45);
        acc0167 = vmmlaq_s32(acc0167, va01, vb67);
        acc2301 = vmmlaq_s32(acc2301, va23, vb01);
        acc2323 = vmmlaq_s32(acc2323, va23, vb23);
        acc2345 = vmmlaq_s32(acc2345, va23, vb45);
        acc2367 = vmmlaq_s32(acc2367, va23, vb67);
      }
      int32x4_t acc[4][2] = {
          {vcombine_s32(vget_low_s32(acc0101), vget_low_s32(acc0123)),
           vcombine_s32(vget_low_s32(acc0145), vget_low_s32(acc0167))},
          {vcombine_s32(vget_high_s32(acc0101), vget_high_s32(acc0123)),
           vcombine_s32(vget_high_s32(acc0145), vget_high_s32(acc0167))},
          {vcombine_s32(vget_low_s32(acc2301), vget_low_s32(acc2323)),
           vcombine_s32(vget_low_s32(acc2345), vget_low_s32(acc2367))},
          {vcombine_s32(vget_high_s32(acc2301), vget_high_s32(acc2323)),
           vcombine_s32(vget_high_s32(acc2345), vget_high_s32(acc2367))},
      };
      pt2q_gemm_store_4x8(acc, scale, c + i * c_stride + j, c_stride, m - i < 4 ? m - i : 4,
                          n - j < 8 ? n - j : 8, p);
    }
  }
}

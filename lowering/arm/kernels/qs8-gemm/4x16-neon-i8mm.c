/* qs8 GEMM 4x16, armv8.6 i8mm: vmmlaq_s32 (a 2x8 by 8x2 block, 32 MACs each), 16 per 8-deep
 * k step. Packed with (nr, kr) = (16, 8): per 8 k, channel pairs (0,1) .. (14,15), 16 bytes
 * each. Accumulator accR<c> holds rows 2R, 2R+1 x channels 2c, 2c+1 as [r0c0, r0c1, r1c0, r1c1].
 * The two row pairs of A cost one INS each per k step: 2 per 16 SMMLA (4x8: 2 per 8), so the
 * vector pipes spend 8/9 of their slots on SMMLA. */
#include "../common/gemm_tile.h"
#include "../common/kernels.h"

#define PT2Q_MMLA8(acc, va, vb)        \
  acc##0 = vmmlaq_s32(acc##0, va, vb##0); \
  acc##1 = vmmlaq_s32(acc##1, va, vb##1); \
  acc##2 = vmmlaq_s32(acc##2, va, vb##2); \
  acc##3 = vmmlaq_s32(acc##3, va, vb##3); \
  acc##4 = vmmlaq_s32(acc##4, va, vb##4); \
  acc##5 = vmmlaq_s32(acc##5, va, vb##5); \
  acc##6 = vmmlaq_s32(acc##6, va, vb##6); \
  acc##7 = vmmlaq_s32(acc##7, va, vb##7);

/* [b2c, b2c+1, b2c, b2c+1]: both rows of a 2x2 block start from the same bias pair */
static inline int32x4_t pt2q_bias_pair(const int32_t* bias, size_t c) {
  return vcombine_s32(vld1_s32(bias + 2 * c), vld1_s32(bias + 2 * c));
}

/* Row r (0 or 1) of the 2x2 blocks acc_c0, acc_c1 .. acc_c3 as two int32x4 (8 channels). */
#define PT2Q_ROW8(get, x0, x1, x2, x3)                         \
  {vcombine_s32(get##_s32(x0), get##_s32(x1)), vcombine_s32(get##_s32(x2), get##_s32(x3))}

void pt2q_qs8_gemm_ukernel_4x16__neon_i8mm(size_t m, size_t n, size_t k, const int8_t* a,
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
      int32x4_t acc00 = pt2q_bias_pair(bias, 0), acc01 = pt2q_bias_pair(bias, 1);
      int32x4_t acc02 = pt2q_bias_pair(bias, 2), acc03 = pt2q_bias_pair(bias, 3);
      int32x4_t acc04 = pt2q_bias_pair(bias, 4), acc05 = pt2q_bias_pair(bias, 5);
      int32x4_t acc06 = pt2q_bias_pair(bias, 6), acc07 = pt2q_bias_pair(bias, 7);
      int32x4_t acc10 = acc00, acc11 = acc01, acc12 = acc02, acc13 = acc03;
      int32x4_t acc14 = acc04, acc15 = acc05, acc16 = acc06, acc17 = acc07;
      for (size_t kk = 0; kk < kp; kk += 8) {
        const int8x16_t va01 = vcombine_s8(vld1_s8(a0 + kk), vld1_s8(a1 + kk));
        const int8x16_t va23 = vcombine_s8(vld1_s8(a2 + kk), vld1_s8(a3 + kk));
        const int8x16_t vb0 = vld1q_s8(w), vb1 = vld1q_s8(w + 16);
        const int8x16_t vb2 = vld1q_s8(w + 32), vb3 = vld1q_s8(w + 48);
        const int8x16_t vb4 = vld1q_s8(w + 64), vb5 = vld1q_s8(w + 80);
        const int8x16_t vb6 = vld1q_s8(w + 96), vb7 = vld1q_s8(w + 112);
        w += 128;
        PT2Q_MMLA8(acc0, va01, vb)
        PT2Q_MMLA8(acc1, va23, vb)
      }
      const size_t rows = m - i < 4 ? m - i : 4;
      int32x4_t lo[4][2] = {
          PT2Q_ROW8(vget_low, acc00, acc01, acc02, acc03),
          PT2Q_ROW8(vget_high, acc00, acc01, acc02, acc03),
          PT2Q_ROW8(vget_low, acc10, acc11, acc12, acc13),
          PT2Q_ROW8(vget_high, acc10, acc11, acc12, acc13),
      };
      pt2q_gemm_store_4x8(lo, scale, c + i * c_stride + j, c_stride, rows,
                          n - j < 8 ? n - j : 8, p);
      if (n - j > 8) {
        int32x4_t hi[4][2] = {
            PT2Q_ROW8(vget_low, acc04, acc05, acc06, acc07),
            PT2Q_ROW8(vget_high, acc04, acc05, acc06, acc07),
            PT2Q_ROW8(vget_low, acc14, acc15, acc16, acc17),
            PT2Q_ROW8(vget_high, acc14, acc15, acc16, acc17),
        };
        pt2q_gemm_store_4x8(hi, scale + 8, c + i * c_stride + j + 8, c_stride, rows,
                            n - j - 8 < 8 ? n - j - 8 : 8, p);
      }
    }
  }
}

/* qd8-f32-qc4w GEMM 10x4 (8da4w), armv8.6 i8mm, nibbles unpacked in registers.
 * Packed by pt2q_qc4w_gemm_pack with (nr, kr) = (4, 8): a 16-deep step is 2 registers, one per
 * channel pair, whose low nibbles are the pair's 2 x 8 block of k0..k0+7 and high nibbles that
 * of k0+8..15; SHL #4 / AND 0xF0 give 16 * w. The 10 rows of A are interleaved once per row
 * block into `scratch` as row pairs (2 x 8 bytes per 8 k), so the loop loads SMMLA operands
 * directly: each unpacked register feeds 5 SMMLA (one per row pair), 20 SMMLA per 4 unpacks
 * (5/6 of the vector slots; 8 rows would cap it at 4/5).
 * 10 accumulators (acc<p><c>: rows 2p, 2p+1 x channels 2c, 2c+1 as [r0c0, r0c1, r1c0, r1c1])
 * leave room for all operands (an 8x8 tile needs 33 registers). They start at 0 (seeded with
 * the zero-point term, gcc 12 shuffles one with 2 MOVs per step) and hold 16 * sum A * W; the
 * term -16 * zp * wsum is added when the group ends, then the float partial follows the spec. */
#include "../common/neon.h"
#include "../common/kernels.h"

#define PT2Q_PAIRS(X) X(0) X(1) X(2) X(3) X(4)
#define PT2Q_MR 10
#define PT2Q_NP (PT2Q_MR / 2)

void pt2q_qd8_f32_qc4w_gemm_ukernel_10x4__neon_i8mm(size_t m, size_t n, size_t k, size_t group,
                                                   const int8_t* a, size_t a_stride,
                                                   const void* packed_w, float* c,
                                                   size_t c_stride,
                                                   const pt2q_qd8_row_params* rows,
                                                   const float* bias, int8_t* scratch) {
  const size_t groups = k / group;
  const size_t gbytes = 4 * (sizeof(float) + sizeof(int32_t)) + 2 * group;
  const int8x16_t mask = vdupq_n_s8((int8_t)0xF0);
  for (size_t i = 0; i < m; i += PT2Q_MR) {
    size_t row[PT2Q_MR];
    for (size_t r = 0; r < PT2Q_MR; r++) row[r] = i + r < m ? i + r : m - 1;  /* past m: repeat */
    for (size_t t = 0; t < k / 8; t++) {  /* scratch[t][p] = A[2p][8t..], A[2p+1][8t..] */
      for (size_t r = 0; r < PT2Q_MR; r++) {
        const int8_t* src = a + row[r] * a_stride + 8 * t;
        int8_t* dst = scratch + (t * PT2Q_NP + r / 2) * 16 + (r % 2) * 8;
        for (size_t q = 0; q < 8; q++) dst[q] = src[q];
      }
    }
    int32x4_t zp[PT2Q_NP];  /* per pair: -16 * [zp0, zp0, zp1, zp1] */
    for (size_t p = 0; p < PT2Q_NP; p++) {
      const int32_t z0 = -16 * rows[row[2 * p]].zero_point;
      const int32_t z1 = -16 * rows[row[2 * p + 1]].zero_point;
      const int32_t v[4] = {z0, z0, z1, z1};
      zp[p] = vld1q_s32(v);
    }
    for (size_t j = 0; j < n; j += 4) {
      const char* pw = (const char*)packed_w + (j / 4) * groups * gbytes;
      float out[PT2Q_NP][2][4];  /* [pair][channel pair][r0c0, r0c1, r1c0, r1c1] */
      for (size_t p = 0; p < PT2Q_NP; p++)
        for (size_t q = 0; q < 2; q++) vst1q_f32(out[p][q], vdupq_n_f32(0.0f));
      for (size_t g = 0; g < groups; g++) {
        const char* pg = pw + g * gbytes;
        const float* ws = (const float*)pg;
        const int32_t* wsum = (const int32_t*)(pg + 4 * sizeof(float));
        const int8_t* w = (const int8_t*)(pg + 4 * (sizeof(float) + sizeof(int32_t)));
        const int32x4_t vwsum0 = vcombine_s32(vld1_s32(wsum), vld1_s32(wsum));
        const int32x4_t vwsum1 = vcombine_s32(vld1_s32(wsum + 2), vld1_s32(wsum + 2));
#define PT2Q_INIT(p) int32x4_t acc##p##0 = vdupq_n_s32(0), acc##p##1 = acc##p##0;
        PT2Q_PAIRS(PT2Q_INIT)
        const int8_t* sa = scratch + g * group / 8 * (16 * PT2Q_NP);
        for (size_t kk = 0; kk < group; kk += 16) {
          const int8x16_t r0 = vld1q_s8(w), r1 = vld1q_s8(w + 16);
          w += 32;
          const int8x16_t lo0 = vshlq_n_s8(r0, 4), lo1 = vshlq_n_s8(r1, 4);
          const int8x16_t hi0 = vandq_s8(r0, mask), hi1 = vandq_s8(r1, mask);
#define PT2Q_MMLA(p)                                       \
  {                                                        \
    const int8x16_t vl = vld1q_s8(sa + 16 * (p));          \
    const int8x16_t vh = vld1q_s8(sa + 16 * PT2Q_NP + 16 * (p));     \
    acc##p##0 = vmmlaq_s32(acc##p##0, vl, lo0);            \
    acc##p##1 = vmmlaq_s32(acc##p##1, vl, lo1);            \
    acc##p##0 = vmmlaq_s32(acc##p##0, vh, hi0);            \
    acc##p##1 = vmmlaq_s32(acc##p##1, vh, hi1);            \
  }
          PT2Q_PAIRS(PT2Q_MMLA)
          sa += 32 * PT2Q_NP;
        }
        const float32x4_t vws0 = vcombine_f32(vld1_f32(ws), vld1_f32(ws));
        const float32x4_t vws1 = vcombine_f32(vld1_f32(ws + 2), vld1_f32(ws + 2));
#define PT2Q_GROUP_OUT1(p, q)                                                            \
  vst1q_f32(out[p][q], vaddq_f32(vld1q_f32(out[p][q]),                                  \
                                 vmulq_f32(vcvtq_f32_s32(vshrq_n_s32(                  \
                                     vmlaq_s32(acc##p##q, vwsum##q, zp[p]), 4)), vws##q)));
#define PT2Q_GROUP_OUT(p) PT2Q_GROUP_OUT1(p, 0) PT2Q_GROUP_OUT1(p, 1)
        PT2Q_PAIRS(PT2Q_GROUP_OUT)
        /* `out` lives in memory across the k loop (in registers it pushes gcc into spills) */
        __asm__ __volatile__("" : : "r"(out) : "memory");
      }
      const size_t cols = n - j < 4 ? n - j : 4;
      for (size_t r = 0; r < PT2Q_MR && i + r < m; r++) {
        const float s = rows[i + r].scale;
        float* cr = c + (i + r) * c_stride + j;
        for (size_t q = 0; q < cols; q++) {
          const float v = out[r / 2][q / 2][(r % 2) * 2 + q % 2];
          cr[q] = v * s + (bias != NULL ? bias[j + q] : 0.0f);
        }
      }
    }
  }
}

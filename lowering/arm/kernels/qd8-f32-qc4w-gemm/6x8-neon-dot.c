/* qd8-f32-qc4w GEMM 6x8 (8da4w), armv8.2 dotprod, nibbles unpacked in registers.
 * Packed by pt2q_qc4w_gemm_pack with (nr, kr) = (8, 4): a 16-deep step is 4 registers whose
 * low nibbles are the (8 channels x 8 k) block of k0..k0+7 and high nibbles that of k0+8..15.
 * SHL #4 turns the low nibbles into 16 * w (signed), AND 0xF0 the high ones: 2 instructions per
 * 2 weight registers, each used by 6 SDOT (one per row): 48 SDOT per 8 unpacks, so the vector
 * pipes spend 6/7 of their slots on SDOT. Accumulators hold 16 * acc (exact), shifted back
 * by 4 at the end of each group; the group's float partial follows the scalar spec. */
#include "../common/neon.h"
#include "../common/kernels.h"

#define PT2Q_ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)

void pt2q_qd8_f32_qc4w_gemm_ukernel_6x8__neon_dot(size_t m, size_t n, size_t k, size_t group,
                                                  const int8_t* a, size_t a_stride,
                                                  const void* packed_w, float* c,
                                                  size_t c_stride,
                                                  const pt2q_qd8_row_params* rows,
                                                  const float* bias, int8_t* scratch) {
  (void)scratch;
  const size_t groups = k / group;
  const size_t gbytes = 8 * (sizeof(float) + sizeof(int32_t)) + 4 * group;
  const int8x16_t mask = vdupq_n_s8((int8_t)0xF0);
  for (size_t j = 0; j < n; j += 8) {
    const char* pw = (const char*)packed_w + (j / 8) * groups * gbytes;
    const size_t cols = n - j < 8 ? n - j : 8;
    for (size_t i = 0; i < m; i += 6) {
      const int8_t* ar[6];
      int32_t zp16[6];
      for (size_t r = 0; r < 6; r++) {
        const size_t row = i + r < m ? i + r : m - 1;  /* rows past m repeat the last one */
        ar[r] = a + row * a_stride;
        zp16[r] = -16 * rows[row].zero_point;
      }
      float out[6][8];
      for (size_t r = 0; r < 6; r++)
        for (size_t q = 0; q < 8; q++) out[r][q] = 0.0f;
      for (size_t g = 0; g < groups; g++) {
        const char* pg = pw + g * gbytes;
        const float32x4_t ws0 = vld1q_f32((const float*)pg), ws1 = vld1q_f32((const float*)pg + 4);
        const int32_t* wsum = (const int32_t*)(pg + 8 * sizeof(float));
        const int32x4_t wsum0 = vld1q_s32(wsum), wsum1 = vld1q_s32(wsum + 4);
        const int8_t* w = (const int8_t*)(pg + 8 * (sizeof(float) + sizeof(int32_t)));
#define PT2Q_INIT(r)                                             \
  int32x4_t acc##r##0 = vmulq_s32(wsum0, vdupq_n_s32(zp16[r])); \
  int32x4_t acc##r##1 = vmulq_s32(wsum1, vdupq_n_s32(zp16[r])); \
  const int8_t* a##r = ar[r] + g * group;
        PT2Q_ROWS6(PT2Q_INIT)
        for (size_t kk = 0; kk < group; kk += 16) {
          const int8x16_t r0 = vld1q_s8(w), r1 = vld1q_s8(w + 16);
          const int8x16_t r2 = vld1q_s8(w + 32), r3 = vld1q_s8(w + 48);
          w += 64;
          const int8x16_t lo0 = vshlq_n_s8(r0, 4), lo1 = vshlq_n_s8(r1, 4);
          const int8x16_t lo2 = vshlq_n_s8(r2, 4), lo3 = vshlq_n_s8(r3, 4);
          const int8x16_t hi0 = vandq_s8(r0, mask), hi1 = vandq_s8(r1, mask);
          const int8x16_t hi2 = vandq_s8(r2, mask), hi3 = vandq_s8(r3, mask);
#define PT2Q_DOT(r)                                           \
  {                                                           \
    const int8x8_t vl = vld1_s8(a##r + kk);                   \
    const int8x8_t vh = vld1_s8(a##r + kk + 8);               \
    acc##r##0 = vdotq_lane_s32(acc##r##0, lo0, vl, 0);        \
    acc##r##1 = vdotq_lane_s32(acc##r##1, lo1, vl, 0);        \
    acc##r##0 = vdotq_lane_s32(acc##r##0, lo2, vl, 1);        \
    acc##r##1 = vdotq_lane_s32(acc##r##1, lo3, vl, 1);        \
    acc##r##0 = vdotq_lane_s32(acc##r##0, hi0, vh, 0);        \
    acc##r##1 = vdotq_lane_s32(acc##r##1, hi1, vh, 0);        \
    acc##r##0 = vdotq_lane_s32(acc##r##0, hi2, vh, 1);        \
    acc##r##1 = vdotq_lane_s32(acc##r##1, hi3, vh, 1);        \
  }
          PT2Q_ROWS6(PT2Q_DOT)
        }
#define PT2Q_GROUP_OUT(r)                                                                      \
  vst1q_f32(out[r], vaddq_f32(vld1q_f32(out[r]),                                              \
                              vmulq_f32(vcvtq_f32_s32(vshrq_n_s32(acc##r##0, 4)), ws0)));     \
  vst1q_f32(out[r] + 4, vaddq_f32(vld1q_f32(out[r] + 4),                                      \
                                  vmulq_f32(vcvtq_f32_s32(vshrq_n_s32(acc##r##1, 4)), ws1)));
        PT2Q_ROWS6(PT2Q_GROUP_OUT)
      }
      for (size_t r = 0; r < 6 && i + r < m; r++) {
        const float s = rows[i + r].scale;
        float* cr = c + (i + r) * c_stride + j;
        for (size_t q = 0; q < cols; q++) cr[q] = out[r][q] * s + (bias != NULL ? bias[j + q] : 0.0f);
      }
    }
  }
}

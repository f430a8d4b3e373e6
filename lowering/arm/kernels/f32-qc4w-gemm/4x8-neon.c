/* f32-qc4w GEMM 4x8 (int4wo), baseline NEON: per k, 8 unsigned nibbles (AND for the low half
 * of a 16-deep step, USHR for the high half) minus the group's zero points, widened to two
 * float32x4 shared by the 4 rows; per group, p * ws is added to the output (no fma).
 * Packed by pt2q_qc4w_gemm_pack with (nr, kr) = (8, 1). */
#include "../common/neon.h"
#include "../common/kernels.h"

static inline void pt2q_f32_store8(float* c, float32x4_t lo, float32x4_t hi, size_t cols) {
  float out[8];
  vst1q_f32(out, lo);
  vst1q_f32(out + 4, hi);
  for (size_t j = 0; j < cols; j++) c[j] = out[j];
}

/* p[r] += a_r * w for the 4 rows, w = (float)(u - zp) as two halves */
#define PT2Q_QC4W_STEP(u8, kk)                                                         \
  {                                                                                    \
    const int16x8_t w16 = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(u8)), zp16);        \
    const float32x4_t wl = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w16)));                \
    const float32x4_t wh = vcvtq_f32_s32(vmovl_s16(vget_high_s16(w16)));               \
    p0l = vaddq_f32(p0l, vmulq_n_f32(wl, a0[kk]));                                     \
    p0h = vaddq_f32(p0h, vmulq_n_f32(wh, a0[kk]));                                     \
    p1l = vaddq_f32(p1l, vmulq_n_f32(wl, a1[kk]));                                     \
    p1h = vaddq_f32(p1h, vmulq_n_f32(wh, a1[kk]));                                     \
    p2l = vaddq_f32(p2l, vmulq_n_f32(wl, a2[kk]));                                     \
    p2h = vaddq_f32(p2h, vmulq_n_f32(wh, a2[kk]));                                     \
    p3l = vaddq_f32(p3l, vmulq_n_f32(wl, a3[kk]));                                     \
    p3h = vaddq_f32(p3h, vmulq_n_f32(wh, a3[kk]));                                     \
  }

void pt2q_f32_qc4w_gemm_ukernel_4x8__neon(size_t m, size_t n, size_t k, size_t group,
                                          const float* a, size_t a_stride, const void* packed_w,
                                          float* c, size_t c_stride, const float* bias) {
  const size_t groups = k / group;
  const size_t gbytes = 8 * (sizeof(float) + sizeof(int32_t)) + 4 * group;
  for (size_t j = 0; j < n; j += 8) {
    const char* pw = (const char*)packed_w + (j / 8) * groups * gbytes;
    const size_t cols = n - j < 8 ? n - j : 8;
    float b8[8] = {0};
    for (size_t q = 0; q < cols && bias != NULL; q++) b8[q] = bias[j + q];
    for (size_t i = 0; i < m; i += 4) {
      const float* a0 = a + i * a_stride;
      const float* a1 = m - i > 1 ? a0 + a_stride : a0;
      const float* a2 = m - i > 2 ? a1 + a_stride : a1;
      const float* a3 = m - i > 3 ? a2 + a_stride : a2;
      float32x4_t o[4][2];
      for (size_t r = 0; r < 4; r++) o[r][0] = o[r][1] = vdupq_n_f32(0.0f);
      for (size_t g = 0; g < groups; g++) {
        const char* pg = pw + g * gbytes;
        const float32x4_t sl = vld1q_f32((const float*)pg), sh = vld1q_f32((const float*)pg + 4);
        const int32_t* zp = (const int32_t*)(pg + 8 * sizeof(float));
        const int16x8_t zp16 = vcombine_s16(vmovn_s32(vld1q_s32(zp)), vmovn_s32(vld1q_s32(zp + 4)));
        const uint8_t* w = (const uint8_t*)(pg + 8 * (sizeof(float) + sizeof(int32_t)));
        float32x4_t p0l = vdupq_n_f32(0.0f), p0h = p0l, p1l = p0l, p1h = p0l;
        float32x4_t p2l = p0l, p2h = p0l, p3l = p0l, p3h = p0l;
        for (size_t k0 = g * group; k0 < (g + 1) * group; k0 += 16, w += 64) {
          for (size_t t = 0; t < 8; t++) PT2Q_QC4W_STEP(vand_u8(vld1_u8(w + 8 * t), vdup_n_u8(0xF)), k0 + t)
          for (size_t t = 0; t < 8; t++) PT2Q_QC4W_STEP(vshr_n_u8(vld1_u8(w + 8 * t), 4), k0 + 8 + t)
        }
        const float32x4_t ps[4][2] = {{p0l, p0h}, {p1l, p1h}, {p2l, p2h}, {p3l, p3h}};
        for (size_t r = 0; r < 4; r++) {
          o[r][0] = vaddq_f32(o[r][0], vmulq_f32(ps[r][0], sl));
          o[r][1] = vaddq_f32(o[r][1], vmulq_f32(ps[r][1], sh));
        }
      }
      const float32x4_t bl = vld1q_f32(b8), bh = vld1q_f32(b8 + 4);
      for (size_t r = 0; r < 4 && i + r < m; r++) {
        pt2q_f32_store8(c + (i + r) * c_stride + j, vaddq_f32(o[r][0], bl),
                        vaddq_f32(o[r][1], bh), cols);
      }
    }
  }
}

/* f32-qc8w GEMM 4x8 (int8wo), baseline NEON: per k, 8 int8 weights widened to two float32x4
 * (shared by the 4 rows), then a multiply and an add per row and half (no fma: the scalar spec
 * rounds both). Packed by pt2q_qs8_gemm_pack with (nr, kr) = (8, 1). */
#include "../common/neon.h"
#include "../common/kernels.h"

static inline void pt2q_f32_store8(float* c, float32x4_t lo, float32x4_t hi, size_t cols) {
  float out[8];
  vst1q_f32(out, lo);
  vst1q_f32(out + 4, hi);
  for (size_t j = 0; j < cols; j++) c[j] = out[j];
}

void pt2q_f32_qc8w_gemm_ukernel_4x8__neon(size_t m, size_t n, size_t k, const float* a,
                                          size_t a_stride, const void* packed_w, float* c,
                                          size_t c_stride, const float* bias) {
  const size_t kp = (k + 7) / 8 * 8;
  const size_t block = 8 * (sizeof(int32_t) + sizeof(float)) + 8 * kp;
  for (size_t j = 0; j < n; j += 8) {
    const char* pw = (const char*)packed_w + (j / 8) * block;
    const float* ws = (const float*)(pw + 8 * sizeof(int32_t));
    const size_t cols = n - j < 8 ? n - j : 8;
    float b8[8] = {0};
    for (size_t q = 0; q < cols && bias != NULL; q++) b8[q] = bias[j + q];
    for (size_t i = 0; i < m; i += 4) {
      const float* a0 = a + i * a_stride;
      const float* a1 = m - i > 1 ? a0 + a_stride : a0;
      const float* a2 = m - i > 2 ? a1 + a_stride : a1;
      const float* a3 = m - i > 3 ? a2 + a_stride : a2;
      const int8_t* w = (const int8_t*)(pw + 8 * (sizeof(int32_t) + sizeof(float)));
      float32x4_t p0l = vdupq_n_f32(0.0f), p0h = p0l, p1l = p0l, p1h = p0l;
      float32x4_t p2l = p0l, p2h = p0l, p3l = p0l, p3h = p0l;
      for (size_t kk = 0; kk < k; kk++) {
        const int16x8_t w16 = vmovl_s8(vld1_s8(w + 8 * kk));
        const float32x4_t wl = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w16)));
        const float32x4_t wh = vcvtq_f32_s32(vmovl_s16(vget_high_s16(w16)));
        p0l = vaddq_f32(p0l, vmulq_n_f32(wl, a0[kk]));
        p0h = vaddq_f32(p0h, vmulq_n_f32(wh, a0[kk]));
        p1l = vaddq_f32(p1l, vmulq_n_f32(wl, a1[kk]));
        p1h = vaddq_f32(p1h, vmulq_n_f32(wh, a1[kk]));
        p2l = vaddq_f32(p2l, vmulq_n_f32(wl, a2[kk]));
        p2h = vaddq_f32(p2h, vmulq_n_f32(wh, a2[kk]));
        p3l = vaddq_f32(p3l, vmulq_n_f32(wl, a3[kk]));
        p3h = vaddq_f32(p3h, vmulq_n_f32(wh, a3[kk]));
      }
      const float32x4_t sl = vld1q_f32(ws), sh = vld1q_f32(ws + 4);
      const float32x4_t bl = vld1q_f32(b8), bh = vld1q_f32(b8 + 4);
      const float32x4_t rows[4][2] = {{p0l, p0h}, {p1l, p1h}, {p2l, p2h}, {p3l, p3h}};
      for (size_t r = 0; r < 4 && i + r < m; r++) {
        pt2q_f32_store8(c + (i + r) * c_stride + j, vaddq_f32(vmulq_f32(rows[r][0], sl), bl),
                        vaddq_f32(vmulq_f32(rows[r][1], sh), bh), cols);
      }
    }
  }
}

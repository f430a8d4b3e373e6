/* Quantized add, 16 elements per step: widen, subtract zero points, fp32 multiply then add. */
#include "../common/kernels.h"
#include "../common/neon_requant.h"

static inline int32x4_t pt2q_vadd4(int16x4_t a, int16x4_t b, float32x4_t am, float32x4_t bm,
                                   pt2q_neon_requant_params p) {
  const float32x4_t fa = vmulq_f32(vcvtq_f32_s32(vmovl_s16(a)), am);
  const float32x4_t fb = vmulq_f32(vcvtq_f32_s32(vmovl_s16(b)), bm);
  return pt2q_neon_requant_f32x4(vaddq_f32(fa, fb), p);
}

void pt2q_qs8_vadd_ukernel_x16__neon(size_t n, const int8_t* a, const int8_t* b, int8_t* y,
                                     int32_t a_zp, int32_t b_zp, float a_mul, float b_mul,
                                     int32_t y_zp, int32_t qmin, int32_t qmax) {
  const pt2q_neon_requant_params p = pt2q_neon_requant_init(y_zp, qmin, qmax);
  const int16x8_t vaz = vdupq_n_s16((int16_t)a_zp), vbz = vdupq_n_s16((int16_t)b_zp);
  const float32x4_t am = vdupq_n_f32(a_mul), bm = vdupq_n_f32(b_mul);
  for (size_t i = 0; i < n; i += 16) {
    const size_t cnt = n - i < 16 ? n - i : 16;
    const int8x16_t va = pt2q_neon_load_s8x16(a + i, cnt);
    const int8x16_t vb = pt2q_neon_load_s8x16(b + i, cnt);
    /* (x - zp) fits int16: [-255, 255] */
    const int16x8_t a_lo = vsubq_s16(vmovl_s8(vget_low_s8(va)), vaz);
    const int16x8_t a_hi = vsubq_s16(vmovl_s8(vget_high_s8(va)), vaz);
    const int16x8_t b_lo = vsubq_s16(vmovl_s8(vget_low_s8(vb)), vbz);
    const int16x8_t b_hi = vsubq_s16(vmovl_s8(vget_high_s8(vb)), vbz);
    const int32x4_t q0 = pt2q_vadd4(vget_low_s16(a_lo), vget_low_s16(b_lo), am, bm, p);
    const int32x4_t q1 = pt2q_vadd4(vget_high_s16(a_lo), vget_high_s16(b_lo), am, bm, p);
    const int32x4_t q2 = pt2q_vadd4(vget_low_s16(a_hi), vget_low_s16(b_hi), am, bm, p);
    const int32x4_t q3 = pt2q_vadd4(vget_high_s16(a_hi), vget_high_s16(b_hi), am, bm, p);
    const int8x16_t q = vcombine_s8(vqmovn_s16(vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1))),
                                    vqmovn_s16(vcombine_s16(vqmovn_s32(q2), vqmovn_s32(q3))));
    pt2q_neon_store_s8x16(y + i, q, cnt);
  }
}

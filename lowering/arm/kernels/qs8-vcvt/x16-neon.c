/* Requantize, 16 elements per step: (float)(x - in_zp) * scale, clamp, FCVTNS, + out_zp. */
#include "../common/kernels.h"
#include "../common/neon_requant.h"

void pt2q_qs8_vcvt_ukernel_x16__neon(size_t n, const int8_t* x, int8_t* y, int32_t in_zp,
                                     float scale, int32_t out_zp, int32_t qmin, int32_t qmax) {
  const pt2q_neon_requant_params p = pt2q_neon_requant_init(out_zp, qmin, qmax);
  const int16x8_t vz = vdupq_n_s16((int16_t)in_zp);
  const float32x4_t vs = vdupq_n_f32(scale);
  for (size_t i = 0; i < n; i += 16) {
    const size_t cnt = n - i < 16 ? n - i : 16;
    const int8x16_t vx = pt2q_neon_load_s8x16(x + i, cnt);
    const int16x8_t lo = vsubq_s16(vmovl_s8(vget_low_s8(vx)), vz);
    const int16x8_t hi = vsubq_s16(vmovl_s8(vget_high_s8(vx)), vz);
    const int8x8_t q_lo = pt2q_neon_requant_acc8(vmovl_s16(vget_low_s16(lo)),
                                                 vmovl_s16(vget_high_s16(lo)), vs, vs, p);
    const int8x8_t q_hi = pt2q_neon_requant_acc8(vmovl_s16(vget_low_s16(hi)),
                                                 vmovl_s16(vget_high_s16(hi)), vs, vs, p);
    pt2q_neon_store_s8x16(y + i, vcombine_s8(q_lo, q_hi), cnt);
  }
}

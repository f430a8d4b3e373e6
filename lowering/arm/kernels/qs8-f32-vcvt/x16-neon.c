/* Dequantize, 16 elements per step: (float)(x - zp) * scale. */
#include "../common/kernels.h"
#include "../common/neon_requant.h"

void pt2q_qs8_f32_vcvt_ukernel_x16__neon(size_t n, const int8_t* x, float* y, int32_t zp,
                                         float scale) {
  const int16x8_t vz = vdupq_n_s16((int16_t)zp);
  const float32x4_t vs = vdupq_n_f32(scale);
  for (size_t i = 0; i < n; i += 16) {
    const size_t cnt = n - i < 16 ? n - i : 16;
    const int8x16_t vx = pt2q_neon_load_s8x16(x + i, cnt);
    const int16x8_t lo = vsubq_s16(vmovl_s8(vget_low_s8(vx)), vz);
    const int16x8_t hi = vsubq_s16(vmovl_s8(vget_high_s8(vx)), vz);
    float tmp[16];
    float* dst = cnt < 16 ? tmp : y + i;
    vst1q_f32(dst, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), vs));
    vst1q_f32(dst + 4, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo))), vs));
    vst1q_f32(dst + 8, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), vs));
    vst1q_f32(dst + 12, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi))), vs));
    if (cnt < 16) memcpy(y + i, tmp, cnt * sizeof(float));
  }
}

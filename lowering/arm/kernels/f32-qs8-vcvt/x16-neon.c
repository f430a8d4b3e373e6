/* Quantize, 16 floats per step: x * inv_scale, clamp, FCVTNS, + zp, saturating narrow. */
#include "../common/kernels.h"
#include "../common/neon_requant.h"

void pt2q_f32_qs8_vcvt_ukernel_x16__neon(size_t n, const float* x, int8_t* y, float inv_scale,
                                         int32_t zp, int32_t qmin, int32_t qmax) {
  const pt2q_neon_requant_params p = pt2q_neon_requant_init(zp, qmin, qmax);
  const float32x4_t vs = vdupq_n_f32(inv_scale);
  for (size_t i = 0; i < n; i += 16) {
    const size_t cnt = n - i < 16 ? n - i : 16;
    float tmp[16] = {0};
    const float* src = x + i;
    if (cnt < 16) {
      memcpy(tmp, src, cnt * sizeof(float));
      src = tmp;
    }
    int32x4_t q[4];
    for (int v = 0; v < 4; v++) {
      q[v] = pt2q_neon_requant_f32x4(vmulq_f32(vld1q_f32(src + 4 * v), vs), p);
    }
    const int8x16_t r = vcombine_s8(vqmovn_s16(vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]))),
                                    vqmovn_s16(vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]))));
    pt2q_neon_store_s8x16(y + i, r, cnt);
  }
}

/* Average pool, 8 channels per step: int32 sums (vaddw_s16), one fp32 requantization. */
#include "../common/kernels.h"
#include "../common/neon_requant.h"

void pt2q_qs8_avgpool_ukernel_c8__neon(size_t pixels, size_t channels, size_t taps,
                                       const int8_t** indirection, int32_t in_zp, float scale,
                                       int8_t* out, int32_t out_zp, int32_t qmin, int32_t qmax) {
  const pt2q_neon_requant_params p = pt2q_neon_requant_init(out_zp, qmin, qmax);
  const int32x4_t vbias = vdupq_n_s32(-(int32_t)taps * in_zp);
  const float32x4_t vs = vdupq_n_f32(scale);
  for (size_t px = 0; px < pixels; px++) {
    const int8_t** in = indirection + px * taps;
    for (size_t c = 0; c < channels; c += 8) {
      const size_t nc = channels - c < 8 ? channels - c : 8;
      int32x4_t acc_lo = vbias, acc_hi = vbias;
      for (size_t t = 0; t < taps; t++) {
        const int16x8_t vi = vmovl_s8(pt2q_neon_load_s8x8(in[t] + c, nc));
        acc_lo = vaddw_s16(acc_lo, vget_low_s16(vi));
        acc_hi = vaddw_s16(acc_hi, vget_high_s16(vi));
      }
      pt2q_neon_store_s8x8(out + px * channels + c,
                           pt2q_neon_requant_acc8(acc_lo, acc_hi, vs, vs, p), nc);
    }
  }
}

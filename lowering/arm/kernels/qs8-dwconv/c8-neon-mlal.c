/* Depthwise conv, 8 channels per step, int16 widening multiply-accumulate (vmlal_s16).
 * Packed with cr = 8. The channel tail is loaded through a small buffer (no over-read). */
#include "../common/kernels.h"
#include "../common/neon_requant.h"

void pt2q_qs8_dwconv_ukernel_c8__neon_mlal(size_t pixels, size_t channels, size_t taps,
                                           const int8_t** indirection, const void* packed_w,
                                           int8_t* out, int32_t out_zp, int32_t qmin,
                                           int32_t qmax) {
  const pt2q_neon_requant_params p = pt2q_neon_requant_init(out_zp, qmin, qmax);
  const size_t block = 8 * (sizeof(int32_t) + sizeof(float)) + 8 * taps;
  for (size_t px = 0; px < pixels; px++) {
    const int8_t** in = indirection + px * taps;
    for (size_t c = 0; c < channels; c += 8) {
      const size_t nc = channels - c < 8 ? channels - c : 8;
      const char* pw = (const char*)packed_w + (c / 8) * block;
      const int8_t* w = (const int8_t*)(pw + 8 * (sizeof(int32_t) + sizeof(float)));
      int32x4_t acc_lo = vld1q_s32((const int32_t*)pw);
      int32x4_t acc_hi = vld1q_s32((const int32_t*)pw + 4);
      for (size_t t = 0; t < taps; t++) {
        const int16x8_t vi = vmovl_s8(pt2q_neon_load_s8x8(in[t] + c, nc));
        const int16x8_t vw = vmovl_s8(vld1_s8(w + t * 8));
        acc_lo = vmlal_s16(acc_lo, vget_low_s16(vi), vget_low_s16(vw));
        acc_hi = vmlal_s16(acc_hi, vget_high_s16(vi), vget_high_s16(vw));
      }
      const float* scale = (const float*)(pw + 8 * sizeof(int32_t));
      const int8x8_t q =
          pt2q_neon_requant_acc8(acc_lo, acc_hi, vld1q_f32(scale), vld1q_f32(scale + 4), p);
      pt2q_neon_store_s8x8(out + px * channels + c, q, nc);
    }
  }
}

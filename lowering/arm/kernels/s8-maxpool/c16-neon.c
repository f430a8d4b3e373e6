/* Max pool, 16 channels per step (vmaxq_s8), then the [qmin, qmax] clamp of a fused ReLU. */
#include "../common/kernels.h"
#include "../common/neon_requant.h"

void pt2q_s8_maxpool_ukernel_c16__neon(size_t pixels, size_t channels, size_t taps,
                                       const int8_t** indirection, int8_t* out, int32_t qmin,
                                       int32_t qmax) {
  const int8x16_t vmin = vdupq_n_s8((int8_t)qmin), vmax = vdupq_n_s8((int8_t)qmax);
  for (size_t px = 0; px < pixels; px++) {
    const int8_t** in = indirection + px * taps;
    for (size_t c = 0; c < channels; c += 16) {
      const size_t nc = channels - c < 16 ? channels - c : 16;
      int8x16_t acc = vdupq_n_s8(-128);
      for (size_t t = 0; t < taps; t++) acc = vmaxq_s8(acc, pt2q_neon_load_s8x16(in[t] + c, nc));
      pt2q_neon_store_s8x16(out + px * channels + c, vminq_s8(vmaxq_s8(acc, vmin), vmax), nc);
    }
  }
}

/* Indirection buffer (NHWC): one input-pixel pointer per (output pixel, kernel tap). Shared by
 * im2col, depthwise conv and the pools, so stride, padding and dilation live in one place. */
#include "../common/kernels.h"

void pt2q_indirection_init(size_t batch, size_t in_h, size_t in_w, size_t pixel_stride,
                           const int8_t* input, size_t out_h, size_t out_w, size_t kernel_h,
                           size_t kernel_w, size_t stride_h, size_t stride_w, size_t pad_top,
                           size_t pad_left, size_t dilation_h, size_t dilation_w,
                           const int8_t* pad, const int8_t** indirection) {
  const size_t taps = kernel_h * kernel_w;
  for (size_t b = 0; b < batch; b++) {
    for (size_t oy = 0; oy < out_h; oy++) {
      for (size_t ox = 0; ox < out_w; ox++) {
        const int8_t** row = indirection + ((b * out_h + oy) * out_w + ox) * taps;
        for (size_t ky = 0; ky < kernel_h; ky++) {
          /* signed: the tap may fall in the top/left padding */
          const long iy = (long)(oy * stride_h + ky * dilation_h) - (long)pad_top;
          for (size_t kx = 0; kx < kernel_w; kx++) {
            const long ix = (long)(ox * stride_w + kx * dilation_w) - (long)pad_left;
            const int inside = iy >= 0 && iy < (long)in_h && ix >= 0 && ix < (long)in_w;
            row[ky * kernel_w + kx] =
                inside ? input + ((b * in_h + (size_t)iy) * in_w + (size_t)ix) * pixel_stride
                       : pad;
          }
        }
      }
    }
  }
}

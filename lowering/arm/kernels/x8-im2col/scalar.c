/* im2col over an indirection buffer: row p of A is the (taps x channels) patch of pixel p. */
#include <string.h>

#include "../common/kernels.h"

void pt2q_x8_im2col_ukernel__scalar(size_t pixels, size_t taps, const int8_t** indirection,
                                    size_t channel_offset, size_t channels, int8_t* a,
                                    size_t a_stride) {
  for (size_t p = 0; p < pixels; p++) {
    int8_t* row = a + p * a_stride;
    for (size_t t = 0; t < taps; t++) {
      memcpy(row + t * channels, indirection[p * taps + t] + channel_offset, channels);
    }
  }
}

/* Shared prologue/epilogue of the 4x8 qs8 GEMM variants: row pointers (rows past m alias the
 * last valid row, so full tiles are computed and only valid rows stored) and the fp32
 * requantized store of a 4x8 int32 tile. */
#ifndef PT2Q_ARM_GEMM_TILE_H
#define PT2Q_ARM_GEMM_TILE_H

#include "neon_requant.h"

#define PT2Q_GEMM_ROWS(a, a_stride, m, i, a0, a1, a2, a3) \
  const int8_t* a0 = (a) + (i) * (a_stride);              \
  const int8_t* a1 = (m) - (i) > 1 ? a0 + (a_stride) : a0; \
  const int8_t* a2 = (m) - (i) > 2 ? a1 + (a_stride) : a1; \
  const int8_t* a3 = (m) - (i) > 3 ? a2 + (a_stride) : a2;

/* acc[r][0] holds columns 0..3 of row r, acc[r][1] columns 4..7. */
static inline void pt2q_gemm_store_4x8(int32x4_t acc[4][2], const float* scale, int8_t* c,
                                       size_t c_stride, size_t rows, size_t cols,
                                       pt2q_neon_requant_params p) {
  const float32x4_t s_lo = vld1q_f32(scale);
  const float32x4_t s_hi = vld1q_f32(scale + 4);
  for (size_t r = 0; r < rows; r++) {
    const int8x8_t q = pt2q_neon_requant_acc8(acc[r][0], acc[r][1], s_lo, s_hi, p);
    pt2q_neon_store_s8x8(c + r * c_stride, q, cols);
  }
}

#endif /* PT2Q_ARM_GEMM_TILE_H */

/* Weight packing of the 4-bit per-group GEMMs (qd8-f32-qc4w-gemm, f32-qc4w-gemm), run once at
 * lowering time.
 *
 * Per block of nr output channels, per group of `group` input columns (group % 16 == 0):
 *   float scale[nr], int32 extra[nr], then group / 16 steps of nr * 8 bytes.
 * A 16-deep step holds two 8-deep halves in the qs8-gemm (nr, kr) order: byte
 *   p = (kq * nr + j) * kr + i   (kq < 8 / kr, j < nr, i < kr)
 * carries W[n0 + j, k0 + kq * kr + i] in its low nibble and W[n0 + j, k0 + 8 + kq * kr + i] in
 * its high nibble (the low 4 bits of each int8 value: two's complement for signed weights).
 * Channels past n are zero (scale 0, extra 0, nibbles 0), so kernels may compute full tiles.
 * `extra` is the group's weight sum for qd8-f32-qc4w and its zero point for f32-qc4w. */
#include "../common/kernels.h"

size_t pt2q_qc4w_gemm_packed_size(size_t n, size_t k, size_t group, size_t nr) {
  const size_t blocks = (n + nr - 1) / nr, groups = k / group;
  return blocks * groups * (nr * (sizeof(float) + sizeof(int32_t)) + nr * group / 2);
}

void pt2q_qc4w_gemm_pack(size_t n, size_t k, size_t group, size_t nr, size_t kr, const int8_t* w,
                         const float* scale, const int32_t* extra, void* packed_w) {
  const size_t groups = k / group;
  char* out = (char*)packed_w;
  for (size_t n0 = 0; n0 < n; n0 += nr) {
    for (size_t g = 0; g < groups; g++) {
      float* s = (float*)out;
      int32_t* e = (int32_t*)(out + nr * sizeof(float));
      uint8_t* wp = (uint8_t*)(out + nr * (sizeof(float) + sizeof(int32_t)));
      for (size_t j = 0; j < nr; j++) {
        s[j] = n0 + j < n ? scale[(n0 + j) * groups + g] : 0.0f;
        e[j] = n0 + j < n ? extra[(n0 + j) * groups + g] : 0;
      }
      for (size_t k0 = g * group; k0 < (g + 1) * group; k0 += 16) {
        for (size_t kq = 0; kq < 8 / kr; kq++) {
          for (size_t j = 0; j < nr; j++) {
            for (size_t i = 0; i < kr; i++) {
              const size_t nn = n0 + j, kk = k0 + kq * kr + i;
              const uint8_t lo = nn < n ? (uint8_t)(w[nn * k + kk] & 0xF) : 0;
              const uint8_t hi = nn < n ? (uint8_t)(w[nn * k + kk + 8] & 0xF) : 0;
              *wp++ = (uint8_t)(lo | (hi << 4));
            }
          }
        }
      }
      out = (char*)wp;
    }
  }
}

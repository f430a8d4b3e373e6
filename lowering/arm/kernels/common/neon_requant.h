/* NEON fp32 requantization and partial loads/stores shared by the NEON variants.
 * Same math as requant.h: multiply, clamp in float, FCVTNS (round half to even), + zp. */
#ifndef PT2Q_ARM_NEON_REQUANT_H
#define PT2Q_ARM_NEON_REQUANT_H

#include <stddef.h>
#include <string.h>

#include "neon.h"

typedef struct {
  float32x4_t lo;  /* (qmin - zp) as float */
  float32x4_t hi;  /* (qmax - zp) as float */
  int32x4_t zp;
} pt2q_neon_requant_params;

static inline pt2q_neon_requant_params pt2q_neon_requant_init(int32_t zp, int32_t qmin,
                                                              int32_t qmax) {
  pt2q_neon_requant_params p;
  p.lo = vdupq_n_f32((float)(qmin - zp));
  p.hi = vdupq_n_f32((float)(qmax - zp));
  p.zp = vdupq_n_s32(zp);
  return p;
}

/* (4 floats already multiplied by the scale) -> 4 int32 in [qmin, qmax] */
static inline int32x4_t pt2q_neon_requant_f32x4(float32x4_t y, pt2q_neon_requant_params p) {
  y = vminq_f32(vmaxq_f32(y, p.lo), p.hi);
  return vaddq_s32(vcvtnq_s32_f32(y), p.zp);
}

/* 8 int32 accumulators times 8 scales -> 8 int8 */
static inline int8x8_t pt2q_neon_requant_acc8(int32x4_t acc_lo, int32x4_t acc_hi,
                                              float32x4_t s_lo, float32x4_t s_hi,
                                              pt2q_neon_requant_params p) {
  const int32x4_t q_lo = pt2q_neon_requant_f32x4(vmulq_f32(vcvtq_f32_s32(acc_lo), s_lo), p);
  const int32x4_t q_hi = pt2q_neon_requant_f32x4(vmulq_f32(vcvtq_f32_s32(acc_hi), s_hi), p);
  return vqmovn_s16(vcombine_s16(vqmovn_s32(q_lo), vqmovn_s32(q_hi)));
}

/* Store the first n (<= 8) lanes. */
static inline void pt2q_neon_store_s8x8(int8_t* dst, int8x8_t v, size_t n) {
  if (n >= 8) {
    vst1_s8(dst, v);
  } else {
    int8_t tmp[8];
    vst1_s8(tmp, v);
    memcpy(dst, tmp, n);
  }
}

/* Load n (<= 8) bytes, the rest zero, without reading past src + n. */
static inline int8x8_t pt2q_neon_load_s8x8(const int8_t* src, size_t n) {
  if (n >= 8) return vld1_s8(src);
  int8_t tmp[8] = {0};
  memcpy(tmp, src, n);
  return vld1_s8(tmp);
}

static inline int8x16_t pt2q_neon_load_s8x16(const int8_t* src, size_t n) {
  if (n >= 16) return vld1q_s8(src);
  int8_t tmp[16] = {0};
  memcpy(tmp, src, n);
  return vld1q_s8(tmp);
}

static inline void pt2q_neon_store_s8x16(int8_t* dst, int8x16_t v, size_t n) {
  if (n >= 16) {
    vst1q_s8(dst, v);
  } else {
    int8_t tmp[16];
    vst1q_s8(tmp, v);
    memcpy(dst, tmp, n);
  }
}

#endif /* PT2Q_ARM_NEON_REQUANT_H */

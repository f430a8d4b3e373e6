/* Deterministic xorshift64* generator for the driver's sweeps. */
#ifndef PT2Q_ARM_RNG_H
#define PT2Q_ARM_RNG_H

#include <stddef.h>
#include <stdint.h>

static uint64_t g_rng = 0x9E3779B97F4A7C15ULL;

static inline uint32_t rng_u32(void) {
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return (uint32_t)((g_rng * 0x2545F4914F6CDD1DULL) >> 32);
}
/* uniform int in [lo, hi] */
static inline int32_t rng_int(int32_t lo, int32_t hi) {
  return lo + (int32_t)(rng_u32() % (uint32_t)(hi - lo + 1));
}
/* float in [lo, hi], denser near lo (t^2), deterministic */
static inline float rng_scale(float lo, float hi) {
  const float t = (float)(rng_u32() % 1000000u) / 1000000.0f;
  return lo + (hi - lo) * t * t;
}
static inline void rng_fill_s8(int8_t* p, size_t n, int32_t lo, int32_t hi) {
  for (size_t i = 0; i < n; i++) p[i] = (int8_t)rng_int(lo, hi);
}
/* a (qmin, qmax) clamp: full range, ReLU at the zero point, or a random narrower window */
static inline void rng_clamp(int32_t zp, int kind, int32_t* qmin, int32_t* qmax) {
  if (kind == 0) {
    *qmin = -128, *qmax = 127;
  } else if (kind == 1) {
    *qmin = zp, *qmax = 127;
  } else {
    *qmin = rng_int(-128, 0), *qmax = rng_int(1, 127);
  }
}

#endif /* PT2Q_ARM_RNG_H */

/* The one NEON compat header: native <arm_neon.h> on aarch64, SIMDe's emulation elsewhere.
 *
 * Intrinsics SIMDe 0.7.4 lacks (vmmlaq_s32, vcvtnq_s32_f32) are defined here once, with the
 * exact ARM semantics, so kernel sources never test the host. */
#ifndef PT2Q_ARM_NEON_H
#define PT2Q_ARM_NEON_H

#if defined(__aarch64__)
#include <arm_neon.h>
#define PT2Q_NATIVE_NEON 1
#else
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/arm/neon.h>
#define PT2Q_NATIVE_NEON 0
#endif

#include <stdint.h>

#if !PT2Q_NATIVE_NEON
/* SMMLA: r (2x2 int32, row-major) += a (2x8 int8, row-major) * b^T (b: 2x8 int8, row-major). */
static inline int32x4_t pt2q_vmmlaq_s32(int32x4_t r, int8x16_t a, int8x16_t b) {
  int32_t rv[4];
  int8_t av[16], bv[16];
  vst1q_s32(rv, r);
  vst1q_s8(av, a);
  vst1q_s8(bv, b);
  for (int i = 0; i < 2; i++) {
    for (int j = 0; j < 2; j++) {
      int32_t acc = 0;
      for (int k = 0; k < 8; k++) acc += (int32_t)av[8 * i + k] * (int32_t)bv[8 * j + k];
      rv[2 * i + j] += acc;
    }
  }
  return vld1q_s32(rv);
}
#define vmmlaq_s32 pt2q_vmmlaq_s32
#endif

#if !PT2Q_NATIVE_NEON
/* FCVTNS: float -> int32, round to nearest, ties to even (SIMDe 0.7.4 has no vcvtnq). */
#define vcvtnq_s32_f32(x) vcvtq_s32_f32(vrndnq_f32(x))
#endif

#endif /* PT2Q_ARM_NEON_H */

/* Scalar requantization: the numeric spec shared by every kernel family.
 *
 * y = (float)acc * scale; y = clamp(y, qmin - zp, qmax - zp); q = lrintf(y) + zp.
 * lrintf in the default rounding mode rounds half to even, like torch.round and FCVTNS. */
#ifndef PT2Q_ARM_REQUANT_H
#define PT2Q_ARM_REQUANT_H

#include <math.h>
#include <stdint.h>

static inline int8_t pt2q_requant_f32(float y, int32_t zp, int32_t qmin, int32_t qmax) {
  const float lo = (float)(qmin - zp);
  const float hi = (float)(qmax - zp);
  y = y < lo ? lo : y;
  y = y > hi ? hi : y;
  return (int8_t)((int32_t)lrintf(y) + zp);
}

static inline int8_t pt2q_requant_acc(int32_t acc, float scale, int32_t zp, int32_t qmin,
                                      int32_t qmax) {
  return pt2q_requant_f32((float)acc * scale, zp, qmin, qmax);
}

#endif /* PT2Q_ARM_REQUANT_H */

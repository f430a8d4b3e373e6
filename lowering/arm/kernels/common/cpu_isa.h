/* Which kernel ISA level this CPU runs: 0 scalar, 1 neon, 2 dot, 3 i8mm. On aarch64 from the
 * kernel's HWCAP bits; on other hosts (SIMDe emulation) every level. PT2Q_ARM_ISA (a name)
 * lowers the level, e.g. to test the mlal path on a CPU that has dotprod. */
#ifndef PT2Q_ARM_CPU_ISA_H
#define PT2Q_ARM_CPU_ISA_H

#include <stdlib.h>
#include <string.h>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

static const char* const pt2q_isa_names[4] = {"scalar", "neon", "dot", "i8mm"};

static inline int pt2q_cpu_isa(void) {
  int level = 3;
#if defined(__aarch64__) && defined(__linux__)
  const unsigned long hwcap = getauxval(AT_HWCAP), hwcap2 = getauxval(AT_HWCAP2);
  level = 1;                                       /* ASIMD is mandatory on aarch64 */
  if (hwcap & (1UL << 20)) level = 2;              /* HWCAP_ASIMDDP */
  if (level == 2 && (hwcap2 & (1UL << 13))) level = 3; /* HWCAP2_I8MM */
#elif defined(__aarch64__)
  level = 1;
#endif
  const char* forced = getenv("PT2Q_ARM_ISA");
  if (forced != NULL) {
    for (int i = 0; i < 4; i++) {
      if (strcmp(forced, pt2q_isa_names[i]) == 0 && i < level) level = i;
    }
  }
  return level;
}

#endif /* PT2Q_ARM_CPU_ISA_H */

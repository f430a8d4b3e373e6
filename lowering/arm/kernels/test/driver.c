/* Kernel test driver: every variant the CPU supports against the scalar reference, bit-exactly,
 * on random sweeps (sizes below / equal to / multiples of the tile; zero points, scales,
 * clamps), then against golden vectors written by the Python reference (check.py).
 *
 *   driver [golden.bin]      exit 0 when everything matched, 1 on any mismatch, 2 on bad input
 *
 * The variant table (kernels_table.h) is generated from kernels/__init__.py; the ISA gate uses
 * the kernel's isa index (0 scalar, 1 neon, 2 dot, 3 i8mm) against pt2q_cpu_isa(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/kernels.h"
#include "cpu_isa.h"
#include "kernels_table.h"
#include "rng.h"

static int g_failures = 0;
static long g_checks = 0;

static int check_bytes(const char* what, const char* variant, const void* got, const void* want,
                       size_t nbytes, const char* case_desc) {
  g_checks++;
  if (memcmp(got, want, nbytes) == 0) return 1;
  const unsigned char* g = (const unsigned char*)got;
  const unsigned char* w = (const unsigned char*)want;
  size_t i = 0;
  while (g[i] == w[i]) i++;
  if (g_failures < 20) {
    fprintf(stderr, "MISMATCH %s %s (%s): first differing byte %zu: got %d want %d\n", what,
            variant, case_desc, i, (int)(signed char)g[i], (int)(signed char)w[i]);
  }
  g_failures++;
  return 0;
}

#include "driver_gemm.h"
#include "driver_golden.h"
#include "driver_llm.h"
#include "driver_pool.h"
#include "driver_vec.h"

int main(int argc, char** argv) {
  const int isa = pt2q_cpu_isa();
  printf("cpu isa: %s\n", pt2q_isa_names[isa]);
  sweep_gemm(isa);
  sweep_qd8_gemm(isa);
  sweep_llm_gemm(isa);
  sweep_dwconv(isa);
  sweep_pools(isa);
  sweep_vec(isa);
  if (argc > 1 && run_golden(argv[1], isa) != 0) return 2;
  printf("checks: %ld, mismatches: %d\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}

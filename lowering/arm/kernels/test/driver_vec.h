/* Driver sweeps for the elementwise families (included by driver.c only). */

static void vec_case(int isa, size_t n, int clamp_kind) {
  int8_t* a = malloc(n + 1);
  int8_t* b = malloc(n + 1);
  float* f = malloc((n + 1) * sizeof(float));
  int8_t* want = malloc(n + 1);
  int8_t* got = malloc(n + 1);
  float* fwant = malloc((n + 1) * sizeof(float));
  float* fgot = malloc((n + 1) * sizeof(float));
  rng_fill_s8(a, n, -128, 127);
  rng_fill_s8(b, n, -128, 127);
  const int32_t a_zp = rng_int(-128, 127), b_zp = rng_int(-128, 127), zp = rng_int(-128, 127);
  int32_t qmin, qmax;
  rng_clamp(zp, clamp_kind, &qmin, &qmax);
  const float s1 = rng_scale(0.05f, 2.0f), s2 = rng_scale(0.05f, 2.0f);
  const float s3 = rng_scale(1e-4f, 0.02f);
  for (size_t i = 0; i < n; i++) {
    /* include exact .5 ties in units of the scale: round-half-even must agree */
    f[i] = (i % 5 == 0) ? ((float)rng_int(-300, 300) + 0.5f) / s1 : (float)rng_int(-40000, 40000) / 1000.0f;
  }
  char desc[96];
  snprintf(desc, sizeof desc, "n=%zu zp=%d clamp=[%d,%d]", n, zp, qmin, qmax);
  for (size_t v = 0; v < PT2Q_QS8_VADD_VARIANTS; v++) {
    const pt2q_qs8_vadd_variant* kv = &pt2q_qs8_vadd_variants[v];
    if (kv->isa > isa) continue;
    kv->fn(n, a, b, v == 0 ? want : got, a_zp, b_zp, s1, s2, zp, qmin, qmax);
    if (v > 0) check_bytes("qs8-vadd", kv->name, got, want, n, desc);
  }
  for (size_t v = 0; v < PT2Q_QS8_VMUL_VARIANTS; v++) {
    const pt2q_qs8_vmul_variant* kv = &pt2q_qs8_vmul_variants[v];
    if (kv->isa > isa) continue;
    kv->fn(n, a, b, v == 0 ? want : got, a_zp, b_zp, s3, zp, qmin, qmax);
    if (v > 0) check_bytes("qs8-vmul", kv->name, got, want, n, desc);
  }
  for (size_t v = 0; v < PT2Q_F32_QS8_VCVT_VARIANTS; v++) {
    const pt2q_f32_qs8_vcvt_variant* kv = &pt2q_f32_qs8_vcvt_variants[v];
    if (kv->isa > isa) continue;
    kv->fn(n, f, v == 0 ? want : got, s1, zp, qmin, qmax);
    if (v > 0) check_bytes("f32-qs8-vcvt", kv->name, got, want, n, desc);
  }
  for (size_t v = 0; v < PT2Q_QS8_F32_VCVT_VARIANTS; v++) {
    const pt2q_qs8_f32_vcvt_variant* kv = &pt2q_qs8_f32_vcvt_variants[v];
    if (kv->isa > isa) continue;
    kv->fn(n, a, v == 0 ? fwant : fgot, a_zp, s2);
    if (v > 0) check_bytes("qs8-f32-vcvt", kv->name, fgot, fwant, n * sizeof(float), desc);
  }
  for (size_t v = 0; v < PT2Q_QS8_VCVT_VARIANTS; v++) {
    const pt2q_qs8_vcvt_variant* kv = &pt2q_qs8_vcvt_variants[v];
    if (kv->isa > isa) continue;
    kv->fn(n, a, v == 0 ? want : got, a_zp, s1, zp, qmin, qmax);
    if (v > 0) check_bytes("qs8-vcvt", kv->name, got, want, n, desc);
  }
  free(a), free(b), free(f), free(want), free(got), free(fwant), free(fgot);
}

static void sweep_vec(int isa) {
  static const size_t ns[] = {1, 15, 16, 17, 32, 100, 1000};
  for (size_t i = 0; i < 7; i++)
    for (int clamp = 0; clamp < 3; clamp++) vec_case(isa, ns[i], clamp);
}

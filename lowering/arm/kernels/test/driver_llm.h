/* Driver sweeps for the LLM GEMMs (f32-qc8w, f32-qc4w, qd8-f32-qc4w; included by driver.c only):
 * every variant the CPU runs against the scalar spec, bit-exactly, on sizes below, equal to and
 * past the tiles (m up to 2 row blocks, n with column tails), groups 16 / 32 / 64. */

static float rng_f32(float lo, float hi) { return lo + (hi - lo) * (float)(rng_u32() % 1000001u) / 1e6f; }

static void qc8w_case(int isa, size_t m, size_t n, size_t k, int with_bias) {
  float* a = malloc(m * k * sizeof(float));
  int8_t* w = malloc(n * k);
  int32_t* zero = calloc(n, sizeof(int32_t));
  float* ws = malloc(n * sizeof(float));
  float* bias = malloc(n * sizeof(float));
  float* want = malloc(m * n * sizeof(float));
  float* got = malloc(m * n * sizeof(float));
  for (size_t i = 0; i < m * k; i++) a[i] = rng_f32(-4.0f, 4.0f);
  rng_fill_s8(w, n * k, -128, 127);
  for (size_t j = 0; j < n; j++) ws[j] = rng_scale(1e-4f, 0.05f), bias[j] = rng_f32(-1.0f, 1.0f);
  char desc[96];
  snprintf(desc, sizeof desc, "m=%zu n=%zu k=%zu bias=%d", m, n, k, with_bias);
  for (size_t v = 0; v < PT2Q_F32_QC8W_GEMM_VARIANTS; v++) {
    const pt2q_f32_qc8w_gemm_variant* kv = &pt2q_f32_qc8w_gemm_variants[v];
    if (kv->isa > isa) continue;
    void* packed = malloc(pt2q_qs8_gemm_packed_size(n, k, kv->tile[1], kv->tile[2]));
    pt2q_qs8_gemm_pack(n, k, kv->tile[1], kv->tile[2], w, zero, ws, packed);
    memset(v == 0 ? want : got, 0x55, m * n * sizeof(float));
    kv->fn(m, n, k, a, k, packed, v == 0 ? want : got, n, with_bias ? bias : NULL);
    if (v > 0) check_bytes("f32-qc8w-gemm", kv->name, got, want, m * n * sizeof(float), desc);
    free(packed);
  }
  free(a), free(w), free(zero), free(ws), free(bias), free(want), free(got);
}

/* One 4-bit per-group case: `dynamic` picks qd8-f32-qc4w (signed weights, int8 A) or f32-qc4w
 * (unsigned weights with zero points, float A). */
static void qc4w_case(int isa, int dynamic, size_t m, size_t n, size_t k, size_t group,
                      int with_bias) {
  const size_t groups = k / group;
  int8_t* a8 = malloc(m * k);
  float* af = malloc(m * k * sizeof(float));
  int8_t* w = malloc(n * k);
  float* ws = malloc(n * groups * sizeof(float));
  int32_t* extra = malloc(n * groups * sizeof(int32_t));
  float* bias = malloc(n * sizeof(float));
  int8_t* scratch = malloc(16 * k);
  pt2q_qd8_row_params* rows = malloc(m * sizeof(pt2q_qd8_row_params));
  float* want = malloc(m * n * sizeof(float));
  float* got = malloc(m * n * sizeof(float));
  rng_fill_s8(a8, m * k, -128, 127);
  for (size_t i = 0; i < m * k; i++) af[i] = rng_f32(-4.0f, 4.0f);
  if (dynamic) rng_fill_s8(w, n * k, -8, 7);
  else rng_fill_s8(w, n * k, 0, 15);
  for (size_t j = 0; j < n; j++) {
    bias[j] = rng_f32(-1.0f, 1.0f);
    for (size_t g = 0; g < groups; g++) {
      ws[j * groups + g] = rng_scale(1e-3f, 0.2f);
      int32_t e = 0;
      for (size_t kk = g * group; kk < (g + 1) * group; kk++) e += w[j * k + kk];
      extra[j * groups + g] = dynamic ? e : rng_int(0, 15);
    }
  }
  for (size_t i = 0; i < m; i++) {
    rows[i].zero_point = rng_int(-128, 127);
    rows[i].scale = rng_scale(1e-3f, 0.5f);
  }
  char desc[112];
  snprintf(desc, sizeof desc, "m=%zu n=%zu k=%zu group=%zu bias=%d", m, n, k, group, with_bias);
  const size_t count = dynamic ? PT2Q_QD8_F32_QC4W_GEMM_VARIANTS : PT2Q_F32_QC4W_GEMM_VARIANTS;
  for (size_t v = 0; v < count; v++) {
    const char* name = dynamic ? pt2q_qd8_f32_qc4w_gemm_variants[v].name
                               : pt2q_f32_qc4w_gemm_variants[v].name;
    const int kisa = dynamic ? pt2q_qd8_f32_qc4w_gemm_variants[v].isa
                             : pt2q_f32_qc4w_gemm_variants[v].isa;
    const size_t* tile = dynamic ? pt2q_qd8_f32_qc4w_gemm_variants[v].tile
                                 : pt2q_f32_qc4w_gemm_variants[v].tile;
    if (kisa > isa) continue;
    void* packed = malloc(pt2q_qc4w_gemm_packed_size(n, k, group, tile[1]));
    pt2q_qc4w_gemm_pack(n, k, group, tile[1], tile[2], w, ws, extra, packed);
    float* out = v == 0 ? want : got;
    memset(out, 0x55, m * n * sizeof(float));
    const float* b = with_bias ? bias : NULL;
    if (dynamic) {
      pt2q_qd8_f32_qc4w_gemm_variants[v].fn(m, n, k, group, a8, k, packed, out, n, rows, b,
                                            scratch);
    } else {
      pt2q_f32_qc4w_gemm_variants[v].fn(m, n, k, group, af, k, packed, out, n, b);
    }
    if (v > 0) check_bytes(dynamic ? "qd8-f32-qc4w-gemm" : "f32-qc4w-gemm", name, got, want,
                           m * n * sizeof(float), desc);
    free(packed);
  }
  free(a8), free(af), free(w), free(ws), free(extra), free(bias), free(scratch), free(rows);
  free(want), free(got);
}

static void sweep_llm_gemm(int isa) {
  static const size_t ms[] = {1, 3, 6, 10, 23};
  static const size_t ns[] = {1, 7, 8, 17, 32};
  for (size_t im = 0; im < 5; im++) {
    for (size_t in = 0; in < 5; in++) {
      qc8w_case(isa, ms[im], ns[in], 1 + 7 * in + im, (int)(in % 2));
      for (int dynamic = 0; dynamic < 2; dynamic++) {
        qc4w_case(isa, dynamic, ms[im], ns[in], 64, 16 << (in % 3), (int)(im % 2));
      }
    }
  }
  qc8w_case(isa, 19, 70, 300, 1);
  qc4w_case(isa, 0, 19, 70, 256, 32, 1);
  qc4w_case(isa, 1, 19, 70, 256, 32, 1);
  qc4w_case(isa, 1, 9, 24, 512, 128, 0);
}

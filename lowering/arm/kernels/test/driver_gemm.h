/* Driver sweeps for qs8-gemm and qs8-dwconv (included by driver.c only). */

static size_t round_up8(size_t x) { return (x + 7) / 8 * 8; }

/* One GEMM case through every available variant, each checked against the scalar spec. */
static void gemm_case(int isa, size_t m, size_t n, size_t k, int clamp_kind) {
  const size_t kp = round_up8(k), a_stride = kp + 3 * (rng_u32() % 2);
  int8_t* a = malloc(m * a_stride + 8);
  int8_t* w = malloc(n * k);
  int32_t* bias = malloc(n * sizeof(int32_t));
  float* scale = malloc(n * sizeof(float));
  int8_t* want = malloc(m * n);
  int8_t* got = malloc(m * n);
  rng_fill_s8(a, m * a_stride + 8, -128, 127);
  rng_fill_s8(w, n * k, -127, 127);
  const int32_t zp = rng_int(-128, 127);
  int32_t qmin, qmax;
  rng_clamp(zp, clamp_kind, &qmin, &qmax);
  /* scales such that outputs spread over the int8 range */
  const float base = 1.0f / (float)(k * 64 + 1);
  for (size_t j = 0; j < n; j++) {
    bias[j] = rng_int(-20000, 20000);
    scale[j] = rng_scale(base * 0.1f, base * 4.0f);
  }
  char desc[128];
  snprintf(desc, sizeof desc, "m=%zu n=%zu k=%zu zp=%d clamp=[%d,%d]", m, n, k, zp, qmin, qmax);
  for (size_t v = 0; v < PT2Q_QS8_GEMM_VARIANTS; v++) {
    const pt2q_qs8_gemm_variant* kv = &pt2q_qs8_gemm_variants[v];
    if (kv->isa > isa) continue;
    void* packed = malloc(pt2q_qs8_gemm_packed_size(n, k, kv->tile[1], kv->tile[2]));
    pt2q_qs8_gemm_pack(n, k, kv->tile[1], kv->tile[2], w, bias, scale, packed);
    memset(v == 0 ? want : got, 0x55, m * n);
    kv->fn(m, n, k, a, a_stride, packed, v == 0 ? want : got, n, zp, qmin, qmax);
    if (v > 0) check_bytes("qs8-gemm", kv->name, got, want, m * n, desc);
    free(packed);
  }
  free(a), free(w), free(bias), free(scale), free(want), free(got);
}

static void sweep_gemm(int isa) {
  static const size_t ms[] = {1, 3, 4, 5, 8, 11};
  static const size_t ns[] = {1, 7, 8, 9, 16, 19, 32};
  static const size_t ks[] = {1, 7, 8, 9, 16, 33};
  for (size_t im = 0; im < 6; im++)
    for (size_t in = 0; in < 7; in++)
      for (size_t ik = 0; ik < 6; ik++) gemm_case(isa, ms[im], ns[in], ks[ik], (int)(ik % 3));
  for (int clamp = 0; clamp < 3; clamp++) gemm_case(isa, 37, 70, 300, clamp);
}

/* One dynamic (qd8-f32) GEMM case: per-row activation qparams, float output, bit-exact. */
static void qd8_gemm_case(int isa, size_t m, size_t n, size_t k, int with_bias) {
  const size_t kp = round_up8(k), a_stride = kp + 3 * (rng_u32() % 2);
  int8_t* a = malloc(m * a_stride + 8);
  int8_t* w = malloc(n * k);
  int32_t* wsum = malloc(n * sizeof(int32_t));
  float* ws = malloc(n * sizeof(float));
  float* bias = malloc(n * sizeof(float));
  pt2q_qd8_row_params* rows = malloc(m * sizeof(pt2q_qd8_row_params));
  float* want = malloc(m * n * sizeof(float));
  float* got = malloc(m * n * sizeof(float));
  rng_fill_s8(a, m * a_stride + 8, -128, 127);
  rng_fill_s8(w, n * k, -127, 127);
  for (size_t j = 0; j < n; j++) {
    wsum[j] = 0;
    for (size_t kk = 0; kk < k; kk++) wsum[j] += w[j * k + kk];
    ws[j] = rng_scale(1e-4f, 1e-1f);
    bias[j] = (float)rng_int(-1000, 1000) * 0.01f;
  }
  for (size_t i = 0; i < m; i++) {
    rows[i].zero_point = rng_int(-128, 127);
    rows[i].scale = rng_scale(1e-3f, 1.0f);
  }
  char desc[96];
  snprintf(desc, sizeof desc, "m=%zu n=%zu k=%zu bias=%d", m, n, k, with_bias);
  for (size_t v = 0; v < PT2Q_QD8_F32_GEMM_VARIANTS; v++) {
    const pt2q_qd8_f32_gemm_variant* kv = &pt2q_qd8_f32_gemm_variants[v];
    if (kv->isa > isa) continue;
    void* packed = malloc(pt2q_qs8_gemm_packed_size(n, k, kv->tile[1], kv->tile[2]));
    pt2q_qs8_gemm_pack(n, k, kv->tile[1], kv->tile[2], w, wsum, ws, packed);
    memset(v == 0 ? want : got, 0x55, m * n * sizeof(float));
    kv->fn(m, n, k, a, a_stride, packed, v == 0 ? want : got, n, rows, with_bias ? bias : NULL);
    if (v > 0) check_bytes("qd8-f32-gemm", kv->name, got, want, m * n * sizeof(float), desc);
    free(packed);
  }
  free(a), free(w), free(wsum), free(ws), free(bias), free(rows), free(want), free(got);
}

static void sweep_qd8_gemm(int isa) {
  static const size_t ms[] = {1, 3, 4, 5, 11};
  static const size_t ns[] = {1, 7, 16, 19, 32};
  static const size_t ks[] = {1, 8, 9, 33};
  for (size_t im = 0; im < 5; im++)
    for (size_t in = 0; in < 5; in++)
      for (size_t ik = 0; ik < 4; ik++) qd8_gemm_case(isa, ms[im], ns[in], ks[ik], (int)(ik % 2));
  qd8_gemm_case(isa, 37, 70, 300, 1);
}

static void dwconv_case(int isa, size_t channels, size_t kernel, size_t stride, size_t pad,
                        size_t dilation, int clamp_kind) {
  const size_t batch = 2, in_h = 7, in_w = 6, taps = kernel * kernel;
  const size_t out_h = (in_h + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
  const size_t out_w = (in_w + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
  const size_t pixels = batch * out_h * out_w;
  int8_t* x = malloc(batch * in_h * in_w * channels);
  int8_t* w = malloc(taps * channels);
  int32_t* bias = malloc(channels * sizeof(int32_t));
  float* scale = malloc(channels * sizeof(float));
  int8_t* pad_buf = malloc(channels);
  const int8_t** ind = malloc(pixels * taps * sizeof(int8_t*));
  int8_t* want = malloc(pixels * channels);
  int8_t* got = malloc(pixels * channels);
  rng_fill_s8(x, batch * in_h * in_w * channels, -128, 127);
  rng_fill_s8(w, taps * channels, -127, 127);
  const int32_t in_zp = rng_int(-128, 127), zp = rng_int(-128, 127);
  memset(pad_buf, in_zp, channels);
  int32_t qmin, qmax;
  rng_clamp(zp, clamp_kind, &qmin, &qmax);
  for (size_t c = 0; c < channels; c++) {
    bias[c] = rng_int(-5000, 5000);
    scale[c] = rng_scale(1e-4f, 4.0f / (float)(taps * 128));
  }
  pt2q_indirection_init(batch, in_h, in_w, channels, x, out_h, out_w, kernel, kernel, stride,
                        stride, pad, pad, dilation, dilation, pad_buf, ind);
  char desc[128];
  snprintf(desc, sizeof desc, "c=%zu k=%zu s=%zu p=%zu d=%zu", channels, kernel, stride, pad,
           dilation);
  for (size_t v = 0; v < PT2Q_QS8_DWCONV_VARIANTS; v++) {
    const pt2q_qs8_dwconv_variant* kv = &pt2q_qs8_dwconv_variants[v];
    if (kv->isa > isa) continue;
    void* packed = malloc(pt2q_qs8_dwconv_packed_size(channels, taps, kv->tile[0]));
    pt2q_qs8_dwconv_pack(channels, taps, kv->tile[0], w, bias, scale, packed);
    kv->fn(pixels, channels, taps, ind, packed, v == 0 ? want : got, zp, qmin, qmax);
    if (v > 0) check_bytes("qs8-dwconv", kv->name, got, want, pixels * channels, desc);
    free(packed);
  }
  free(x), free(w), free(bias), free(scale), free(pad_buf), free(ind), free(want), free(got);
}

static void sweep_dwconv(int isa) {
  static const size_t cs[] = {1, 7, 8, 9, 16, 21};
  for (size_t ic = 0; ic < 6; ic++) {
    dwconv_case(isa, cs[ic], 3, 1, 1, 1, (int)(ic % 3));
    dwconv_case(isa, cs[ic], 3, 2, 0, 1, (int)((ic + 1) % 3));
    dwconv_case(isa, cs[ic], 5, 1, 2, 1, (int)((ic + 2) % 3));
    dwconv_case(isa, cs[ic], 3, 1, 2, 2, (int)(ic % 3));
  }
}

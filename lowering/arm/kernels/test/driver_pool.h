/* Driver sweeps for s8-maxpool and qs8-avgpool (included by driver.c only). */

static void pool_case(int isa, size_t channels, size_t kernel, size_t stride, size_t pad,
                      int clamp_kind) {
  const size_t batch = 2, in_h = 6, in_w = 7, taps = kernel * kernel;
  const size_t out_h = (in_h + 2 * pad - kernel) / stride + 1;
  const size_t out_w = (in_w + 2 * pad - kernel) / stride + 1;
  const size_t pixels = batch * out_h * out_w;
  int8_t* x = malloc(batch * in_h * in_w * channels);
  int8_t* pad_buf = malloc(channels);
  const int8_t** ind = malloc(pixels * taps * sizeof(int8_t*));
  int8_t* want = malloc(pixels * channels);
  int8_t* got = malloc(pixels * channels);
  rng_fill_s8(x, batch * in_h * in_w * channels, -128, 127);
  const int32_t in_zp = rng_int(-128, 127), zp = rng_int(-128, 127);
  int32_t qmin, qmax;
  rng_clamp(zp, clamp_kind, &qmin, &qmax);
  char desc[128];
  snprintf(desc, sizeof desc, "c=%zu k=%zu s=%zu p=%zu clamp=[%d,%d]", channels, kernel, stride,
           pad, qmin, qmax);
  /* max: padding reads -128, which never wins */
  memset(pad_buf, -128, channels);
  pt2q_indirection_init(batch, in_h, in_w, channels, x, out_h, out_w, kernel, kernel, stride,
                        stride, pad, pad, 1, 1, pad_buf, ind);
  for (size_t v = 0; v < PT2Q_S8_MAXPOOL_VARIANTS; v++) {
    const pt2q_s8_maxpool_variant* kv = &pt2q_s8_maxpool_variants[v];
    if (kv->isa > isa) continue;
    kv->fn(pixels, channels, taps, ind, v == 0 ? want : got, qmin, qmax);
    if (v > 0) check_bytes("s8-maxpool", kv->name, got, want, pixels * channels, desc);
  }
  /* avg: padding reads the input zero point (count_include_pad) */
  memset(pad_buf, in_zp, channels);
  pt2q_indirection_init(batch, in_h, in_w, channels, x, out_h, out_w, kernel, kernel, stride,
                        stride, pad, pad, 1, 1, pad_buf, ind);
  const float scale = rng_scale(0.1f, 2.0f) / (float)taps;
  for (size_t v = 0; v < PT2Q_QS8_AVGPOOL_VARIANTS; v++) {
    const pt2q_qs8_avgpool_variant* kv = &pt2q_qs8_avgpool_variants[v];
    if (kv->isa > isa) continue;
    kv->fn(pixels, channels, taps, ind, in_zp, scale, v == 0 ? want : got, zp, qmin, qmax);
    if (v > 0) check_bytes("qs8-avgpool", kv->name, got, want, pixels * channels, desc);
  }
  free(x), free(pad_buf), free(ind), free(want), free(got);
}

static void sweep_pools(int isa) {
  static const size_t cs[] = {1, 7, 8, 9, 16, 17, 33};
  for (size_t ic = 0; ic < 7; ic++) {
    pool_case(isa, cs[ic], 2, 2, 0, (int)(ic % 3));
    pool_case(isa, cs[ic], 3, 1, 1, (int)((ic + 1) % 3));
    pool_case(isa, cs[ic], 3, 2, 1, (int)((ic + 2) % 3));
  }
}

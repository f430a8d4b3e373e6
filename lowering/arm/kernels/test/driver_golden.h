/* Golden vectors from the Python reference (check.py writes them; included by driver.c only).
 *
 * File: "PT2QGOLD", then records: u32 name_len, name, u32 n_ints, i32[n_ints], u32 n_floats,
 * f32[n_floats], u32 n_arrays, then per array u32 nbytes + bytes. The last array is the
 * expected output; every available variant, the scalar reference included, must equal it.
 * ints/floats/arrays per family are listed in check.py (GOLDEN_LAYOUT). */

typedef struct {
  char name[32];
  int32_t ints[32];
  uint32_t n_ints;
  float floats[8];
  uint32_t n_floats;
  void* arrays[8];
  uint32_t sizes[8];
  uint32_t n_arrays;
} golden_record;

static int read_u32(FILE* f, uint32_t* v) { return fread(v, 4, 1, f) == 1; }

static int read_record(FILE* f, golden_record* r) {
  uint32_t len;
  if (!read_u32(f, &len)) return 0;
  if (len >= sizeof r->name || fread(r->name, 1, len, f) != len) return -1;
  r->name[len] = 0;
  if (!read_u32(f, &r->n_ints) || r->n_ints > 32) return -1;
  if (fread(r->ints, 4, r->n_ints, f) != r->n_ints) return -1;
  if (!read_u32(f, &r->n_floats) || r->n_floats > 8) return -1;
  if (fread(r->floats, 4, r->n_floats, f) != r->n_floats) return -1;
  if (!read_u32(f, &r->n_arrays) || r->n_arrays > 8) return -1;
  for (uint32_t i = 0; i < r->n_arrays; i++) {
    if (!read_u32(f, &r->sizes[i])) return -1;
    r->arrays[i] = malloc(r->sizes[i] + 16);
    if (fread(r->arrays[i], 1, r->sizes[i], f) != r->sizes[i]) return -1;
  }
  return 1;
}

/* ints: batch in_h in_w channels kernel_h kernel_w stride_h stride_w pad_t pad_l dil_h dil_w
 *       out_h out_w pad_value (13 .. 14 are out dims, 14 the pad byte) */
static const int8_t** golden_indirection(const golden_record* r, const int8_t* x, int8_t** pad) {
  const int32_t* g = r->ints;
  const size_t pixels = (size_t)g[0] * g[12] * g[13], taps = (size_t)g[4] * g[5];
  *pad = malloc((size_t)g[3]);
  memset(*pad, g[14], (size_t)g[3]);
  const int8_t** ind = malloc(pixels * taps * sizeof(int8_t*));
  pt2q_indirection_init(g[0], g[1], g[2], g[3], x, g[12], g[13], g[4], g[5], g[6], g[7], g[8],
                        g[9], g[10], g[11], *pad, ind);
  return ind;
}

static int golden_one(const golden_record* r, int isa, size_t index) {
  const int32_t* g = r->ints;
  const float* fl = r->floats;
  void* const* arr = r->arrays;
  const uint32_t out_bytes = r->sizes[r->n_arrays - 1];
  const void* want = arr[r->n_arrays - 1];
  void* got = malloc(out_bytes + 16);
  char desc[64];
  snprintf(desc, sizeof desc, "golden record %zu", index);
#define GOLDEN_LOOP(FAM, TYPE, CALL)                                                 \
  for (size_t v = 0; v < FAM##_count; v++) {                                         \
    const TYPE* kv = &FAM##_variants[v];                                             \
    if (kv->isa > isa) continue;                                                     \
    memset(got, 0x55, out_bytes);                                                    \
    CALL;                                                                            \
    check_bytes(r->name, kv->name, got, want, out_bytes, desc);                      \
  }
  if (strcmp(r->name, "qs8-gemm") == 0) {
    /* ints: m n k c_zp qmin qmax; arrays: a (m x k) w (n x k) bias scale expected */
    const size_t m = g[0], n = g[1], k = g[2], kp = (k + 7) / 8 * 8;
    int8_t* a = calloc(m * kp + 8, 1);
    for (size_t i = 0; i < m; i++) memcpy(a + i * kp, (int8_t*)arr[0] + i * k, k);
for (size_t v = 0; v < PT2Q_QS8_GEMM_VARIANTS; v++) {
      const pt2q_qs8_gemm_variant* kv = &pt2q_qs8_gemm_variants[v];
      if (kv->isa > isa) continue;
      void* packed = malloc(pt2q_qs8_gemm_packed_size(n, k, kv->tile[1], kv->tile[2]));
      pt2q_qs8_gemm_pack(n, k, kv->tile[1], kv->tile[2], arr[1], arr[2], arr[3], packed);
      memset(got, 0x55, out_bytes);
      kv->fn(m, n, k, a, kp, packed, got, n, g[3], g[4], g[5]);
      check_bytes(r->name, kv->name, got, want, out_bytes, desc);
      free(packed);
    }
    free(a);
  } else if (strcmp(r->name, "qs8-dwconv") == 0) {
    /* ints: conv geometry (15) out_zp qmin qmax; arrays: x w (taps x c) bias scale expected */
    int8_t* pad;
    const int8_t** ind = golden_indirection(r, arr[0], &pad);
    const size_t pixels = (size_t)g[0] * g[12] * g[13], taps = (size_t)g[4] * g[5], c = g[3];
    for (size_t v = 0; v < PT2Q_QS8_DWCONV_VARIANTS; v++) {
      const pt2q_qs8_dwconv_variant* kv = &pt2q_qs8_dwconv_variants[v];
      if (kv->isa > isa) continue;
      void* packed = malloc(pt2q_qs8_dwconv_packed_size(c, taps, kv->tile[0]));
      pt2q_qs8_dwconv_pack(c, taps, kv->tile[0], arr[1], arr[2], arr[3], packed);
      memset(got, 0x55, out_bytes);
      kv->fn(pixels, c, taps, ind, packed, got, g[15], g[16], g[17]);
      check_bytes(r->name, kv->name, got, want, out_bytes, desc);
      free(packed);
    }
    free(pad), free((void*)ind);
  } else if (strcmp(r->name, "s8-maxpool") == 0 || strcmp(r->name, "qs8-avgpool") == 0) {
    /* ints: pool geometry (15) in_zp out_zp qmin qmax; floats: scale; arrays: x expected */
    int8_t* pad;
    const int8_t** ind = golden_indirection(r, arr[0], &pad);
    const size_t pixels = (size_t)g[0] * g[12] * g[13], taps = (size_t)g[4] * g[5], c = g[3];
    if (r->name[0] == 's') {
GOLDEN_LOOP(pt2q_s8_maxpool, pt2q_s8_maxpool_variant,
                  kv->fn(pixels, c, taps, ind, got, g[17], g[18]))
    } else {
GOLDEN_LOOP(pt2q_qs8_avgpool, pt2q_qs8_avgpool_variant,
                  kv->fn(pixels, c, taps, ind, g[15], fl[0], got, g[16], g[17], g[18]))
    }
    free(pad), free((void*)ind);
  } else if (strcmp(r->name, "qs8-vadd") == 0) {
    /* ints: n a_zp b_zp y_zp qmin qmax; floats: a_mul b_mul; arrays: a b expected */
GOLDEN_LOOP(pt2q_qs8_vadd, pt2q_qs8_vadd_variant,
                kv->fn(g[0], arr[0], arr[1], got, g[1], g[2], fl[0], fl[1], g[3], g[4], g[5]))
  } else if (strcmp(r->name, "qs8-vmul") == 0) {
    /* ints: n a_zp b_zp y_zp qmin qmax; floats: ab_mul; arrays: a b expected */
GOLDEN_LOOP(pt2q_qs8_vmul, pt2q_qs8_vmul_variant,
                kv->fn(g[0], arr[0], arr[1], got, g[1], g[2], fl[0], g[3], g[4], g[5]))
  } else if (strcmp(r->name, "f32-qs8-vcvt") == 0) {
    /* ints: n zp qmin qmax; floats: inv_scale; arrays: x expected */
GOLDEN_LOOP(pt2q_f32_qs8_vcvt, pt2q_f32_qs8_vcvt_variant,
                kv->fn(g[0], arr[0], got, fl[0], g[1], g[2], g[3]))
  } else if (strcmp(r->name, "qs8-f32-vcvt") == 0) {
    /* ints: n zp; floats: scale; arrays: x expected */
GOLDEN_LOOP(pt2q_qs8_f32_vcvt, pt2q_qs8_f32_vcvt_variant,
                kv->fn(g[0], arr[0], got, g[1], fl[0]))
  } else if (strcmp(r->name, "qs8-vcvt") == 0) {
    /* ints: n in_zp out_zp qmin qmax; floats: scale; arrays: x expected */
GOLDEN_LOOP(pt2q_qs8_vcvt, pt2q_qs8_vcvt_variant,
                kv->fn(g[0], arr[0], got, g[1], fl[0], g[2], g[3], g[4]))
  } else {
    fprintf(stderr, "golden record %zu: unknown family %s\n", index, r->name);
    free(got);
    return -1;
  }
  free(got);
  return 0;
}

static int run_golden(const char* path, int isa) {
  FILE* f = fopen(path, "rb");
  char magic[8];
  if (f == NULL || fread(magic, 1, 8, f) != 8 || memcmp(magic, "PT2QGOLD", 8) != 0) {
    fprintf(stderr, "%s: not a PT2QGOLD file\n", path);
    return -1;
  }
  golden_record r;
  size_t index = 0;
  int status;
  long before = g_checks;
  while ((status = read_record(f, &r)) == 1) {
    const int rc = golden_one(&r, isa, index++);
    for (uint32_t i = 0; i < r.n_arrays; i++) free(r.arrays[i]);
    if (rc != 0) return -1;
  }
  fclose(f);
  if (status < 0) {
    fprintf(stderr, "%s: truncated record %zu\n", path, index);
    return -1;
  }
  printf("golden records: %zu, golden checks: %ld\n", index, g_checks - before);
  return 0;
}

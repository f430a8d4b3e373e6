/* C ABI of every pt2q ARM micro-kernel. Shapes are in elements; strides in bytes (= elements
 * for int8). Layouts are NHWC (channels innermost). See README.md for the numeric contract. */
#ifndef PT2Q_ARM_KERNELS_H
#define PT2Q_ARM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- qs8-gemm: C[m, n] = requant(sum_k A[m, k] * W[n, k] + bias[n], scale[n]) ----------
 * packed_w comes from pt2q_qs8_gemm_pack with the variant's (nr, kr). Rows of a must be
 * readable up to round_up(k, 8) bytes. */
typedef void (*pt2q_qs8_gemm_fn)(size_t m, size_t n, size_t k, const int8_t* a, size_t a_stride,
                                 const void* packed_w, int8_t* c, size_t c_stride, int32_t c_zp,
                                 int32_t qmin, int32_t qmax);
size_t pt2q_qs8_gemm_packed_size(size_t n, size_t k, size_t nr, size_t kr);
/* w: (n, k) row-major int8; bias: n int32 (zero point already folded), scale: n floats. */
void pt2q_qs8_gemm_pack(size_t n, size_t k, size_t nr, size_t kr, const int8_t* w,
                        const int32_t* bias, const float* scale, void* packed_w);
void pt2q_qs8_gemm_ukernel__scalar(size_t m, size_t n, size_t k, const int8_t* a,
                                   size_t a_stride, const void* packed_w, int8_t* c,
                                   size_t c_stride, int32_t c_zp, int32_t qmin, int32_t qmax);
void pt2q_qs8_gemm_ukernel_4x8__neon_mlal(size_t m, size_t n, size_t k, const int8_t* a,
                                          size_t a_stride, const void* packed_w, int8_t* c,
                                          size_t c_stride, int32_t c_zp, int32_t qmin,
                                          int32_t qmax);
void pt2q_qs8_gemm_ukernel_4x8__neon_dot(size_t m, size_t n, size_t k, const int8_t* a,
                                         size_t a_stride, const void* packed_w, int8_t* c,
                                         size_t c_stride, int32_t c_zp, int32_t qmin,
                                         int32_t qmax);
void pt2q_qs8_gemm_ukernel_4x16__neon_dot(size_t m, size_t n, size_t k, const int8_t* a,
                                          size_t a_stride, const void* packed_w, int8_t* c,
                                          size_t c_stride, int32_t c_zp, int32_t qmin,
                                          int32_t qmax);
void pt2q_qs8_gemm_ukernel_4x8__neon_i8mm(size_t m, size_t n, size_t k, const int8_t* a,
                                          size_t a_stride, const void* packed_w, int8_t* c,
                                          size_t c_stride, int32_t c_zp, int32_t qmin,
                                          int32_t qmax);
void pt2q_qs8_gemm_ukernel_4x16__neon_i8mm(size_t m, size_t n, size_t k, const int8_t* a,
                                           size_t a_stride, const void* packed_w, int8_t* c,
                                           size_t c_stride, int32_t c_zp, int32_t qmin,
                                           int32_t qmax);

/* ---- qd8-f32-gemm (dynamic linear): A int8 quantized per row, float output ----------------
 * C[i, n] = (float)(sum_k A[i, k] * W[n, k] - zp[i] * wsum[n]) * (s[i] * ws[n]) + bias[n].
 * packed_w: pt2q_qs8_gemm_pack with the variant's (nr, kr), bias = wsum (int32 sum of each
 * weight row), scale = ws (per-channel weight scale). bias may be NULL. */
typedef struct {
  int32_t zero_point;
  float scale;
} pt2q_qd8_row_params;
typedef void (*pt2q_qd8_f32_gemm_fn)(size_t m, size_t n, size_t k, const int8_t* a,
                                     size_t a_stride, const void* packed_w, float* c,
                                     size_t c_stride, const pt2q_qd8_row_params* rows,
                                     const float* bias);
void pt2q_qd8_f32_gemm_ukernel__scalar(size_t m, size_t n, size_t k, const int8_t* a,
                                       size_t a_stride, const void* packed_w, float* c,
                                       size_t c_stride, const pt2q_qd8_row_params* rows,
                                       const float* bias);
void pt2q_qd8_f32_gemm_ukernel_4x16__neon_dot(size_t m, size_t n, size_t k, const int8_t* a,
                                              size_t a_stride, const void* packed_w, float* c,
                                              size_t c_stride, const pt2q_qd8_row_params* rows,
                                              const float* bias);

/* ---- LLM GEMMs: float output, per-channel int8 or per-group int4 weights ------------------
 * f32-qc8w (int8wo):  C[i, n] = (sum_k A[i, k] * (float)W[n, k]) * ws[n] + bias[n], float A;
 *   packed by pt2q_qs8_gemm_pack with the variant's (nr, kr) (int32 slot 0, float slot ws).
 * f32-qc4w (int4wo):  per group g, p = sum_k A[i, k] * (float)(u[n, k] - zp[n, g]);
 *   C[i, n] = (sum_g p * ws[n, g]) + bias[n], u unsigned nibbles.
 * qd8-f32-qc4w (8da4w): A int8 per row (zp[i], s[i]); per group g, acc = sum_k A[i, k] * W[n, k]
 *   - zp[i] * wsum[n, g]; C[i, n] = (sum_g (float)acc * ws[n, g]) * s[i] + bias[n].
 * Sums run in k order (f32) and in group order; see each scalar.c. The 4-bit ones are packed by
 * pt2q_qc4w_gemm_pack (group % 16 == 0, k % group == 0); `scratch` holds 16 * k bytes (the
 * i8mm variant interleaves row pairs of A there). bias may be NULL. */
size_t pt2q_qc4w_gemm_packed_size(size_t n, size_t k, size_t group, size_t nr);
/* w: (n, k) int8 (the low 4 bits are stored); scale, extra: (n, k / group) row-major. */
void pt2q_qc4w_gemm_pack(size_t n, size_t k, size_t group, size_t nr, size_t kr, const int8_t* w,
                         const float* scale, const int32_t* extra, void* packed_w);
typedef void (*pt2q_f32_qc8w_gemm_fn)(size_t m, size_t n, size_t k, const float* a,
                                      size_t a_stride, const void* packed_w, float* c,
                                      size_t c_stride, const float* bias);
void pt2q_f32_qc8w_gemm_ukernel__scalar(size_t m, size_t n, size_t k, const float* a,
                                        size_t a_stride, const void* packed_w, float* c,
                                        size_t c_stride, const float* bias);
void pt2q_f32_qc8w_gemm_ukernel_4x8__neon(size_t m, size_t n, size_t k, const float* a,
                                          size_t a_stride, const void* packed_w, float* c,
                                          size_t c_stride, const float* bias);
typedef void (*pt2q_f32_qc4w_gemm_fn)(size_t m, size_t n, size_t k, size_t group, const float* a,
                                      size_t a_stride, const void* packed_w, float* c,
                                      size_t c_stride, const float* bias);
void pt2q_f32_qc4w_gemm_ukernel__scalar(size_t m, size_t n, size_t k, size_t group,
                                        const float* a, size_t a_stride, const void* packed_w,
                                        float* c, size_t c_stride, const float* bias);
void pt2q_f32_qc4w_gemm_ukernel_4x8__neon(size_t m, size_t n, size_t k, size_t group,
                                          const float* a, size_t a_stride, const void* packed_w,
                                          float* c, size_t c_stride, const float* bias);
typedef void (*pt2q_qd8_f32_qc4w_gemm_fn)(size_t m, size_t n, size_t k, size_t group,
                                          const int8_t* a, size_t a_stride, const void* packed_w,
                                          float* c, size_t c_stride,
                                          const pt2q_qd8_row_params* rows, const float* bias,
                                          int8_t* scratch);
void pt2q_qd8_f32_qc4w_gemm_ukernel__scalar(size_t m, size_t n, size_t k, size_t group,
                                            const int8_t* a, size_t a_stride,
                                            const void* packed_w, float* c, size_t c_stride,
                                            const pt2q_qd8_row_params* rows, const float* bias,
                                            int8_t* scratch);
void pt2q_qd8_f32_qc4w_gemm_ukernel_6x8__neon_dot(size_t m, size_t n, size_t k, size_t group,
                                                  const int8_t* a, size_t a_stride,
                                                  const void* packed_w, float* c,
                                                  size_t c_stride,
                                                  const pt2q_qd8_row_params* rows,
                                                  const float* bias, int8_t* scratch);
void pt2q_qd8_f32_qc4w_gemm_ukernel_10x4__neon_i8mm(size_t m, size_t n, size_t k, size_t group,
                                                    const int8_t* a, size_t a_stride,
                                                   const void* packed_w, float* c,
                                                   size_t c_stride,
                                                   const pt2q_qd8_row_params* rows,
                                                   const float* bias, int8_t* scratch);

/* ---- indirection + im2col (NHWC) ----------------------------------------------------------
 * indirection[(p * taps) + t] points at the first channel of the input pixel read by tap t of
 * output pixel p, or at pad (a buffer at least pixel_stride bytes) when t falls in padding. */
void pt2q_indirection_init(size_t batch, size_t in_h, size_t in_w, size_t pixel_stride,
                           const int8_t* input, size_t out_h, size_t out_w, size_t kernel_h,
                           size_t kernel_w, size_t stride_h, size_t stride_w, size_t pad_top,
                           size_t pad_left, size_t dilation_h, size_t dilation_w,
                           const int8_t* pad, const int8_t** indirection);
/* a[p, t * channels + c] = indirection[p * taps + t][channel_offset + c]; row stride a_stride. */
void pt2q_x8_im2col_ukernel__scalar(size_t pixels, size_t taps, const int8_t** indirection,
                                    size_t channel_offset, size_t channels, int8_t* a,
                                    size_t a_stride);

/* ---- qs8-dwconv: out[p, c] = requant(bias[c] + sum_t in[t][c] * w[t, c], scale[c]) --------- */
typedef void (*pt2q_qs8_dwconv_fn)(size_t pixels, size_t channels, size_t taps,
                                   const int8_t** indirection, const void* packed_w,
                                   int8_t* out, int32_t out_zp, int32_t qmin, int32_t qmax);
size_t pt2q_qs8_dwconv_packed_size(size_t channels, size_t taps, size_t cr);
/* w: (taps, channels) int8; bias/scale: channels. */
void pt2q_qs8_dwconv_pack(size_t channels, size_t taps, size_t cr, const int8_t* w,
                          const int32_t* bias, const float* scale, void* packed_w);
void pt2q_qs8_dwconv_ukernel__scalar(size_t pixels, size_t channels, size_t taps,
                                     const int8_t** indirection, const void* packed_w,
                                     int8_t* out, int32_t out_zp, int32_t qmin, int32_t qmax);
void pt2q_qs8_dwconv_ukernel_c8__neon_mlal(size_t pixels, size_t channels, size_t taps,
                                           const int8_t** indirection, const void* packed_w,
                                           int8_t* out, int32_t out_zp, int32_t qmin,
                                           int32_t qmax);

/* ---- elementwise: y = requant((a - a_zp) * a_mul + (b - b_zp) * b_mul)  (vadd)
 *                   y = requant((a - a_zp) * (b - b_zp) * ab_mul)          (vmul) ------------ */
typedef void (*pt2q_qs8_vadd_fn)(size_t n, const int8_t* a, const int8_t* b, int8_t* y,
                                 int32_t a_zp, int32_t b_zp, float a_mul, float b_mul,
                                 int32_t y_zp, int32_t qmin, int32_t qmax);
void pt2q_qs8_vadd_ukernel__scalar(size_t n, const int8_t* a, const int8_t* b, int8_t* y,
                                   int32_t a_zp, int32_t b_zp, float a_mul, float b_mul,
                                   int32_t y_zp, int32_t qmin, int32_t qmax);
void pt2q_qs8_vadd_ukernel_x16__neon(size_t n, const int8_t* a, const int8_t* b, int8_t* y,
                                     int32_t a_zp, int32_t b_zp, float a_mul, float b_mul,
                                     int32_t y_zp, int32_t qmin, int32_t qmax);
typedef void (*pt2q_qs8_vmul_fn)(size_t n, const int8_t* a, const int8_t* b, int8_t* y,
                                 int32_t a_zp, int32_t b_zp, float ab_mul, int32_t y_zp,
                                 int32_t qmin, int32_t qmax);
void pt2q_qs8_vmul_ukernel__scalar(size_t n, const int8_t* a, const int8_t* b, int8_t* y,
                                   int32_t a_zp, int32_t b_zp, float ab_mul, int32_t y_zp,
                                   int32_t qmin, int32_t qmax);
void pt2q_qs8_vmul_ukernel_x16__neon(size_t n, const int8_t* a, const int8_t* b, int8_t* y,
                                     int32_t a_zp, int32_t b_zp, float ab_mul, int32_t y_zp,
                                     int32_t qmin, int32_t qmax);

/* ---- pools over an indirection buffer --------------------------------------------------------
 * maxpool: out[p, c] = clamp(max_t in[t][c], qmin, qmax)  (padding points at a qmin buffer)
 * avgpool: out[p, c] = requant((sum_t in[t][c] - taps * in_zp) * scale)  (padding -> in_zp) */
typedef void (*pt2q_s8_maxpool_fn)(size_t pixels, size_t channels, size_t taps,
                                   const int8_t** indirection, int8_t* out, int32_t qmin,
                                   int32_t qmax);
void pt2q_s8_maxpool_ukernel__scalar(size_t pixels, size_t channels, size_t taps,
                                     const int8_t** indirection, int8_t* out, int32_t qmin,
                                     int32_t qmax);
void pt2q_s8_maxpool_ukernel_c16__neon(size_t pixels, size_t channels, size_t taps,
                                       const int8_t** indirection, int8_t* out, int32_t qmin,
                                       int32_t qmax);
typedef void (*pt2q_qs8_avgpool_fn)(size_t pixels, size_t channels, size_t taps,
                                    const int8_t** indirection, int32_t in_zp, float scale,
                                    int8_t* out, int32_t out_zp, int32_t qmin, int32_t qmax);
void pt2q_qs8_avgpool_ukernel__scalar(size_t pixels, size_t channels, size_t taps,
                                      const int8_t** indirection, int32_t in_zp, float scale,
                                      int8_t* out, int32_t out_zp, int32_t qmin, int32_t qmax);
void pt2q_qs8_avgpool_ukernel_c8__neon(size_t pixels, size_t channels, size_t taps,
                                       const int8_t** indirection, int32_t in_zp, float scale,
                                       int8_t* out, int32_t out_zp, int32_t qmin, int32_t qmax);

/* ---- conversions --------------------------------------------------------------------------
 * quantize:   y = requant(x * inv_scale)               (torch: clamp(round(x / s) + zp))
 * dequantize: y = (float)(x - zp) * scale
 * requantize: y = requant((float)(x - in_zp) * scale)  */
typedef void (*pt2q_f32_qs8_vcvt_fn)(size_t n, const float* x, int8_t* y, float inv_scale,
                                     int32_t zp, int32_t qmin, int32_t qmax);
void pt2q_f32_qs8_vcvt_ukernel__scalar(size_t n, const float* x, int8_t* y, float inv_scale,
                                       int32_t zp, int32_t qmin, int32_t qmax);
void pt2q_f32_qs8_vcvt_ukernel_x16__neon(size_t n, const float* x, int8_t* y, float inv_scale,
                                         int32_t zp, int32_t qmin, int32_t qmax);
typedef void (*pt2q_qs8_f32_vcvt_fn)(size_t n, const int8_t* x, float* y, int32_t zp,
                                     float scale);
void pt2q_qs8_f32_vcvt_ukernel__scalar(size_t n, const int8_t* x, float* y, int32_t zp,
                                       float scale);
void pt2q_qs8_f32_vcvt_ukernel_x16__neon(size_t n, const int8_t* x, float* y, int32_t zp,
                                         float scale);
typedef void (*pt2q_qs8_vcvt_fn)(size_t n, const int8_t* x, int8_t* y, int32_t in_zp,
                                 float scale, int32_t out_zp, int32_t qmin, int32_t qmax);
void pt2q_qs8_vcvt_ukernel__scalar(size_t n, const int8_t* x, int8_t* y, int32_t in_zp,
                                   float scale, int32_t out_zp, int32_t qmin, int32_t qmax);
void pt2q_qs8_vcvt_ukernel_x16__neon(size_t n, const int8_t* x, int8_t* y, int32_t in_zp,
                                     float scale, int32_t out_zp, int32_t qmin, int32_t qmax);

#ifdef __cplusplus
}
#endif

#endif /* PT2Q_ARM_KERNELS_H */

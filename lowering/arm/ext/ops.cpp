// Thin torch wrapper over the C kernels: TORCH_LIBRARY(pt2q_arm, ...) ops on int8 tensors.
// Layout: conv/pool ops take and return NCHW-shaped tensors and compute in channels_last.
// Variant dispatch: a packed op runs the variant its weights were packed for (named in the
// graph); other ops take "auto" (the best variant this CPU, or PT2Q_ARM_ISA, allows).
#include <torch/library.h>
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "cpu_isa.h"
#include "kernels.h"
#include "kernels_table.h"

namespace {

template <class V>
const V& pick(const V* vs, size_t count, const std::string& variant, const char* family) {
  const int isa = pt2q_cpu_isa();
  if (variant == "auto") {
    const V* best = &vs[0];
    for (size_t i = 0; i < count; i++)
      if (vs[i].isa <= isa) best = &vs[i];
    return *best;
  }
  for (size_t i = 0; i < count; i++) {
    if (variant == vs[i].name) {
      TORCH_CHECK(vs[i].isa <= isa, "pt2q_arm: variant ", variant, " needs ISA ",
                  pt2q_isa_names[vs[i].isa], " but this CPU (or PT2Q_ARM_ISA) allows only ",
                  pt2q_isa_names[isa]);
      return vs[i];
    }
  }
  TORCH_CHECK(false, "pt2q_arm: unknown ", family, " variant '", variant, "'");
}

#define PICK(fam, variant) pick(fam##_variants, fam##_count, variant, #fam)

void check_int8(const at::Tensor& t, const char* op, const char* arg) {
  TORCH_CHECK(t.scalar_type() == at::kChar, "pt2q_arm::", op, ": ", arg,
              " must be int8, found ", t.scalar_type());
}

int64_t cpu_isa() { return pt2q_cpu_isa(); }

at::Tensor pack_gemm(const at::Tensor& w, const at::Tensor& bias, const at::Tensor& scale,
                     const std::string& variant) {
  check_int8(w, "pack_gemm", "w");
  TORCH_CHECK(w.dim() == 2, "pt2q_arm::pack_gemm: w must be (N, K), found ", w.sizes());
  const auto& kv = PICK(pt2q_qs8_gemm, variant);
  const int64_t n = w.size(0), k = w.size(1);
  auto wc = w.contiguous();
  auto bc = bias.to(at::kInt).contiguous();
  auto sc = scale.to(at::kFloat).contiguous();
  auto out = at::empty({(int64_t)pt2q_qs8_gemm_packed_size(n, k, kv.tile[1], kv.tile[2])},
                       w.options().dtype(at::kByte));
  pt2q_qs8_gemm_pack(n, k, kv.tile[1], kv.tile[2], wc.data_ptr<int8_t>(), bc.data_ptr<int32_t>(),
                     sc.data_ptr<float>(), out.data_ptr());
  return out;
}

// (M, K) int8 -> (M, N) int8 through one packed GEMM; pads K to a multiple of 8 if needed.
void run_gemm(const pt2q_qs8_gemm_variant& kv, const at::Tensor& a2d, const uint8_t* packed,
              int64_t n, int8_t* c, int64_t c_stride, int64_t zp, int64_t qmin, int64_t qmax) {
  const int64_t m = a2d.size(0), k = a2d.size(1), kp = (k + 7) / 8 * 8;
  at::Tensor a = a2d;
  if (k != kp || a.stride(1) != 1 || a.stride(0) != k) {
    a = at::zeros({m + 1, kp}, a2d.options());  // one spare row: no over-read past the end
    a.narrow(0, 0, m).narrow(1, 0, k).copy_(a2d);
  } else {
    a = at::cat({a2d, at::zeros({1, kp}, a2d.options())});
  }
  kv.fn(m, n, k, a.data_ptr<int8_t>(), kp, packed, c, c_stride, zp, qmin, qmax);
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& packed, int64_t n, int64_t zp,
                  int64_t qmin, int64_t qmax, const std::string& variant) {
  check_int8(x, "linear", "x");
  const auto& kv = PICK(pt2q_qs8_gemm, variant);
  const int64_t k = x.size(-1);
  auto x2 = x.reshape({-1, k});
  auto out_sizes = x.sizes().vec();
  out_sizes.back() = n;
  auto out = at::empty({x2.size(0), n}, x.options());
  run_gemm(kv, x2, packed.data_ptr<uint8_t>(), n, out.data_ptr<int8_t>(), n, zp, qmin, qmax);
  return out.view(out_sizes);
}

struct Geometry {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
};

Geometry geometry(const at::Tensor& x, at::IntArrayRef kernel, at::IntArrayRef stride,
                  at::IntArrayRef padding, at::IntArrayRef dilation) {
  TORCH_CHECK(kernel.size() == 2 && stride.size() == 2 && padding.size() == 2 &&
                  dilation.size() == 2,
              "pt2q_arm: kernel/stride/padding/dilation must have 2 elements each");
  Geometry g{kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1],
             dilation[0], dilation[1], 0, 0};
  g.oh = (x.size(2) + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.ow = (x.size(3) + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  return g;
}

// NCHW int8 -> NHWC contiguous copy (the kernels' layout) + indirection buffer over it.
struct Windows {
  at::Tensor nhwc, pad;
  std::vector<const int8_t*> ind;
};

Windows windows(const at::Tensor& x, const Geometry& g, int64_t pad_value) {
  Windows w;
  w.nhwc = x.permute({0, 2, 3, 1}).contiguous();
  const int64_t b = x.size(0), c = x.size(1);
  w.pad = at::full({c}, pad_value, x.options());
  w.ind.resize(b * g.oh * g.ow * g.kh * g.kw);
  pt2q_indirection_init(b, x.size(2), x.size(3), c, w.nhwc.data_ptr<int8_t>(), g.oh, g.ow, g.kh,
                        g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, w.pad.data_ptr<int8_t>(),
                        w.ind.data());
  return w;
}

at::Tensor nchw_out(const at::Tensor& x, int64_t c, const Geometry& g) {
  // NHWC storage, NCHW shape (channels_last strides)
  return at::empty({x.size(0), g.oh, g.ow, c}, x.options()).permute({0, 3, 1, 2});
}

at::Tensor conv2d(const at::Tensor& x, const at::Tensor& packed, int64_t n,
                  at::IntArrayRef kernel, at::IntArrayRef stride, at::IntArrayRef padding,
                  at::IntArrayRef dilation, int64_t groups, int64_t in_zp, int64_t zp,
                  int64_t qmin, int64_t qmax, const std::string& variant) {
  check_int8(x, "conv2d", "x");
  const auto& kv = PICK(pt2q_qs8_gemm, variant);
  const Geometry g = geometry(x, kernel, stride, padding, dilation);
  Windows w = windows(x, g, in_zp);
  const int64_t cin_g = x.size(1) / groups, n_g = n / groups, taps = g.kh * g.kw;
  const int64_t pixels = x.size(0) * g.oh * g.ow, k = taps * cin_g, kp = (k + 7) / 8 * 8;
  auto out = nchw_out(x, n, g);
  int8_t* out_nhwc = out.data_ptr<int8_t>();
  auto a = at::zeros({pixels + 1, kp}, x.options());
  const size_t group_bytes = pt2q_qs8_gemm_packed_size(n_g, k, kv.tile[1], kv.tile[2]);
  for (int64_t gi = 0; gi < groups; gi++) {
    pt2q_x8_im2col_ukernel__scalar(pixels, taps, w.ind.data(), gi * cin_g, cin_g,
                                   a.data_ptr<int8_t>(), kp);
    kv.fn(pixels, n_g, k, a.data_ptr<int8_t>(), kp, packed.data_ptr<uint8_t>() + gi * group_bytes,
          out_nhwc + gi * n_g, n, zp, qmin, qmax);
  }
  return out;
}

at::Tensor pack_dwconv(const at::Tensor& w, const at::Tensor& bias, const at::Tensor& scale,
                       const std::string& variant) {
  check_int8(w, "pack_dwconv", "w");
  TORCH_CHECK(w.dim() == 2, "pt2q_arm::pack_dwconv: w must be (taps, C), found ", w.sizes());
  const auto& kv = PICK(pt2q_qs8_dwconv, variant);
  const int64_t taps = w.size(0), c = w.size(1);
  auto wc = w.contiguous();
  auto bc = bias.to(at::kInt).contiguous();
  auto sc = scale.to(at::kFloat).contiguous();
  auto out = at::empty({(int64_t)pt2q_qs8_dwconv_packed_size(c, taps, kv.tile[0])},
                       w.options().dtype(at::kByte));
  pt2q_qs8_dwconv_pack(c, taps, kv.tile[0], wc.data_ptr<int8_t>(), bc.data_ptr<int32_t>(),
                       sc.data_ptr<float>(), out.data_ptr());
  return out;
}

at::Tensor dwconv2d(const at::Tensor& x, const at::Tensor& packed, at::IntArrayRef kernel,
                    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                    int64_t in_zp, int64_t zp, int64_t qmin, int64_t qmax,
                    const std::string& variant) {
  check_int8(x, "dwconv2d", "x");
  const auto& kv = PICK(pt2q_qs8_dwconv, variant);
  const Geometry g = geometry(x, kernel, stride, padding, dilation);
  Windows w = windows(x, g, in_zp);
  const int64_t c = x.size(1);
  auto out = nchw_out(x, c, g);
  kv.fn(x.size(0) * g.oh * g.ow, c, g.kh * g.kw, w.ind.data(), packed.data_ptr<uint8_t>(),
        out.data_ptr<int8_t>(), zp, qmin, qmax);
  return out;
}

at::Tensor max_pool2d(const at::Tensor& x, at::IntArrayRef kernel, at::IntArrayRef stride,
                      at::IntArrayRef padding, at::IntArrayRef dilation, int64_t qmin,
                      int64_t qmax, const std::string& variant) {
  check_int8(x, "max_pool2d", "x");
  const auto& kv = PICK(pt2q_s8_maxpool, variant);
  const Geometry g = geometry(x, kernel, stride, padding, dilation);
  Windows w = windows(x, g, -128);
  auto out = nchw_out(x, x.size(1), g);
  kv.fn(x.size(0) * g.oh * g.ow, x.size(1), g.kh * g.kw, w.ind.data(), out.data_ptr<int8_t>(),
        qmin, qmax);
  return out;
}

at::Tensor avg_pool2d(const at::Tensor& x, at::IntArrayRef kernel, at::IntArrayRef stride,
                      at::IntArrayRef padding, int64_t in_zp, double scale, int64_t zp,
                      int64_t qmin, int64_t qmax, const std::string& variant) {
  check_int8(x, "avg_pool2d", "x");
  const auto& kv = PICK(pt2q_qs8_avgpool, variant);
  const int64_t one[2] = {1, 1};
  const Geometry g = geometry(x, kernel, stride, padding, at::IntArrayRef(one, 2));
  Windows w = windows(x, g, in_zp);
  auto out = nchw_out(x, x.size(1), g);
  kv.fn(x.size(0) * g.oh * g.ow, x.size(1), g.kh * g.kw, w.ind.data(), in_zp, (float)scale,
        out.data_ptr<int8_t>(), zp, qmin, qmax);
  return out;
}

at::Tensor add(const at::Tensor& a, const at::Tensor& b, int64_t a_zp, int64_t b_zp,
               double a_mul, double b_mul, int64_t zp, int64_t qmin, int64_t qmax,
               const std::string& variant) {
  check_int8(a, "add", "a");
  check_int8(b, "add", "b");
  const auto& kv = PICK(pt2q_qs8_vadd, variant);
  auto shape = at::infer_size(a.sizes(), b.sizes());
  auto ac = a.expand(shape).contiguous(), bc = b.expand(shape).contiguous();
  auto out = at::empty(shape, a.options());
  kv.fn(out.numel(), ac.data_ptr<int8_t>(), bc.data_ptr<int8_t>(), out.data_ptr<int8_t>(), a_zp,
        b_zp, (float)a_mul, (float)b_mul, zp, qmin, qmax);
  return out;
}

at::Tensor mul(const at::Tensor& a, const at::Tensor& b, int64_t a_zp, int64_t b_zp,
               double ab_mul, int64_t zp, int64_t qmin, int64_t qmax,
               const std::string& variant) {
  check_int8(a, "mul", "a");
  check_int8(b, "mul", "b");
  const auto& kv = PICK(pt2q_qs8_vmul, variant);
  auto shape = at::infer_size(a.sizes(), b.sizes());
  auto ac = a.expand(shape).contiguous(), bc = b.expand(shape).contiguous();
  auto out = at::empty(shape, a.options());
  kv.fn(out.numel(), ac.data_ptr<int8_t>(), bc.data_ptr<int8_t>(), out.data_ptr<int8_t>(), a_zp,
        b_zp, (float)ab_mul, zp, qmin, qmax);
  return out;
}

at::Tensor quantize(const at::Tensor& x, double inv_scale, int64_t zp, int64_t qmin,
                    int64_t qmax, const std::string& variant) {
  TORCH_CHECK(x.scalar_type() == at::kFloat, "pt2q_arm::quantize: x must be float32, found ",
              x.scalar_type());
  const auto& kv = PICK(pt2q_f32_qs8_vcvt, variant);
  auto xc = x.contiguous();
  auto out = at::empty(x.sizes(), x.options().dtype(at::kChar));
  kv.fn(x.numel(), xc.data_ptr<float>(), out.data_ptr<int8_t>(), (float)inv_scale, zp, qmin,
        qmax);
  return out;
}

at::Tensor dequantize(const at::Tensor& x, int64_t zp, double scale, const std::string& variant) {
  check_int8(x, "dequantize", "x");
  const auto& kv = PICK(pt2q_qs8_f32_vcvt, variant);
  auto xc = x.contiguous();
  auto out = at::empty(x.sizes(), x.options().dtype(at::kFloat));
  kv.fn(x.numel(), xc.data_ptr<int8_t>(), out.data_ptr<float>(), zp, (float)scale);
  return out;
}

// Dynamic linear: float x (..., K) -> float (..., N). Activations are quantized to int8 with
// choose_qparams.tensor's math (float32: scale = max((max(mx, 0) - min(mn, 0)) / (qmax - qmin),
// eps), zp = clamp(qmin - round(min(mn, 0) / scale))) and quantize_per_tensor's rounding
// (round-half-even of x * float(1 / scale), + zp, clamped), over each row (per_row) or over the
// whole tensor (the reference program's per-tensor qparams); then the qd8-f32 GEMM.
at::Tensor linear_dynamic(const at::Tensor& x, const at::Tensor& packed,
                          const c10::optional<at::Tensor>& bias, int64_t n, int64_t qmin,
                          int64_t qmax, double eps, bool per_row, const std::string& variant) {
  TORCH_CHECK(x.scalar_type() == at::kFloat, "pt2q_arm::linear_dynamic: x must be float32, found ",
              x.scalar_type());
  const auto& kv = PICK(pt2q_qd8_f32_gemm, variant);
  const int64_t k = x.size(-1), kp = (k + 7) / 8 * 8;
  auto x2 = x.reshape({-1, k}).contiguous();
  const int64_t m = x2.size(0);
  at::Tensor mn, mx;
  if (per_row) {
    std::tie(mn, mx) = at::aminmax(x2, 1);
  } else {
    std::tie(mn, mx) = at::aminmax(x2);
    mn = mn.expand({m}), mx = mx.expand({m});
  }
  auto min_neg = at::clamp_max(mn, 0.0), max_pos = at::clamp_min(mx, 0.0);
  auto scale = (max_pos - min_neg) / (float)(qmax - qmin);
  scale = at::clamp_min(scale, (float)eps);
  auto zp = at::clamp(qmin - at::round(min_neg / scale).to(at::kInt), qmin, qmax);
  auto inv = (1.0 / scale.to(at::kDouble)).to(at::kFloat);
  auto q = at::clamp(at::round(x2 * inv.unsqueeze(1)) + zp.unsqueeze(1), qmin, qmax);
  auto a = at::zeros({m + 1, kp}, x2.options().dtype(at::kChar));  // spare row: no over-read
  a.narrow(0, 0, m).narrow(1, 0, k).copy_(q);
  std::vector<pt2q_qd8_row_params> rows(m);
  auto zc = zp.contiguous(), sc = scale.contiguous();
  for (int64_t i = 0; i < m; i++) rows[i] = {zc.data_ptr<int32_t>()[i], sc.data_ptr<float>()[i]};
  at::Tensor b;
  if (bias.has_value()) {
    b = bias->to(at::kFloat).contiguous();
    TORCH_CHECK(b.numel() == n, "pt2q_arm::linear_dynamic: bias must have n=", n,
                " elements, found ", b.numel());
  }
  auto out = at::empty({m, n}, x.options());
  kv.fn(m, n, k, a.data_ptr<int8_t>(), kp, packed.data_ptr<uint8_t>(), out.data_ptr<float>(), n,
        rows.data(), bias.has_value() ? b.data_ptr<float>() : nullptr);
  auto out_sizes = x.sizes().vec();
  out_sizes.back() = n;
  return out.view(out_sizes);
}

// Weights of a dynamic linear packed for a qd8-f32 variant: int32 slot = row sums of w.
at::Tensor pack_gemm_dynamic(const at::Tensor& w, const at::Tensor& scale,
                             const std::string& variant) {
  check_int8(w, "pack_gemm_dynamic", "w");
  TORCH_CHECK(w.dim() == 2, "pt2q_arm::pack_gemm_dynamic: w must be (N, K), found ", w.sizes());
  const auto& kv = PICK(pt2q_qd8_f32_gemm, variant);
  const int64_t n = w.size(0), k = w.size(1);
  auto wc = w.contiguous();
  auto wsum = w.to(at::kInt).sum(1).to(at::kInt).contiguous();
  auto sc = scale.to(at::kFloat).contiguous();
  auto out = at::empty({(int64_t)pt2q_qs8_gemm_packed_size(n, k, kv.tile[1], kv.tile[2])},
                       w.options().dtype(at::kByte));
  pt2q_qs8_gemm_pack(n, k, kv.tile[1], kv.tile[2], wc.data_ptr<int8_t>(),
                     wsum.data_ptr<int32_t>(), sc.data_ptr<float>(), out.data_ptr());
  return out;
}

}  // namespace

TORCH_LIBRARY(pt2q_arm, m) {
  m.def("cpu_isa() -> int", &cpu_isa);
  m.def("pack_gemm(Tensor w, Tensor bias, Tensor scale, str variant) -> Tensor");
  m.def("pack_dwconv(Tensor w, Tensor bias, Tensor scale, str variant) -> Tensor");
  m.def("linear(Tensor x, Tensor packed, int n, int zp, int qmin, int qmax, str variant)"
        " -> Tensor");
  m.def("conv2d(Tensor x, Tensor packed, int n, int[] kernel, int[] stride, int[] padding,"
        " int[] dilation, int groups, int in_zp, int zp, int qmin, int qmax, str variant)"
        " -> Tensor");
  m.def("dwconv2d(Tensor x, Tensor packed, int[] kernel, int[] stride, int[] padding,"
        " int[] dilation, int in_zp, int zp, int qmin, int qmax, str variant) -> Tensor");
  m.def("max_pool2d(Tensor x, int[] kernel, int[] stride, int[] padding, int[] dilation,"
        " int qmin, int qmax, str variant) -> Tensor");
  m.def("avg_pool2d(Tensor x, int[] kernel, int[] stride, int[] padding, int in_zp,"
        " float scale, int zp, int qmin, int qmax, str variant) -> Tensor");
  m.def("add(Tensor a, Tensor b, int a_zp, int b_zp, float a_mul, float b_mul, int zp,"
        " int qmin, int qmax, str variant) -> Tensor");
  m.def("mul(Tensor a, Tensor b, int a_zp, int b_zp, float ab_mul, int zp, int qmin,"
        " int qmax, str variant) -> Tensor");
  m.def("quantize(Tensor x, float inv_scale, int zp, int qmin, int qmax, str variant)"
        " -> Tensor");
  m.def("dequantize(Tensor x, int zp, float scale, str variant) -> Tensor");
  m.def("pack_gemm_dynamic(Tensor w, Tensor scale, str variant) -> Tensor");
  m.def("linear_dynamic(Tensor x, Tensor packed, Tensor? bias, int n, int qmin, int qmax,"
        " float eps, bool per_row, str variant) -> Tensor");
}

// CPU kernels only: no CompositeImplicit kernel, so export keeps the ops whole (the fake
// kernels are registered from Python with torch.library.register_fake).
TORCH_LIBRARY_IMPL(pt2q_arm, CPU, m) {
  m.impl("pack_gemm", &pack_gemm);
  m.impl("pack_dwconv", &pack_dwconv);
  m.impl("linear", &linear);
  m.impl("conv2d", &conv2d);
  m.impl("dwconv2d", &dwconv2d);
  m.impl("max_pool2d", &max_pool2d);
  m.impl("avg_pool2d", &avg_pool2d);
  m.impl("add", &add);
  m.impl("mul", &mul);
  m.impl("quantize", &quantize);
  m.impl("dequantize", &dequantize);
  m.impl("pack_gemm_dynamic", &pack_gemm_dynamic);
  m.impl("linear_dynamic", &linear_dynamic);
}

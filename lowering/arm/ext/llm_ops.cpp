// torch.ops.pt2q_arm_llm: thin wrappers over the LLM GEMM kernels (f32-qc8w, f32-qc4w,
// qd8-f32-qc4w, and qd8-f32-gemm for 8da8w). Weights are packed once by the pack_* ops; a
// linear op runs the variant its weights were packed for (named in the graph). Dynamic
// activations arrive already quantized per token (the reference's choose_qparams /
// quantize_per_token ops stay in the graph): xq int8 (..., K), scale (..., 1), zp (..., 1).
#include <torch/library.h>
#include <ATen/ATen.h>

#include <string>

#include "cpu_isa.h"
#include "kernels.h"
#include "kernels_table.h"

namespace {

template <class V>
const V& pick(const V* vs, size_t count, const std::string& variant) {
  const int isa = pt2q_cpu_isa();
  for (size_t i = 0; i < count; i++) {
    if (variant == vs[i].name) {
      TORCH_CHECK(vs[i].isa <= isa, "pt2q_arm_llm: variant ", variant, " needs ISA ",
                  pt2q_isa_names[vs[i].isa], " but this CPU (or PT2Q_ARM_ISA) allows only ",
                  pt2q_isa_names[isa]);
      return vs[i];
    }
  }
  TORCH_CHECK(false, "pt2q_arm_llm: unknown variant '", variant, "'");
}

#define PICK(fam, variant) pick(fam##_variants, fam##_count, variant)

std::vector<int64_t> out_sizes(const at::Tensor& x, int64_t n) {
  auto s = x.sizes().vec();
  s.back() = n;
  return s;
}

const float* bias_ptr(const c10::optional<at::Tensor>& bias, at::Tensor& keep) {
  if (!bias.has_value()) return nullptr;
  keep = bias->to(at::kFloat).contiguous();
  return keep.data_ptr<float>();
}

// int8 (N, K) per-channel weights: f32-qc8w variants (scale in the float slot) or qd8-f32-gemm
// variants (weight row sums in the int32 slot).
at::Tensor pack_qc8w(const at::Tensor& w, const at::Tensor& scale, const std::string& variant) {
  TORCH_CHECK(w.scalar_type() == at::kChar && w.dim() == 2, "pack_qc8w: w must be int8 (N, K)");
  const bool dynamic = variant.rfind("qd8-", 0) == 0;
  size_t nr, kr;
  if (dynamic) {
    const auto& kv = PICK(pt2q_qd8_f32_gemm, variant);
    nr = kv.tile[1], kr = kv.tile[2];
  } else {
    const auto& kv = PICK(pt2q_f32_qc8w_gemm, variant);
    nr = kv.tile[1], kr = kv.tile[2];
  }
  const int64_t n = w.size(0), k = w.size(1);
  auto wc = w.contiguous();
  auto extra = dynamic ? wc.to(at::kInt).sum(1, false, at::kInt).contiguous()
                       : at::zeros({n}, w.options().dtype(at::kInt));
  auto sc = scale.to(at::kFloat).contiguous();
  auto out = at::empty({(int64_t)pt2q_qs8_gemm_packed_size(n, k, nr, kr)},
                       w.options().dtype(at::kByte));
  pt2q_qs8_gemm_pack(n, k, nr, kr, wc.data_ptr<int8_t>(), extra.data_ptr<int32_t>(),
                     sc.data_ptr<float>(), out.data_ptr());
  return out;
}

// int8 (N, K) holding 4-bit values, per-group scale (N, G) and extra (N, G): wsum or zp.
at::Tensor pack_qc4w(const at::Tensor& w, const at::Tensor& scale, const at::Tensor& extra,
                     int64_t group, const std::string& variant) {
  TORCH_CHECK(w.scalar_type() == at::kChar && w.dim() == 2, "pack_qc4w: w must be int8 (N, K)");
  const int64_t n = w.size(0), k = w.size(1);
  TORCH_CHECK(group % 16 == 0 && k % group == 0, "pack_qc4w: group ", group,
              " must be a multiple of 16 dividing K=", k);
  size_t nr, kr;
  if (variant.rfind("qd8-", 0) == 0) {
    const auto& kv = PICK(pt2q_qd8_f32_qc4w_gemm, variant);
    nr = kv.tile[1], kr = kv.tile[2];
  } else {
    const auto& kv = PICK(pt2q_f32_qc4w_gemm, variant);
    nr = kv.tile[1], kr = kv.tile[2];
  }
  auto wc = w.contiguous();
  auto sc = scale.to(at::kFloat).contiguous();
  auto ex = extra.to(at::kInt).contiguous();
  auto out = at::empty({(int64_t)pt2q_qc4w_gemm_packed_size(n, k, group, nr)},
                       w.options().dtype(at::kByte));
  pt2q_qc4w_gemm_pack(n, k, group, nr, kr, wc.data_ptr<int8_t>(), sc.data_ptr<float>(),
                      ex.data_ptr<int32_t>(), out.data_ptr());
  return out;
}

at::Tensor linear_qc8w(const at::Tensor& x, const at::Tensor& packed,
                       const c10::optional<at::Tensor>& bias, int64_t n,
                       const std::string& variant) {
  const auto& kv = PICK(pt2q_f32_qc8w_gemm, variant);
  const int64_t k = x.size(-1);
  auto x2 = x.reshape({-1, k}).to(at::kFloat).contiguous();
  auto out = at::empty({x2.size(0), n}, x2.options());
  at::Tensor b;
  kv.fn(x2.size(0), n, k, x2.data_ptr<float>(), k, packed.data_ptr<uint8_t>(),
        out.data_ptr<float>(), n, bias_ptr(bias, b));
  return out.view(out_sizes(x, n));
}

at::Tensor linear_qc4w(const at::Tensor& x, const at::Tensor& packed,
                       const c10::optional<at::Tensor>& bias, int64_t n, int64_t group,
                       const std::string& variant) {
  const auto& kv = PICK(pt2q_f32_qc4w_gemm, variant);
  const int64_t k = x.size(-1);
  auto x2 = x.reshape({-1, k}).to(at::kFloat).contiguous();
  auto out = at::empty({x2.size(0), n}, x2.options());
  at::Tensor b;
  kv.fn(x2.size(0), n, k, group, x2.data_ptr<float>(), k, packed.data_ptr<uint8_t>(),
        out.data_ptr<float>(), n, bias_ptr(bias, b));
  return out.view(out_sizes(x, n));
}

// xq int8 (..., K) with per-token scale / zero point (any shape with one value per token).
at::Tensor linear_qd8(const at::Tensor& xq, const at::Tensor& scale, const at::Tensor& zp,
                      const at::Tensor& packed, const c10::optional<at::Tensor>& bias,
                      int64_t n, int64_t group, const std::string& variant) {
  TORCH_CHECK(xq.scalar_type() == at::kChar, "linear_qd8: xq must be int8");
  const int64_t k = xq.size(-1);
  auto a = xq.reshape({-1, k});
  const int64_t m = a.size(0);
  const int64_t kp = (k + 15) / 16 * 16;
  auto ap = at::zeros({m + 1, kp}, a.options());  // padded rows, one spare: no over-read
  ap.narrow(0, 0, m).narrow(1, 0, k).copy_(a);
  auto s = scale.reshape({-1}).to(at::kFloat).contiguous();
  auto z = zp.reshape({-1}).to(at::kInt).contiguous();
  TORCH_CHECK(s.numel() == m && z.numel() == m, "linear_qd8: ", m, " tokens but ", s.numel(),
              " scales / ", z.numel(), " zero points");
  std::vector<pt2q_qd8_row_params> rows(m);
  for (int64_t i = 0; i < m; i++) rows[i] = {z.data_ptr<int32_t>()[i], s.data_ptr<float>()[i]};
  auto out = at::empty({m, n}, xq.options().dtype(at::kFloat));
  at::Tensor b;
  const float* bp = bias_ptr(bias, b);
  if (group == 0) {
    const auto& kv = PICK(pt2q_qd8_f32_gemm, variant);
    kv.fn(m, n, k, ap.data_ptr<int8_t>(), kp, packed.data_ptr<uint8_t>(), out.data_ptr<float>(),
          n, rows.data(), bp);
  } else {
    const auto& kv = PICK(pt2q_qd8_f32_qc4w_gemm, variant);
    auto scratch = at::empty({16 * kp}, a.options());
    kv.fn(m, n, k, group, ap.data_ptr<int8_t>(), kp, packed.data_ptr<uint8_t>(),
          out.data_ptr<float>(), n, rows.data(), bp, scratch.data_ptr<int8_t>());
  }
  return out.view(out_sizes(xq, n));
}

}  // namespace

TORCH_LIBRARY(pt2q_arm_llm, m) {
  m.def("pack_qc8w(Tensor w, Tensor scale, str variant) -> Tensor");
  m.def("pack_qc4w(Tensor w, Tensor scale, Tensor extra, int group, str variant) -> Tensor");
  m.def("linear_qc8w(Tensor x, Tensor packed, Tensor? bias, int n, str variant) -> Tensor");
  m.def("linear_qc4w(Tensor x, Tensor packed, Tensor? bias, int n, int group, str variant)"
        " -> Tensor");
  m.def("linear_qd8(Tensor xq, Tensor scale, Tensor zp, Tensor packed, Tensor? bias, int n,"
        " int group, str variant) -> Tensor");
}

TORCH_LIBRARY_IMPL(pt2q_arm_llm, CPU, m) {
  m.impl("pack_qc8w", &pack_qc8w);
  m.impl("pack_qc4w", &pack_qc4w);
  m.impl("linear_qc8w", &linear_qc8w);
  m.impl("linear_qc4w", &linear_qc4w);
  m.impl("linear_qd8", &linear_qd8);
}

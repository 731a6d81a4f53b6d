// The two time loops of the tanh RNN layer (jaxmomentum.models._recurrence.
// tanh_rnn) as XLA FFI custom calls for XLA:CPU, float32.
//
// Under XLA each time step of a lax.scan is a matmul call, an elementwise
// fusion and a state write, each with its own dispatch, and the input
// projection is a [T, B, H] array written before the loop and read back in
// it. Here a whole loop is one call; each step is one register-blocked
// [B, H] x [H, H] matmul (the weight packed once per call, kept in L1/L2)
// whose epilogue does the step's elementwise work while the accumulators are
// still in registers:
//
//   forward  (t = 0 .. T-1, hs[-1] = h0):
//     hs[t] = tanh(hs[t-1] W + b + sum_i x[t, :, i] w_ih[i, :])
//   backward (t = T-1 .. 0, delta_T = 0):
//     delta_t = (delta_{t+1} W^T + dh[t] + sum_o do[t, :, o] w_ho[:, o]^T)
//               * (1 - hs[t]^2)
//     e[t] = delta_{t+1}  (so e[T-1] = 0),   d_first = delta_0
//
// The input and output sizes are folded in as broadcast multiply-adds, so
// they are meant for the small sizes of the paper's problems; the caller
// uses lax.scan for anything else. Rows are summed over k in order with
// fused multiply-adds (this file is compiled with -ffp-contract=fast); tanh
// is Eigen's 13/6 rational approximation, the one XLA:CPU uses, with the
// division done as a refined reciprocal. Results agree with the lax.scan
// path to float32 rounding (tests/test_recurrence.py).
//
// jaxmomentum/_native.py compiles this file on first use and caches it.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int kLanes = 16;  // floats per vector (64 bytes)
typedef float vf __attribute__((vector_size(64), aligned(64)));
typedef float vf_u __attribute__((vector_size(64), aligned(4)));

inline vf Splat(float x) { return vf{} + x; }

// A full vector from src, or its first n < kLanes lanes (zeros after).
inline vf Load(const float* src, int n) {
  if (n == kLanes) return *reinterpret_cast<const vf_u*>(src);
#if defined(__AVX512F__)
  return (vf)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), src);
#else
  alignas(64) float tmp[kLanes] = {};
  std::memcpy(tmp, src, sizeof(float) * n);
  return *reinterpret_cast<const vf*>(tmp);
#endif
}

inline void Store(float* dst, vf v, int n) {
  if (n == kLanes) {
    *reinterpret_cast<vf_u*>(dst) = v;
    return;
  }
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(dst, (__mmask16)((1u << n) - 1), (__m512)v);
#else
  alignas(64) float tmp[kLanes];
  *reinterpret_cast<vf*>(tmp) = v;
  std::memcpy(dst, tmp, sizeof(float) * n);
#endif
}

inline vf Reciprocal(vf q) {
#if defined(__AVX512F__)
  const vf r = (vf)_mm512_rcp14_ps((__m512)q);  // 2^-14 relative error
  return r * (Splat(2.f) - q * r);               // one Newton step: ~2^-28
#else
  return Splat(1.f) / q;
#endif
}

inline vf Tanh(vf x) {
  x = x < Splat(-9.f) ? Splat(-9.f) : x;
  x = x > Splat(9.f) ? Splat(9.f) : x;
  const vf x2 = x * x;
  vf p = Splat(-2.76076847742355e-16f);
  p = p * x2 + Splat(2.00018790482477e-13f);
  p = p * x2 + Splat(-8.60467152213735e-11f);
  p = p * x2 + Splat(5.12229709037114e-08f);
  p = p * x2 + Splat(1.48572235717979e-05f);
  p = p * x2 + Splat(6.37261928875436e-04f);
  p = p * x2 + Splat(4.89352455891786e-03f);
  p = p * x;
  vf q = Splat(1.19825839466702e-06f);
  q = q * x2 + Splat(1.18534705686654e-04f);
  q = q * x2 + Splat(2.26843463243900e-03f);
  q = q * x2 + Splat(4.89352518554385e-03f);
  return p * Reciprocal(q);
}

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
using Floats = std::unique_ptr<float[], AlignedFree>;

Floats Zeros(int64_t n) {
  const int64_t bytes = (sizeof(float) * std::max<int64_t>(n, 1) + 63) / 64 * 64;
  Floats out(static_cast<float*>(std::aligned_alloc(64, bytes)));
  std::memset(out.get(), 0, bytes);
  return out;
}

// The columns of the output, H of them, as vectors: full ones then at most
// one partial. Weights are packed per panel of up to kMaxPanel vectors:
// panel[k * nv * kLanes + v * kLanes + lane] = W[k, col(v, lane)], zero past H.
constexpr int kMaxPanel = 7;
constexpr int kMaxPanels = 8;  // hidden sizes up to 8 * 7 * 16 = 896

struct Panel {
  int first_vector, vectors;
  Floats data;
};

struct Packed {
  int64_t K, H, nvt;  // rows, columns, vectors per row (padded)
  Panel panels[kMaxPanels];
  int count = 0;
};

// Packs rows x cols of src (element (k, c) at src[k * ks + c * cs]).
void Pack(const float* src, int64_t K, int64_t H, int64_t ks, int64_t cs,
          Packed* out) {
  out->K = K;
  out->H = H;
  out->nvt = (H + kLanes - 1) / kLanes;
  const int64_t n_panels = (out->nvt + kMaxPanel - 1) / kMaxPanel;
  const int64_t per = (out->nvt + n_panels - 1) / n_panels;
  out->count = 0;
  for (int64_t v0 = 0; v0 < out->nvt; v0 += per) {
    Panel& p = out->panels[out->count++];
    p.first_vector = static_cast<int>(v0);
    p.vectors = static_cast<int>(std::min(per, out->nvt - v0));
    p.data = Zeros(K * p.vectors * kLanes);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = v0 * kLanes;
           c < std::min<int64_t>(H, (v0 + p.vectors) * kLanes); ++c)
        p.data[k * p.vectors * kLanes + (c - v0 * kLanes)] = src[k * ks + c * cs];
  }
}

// out[r][v] = a[r, :] @ panel for RB rows of a (row stride lda). The
// accumulators are locals so that they live in registers for the whole k loop
// (through a reference the compiler stores them back on every k).
template <int RB, int NV>
__attribute__((always_inline)) inline void Micro(
    const float* a, int64_t lda, int64_t K, const float* panel,
    vf (&out)[RB][NV]) {
  vf acc[RB][NV];
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = vf{};
  for (int64_t k = 0; k < K; ++k) {
    const vf* wk = reinterpret_cast<const vf*>(panel + k * NV * kLanes);
    vf w[NV];
    for (int v = 0; v < NV; ++v) w[v] = wk[v];
    for (int r = 0; r < RB; ++r) {
      const vf ar = Splat(a[r * lda + k]);
      for (int v = 0; v < NV; ++v) acc[r][v] += ar * w[v];
    }
  }
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) out[r][v] = acc[r][v];
}

// Rows per block for a panel of NV vectors: as many accumulators as the 32
// vector registers allow (measured best for H = 100: 4 x 7).
template <int NV>
constexpr int RowsPerBlock() {
  return NV >= 6 ? 4 : NV == 5 ? 5 : NV == 4 ? 6 : NV == 3 ? 8 : NV == 2 ? 12 : 24;
}

// For every row b < B of a: epilogue(b, v, acc) for each of the panel's
// vectors v (global vector index), acc = a[b, :] @ W[:, cols of v].
template <int NV, typename Epilogue>
inline void PanelRows(const float* a, int64_t B, int64_t K, const Panel& p,
                      const Epilogue& epilogue) {
  constexpr int RB = RowsPerBlock<NV>();
  int64_t b = 0;
  for (; b + RB <= B; b += RB) {
    vf acc[RB][NV];
    Micro<RB, NV>(a + b * K, K, K, p.data.get(), acc);
    for (int r = 0; r < RB; ++r)
      for (int v = 0; v < NV; ++v) epilogue(b + r, p.first_vector + v, acc[r][v]);
  }
  for (; b < B; ++b) {
    vf acc[1][NV];
    Micro<1, NV>(a + b * K, K, K, p.data.get(), acc);
    for (int v = 0; v < NV; ++v) epilogue(b, p.first_vector + v, acc[0][v]);
  }
}

// fn(std::integral_constant<int, NV>(), panel) for each panel of `layout`:
// the panel's vector count as a compile-time constant.
template <typename Fn>
void ForEachPanel(const Packed& layout, const Fn& fn) {
  for (int i = 0; i < layout.count; ++i) {
    const Panel& p = layout.panels[i];
    switch (p.vectors) {
#define JM_CASE(NV) \
  case NV:          \
    fn(std::integral_constant<int, NV>(), p); break;
      JM_CASE(1) JM_CASE(2) JM_CASE(3) JM_CASE(4) JM_CASE(5) JM_CASE(6) JM_CASE(7)
#undef JM_CASE
      default:
        std::abort();
    }
  }
}

template <typename Epilogue>
void MatmulRows(const float* a, int64_t B, const Packed& w,
                const Epilogue& epilogue) {
  ForEachPanel(w, [&](auto nv, const Panel& p) {
    PanelRows<decltype(nv)::value>(a, B, w.K, p, epilogue);
  });
}

// Small [n, H] weights (w_ih, w_ho^T, the bias) as padded rows of vectors.
Floats PadRows(const float* src, int64_t n, int64_t H, int64_t rs, int64_t cs,
               int64_t nvt) {
  Floats out = Zeros(n * nvt * kLanes);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < H; ++c) out[i * nvt * kLanes + c] = src[i * rs + c * cs];
  return out;
}

inline int Lanes(int64_t H, int v) {
  return static_cast<int>(std::min<int64_t>(kLanes, H - int64_t{v} * kLanes));
}

void Forward(const float* x, const float* w_ih, const float* bias,
             const float* w_hh, const float* h0, float* hs, int64_t T,
             int64_t B, int64_t I, int64_t H) {
  Packed w;
  Pack(w_hh, H, H, H, 1, &w);
  const int64_t nvt = w.nvt, step = B * H;
  Floats wi = PadRows(w_ih, I, H, H, 1, nvt);
  Floats bv = PadRows(bias, 1, H, H, 1, nvt);
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * B * I;
    float* out = hs + t * step;
    MatmulRows(t == 0 ? h0 : hs + (t - 1) * step, B, w,
               [&](int64_t b, int v, vf acc) {
                 vf z = acc + reinterpret_cast<const vf*>(bv.get())[v];
                 for (int64_t i = 0; i < I; ++i)
                   z += Splat(xt[b * I + i]) *
                        reinterpret_cast<const vf*>(wi.get() + i * nvt * kLanes)[v];
                 Store(out + b * H + v * kLanes, Tanh(z), Lanes(H, v));
               });
  }
}

// c[k0 + r, panel columns] += sum_b a[b, k0 + r] * d[b, panel columns] for
// RB rows of c: one step's share of a weight gradient a^T d, with a's rows
// (stride lda) broadcast and d's rows (stride H) loaded. The sum over b stays
// in registers and is added to c once per step.
template <int RB, int NV>
__attribute__((always_inline)) inline void AtBBlock(
    const float* a, int64_t lda, const float* d, int64_t B, int64_t H,
    int64_t k0, int v0, float* c, int64_t ldc) {
  vf acc[RB][NV];
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = vf{};
  for (int64_t b = 0; b < B; ++b) {
    vf dv[NV];
    for (int v = 0; v < NV; ++v)
      dv[v] = Load(d + b * H + (v0 + v) * kLanes, Lanes(H, v0 + v));
    for (int r = 0; r < RB; ++r) {
      const vf ar = Splat(a[b * lda + k0 + r]);
      for (int v = 0; v < NV; ++v) acc[r][v] += ar * dv[v];
    }
  }
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v)
      reinterpret_cast<vf*>(c + (k0 + r) * ldc)[v0 + v] += acc[r][v];
}

template <int NV>
void AtBPanel(const float* a, int64_t lda, const float* d, int64_t B,
              int64_t H, int64_t rows, int v0, float* c, int64_t ldc) {
  constexpr int RB = RowsPerBlock<NV>();
  int64_t k = 0;
  for (; k + RB <= rows; k += RB)
    AtBBlock<RB, NV>(a, lda, d, B, H, k, v0, c, ldc);
  for (; k < rows; ++k) AtBBlock<1, NV>(a, lda, d, B, H, k, v0, c, ldc);
}

// c (rows x padded vectors, laid out like `layout`'s columns) += a^T d for
// [B, rows] a (row stride lda) and [B, H] d.
void AtB(const float* a, int64_t lda, const float* d, int64_t B, int64_t H,
         int64_t rows, const Packed& layout, float* c) {
  ForEachPanel(layout, [&](auto nv, const Panel& p) {
    AtBPanel<decltype(nv)::value>(a, lda, d, B, H, rows, p.first_vector, c,
                                  layout.nvt * kLanes);
  });
}

// Padded accumulator rows -> [n, H] (element (i, c) at out[i * rs + c * cs]).
void Unpad(const float* src, int64_t n, int64_t H, int64_t nvt, float* out,
           int64_t rs, int64_t cs) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < H; ++c) out[i * rs + c * cs] = src[i * nvt * kLanes + c];
}

struct Gradients {  // outputs of the backward pass
  float *e, *d_first, *d_h0, *d_w_hh, *d_w_ih, *d_b, *d_w_ho;
};

// The backward loop plus every gradient that is a sum over time of per-step
// terms, each step's share summed over the batch in registers while the
// step's delta is in cache and then added to the total:
// d_w_hh = sum_t h_{t-1}^T delta_t (h_{-1} = h0), d_w_ih = sum_t x_t^T delta_t,
// d_b = sum_t 1^T delta_t, d_w_ho = sum_t do_t^T h_t (transposed), and
// d_h0 = delta_0 W^T.
void Backward(const float* w_hh, const float* hs, const float* h0,
              const float* x, const float* dh, const float* d_out,
              const float* w_ho, const Gradients& out, int64_t T, int64_t B,
              int64_t I, int64_t O, int64_t H) {
  Packed w_t;  // W^T: element (k, c) = W[c, k]
  Pack(w_hh, H, H, 1, H, &w_t);
  const int64_t nvt = w_t.nvt, step = B * H, row = nvt * kLanes;
  Floats wo = PadRows(w_ho, O, H, 1, O, nvt);  // row o = w_ho[:, o]
  Floats c = Zeros(H * row);                   // d_w_hh, padded rows
  Floats c_in = Zeros((I + 1) * row);          // d_w_ih rows, then d_b
  Floats c_out = Zeros(O * row);               // d_w_ho^T
  Floats x1 = Zeros(B * (I + 1));              // [x_t, 1] rows
  for (int64_t b = 0; b < B; ++b) x1[b * (I + 1) + I] = 1.f;
  std::memset(out.e + (T - 1) * step, 0, sizeof(float) * step);  // delta_T = 0
  for (int64_t t = T - 1; t >= 0; --t) {
    const float* h_t = hs + t * step;
    const float* dh_t = dh ? dh + t * step : nullptr;
    const float* do_t = d_out ? d_out + t * B * O : nullptr;
    float* dst = t > 0 ? out.e + (t - 1) * step : out.d_first;
    auto epilogue = [&](int64_t b, int v, vf acc) {
      const int n = Lanes(H, v);
      const int64_t at = b * H + v * kLanes;
      vf g = acc;
      if (dh_t) g += Load(dh_t + at, n);
      for (int64_t o = 0; o < O && do_t; ++o)
        g += Splat(do_t[b * O + o]) *
             reinterpret_cast<const vf*>(wo.get() + o * row)[v];
      const vf h = Load(h_t + at, n);
      Store(dst + at, g * (Splat(1.f) - h * h), n);
    };
    if (t == T - 1) {
      for (int64_t b = 0; b < B; ++b)
        for (int v = 0; v < nvt; ++v) epilogue(b, v, vf{});
    } else {
      MatmulRows(out.e + t * step, B, w_t, epilogue);  // e[t] = delta_{t+1}
    }
    AtB(t > 0 ? hs + (t - 1) * step : h0, H, dst, B, H, H, w_t, c.get());
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(x1.get() + b * (I + 1), x + (t * B + b) * I, sizeof(float) * I);
    AtB(x1.get(), I + 1, dst, B, H, I + 1, w_t, c_in.get());
    if (do_t) AtB(do_t, O, h_t, B, H, O, w_t, c_out.get());
  }
  MatmulRows(out.d_first, B, w_t, [&](int64_t b, int v, vf acc) {
    Store(out.d_h0 + b * H + v * kLanes, acc, Lanes(H, v));
  });
  Unpad(c.get(), H, H, nvt, out.d_w_hh, H, 1);
  Unpad(c_in.get(), I, H, nvt, out.d_w_ih, H, 1);
  Unpad(c_in.get() + I * row, 1, H, nvt, out.d_b, H, 1);
  Unpad(c_out.get(), O, H, nvt, out.d_w_ho, 1, O);
}

int64_t Leading(ffi::Span<const int64_t> dims, size_t trailing) {
  int64_t n = 1;
  for (size_t i = 0; i + trailing < dims.size(); ++i) n *= dims[i];
  return n;
}

ffi::Error Bad(const char* what) {
  return ffi::Error::InvalidArgument(std::string("jaxmomentum tanh_rnn: ") + what);
}

// Shapes [..., T, B, I] x, [..., I, H] w_ih, [..., H] b, [..., H, H] w_hh,
// [..., B, H] h0 -> [..., T, B, H]; leading axes (jax.vmap) are independent
// problems.
ffi::Error ForwardImpl(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w_ih,
                       ffi::Buffer<ffi::F32> bias, ffi::Buffer<ffi::F32> w_hh,
                       ffi::Buffer<ffi::F32> h0,
                       ffi::ResultBuffer<ffi::F32> hs) {
  const auto xd = x.dimensions(), wd = w_hh.dimensions();
  if (xd.size() < 3 || wd.size() < 2) return Bad("operand ranks");
  const int64_t T = xd[xd.size() - 3], B = xd[xd.size() - 2],
                I = xd[xd.size() - 1], H = wd[wd.size() - 1];
  const int64_t n = Leading(xd, 3);
  if (H > kMaxPanels * kMaxPanel * kLanes) return Bad("hidden size over 896");
  if (w_hh.element_count() != n * H * H || w_ih.element_count() != n * I * H ||
      bias.element_count() != n * H || h0.element_count() != n * B * H ||
      hs->element_count() != n * T * B * H)
    return Bad("inconsistent forward shapes");
  for (int64_t p = 0; p < n; ++p)
    Forward(x.typed_data() + p * T * B * I, w_ih.typed_data() + p * I * H,
            bias.typed_data() + p * H, w_hh.typed_data() + p * H * H,
            h0.typed_data() + p * B * H, hs->typed_data() + p * T * B * H, T, B,
            I, H);
  return ffi::Error::Success();
}

// Shapes [..., H, H] w_hh, [..., T, B, H] hs, [..., B, H] h0, [..., T, B, I]
// x, dh ([..., T, B, H], or [..., 1] when has_dh is false), d_out
// ([..., T, B, O], or [..., 1] when has_do is false), [..., H, O] w_ho
// -> e [..., T, B, H], d_first, d_h0 [..., B, H], d_w_hh [..., H, H],
// d_w_ih [..., I, H], d_b [..., H], d_w_ho [..., H, O].
ffi::Error BackwardImpl(
    ffi::Buffer<ffi::F32> w_hh, ffi::Buffer<ffi::F32> hs,
    ffi::Buffer<ffi::F32> h0, ffi::Buffer<ffi::F32> x,
    ffi::Buffer<ffi::F32> dh, ffi::Buffer<ffi::F32> d_out,
    ffi::Buffer<ffi::F32> w_ho, ffi::ResultBuffer<ffi::F32> e,
    ffi::ResultBuffer<ffi::F32> d_first, ffi::ResultBuffer<ffi::F32> d_h0,
    ffi::ResultBuffer<ffi::F32> d_w_hh, ffi::ResultBuffer<ffi::F32> d_w_ih,
    ffi::ResultBuffer<ffi::F32> d_b, ffi::ResultBuffer<ffi::F32> d_w_ho,
    bool has_dh, bool has_do) {
  const auto hd = hs.dimensions(), xd = x.dimensions(), od = w_ho.dimensions();
  if (hd.size() < 3 || xd.size() < 3 || od.size() < 2)
    return Bad("operand ranks");
  const int64_t T = hd[hd.size() - 3], B = hd[hd.size() - 2],
                H = hd[hd.size() - 1], I = xd[xd.size() - 1],
                O = od[od.size() - 1];
  const int64_t n = Leading(hd, 3);
  if (H > kMaxPanels * kMaxPanel * kLanes) return Bad("hidden size over 896");
  if (w_hh.element_count() != n * H * H || h0.element_count() != n * B * H ||
      x.element_count() != n * T * B * I || w_ho.element_count() != n * H * O ||
      e->element_count() != n * T * B * H ||
      d_first->element_count() != n * B * H ||
      d_h0->element_count() != n * B * H ||
      d_w_hh->element_count() != n * H * H ||
      d_w_ih->element_count() != n * I * H || d_b->element_count() != n * H ||
      d_w_ho->element_count() != n * H * O ||
      (has_dh && dh.element_count() != n * T * B * H) ||
      (has_do && d_out.element_count() != n * T * B * O))
    return Bad("inconsistent backward shapes");
  if (T == 0) return Bad("no time steps");
  for (int64_t p = 0; p < n; ++p) {
    const Gradients g{e->typed_data() + p * T * B * H,
                      d_first->typed_data() + p * B * H,
                      d_h0->typed_data() + p * B * H,
                      d_w_hh->typed_data() + p * H * H,
                      d_w_ih->typed_data() + p * I * H,
                      d_b->typed_data() + p * H,
                      d_w_ho->typed_data() + p * H * O};
    Backward(w_hh.typed_data() + p * H * H, hs.typed_data() + p * T * B * H,
             h0.typed_data() + p * B * H, x.typed_data() + p * T * B * I,
             has_dh ? dh.typed_data() + p * T * B * H : nullptr,
             has_do ? d_out.typed_data() + p * T * B * O : nullptr,
             w_ho.typed_data() + p * H * O, g, T, B, I, O, H);
  }
  return ffi::Error::Success();
}

}  // namespace

using F32 = ffi::Buffer<ffi::F32>;

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    JmTanhRnnForwardF32, ForwardImpl,
    ffi::Ffi::Bind().Arg<F32>().Arg<F32>().Arg<F32>().Arg<F32>().Arg<F32>()
        .Ret<F32>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    JmTanhRnnBackwardF32, BackwardImpl,
    ffi::Ffi::Bind().Arg<F32>().Arg<F32>().Arg<F32>().Arg<F32>().Arg<F32>()
        .Arg<F32>().Arg<F32>()
        .Ret<F32>().Ret<F32>().Ret<F32>().Ret<F32>().Ret<F32>().Ret<F32>()
        .Ret<F32>()
        .Attr<bool>("has_dh").Attr<bool>("has_do"));

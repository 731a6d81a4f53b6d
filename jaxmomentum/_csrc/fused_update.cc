// One-pass optimizer update and apply for XLA:CPU (XLA FFI custom calls).
//
// Through optax's interface (update, then apply_updates) XLA:CPU compiles a
// momentum step as two loop fusions and moves 7 arrays (read g, v; write v';
// read p, v', g; write p'). These kernels read g, v, p once and write v', p'
// once (5 arrays; Adam 7 instead of 10), splitting the work over threads.
// jaxmomentum/_native.py compiles this file on first use; _fused.py calls it from
// jaxmomentum.update_and_apply; every operation is written in the order the
// jnp path of the same optimizer computes it, without contraction into FMAs
// (built with -ffp-contract=off), except that Adam multiplies by the
// reciprocals of its bias corrections; results match to float rounding.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// Elements below which one thread does the whole array (thread start-up
// costs more than it saves).
constexpr int64_t kMinPerThread = 1 << 18;

template <typename Body>
void ParallelFor(int64_t n, const Body& body) {
  if (n <= 0) return;
  int64_t hw = std::max<int64_t>(1, std::thread::hardware_concurrency());
  int64_t threads = std::min<int64_t>(hw, std::max<int64_t>(1, n / kMinPerThread));
  if (threads <= 1) {
    body(0, n);
    return;
  }
  // Chunks aligned to 16 elements (64 bytes for float32).
  int64_t per = ((n + threads - 1) / threads + 15) / 16 * 16;
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int64_t t = 1; t < threads; ++t) {
    int64_t lo = std::min(n, t * per), hi = std::min(n, (t + 1) * per);
    if (lo < hi) pool.emplace_back([&body, lo, hi] { body(lo, hi); });
  }
  body(0, std::min(n, per));
  for (auto& th : pool) th.join();
}

template <bool kNesterov, typename V>
void MomentumRow(int64_t n, const V* pp, const V* vp, const V* gp, V* po,
                 V* vo, V mu, V neg_lr, V mu_next) {
  ParallelFor(n, [=](int64_t lo, int64_t hi) {
    // Outputs may alias inputs at the same index only (donated buffers):
    // no dependence between iterations.
#pragma GCC ivdep
    for (int64_t i = lo; i < hi; ++i) {
      V u = gp[i] * neg_lr;
      V vn = mu * vp[i] + u;
      vo[i] = vn;
      if constexpr (kNesterov) {
        po[i] = pp[i] + (mu_next * vn + u);
      } else {
        po[i] = pp[i] + vn;
      }
    }
  });
}

// Under jax.vmap (vmap_method="broadcast_all") every operand gains leading
// batch axes: coefs then holds one row per batch element, and each row applies
// to its contiguous block of n / rows elements.
//
// coefs = [mu, -lr, mu_next]; nesterov selects the returned update:
//   u = g * (-lr);  v' = mu * v + u;
//   CM:  p' = p + v'            NAG: p' = p + (mu_next * v' + u)
template <ffi::DataType T>
ffi::Error MomentumImpl(ffi::Buffer<T> p, ffi::Buffer<T> v, ffi::Buffer<T> g,
                        ffi::Buffer<T> coefs, ffi::ResultBuffer<T> p_out,
                        ffi::ResultBuffer<T> v_out, bool nesterov) {
  using V = ffi::NativeType<T>;
  const int64_t n = p.element_count();
  const int64_t rows = coefs.element_count() / 3;
  if (v.element_count() != n || g.element_count() != n || rows < 1 ||
      coefs.element_count() != 3 * rows || n % rows != 0) {
    return ffi::Error::InvalidArgument("fused momentum: shape mismatch");
  }
  const int64_t per_row = n / rows;
  for (int64_t r = 0; r < rows; ++r) {
    const V* c = coefs.typed_data() + 3 * r;
    const V mu = c[0], neg_lr = c[1], mu_next = c[2];
    const int64_t off = r * per_row;
    const V* pp = p.typed_data() + off;
    const V* vp = v.typed_data() + off;
    const V* gp = g.typed_data() + off;
    V* po = p_out->typed_data() + off;
    V* vo = v_out->typed_data() + off;
    if (nesterov) {
      MomentumRow<true>(per_row, pp, vp, gp, po, vo, mu, neg_lr, mu_next);
    } else {
      MomentumRow<false>(per_row, pp, vp, gp, po, vo, mu, neg_lr, mu_next);
    }
  }
  return ffi::Error::Success();
}

// coefs = [b1, b2, bc1, bc2, eps_root, eps, -lr] (bc = 1 - b^t, or 1):
//   m' = (1 - b1) g + b1 m;  v' = (1 - b2) g g + b2 v;
//   p' = p + (m' (1 / bc1)) / (sqrt(v' (1 / bc2) + eps_root) + eps) * (-lr)
template <ffi::DataType T>
ffi::Error AdamImpl(ffi::Buffer<T> p, ffi::Buffer<T> m, ffi::Buffer<T> v,
                    ffi::Buffer<T> g, ffi::Buffer<T> coefs,
                    ffi::ResultBuffer<T> p_out, ffi::ResultBuffer<T> m_out,
                    ffi::ResultBuffer<T> v_out) {
  using V = ffi::NativeType<T>;
  const int64_t n = p.element_count();
  const int64_t rows = coefs.element_count() / 7;
  if (m.element_count() != n || v.element_count() != n ||
      g.element_count() != n || rows < 1 ||
      coefs.element_count() != 7 * rows || n % rows != 0) {
    return ffi::Error::InvalidArgument("fused adam: shape mismatch");
  }
  const int64_t per_row = n / rows;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t off = r * per_row;
    const V* c = coefs.typed_data() + 7 * r;
    const V b1 = c[0], b2 = c[1], bc1 = c[2], bc2 = c[3], eps_root = c[4],
            eps = c[5], neg_lr = c[6];
    const V one_b1 = V(1) - b1, one_b2 = V(1) - b2;
    // Divide by the bias corrections once per call, not per element: with
    // three divisions and a root per element the pass was bound by them
    // (3x slower); with one of each it is bound by memory.
    const V inv_bc1 = V(1) / bc1, inv_bc2 = V(1) / bc2;
    const V* pp = p.typed_data() + off;
    const V* mp = m.typed_data() + off;
    const V* vp = v.typed_data() + off;
    const V* gp = g.typed_data() + off;
    V* po = p_out->typed_data() + off;
    V* mo = m_out->typed_data() + off;
    V* vo = v_out->typed_data() + off;
    ParallelFor(per_row, [=](int64_t lo, int64_t hi) {
      // Outputs may alias inputs at the same index only (donated buffers).
#pragma GCC ivdep
      for (int64_t i = lo; i < hi; ++i) {
        V gi = gp[i];
        V mn = one_b1 * gi + b1 * mp[i];
        V vn = one_b2 * (gi * gi) + b2 * vp[i];
        mo[i] = mn;
        vo[i] = vn;
        V u = (mn * inv_bc1) / (std::sqrt(vn * inv_bc2 + eps_root) + eps);
        po[i] = pp[i] + u * neg_lr;
      }
    });
  }
  return ffi::Error::Success();
}

}  // namespace

// Bindings: momentum (p, v, g, coefs) -> (p', v'); adam (p, m, v, g, coefs)
// -> (p', m', v'); one symbol per dtype.
#define JM_ARG(T) .Arg<ffi::Buffer<T>>()
#define JM_RET(T) .Ret<ffi::Buffer<T>>()
#define JM_MOMENTUM(NAME, T)                                                 \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(NAME, MomentumImpl<T>,                       \
      ffi::Ffi::Bind() JM_ARG(T) JM_ARG(T) JM_ARG(T) JM_ARG(T)               \
          JM_RET(T) JM_RET(T)                                                \
          .Attr<bool>("nesterov"));
#define JM_ADAM(NAME, T)                                                     \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(NAME, AdamImpl<T>,                           \
      ffi::Ffi::Bind() JM_ARG(T) JM_ARG(T) JM_ARG(T) JM_ARG(T) JM_ARG(T)     \
          JM_RET(T) JM_RET(T) JM_RET(T));

JM_MOMENTUM(JmMomentumF32, ffi::F32)
JM_MOMENTUM(JmMomentumF64, ffi::F64)
JM_ADAM(JmAdamF32, ffi::F32)
JM_ADAM(JmAdamF64, ffi::F64)

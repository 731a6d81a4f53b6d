// One-pass optimizer update and apply for XLA:CPU (XLA FFI custom calls).
//
// Through optax's interface (update, then apply_updates) XLA:CPU compiles a
// momentum step as two loop fusions and moves 7 arrays (read g, v; write v';
// read p, v', g; write p'). These kernels read g, v, p once and write v', p'
// once (5 arrays; Adam 7 instead of 10), splitting the work over XLA's intra-op thread pool.
// jaxmomentum/_native.py compiles this file on first use; _fused.py calls it from
// jaxmomentum.update_and_apply; every operation is written in the order the
// jnp path of the same optimizer computes it, without contraction into FMAs
// (built with -ffp-contract=off), except that Adam multiplies by the
// reciprocals of its bias corrections; results match to float rounding.

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// Elements below which one task does the whole array (scheduling a task on
// the pool costs more than it saves).
constexpr int64_t kMinPerTask = 1 << 16;

// A future that has already failed with an invalid-argument error.
ffi::Future Failed(const char* message) {
  ffi::Promise promise;
  ffi::Future future(promise);
  promise.SetError(ffi::Error::InvalidArgument(message));
  return future;
}

// Runs body(row, lo, hi) over [0, rows * per_row) in contiguous blocks, one
// block per thread of XLA's intra-op pool (the pool XLA:CPU runs its own
// parallel loops on; no thread is created here). The first block runs on the
// calling thread, the others are scheduled on the pool; the returned future
// completes when every block has. No block waits for another, so a pool of
// one thread (or none: Schedule then runs the task inline) cannot deadlock.
// Blocks may span rows: body is called once per (row, part of a block).
template <typename Body>
ffi::Future ParallelFor(ffi::ThreadPool pool, int64_t rows, int64_t per_row,
                        Body body) {
  const int64_t n = rows * per_row;
  const int64_t threads = std::max<int64_t>(1, pool.num_threads());
  const int64_t tasks = std::max<int64_t>(
      1, std::min<int64_t>(threads, n / kMinPerTask));
  // Blocks aligned to 16 elements (64 bytes for float32).
  const int64_t per = ((n + tasks - 1) / tasks + 15) / 16 * 16;
  ffi::CountDownPromise done(tasks);
  ffi::Future future(done);
  auto block = [=](int64_t t) mutable {
    int64_t lo = std::min(n, t * per), hi = std::min(n, (t + 1) * per);
    while (lo < hi) {
      int64_t r = lo / per_row, end = std::min(hi, (r + 1) * per_row);
      body(r, lo - r * per_row, end - r * per_row);
      lo = end;
    }
    done.CountDown();
  };
  for (int64_t t = 1; t < tasks; ++t) pool.Schedule([block, t]() mutable {
    block(t);
  });
  block(0);
  return future;
}

// Under jax.vmap (vmap_method="broadcast_all") every operand gains leading
// batch axes: coefs then holds one row per batch element, and each row applies
// to its contiguous block of n / rows elements.
//
// coefs = [mu, -lr, mu_next]; nesterov selects the returned update:
//   u = g * (-lr);  v' = mu * v + u;
//   CM:  p' = p + v'            NAG: p' = p + (mu_next * v' + u)
template <bool kNesterov, typename V>
void MomentumBlock(const V* c, const V* pp, const V* vp, const V* gp, V* po,
                   V* vo, int64_t lo, int64_t hi) {
  const V mu = c[0], neg_lr = c[1], mu_next = c[2];
  // Outputs may alias inputs at the same index only (donated buffers): no
  // dependence between iterations.
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
}

template <ffi::DataType T>
ffi::Future MomentumImpl(
    ffi::ThreadPool pool, ffi::Buffer<T> p, ffi::Buffer<T> v, ffi::Buffer<T> g,
    ffi::Buffer<T> coefs, ffi::ResultBuffer<T> p_out,
    ffi::ResultBuffer<T> v_out, bool nesterov) {
  using V = ffi::NativeType<T>;
  const int64_t n = p.element_count();
  const int64_t rows = coefs.element_count() / 3;
  if (v.element_count() != n || g.element_count() != n || rows < 1 ||
      coefs.element_count() != 3 * rows || n % rows != 0) {
    return Failed("fused momentum: shape mismatch");
  }
  const int64_t per_row = n / rows;
  const V* c = coefs.typed_data();
  const V* pp = p.typed_data();
  const V* vp = v.typed_data();
  const V* gp = g.typed_data();
  V* po = p_out->typed_data();
  V* vo = v_out->typed_data();
  return ParallelFor(pool, rows, per_row, [=](int64_t r, int64_t lo,
                                              int64_t hi) {
    const int64_t off = r * per_row;
    if (nesterov) {
      MomentumBlock<true>(c + 3 * r, pp + off, vp + off, gp + off, po + off,
                          vo + off, lo, hi);
    } else {
      MomentumBlock<false>(c + 3 * r, pp + off, vp + off, gp + off, po + off,
                           vo + off, lo, hi);
    }
  });
}

// coefs = [b1, b2, 1 / bc1, 1 / bc2, eps_root, eps, -lr] (bc = 1 - b^t, or
// 1; the caller computes 1 / bc with optax's bias correction):
//   m' = (1 - b1) g + b1 m;  v' = (1 - b2) g g + b2 v;
//   p' = p + (m' (1 / bc1)) / (sqrt(v' (1 / bc2) + eps_root) + eps) * (-lr)
template <typename V>
void AdamBlock(const V* c, const V* pp, const V* mp, const V* vp, const V* gp,
               V* po, V* mo, V* vo, int64_t lo, int64_t hi) {
  // Multiplying by the inverse bias corrections, not dividing per element:
  // with three divisions and a root per element the pass was bound by them
  // (3x slower); with one of each it is bound by memory.
  const V b1 = c[0], b2 = c[1], inv_bc1 = c[2], inv_bc2 = c[3],
          eps_root = c[4], eps = c[5], neg_lr = c[6];
  const V one_b1 = V(1) - b1, one_b2 = V(1) - b2;
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
}

template <ffi::DataType T>
ffi::Future AdamImpl(
    ffi::ThreadPool pool, ffi::Buffer<T> p, ffi::Buffer<T> m, ffi::Buffer<T> v,
    ffi::Buffer<T> g, ffi::Buffer<T> coefs, ffi::ResultBuffer<T> p_out,
    ffi::ResultBuffer<T> m_out, ffi::ResultBuffer<T> v_out) {
  using V = ffi::NativeType<T>;
  const int64_t n = p.element_count();
  const int64_t rows = coefs.element_count() / 7;
  if (m.element_count() != n || v.element_count() != n ||
      g.element_count() != n || rows < 1 ||
      coefs.element_count() != 7 * rows || n % rows != 0) {
    return Failed("fused adam: shape mismatch");
  }
  const int64_t per_row = n / rows;
  const V* c = coefs.typed_data();
  const V* pp = p.typed_data();
  const V* mp = m.typed_data();
  const V* vp = v.typed_data();
  const V* gp = g.typed_data();
  V* po = p_out->typed_data();
  V* mo = m_out->typed_data();
  V* vo = v_out->typed_data();
  return ParallelFor(pool, rows, per_row, [=](int64_t r, int64_t lo,
                                              int64_t hi) {
    const int64_t off = r * per_row;
    AdamBlock(c + 7 * r, pp + off, mp + off, vp + off, gp + off, po + off,
              mo + off, vo + off, lo, hi);
  });
}

}  // namespace

// Bindings: momentum (p, v, g, coefs) -> (p', v'); adam (p, m, v, g, coefs)
// -> (p', m', v'); one symbol per dtype.
#define JM_ARG(T) .Arg<ffi::Buffer<T>>()
#define JM_RET(T) .Ret<ffi::Buffer<T>>()
#define JM_MOMENTUM(NAME, T)                                                 \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(NAME, MomentumImpl<T>,                       \
      ffi::Ffi::Bind().Ctx<ffi::ThreadPool>() JM_ARG(T) JM_ARG(T)            \
          JM_ARG(T) JM_ARG(T) JM_RET(T) JM_RET(T)                            \
          .Attr<bool>("nesterov"));
#define JM_ADAM(NAME, T)                                                     \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(NAME, AdamImpl<T>,                           \
      ffi::Ffi::Bind().Ctx<ffi::ThreadPool>() JM_ARG(T) JM_ARG(T)            \
          JM_ARG(T) JM_ARG(T) JM_ARG(T) JM_RET(T) JM_RET(T) JM_RET(T));

JM_MOMENTUM(JmMomentumF32, ffi::F32)
JM_MOMENTUM(JmMomentumF64, ffi::F64)
JM_ADAM(JmAdamF32, ffi::F32)
JM_ADAM(JmAdamF64, ffi::F64)

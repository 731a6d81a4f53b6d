"""A synthetic stand-in for CURVES, for offline demos (never CURVES)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxmomentum._validation import check_int, check_scalar

__all__ = ["synthetic_curves_standin"]


@functools.partial(jax.jit, static_argnames=("num_images", "image_size",
                                             "num_points", "chunk"))
def _render_curves(key, num_images, image_size, num_points, width, margin,
                   chunk):
  anchors = jax.random.uniform(
      key, (num_images, 3, 2), jnp.float32, margin, image_size - 1 - margin)
  s = jnp.linspace(0.0, 1.0, num_points, dtype=jnp.float32)
  # Quadratic Lagrange basis through the anchors at s = 0, 1/2, 1.
  basis = jnp.stack([2 * (s - 0.5) * (s - 1), -4 * s * (s - 1),
                     2 * s * (s - 0.5)], axis=-1)            # [S, 3]
  pixel = jnp.arange(image_size, dtype=jnp.float32)
  grid = jnp.stack(jnp.meshgrid(pixel, pixel, indexing="ij"), -1)
  grid = grid.reshape(-1, 2)                            # [P, 2] (row, col)

  def render(points):                                         # [3, 2]
    curve = basis @ points                                    # [S, 2]
    d2 = jnp.sum(jnp.square(grid[:, None, :] - curve[None]), -1)
    return jnp.exp(-jnp.min(d2, axis=1) / (2 * width * width))

  return jax.lax.map(render, anchors, batch_size=chunk)


def synthetic_curves_standin(key: jax.Array, num_images: int, *,
                             image_size: int = 28, num_points: int = 64,
                             width: float = 0.8, margin: float = 2.0
                             ) -> jax.Array:
  r"""A synthetic stand-in for CURVES: smooth curves through three points.

  Not the CURVES data set (whose generator is not public) and never to be
  reported as it. Each image draws three points uniformly in
  :math:`[m, S - 1 - m]^2` (pixel coordinates), passes the quadratic
  :math:`c(s) = \sum_k \ell_k(s) p_k` through them (Lagrange basis at
  :math:`s = 0, \tfrac12, 1`), samples it at ``num_points`` values of
  :math:`s \in [0, 1]` and renders the stroke

  .. math::

    x_{ij} = \exp\!\left(-\frac{\min_s \lVert (i, j) - c(s) \rVert^2}
    {2 w^2}\right) \in (0, 1].

  Vectorised JAX, jit-compiled, images rendered in chunks of 64 to bound
  memory.

  Args:
    key: a PRNG key.
    num_images: number of images, >= 1.
    image_size: side S >= 4 of the square image (28: 784 pixels).
    num_points: samples along each curve, >= 2.
    width: stroke width w > 0 in pixels.
    margin: m >= 0, distance of the anchor points from the border
      (2 m < S - 1).

  Returns:
    ``[num_images, image_size ** 2]`` float32 in [0, 1], rows in row-major
    pixel order (like MNIST).

  Example:
    >>> import jax
    >>> from jaxmomentum.problems import synthetic_curves_standin
    >>> x = synthetic_curves_standin(jax.random.key(0), 16)
    >>> x.shape, bool(x.min() >= 0), bool(x.max() <= 1)
    ((16, 784), True, True)
  """
  num_images = check_int("num_images", num_images, 1)
  image_size = check_int("image_size", image_size, 4)
  num_points = check_int("num_points", num_points, 2)
  check_scalar("width", width, 0.0, low_open=True)
  check_scalar("margin", margin, 0.0, (image_size - 1) / 2, high_open=True)
  return _render_curves(key, num_images, image_size, num_points,
                        float(width), float(margin), min(num_images, 64))

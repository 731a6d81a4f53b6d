"""The command line's arguments: their types, usage errors naming the flag,
and the protocols they make (:func:`protocols`), all checked before anything
runs or is written."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from pathlib import Path
from typing import Any


def floats(text: str) -> tuple[float, ...]:
  try:
    values = tuple(float(v) for v in text.split(",") if v.strip())
  except ValueError as err:
    raise argparse.ArgumentTypeError(
        f"expected comma-separated numbers, got {text!r}") from err
  if not values or not all(math.isfinite(v) for v in values):
    raise argparse.ArgumentTypeError(
        f"expected comma-separated finite numbers, got {text!r}")
  return values


def positive_int(text: str) -> int:
  """A count in [1, 2**31 - 1] (the engine's step counters are int32)."""
  expected = f"expected a whole number in [1, {2**31 - 1}], got {text!r}"
  try:
    value = int(text)
  except ValueError as err:
    raise argparse.ArgumentTypeError(expected) from err
  if not 1 <= value <= 2**31 - 1:
    raise argparse.ArgumentTypeError(expected)
  return value


def seconds(text: str) -> float:
  try:
    value = float(text)
  except ValueError as err:
    raise argparse.ArgumentTypeError(
        f"expected seconds >= 0, got {text!r}") from err
  if not math.isfinite(value) or value < 0:
    raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
  return value


class UsageError(SystemExit):
  """A bad flag found after parsing: exit status 2, as argparse's errors."""

  def __init__(self, message: str):
    super().__init__(2)
    self.message = message

  def __str__(self) -> str:
    return self.message


def usage_error(command: str, flag: str, message: Any) -> UsageError:
  """argparse's usage error for a flag checked after parsing (printed)."""
  text = f"argument {flag}: {message}"
  print(f"usage: jaxmomentum {command} --help\njaxmomentum {command}: error: "
        f"{text}", file=sys.stderr)
  return UsageError(text)


def out_dir(command: str, text: str) -> Path:
  """``--out`` created (with its parents), or a usage error naming it."""
  out = Path(text).expanduser()
  try:
    out.mkdir(parents=True, exist_ok=True)
  except OSError as err:
    if out.exists() or isinstance(err, FileExistsError):
      what = "names a file, not a folder"
    elif isinstance(err, NotADirectoryError):
      what = "lies below a file, not a folder"
    else:
      what = f"cannot be created ({err.strerror or err})"
    raise usage_error(command, "--out", f"{text!r} {what}; pass a folder "
                       "that can be created or written") from err
  if not os.access(out, os.W_OK | os.X_OK):
    raise usage_error(command, "--out", f"{text!r} is not writable; pass a "
                       "folder you can write to")
  return out


def names(text: str) -> tuple[str, ...]:
  names = tuple(v.strip() for v in text.split(",") if v.strip())
  if not names:
    raise argparse.ArgumentTypeError(
        f"expected comma-separated row names, got {text!r}")
  return names


def protocols(args):
  """The RNN and autoencoder protocols after the command line's overrides."""
  from jaxmomentum.reproduce import _protocols  # pylint: disable=import-outside-toplevel
  rnn, autoencoder = _protocols.PROTOCOLS[args.protocol]
  problems = args.problems
  rnn_problems = ae_problems = None
  if problems is not None:
    autoencoder_rows = (_protocols.AUTOENCODER_PROBLEMS +
                        _protocols.EXTRA_AUTOENCODER_PROBLEMS)
    known = set(_protocols.RNN_PROBLEMS) | set(autoencoder_rows)
    unknown = [p for p in problems if p not in known]
    if unknown:
      raise usage_error(
          "reproduce", "--problems", f"must name Table 5 rows "
          f"{list(_protocols.RNN_PROBLEMS)} or Table 1 rows "
          f"{list(autoencoder_rows)}; unknown: {unknown}")
    rnn_problems = tuple(p for p in problems if p in _protocols.RNN_PROBLEMS)
    ae_problems = tuple(p for p in problems if p in autoencoder_rows)
  flags = {"--steps": ("num_steps", args.steps),
           "--seeds": ("seeds", args.seeds),
           "--learning-rates": ("learning_rates", args.learning_rates)}
  rnn = _overridden(rnn, {
      **flags, "--mu": ("mu0s", args.mu),
      "--warmup-steps": ("warmup_steps", args.warmup_steps),
      "--loss-normalization": ("loss_normalization", args.loss_normalization),
      "--input-scale": ("input_scale", args.input_scale),
      "--output-bias": ("output_bias", args.output_bias),
      "--no-center": ("center", False if args.no_center else None),
      "--memorization-channels": ("memorization_channels",
                                  args.memorization_channels)},
      problems=rnn_problems or None)
  if args.unroll is not None:  # a speed knob: the protocol keeps its name
    try:
      rnn = dataclasses.replace(rnn, unroll=args.unroll)
    except (TypeError, ValueError) as err:
      raise usage_error("reproduce", "--unroll", err) from err
  autoencoder = _overridden(autoencoder, {
      **flags, "--mu": ("mu_maxes", args.mu)}, problems=ae_problems or None)
  return rnn, autoencoder, rnn_problems, ae_problems


def _overridden(protocol, flags: dict[str, tuple[str, Any]], **fixed):
  """``protocol.replace`` with the flags' values; a usage error names the flag.

  ``flags`` maps a flag to ``(protocol field, value or None)``. When the
  combination fails, each flag is tried alone to name the culprit; for
  ``--steps`` the nearest values that work are suggested.
  """
  given = {flag: fv for flag, fv in flags.items() if fv[1] is not None}
  try:
    result = protocol.replace(**{f: v for f, v in given.values()}, **fixed)
    result.train_config()  # the engine's own checks, before anything runs
    return result
  except (TypeError, ValueError) as err:
    for flag, (field, value) in given.items():
      try:
        protocol.replace(**{field: value}).train_config()
      except (TypeError, ValueError) as alone:
        hint = _steps_hint(protocol, value) if flag == "--steps" else ""
        raise usage_error("reproduce", flag, f"{alone}{hint}") from alone
    raise usage_error("reproduce", " with ".join(given) or "--problems",
                       err) from err


def _steps_hint(protocol, steps: int) -> str:
  """`` (try N or M)``: the nearest step counts the protocol accepts."""
  def works(n):
    try:
      protocol.replace(num_steps=n).train_config()
      return True
    except (TypeError, ValueError):
      return False
  near = [next((n for n in range(steps - 1, max(0, steps - 5000), -1)
                if works(n)), None),
          next((n for n in range(steps + 1, steps + 5000) if works(n)), None)]
  near = [str(n) for n in near if n is not None]
  return f" (--steps sets it; try {' or '.join(near)})" if near else ""

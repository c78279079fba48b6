"""Input checks shared by every area: they run before any kernel and name the
argument at fault and the fix."""

from __future__ import annotations

from typing import Any

import numpy as np


_FINITE_CHECK_BYTES = 1 << 24


def as_array(x: Any, name: str, dtype=None) -> np.ndarray:
    """np.asarray(x, dtype), with numpy's complaints (ragged nested lists,
    unconvertible objects) reported as ValueError naming the argument."""
    try:
        return np.asarray(x, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as error:
        raise ValueError(f"{name} cannot be read as an array: {error}") from None


def check_matrix(x: Any, name: str, *, xp=np, allow_empty: bool = False):
    """A C-contiguous float32 2-D array of finite values, in namespace ``xp``.

    float16 and float64 input is converted to float32; non-contiguous input is
    copied into C order. Integer, bool, complex and object arrays are rejected
    rather than guessed at.
    """
    if xp is np and not isinstance(x, np.ndarray):
        if hasattr(x, "__array__") or isinstance(x, (list, tuple)):
            x = as_array(x, name)
        else:
            raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    dtype = np.dtype(x.dtype)
    if dtype.kind != "f":
        raise TypeError(
            f"{name} must hold floating-point values, got dtype {dtype}; "
            f"convert it explicitly, e.g. {name}.astype('float32')"
        )
    if x.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got shape {tuple(x.shape)}; "
            "reshape a single sample with x.reshape(1, -1)"
        )
    if not allow_empty and (x.shape[0] == 0 or x.shape[1] == 0):
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); it needs at least one row and column")
    x = xp.ascontiguousarray(x, dtype=xp.float32)
    # In row chunks: a whole-array mask would cost a quarter of the input's memory.
    chunk = max(1, _FINITE_CHECK_BYTES // (4 * x.shape[1] or 1))
    for start in range(0, x.shape[0], chunk):
        if not bool(xp.isfinite(x[start:start + chunk]).all()):
            raise ValueError(f"{name} contains NaN or infinite values; remove or impute them first")
    return x


def check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_choice(value: Any, name: str, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {sorted(choices)}")
    return value


def check_number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
                 low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """A finite real number (Python or numpy int/float, not bool) within
    [low, high] (ends open where ``*_inclusive`` is False), as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low is not None and (number < low or (number == low and not low_inclusive)):
        raise ValueError(f"{name} must be {'>=' if low_inclusive else '>'} {low:g}, got {value!r}")
    if high is not None and (number > high or (number == high and not high_inclusive)):
        raise ValueError(f"{name} must be {'<=' if high_inclusive else '<'} {high:g}, got {value!r}")
    return number


def rescaling_exponent(x: Any, safe_exponent: int) -> int:
    """0 when the largest |value| of ``x`` lies within [2^-safe_exponent,
    2^safe_exponent] (or is 0, NaN or inf: left for the finiteness checks);
    otherwise the e for which x * 2^e has its largest |value| in [0.5, 1).
    Scaling by 2^e is exact, so kernels that would overflow or underflow in
    float32 can work on the scaled values and scale their answer back."""
    if x.size == 0:
        return 0
    top = max(abs(float(x.max())), abs(float(x.min())))
    if not np.isfinite(top) or top == 0 or 2.0 ** -safe_exponent <= top <= 2.0 ** safe_exponent:
        return 0
    return -int(np.frexp(top)[1])

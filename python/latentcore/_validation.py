"""Input checks shared by every area: they run before any kernel and name the
argument at fault and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import scipy.sparse
from sklearn import exceptions as _sklearn_exceptions
from sklearn.utils.validation import check_is_fitted as _check_is_fitted
from sklearn.utils.validation import validate_data as _validate_data


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
    dense_input(x, name)
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
            "Reshape your data: a single sample with x.reshape(1, -1)"
        )
    if not allow_empty and (x.shape[0] == 0 or x.shape[1] == 0):
        what = "sample(s)" if x.shape[0] == 0 else "feature(s)"
        raise ValueError(f"{name} is empty: 0 {what} (shape={tuple(x.shape)}) while a minimum of 1 is required; "
                         "it needs at least one row and column")
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


# ------------------------------------------------------------------ estimator parameters
#
# Each estimator declares its constructor parameters once, in a class
# attribute ``_parameter_specs`` (name -> spec), and calls
# :func:`check_params` at the start of ``fit`` (scikit-learn's convention:
# ``__init__`` stores what it is given, ``fit`` validates). The specs are
# built on the checks above, so messages name the parameter and the fix.


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter of the wrong type or value. A ValueError and a
    TypeError both (as scikit-learn's own), so callers catching either work."""


class NotFittedError(_sklearn_exceptions.NotFittedError, RuntimeError):
    """An estimator used before ``fit``: scikit-learn's NotFittedError (a
    ValueError and AttributeError), and a RuntimeError as latentcore raised
    before it was a scikit-learn estimator."""


class Spec:
    """One parameter's rule: ``check(value, name)`` raises TypeError or
    ValueError naming ``name``; ``describe()`` is a phrase for messages."""

    def check(self, value: Any, name: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


def _is_int(value: Any) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


@dataclass(frozen=True)
class Real(Spec):
    """A finite number (an int or float, Python or numpy; not bool) in a range."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True


    def check(self, value, name):
        check_number(value, name, low=self.low, high=self.high, low_inclusive=self.low_inclusive,
                     high_inclusive=self.high_inclusive)

    def describe(self):
        parts = []
        if self.low is not None:
            parts.append(f"{'>=' if self.low_inclusive else '>'} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<=' if self.high_inclusive else '<'} {self.high:g}")
        return "a number" + (" " + " and ".join(parts) if parts else "")


@dataclass(frozen=True)
class Integer(Spec):
    """An int (Python or numpy; not bool, not a float) in [low, high]."""

    low: int = 1
    high: int | None = None


    def check(self, value, name):
        if self.low == 1:
            value = check_positive_int(value, name)
        elif not _is_int(value):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        elif value < self.low:
            raise ValueError(f"{name} must be an int >= {self.low}, got {value}")
        if self.high is not None and value > self.high:
            raise ValueError(f"{name} must be at most {self.high}, got {value}")

    def describe(self):
        return f"an int >= {self.low}" + ("" if self.high is None else f" and <= {self.high}")


@dataclass(frozen=True)
class Choice(Spec):
    """One of a fixed set of values (strings, usually)."""

    values: tuple

    def __init__(self, *values):
        object.__setattr__(self, "values", tuple(values))


    def check(self, value, name):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (str, int, float, type(None))):
            raise TypeError(f"{name} must be one of {sorted(self.values, key=repr)}, got {type(value).__name__}")
        check_choice(value, name, self.values)

    def describe(self):
        return " or ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Boolean(Spec):
    """True or False (numpy's bool too)."""


    def check(self, value, name):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {value!r}")

    def describe(self):
        return "True or False"


@dataclass(frozen=True)
class Pair(Spec):
    """Two values, each checked by ``item`` (named ``name[0]``, ``name[1]``)."""

    item: Spec
    meaning: str


    def check(self, value, name):
        if not isinstance(value, (tuple, list, np.ndarray)) or np.ndim(value) != 1 or len(value) != 2:
            raise TypeError(f"{name} must be a pair ({self.meaning}), got {value!r}")
        for i, part in enumerate(value):
            self.item.check(part, f"{name}[{i}]")

    def describe(self):
        return f"a pair ({self.meaning})"


@dataclass(frozen=True)
class Options(Spec):
    """Literal values (None, "auto", ...) or a value ``spec`` accepts."""

    literals: tuple
    spec: Spec | None

    def __init__(self, *options):
        object.__setattr__(self, "literals", tuple(o for o in options if not isinstance(o, Spec)))
        specs = [o for o in options if isinstance(o, Spec)]
        if len(specs) > 1:
            raise ValueError("Options takes literal values and at most one Spec")
        object.__setattr__(self, "spec", specs[0] if specs else None)

    def _is_literal(self, value):
        return any(value is lit or (isinstance(value, str) and isinstance(lit, str) and value == lit)
                   for lit in self.literals)


    def check(self, value, name):
        if self._is_literal(value):
            return
        if self.spec is None or (isinstance(value, str) and any(isinstance(lit, str) for lit in self.literals)):
            raise ValueError(f"{name} must be {self.describe()}, got {value!r}")
        self.spec.check(value, name)

    def describe(self):
        words = [repr(lit) for lit in self.literals] + ([self.spec.describe()] if self.spec is not None else [])
        return " or ".join(words)


@dataclass(frozen=True)
class Custom(Spec):
    """A rule written as a function ``check(value, name)`` (for parameters no
    generic rule describes, e.g. a number or a list of numbers)."""

    function: Callable[[Any, str], Any]
    text: str = "a valid value"

    def check(self, value, name):
        self.function(value, name)

    def describe(self):
        return self.text


def check_random_state(value: Any, name: str = "random_state") -> None:
    """None, a seed (int >= 0) or a numpy Generator / BitGenerator / SeedSequence."""
    if value is None or isinstance(value, (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence)):
        return
    if not _is_int(value):
        raise TypeError(f"{name} must be None, an int seed or a numpy Generator, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be a seed >= 0, got {value}")


def _check_n_jobs(value: Any, name: str) -> None:
    from ._backend import resolve_n_jobs  # lazily: _backend loads the compiled module

    resolve_n_jobs(value)


def _check_verbose(value: Any, name: str) -> None:
    if not (isinstance(value, (bool, np.bool_)) or (_is_int(value) and value >= 0)):
        raise TypeError(f"{name} must be True, False or an int >= 0, got {value!r}")


#: Rules shared by several estimators.
RANDOM_STATE = Custom(check_random_state, "None, an int seed >= 0 or a numpy Generator")
N_JOBS = Custom(_check_n_jobs, "None or a thread count (-1: all cores)")
DEVICE = Options(None, Choice("cpu", "cuda"))
VERBOSE = Custom(_check_verbose, "True, False or an int >= 0")


def check_values(values: dict, specs: dict) -> None:
    """Checks each ``values[name]`` against ``specs[name]``, in the order of
    ``values``; the first bad one raises InvalidParameterError (a ValueError
    and a TypeError) naming it and what it must be."""
    for name, value in values.items():
        try:
            specs[name].check(value, name)
        except InvalidParameterError:
            raise
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(str(exc)) from None


def check_params(estimator: Any, names=None) -> None:
    """Checks the constructor parameters of ``estimator`` (all, or ``names``)
    against its class's declarative table ``_parameter_specs``."""
    specs = type(estimator)._parameter_specs
    check_values({name: getattr(estimator, name) for name in (specs if names is None else names)}, specs)


def check_fitted(estimator: Any, attribute: str, fit: str = "fit") -> None:
    """NotFittedError unless ``estimator`` has its fitted ``attribute``; one
    wording for every estimator, naming the call(s) that fit it."""
    try:
        _check_is_fitted(estimator, attribute)
    except _sklearn_exceptions.NotFittedError:
        raise NotFittedError(f"this {type(estimator).__name__} instance is not fitted yet: call {fit} "
                             "first") from None


def dense_input(x: Any, name: str = "X") -> Any:
    """``x`` as it is, or a TypeError for a scipy sparse matrix, which an
    estimator that takes dense arrays would otherwise misread."""
    if scipy.sparse.issparse(x):
        raise TypeError(f"{name} is a sparse matrix, and sparse input is not supported here; pass a dense "
                        f"array, e.g. {name}.toarray()")
    return x


def host_array_like(x: Any) -> Any:
    """A pandas DataFrame (or any other array-like with ``__array__`` that is
    not a numpy, cupy or torch array, nor a sparse matrix) as a numpy array;
    anything else as it is."""
    if isinstance(x, np.ndarray) or not hasattr(x, "__array__"):
        return x
    if type(x).__module__.split(".")[0] in ("cupy", "cupyx", "torch", "scipy"):
        return x
    return as_array(x, "X")


def _n_columns(x: Any) -> int | None:
    shape = getattr(x, "shape", None)
    if shape is not None:
        return int(shape[1]) if len(shape) == 2 else None
    if isinstance(x, list) and x and (isinstance(x[0], (list, tuple))
                                      or (isinstance(x[0], np.ndarray) and x[0].ndim == 1)):
        return len(x[0])  # a list of rows (a list of 2-D arrays is a list of batches)
    return None


def record_features(estimator: Any, X: Any, *, reset: bool, name: str = "X") -> None:
    """scikit-learn's input bookkeeping for a 2-D ``X`` (an array, a list of
    rows or a DataFrame): on fit (``reset``) stores ``n_features_in_`` and,
    for a DataFrame with string column names, ``feature_names_in_``; on later
    calls checks X against them (ValueError naming ``name`` when the count
    differs, scikit-learn's warning when the column names do). Inputs that
    are not a 2-D table (a graph, precomputed affinities, an iterable of
    batches, a path) are left to the estimator: fit forgets the attributes."""
    width = None if scipy.sparse.issparse(X) else _n_columns(X)
    if width is None:
        if reset:
            for attribute in ("n_features_in_", "feature_names_in_"):
                estimator.__dict__.pop(attribute, None)
        return
    expected = getattr(estimator, "n_features_in_", None)
    if not reset and expected is not None and width != expected:
        raise ValueError(f"{name} has {width} features, but {type(estimator).__name__} is expecting {expected} "
                         "features as input")
    _validate_data(estimator, X, skip_check_array=True, reset=reset)

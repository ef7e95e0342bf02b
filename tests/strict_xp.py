"""A CPU stand-in for CuPy: an array module whose arrays refuse to mix with NumPy arrays.

minigan promises one code path for both devices: every array operation goes through
``backend.xp``, and host <-> device copies happen only in ``backend.to_device`` and
``backend.to_host``. On a real GPU, CuPy enforces this for us: ``cupy_array + numpy_array``
and ``numpy.asarray(cupy_array)`` raise ``TypeError``. Without a GPU, NumPy alone would hide
every slip, since NumPy happily mixes everything.

This module is the enforcement without a GPU. Use it as the array module::

    import strict_xp
    backend.use_module(strict_xp, "strict")

and every ``xp.zeros``, ``xp.where``, ``rng.standard_normal`` ... returns a :class:`StrictArray`,
a thin wrapper around a private NumPy array. It computes exactly what NumPy computes (so results
can be compared bit for bit with a NumPy run), but:

- an operation that mixes a StrictArray with a ``numpy.ndarray`` raises ``TypeError``
  (Python scalars, NumPy scalars and 0-d arrays are fine, as in CuPy);
- ``numpy.asarray(strict)`` raises ``TypeError`` (CuPy: "Implicit conversion to a NumPy array
  is not allowed"); the explicit ways across are :func:`asarray` (host -> "device") and
  :func:`asnumpy` / ``StrictArray.get()`` (the other way), as in CuPy;
- reductions and scalar indexing return 0-d StrictArrays, not NumPy scalars, as CuPy does:
  turning one into a Python number takes an explicit ``float(...)`` / ``int(...)``;
- it offers only what CuPy offers. Every public name of this module is one of CuPy's (checked
  against ``cupy/__init__.py``), its generator has only methods of ``cupy.random.Generator``
  (``cupy/random/_generator_api.pyx``), and anything else raises: ``xp.errstate`` and
  ``rng.normal`` / ``rng.permutation`` (NumPy has them, CuPy does not) raise ``AttributeError``,
  and ``numpy.insert(device_array, ...)`` raises ``TypeError``, as ``cupy.insert`` does not
  exist. The names CuPy has but minigan does not use are left out too; their error says so.

How it works: :class:`StrictArray` does *not* subclass ``numpy.ndarray``. It implements NumPy's
two override protocols, ``__array_ufunc__`` (every ufunc: ``+``, ``*``, ``np.exp``, ``@``, ...;
the operators come from ``NDArrayOperatorsMixin``) and ``__array_function__`` (``np.where``,
``np.sum``, ...). Both unwrap StrictArrays, refuse raw NumPy arrays, call NumPy, and wrap the
results. Views stay views, as in NumPy and CuPy: ``x.reshape(-1)``, ``x.T`` and ``x[1:]`` wrap
NumPy views of the same memory, so ``x.reshape(-1)[i] = v`` writes into ``x``.

One place where it is stricter than CuPy: ``strict[...] = numpy_array`` raises here, where CuPy
would copy silently; minigan writes ``a[...] = xp.asarray(host)`` so the copy is visible.
"""

import sys as _sys

import numpy as _np
from numpy.lib.mixins import NDArrayOperatorsMixin as _NDArrayOperatorsMixin


def _unwrap(obj, who):
    """NumPy's view of an argument: the array inside a StrictArray, scalars as they are.

    Lists and tuples (shapes, ``concatenate([a, b])``, index tuples) are unwrapped item by item.
    A ``numpy.ndarray`` with at least one dimension is a host array mixed into device work:
    raise, as CuPy does.
    """
    if isinstance(obj, StrictArray):
        return obj._a
    if isinstance(obj, _np.ndarray) and obj.ndim > 0:
        raise TypeError(
            f"strict_xp.{who}: got a numpy.ndarray of shape {obj.shape} among strict_xp "
            "arrays; mixing host and device arrays is not allowed (as in CuPy). Copy it "
            "explicitly with xp.asarray(x) / backend.to_device(x)."
        )
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(item, who) for item in obj)
    return obj


def _wrap(result):
    """Wrap NumPy results as StrictArrays; NumPy scalars become 0-d arrays, as in CuPy."""
    if isinstance(result, _np.ndarray):
        return StrictArray(result)
    if isinstance(result, _np.generic):
        return StrictArray(_np.asarray(result))
    if isinstance(result, tuple):  # np.unravel_index, np.nonzero, ...
        return tuple(_wrap(r) for r in result)
    return result


def _call_numpy(func, args, kwargs):
    """Run a NumPy function on unwrapped arguments and wrap what it returns."""
    who = getattr(func, "__name__", repr(func))
    result = func(*_unwrap(args, who), **{k: _unwrap(v, who) for k, v in kwargs.items()})
    if isinstance(kwargs.get("out"), StrictArray):  # return the very out= array, as NumPy does
        return kwargs["out"]
    return _wrap(result)


class _Flags:
    """``x.flags`` as ``cupy.ndarray`` has them (cupy/_core/flags.pyx): c_contiguous,
    f_contiguous and owndata; NumPy's writeable, aligned, ... raise."""

    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, numpy_flags):
        self.c_contiguous = numpy_flags.c_contiguous
        self.f_contiguous = numpy_flags.f_contiguous
        self.owndata = numpy_flags.owndata


class StrictArray(_NDArrayOperatorsMixin):
    """An array of the stand-in "device": NumPy's arithmetic, CuPy's refusal to mix.

    Holds one private ``numpy.ndarray`` in ``_a``; never hand ``_a`` to library code.
    """

    __slots__ = ("_a",)

    def __init__(self, a):
        assert isinstance(a, _np.ndarray), "build StrictArrays with strict_xp.asarray"
        self._a = a

    # --- NumPy's override protocols -------------------------------------------------------

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        """Every ufunc (``+``, ``np.exp``, ``np.add.reduce``, ``@``, ...) lands here."""
        who = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        if ufunc.__name__ in _NUMPY_ONLY:  # CuPy looks up cupy.<name>, finds none, refuses
            raise TypeError(f"numpy.{who} on a strict_xp array: CuPy has no cupy.{ufunc.__name__}")
        args = _unwrap(inputs, who)
        kwargs = {k: _unwrap(v, who) for k, v in kwargs.items()}
        if out is not None:  # numpy passes out= as a tuple; outputs must be ours too
            for o in out:
                if not isinstance(o, StrictArray):
                    raise TypeError(
                        f"strict_xp.{who}: out= must be a strict_xp array, got "
                        f"{type(o).__module__}.{type(o).__name__}"
                    )
            kwargs["out"] = tuple(o._a for o in out)
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:  # return the very out= objects, as NumPy and CuPy do
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        """Every overridable NumPy function (``np.where``, ``np.sum``, ...) lands here.

        As in CuPy (``ndarray.__array_function__`` in cupy/_core/core.pyx), ``numpy.f(x)`` on a
        device array runs the array module's own ``f`` (``cupy.f``; ``cupy.lib.f`` for
        ``numpy.lib.f``), and fails where the module has none.
        """
        ours = _sys.modules[__name__]
        try:
            for name in [*func.__module__.split(".")[1:], func.__name__]:
                ours = getattr(ours, name)
        except AttributeError as e:
            who = f"{func.__module__}.{func.__name__}"
            raise TypeError(f"{who} on a strict_xp array: {e}") from None
        return ours(*args, **kwargs)

    def __array__(self, dtype=None, copy=None):
        # What np.asarray(x), np.array(x) and numpy_array[...] = x call: refuse, as CuPy does.
        raise TypeError(
            "strict_xp: implicit conversion to a NumPy array is not allowed. "
            "Use backend.to_host(x) (strict_xp.asnumpy(x), like cupy.asnumpy) to copy it "
            "to the host explicitly."
        )

    # --- what minigan uses of an array ----------------------------------------------------

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    flags = property(lambda self: _Flags(self._a.flags))  # cupy's three, not NumPy's seven
    strides = property(lambda self: self._a.strides)  # bytes, as cupy.ndarray.strides
    T = property(lambda self: StrictArray(self._a.T))  # a view

    def __repr__(self):
        return "strict_" + repr(self._a)

    def __len__(self):
        return len(self._a)

    def __iter__(self):  # rows, as StrictArrays (like CuPy)
        return (_wrap(row) for row in self._a)

    def __getitem__(self, key):
        # Basic indexing returns a view (writes go through); x[i, j] returns a 0-d copy.
        return _wrap(self._a[_unwrap(key, "__getitem__")])

    def __setitem__(self, key, value):
        self._a[_unwrap(key, "__setitem__")] = _unwrap(value, "__setitem__")

    # Explicit conversions to Python numbers: on a GPU each one is a device -> host sync.
    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __bool__(self):
        return bool(self._a)

    def reshape(self, *shape, order="C"):
        return StrictArray(self._a.reshape(*shape, order=order))  # a view when possible

    def ravel(self):
        return StrictArray(self._a.ravel())

    def transpose(self, *axes):
        return StrictArray(self._a.transpose(*axes))

    def astype(self, dtype, copy=True):
        return StrictArray(self._a.astype(dtype, copy=copy))

    def copy(self):
        return StrictArray(self._a.copy())

    def fill(self, value):
        self._a.fill(_unwrap(value, "fill"))

    def get(self):
        """Copy to a NumPy array (explicit device -> host), as ``cupy.ndarray.get()``."""
        return self._a.copy()

    def item(self):
        return self._a.item()

    def sum(self, *args, **kwargs):
        return _call_numpy(_np.sum, (self, *args), kwargs)

    def mean(self, *args, **kwargs):
        return _call_numpy(_np.mean, (self, *args), kwargs)

    def max(self, *args, **kwargs):
        return _call_numpy(_np.max, (self, *args), kwargs)

    def min(self, *args, **kwargs):
        return _call_numpy(_np.min, (self, *args), kwargs)

    def argmax(self, *args, **kwargs):
        return _call_numpy(_np.argmax, (self, *args), kwargs)

    def any(self, *args, **kwargs):
        return _call_numpy(_np.any, (self, *args), kwargs)

    def all(self, *args, **kwargs):
        return _call_numpy(_np.all, (self, *args), kwargs)


# --- the module's namespace: what ``xp.<name>`` finds ---------------------------------------
# It mirrors NumPy's names, so ``sum``, ``max``, ``abs``, ``all`` ... below shadow Python's
# builtins in this file: the code above must not (and does not) call those builtins.

ndarray = StrictArray  # backend.check_array tests isinstance(x, xp.ndarray)

float16, float32, float64 = _np.float16, _np.float32, _np.float64
int8, int16, int32, int64 = _np.int8, _np.int16, _np.int32, _np.int64
uint8, bool_ = _np.uint8, _np.bool_
dtype, finfo, iinfo = _np.dtype, _np.finfo, _np.iinfo  # describe dtypes; no arrays involved
pi, e, inf, nan, newaxis = _np.pi, _np.e, _np.inf, _np.nan, _np.newaxis


def asarray(a, dtype=None):
    """Explicit host -> device copy (like ``cupy.asarray``); a StrictArray passes through."""
    if isinstance(a, StrictArray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    return StrictArray(_np.array(a, dtype=dtype, copy=True))  # a copy: "device" memory


array = asarray


def asnumpy(a):
    """Explicit device -> host copy (like ``cupy.asnumpy``)."""
    if isinstance(a, StrictArray):
        return a._a.copy()
    return _np.asarray(a)


def _numpy_function(func):
    """``func`` on StrictArrays: unwrap the arguments, refuse NumPy arrays, wrap the result."""

    def strict_function(*args, **kwargs):
        return _call_numpy(func, args, kwargs)

    strict_function.__name__ = strict_function.__qualname__ = func.__name__
    strict_function.__doc__ = f"numpy.{func.__name__} on strict_xp arrays."
    return strict_function


# Creation: the results live on the "device".
zeros = _numpy_function(_np.zeros)
ones = _numpy_function(_np.ones)
empty = _numpy_function(_np.empty)
full = _numpy_function(_np.full)
arange = _numpy_function(_np.arange)
zeros_like = _numpy_function(_np.zeros_like)
ones_like = _numpy_function(_np.ones_like)
empty_like = _numpy_function(_np.empty_like)
full_like = _numpy_function(_np.full_like)
# Elementwise (ufuncs; called through the module they accept out=).
add = _numpy_function(_np.add)
subtract = _numpy_function(_np.subtract)
multiply = _numpy_function(_np.multiply)
divide = _numpy_function(_np.divide)
negative = _numpy_function(_np.negative)
power = _numpy_function(_np.power)
maximum = _numpy_function(_np.maximum)
minimum = _numpy_function(_np.minimum)
exp = _numpy_function(_np.exp)
log = _numpy_function(_np.log)
log1p = _numpy_function(_np.log1p)
expm1 = _numpy_function(_np.expm1)
tanh = _numpy_function(_np.tanh)
abs = _numpy_function(_np.abs)  # noqa: A001  (the module mirrors numpy's names)
sqrt = _numpy_function(_np.sqrt)
square = _numpy_function(_np.square)
sign = _numpy_function(_np.sign)
clip = _numpy_function(_np.clip)
isfinite = _numpy_function(_np.isfinite)
isnan = _numpy_function(_np.isnan)
where = _numpy_function(_np.where)
matmul = _numpy_function(_np.matmul)
dot = _numpy_function(_np.dot)
# Reductions: 0-d StrictArrays, not Python numbers.
sum = _numpy_function(_np.sum)  # noqa: A001
mean = _numpy_function(_np.mean)
max = _numpy_function(_np.max)  # noqa: A001
min = _numpy_function(_np.min)  # noqa: A001
argmax = _numpy_function(_np.argmax)
argmin = _numpy_function(_np.argmin)
any = _numpy_function(_np.any)  # noqa: A001
all = _numpy_function(_np.all)  # noqa: A001
allclose = _numpy_function(_np.allclose)
array_equal = _numpy_function(_np.array_equal)
# Shapes and indices.
reshape = _numpy_function(_np.reshape)
ascontiguousarray = _numpy_function(_np.ascontiguousarray)
transpose = _numpy_function(_np.transpose)
concatenate = _numpy_function(_np.concatenate)
stack = _numpy_function(_np.stack)
argsort = _numpy_function(_np.argsort)
shares_memory = _numpy_function(_np.shares_memory)


def unravel_index(indices, shape):
    """As ``cupy.unravel_index``, which needs a device array of indices: given a Python int it
    fails (on ``(indices < 0).any()``), so refuse one here too. A host int is unravelled on the
    host, with ``numpy.unravel_index``."""
    if not isinstance(indices, StrictArray):
        raise TypeError(
            f"strict_xp.unravel_index: indices must be a strict_xp array (as in CuPy), got "
            f"{type(indices).__name__}; unravel a host int with numpy.unravel_index"
        )
    return _call_numpy(_np.unravel_index, (indices, shape), {})


# --- what CuPy lacks: every other name raises ------------------------------------------------
# The names of the stand-in are a subset of CuPy's. Where a name is missing, the error says
# which of two cases it is: CuPy lacks it too (the library must do without it, or the code
# fails on a real GPU), or CuPy has it and the stand-in does not model it yet (add it here,
# after checking that CuPy's version takes the same arguments).

# NumPy names that cupy/__init__.py (cupy/cupy at 6b6d956, August 2026) does not define,
# compared with NumPy 2.4's namespace; older CuPy releases lack more.
_NUMPY_ONLY = frozenset("""
    False_ ScalarType True_ asmatrix block bmat busday_count busday_offset busdaycalendar bytes_
    char character clongdouble complex256 ctypeslib datetime64 datetime_as_string datetime_data
    einsum_path emath errstate flexible float128 frompyfunc fromregex geomspace getbufsize geterr
    geterrcall histogram_bin_edges insert is_busday isnat little_endian longdouble ma matrix
    matvec memmap nanpercentile nanquantile ndenumerate nditer nested_iters object_ polyder
    polydiv polyint rec recarray record sctypeDict setbufsize seterr seterrcall spacing str_
    strings timedelta64 typecodes unstack vecdot vecmat void
""".split())

# cupy.random.Generator's methods (cupy/random/_generator_api.pyx at the same commit). NumPy's
# Generator has these and more: normal, permutation, shuffle, permuted, choice, bytes,
# lognormal, ..., which CuPy's lacks.
_CUPY_GENERATOR_METHODS = frozenset("""
    beta binomial chisquare dirichlet exponential f gamma geometric hypergeometric integers
    logseries poisson power random standard_exponential standard_gamma standard_normal uniform
""".split())
_GENERATOR_HINTS = {  # how to draw what CuPy's Generator lacks with what it has
    "normal": "draw loc + scale * rng.standard_normal(size, dtype=...) instead",
    "permutation": "draw xp.argsort(rng.random(n)) instead (minigan.dataset.epoch_order)",
    "shuffle": "index with xp.argsort(rng.random(n)) instead",
    "permuted": "index with xp.argsort(rng.random(n)) instead",
    "choice": "draw indices with rng.integers(0, n, size) instead",
}


def _missing(owner, name, cupy_has, hint=""):
    """The AttributeError for a name the stand-in does not offer; cupy_has: True, False or None
    (not known here)."""
    if name.startswith("__"):  # copy, pickle, NumPy and pytest probe dunders: a plain refusal
        return AttributeError(f"{owner} has no attribute {name!r}")
    why = {True: "CuPy has it, but the stand-in does not model it: add it to tests/strict_xp.py "
                 "with CuPy's signature",
           False: "CuPy has no such name, so code that uses it fails on a GPU",
           None: "not offered by the stand-in; before adding it, check that CuPy has it "
                 "(docs.cupy.dev/en/stable/reference/comparison.html)"}[cupy_has]
    return AttributeError(f"{owner}.{name}: {why}{'; ' + hint if hint else ''}")


class _StrideTricks:
    """``strict_xp.lib.stride_tricks``: ``as_strided``, as ``cupy.lib.stride_tricks`` has it."""

    @staticmethod
    def as_strided(x, shape=None, strides=None):
        """A view of x with the given shape and byte strides (no copy); x must be ours."""
        if not isinstance(x, StrictArray):
            raise TypeError(f"strict_xp.as_strided: x must be a strict_xp array, got "
                            f"{type(x).__module__}.{type(x).__name__}")
        return StrictArray(_np.lib.stride_tricks.as_strided(x._a, shape=shape, strides=strides))

    def __getattr__(self, name):
        raise _missing("strict_xp.lib.stride_tricks", name, name == "sliding_window_view" or None)


class _LibModule:
    """``strict_xp.lib``: only ``stride_tricks``."""

    stride_tricks = _StrideTricks()

    def __getattr__(self, name):
        raise _missing("strict_xp.lib", name, cupy_has=False)


lib = _LibModule()


class _BitGenerator:
    """``rng.bit_generator``. CuPy's (XORWOW, on cuRAND) has no state dict to save and restore:
    its ``state()`` is a method that returns a device pointer. This one returns a number too,
    so checkpoint code sees what it would see on a GPU."""

    def state(self):
        return id(self)  # stands in for the device pointer

    def __setattr__(self, name, value):
        raise AttributeError(f"strict_xp: rng.bit_generator.{name} cannot be set (CuPy's "
                             "generator state lives on the device and is not a dict)")


class _Generator:
    """``strict_xp.random.default_rng(seed)``: NumPy's PCG64 stream, drawn as StrictArrays.

    The same seed gives the same numbers as ``numpy.random.default_rng(seed)``, so a strict run
    can be compared with a NumPy run bit for bit. Only ``cupy.random.Generator``'s methods
    exist, with its signatures: ``normal`` and ``permutation``, for instance, raise.
    """

    def __init__(self, seed):
        self._rng = _np.random.default_rng(seed)
        self.bit_generator = _BitGenerator()

    # Each draw is an array, a 0-d one for size=None (NumPy's Generator returns a Python float
    # there, CuPy's a 0-d device array).

    def standard_normal(self, size=None, dtype=_np.float64):
        return StrictArray(_np.asarray(self._rng.standard_normal(size, dtype=dtype)))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=_np.float64):
        # NumPy's uniform has no dtype: draw float64 and cast (CuPy draws float32 directly).
        low, high = _unwrap((low, high), "uniform")
        return StrictArray(_np.asarray(self._rng.uniform(low, high, size), dtype=dtype))

    def random(self, size=None, dtype=_np.float64):
        return StrictArray(_np.asarray(self._rng.random(size, dtype=dtype)))

    def integers(self, low, high=None, size=None, dtype=_np.int64, endpoint=False):
        # CuPy's bounds are Python ints (int(low), int(high)): arrays of bounds raise there.
        low, high = int(low), None if high is None else int(high)
        draws = self._rng.integers(low, high, size, dtype=dtype, endpoint=endpoint)
        return StrictArray(_np.asarray(draws))

    def __getattr__(self, name):
        raise _missing("strict_xp.random.Generator", name, name in _CUPY_GENERATOR_METHODS,
                       _GENERATOR_HINTS.get(name, ""))


class _RandomModule:
    """``strict_xp.random``: only the explicit-generator API. CuPy also has NumPy's legacy
    functions on a global state (``cupy.random.normal``, ``.permutation``, ``.seed``), but
    minigan draws from an explicit generator only, so the stand-in leaves them out."""

    @staticmethod
    def default_rng(seed=None):
        return seed if isinstance(seed, _Generator) else _Generator(seed)  # as cupy's does

    def __getattr__(self, name):
        raise AttributeError(f"strict_xp.random.{name}: the stand-in offers default_rng only; "
                             "minigan draws from an explicit generator (backend.default_rng), "
                             "never from global random state")


random = _RandomModule()


def __getattr__(name):
    """``xp.<name>`` for a name this module does not define (PEP 562): say why it is missing."""
    if name in _NUMPY_ONLY:
        raise _missing("strict_xp", name, cupy_has=False)
    raise _missing("strict_xp", name, cupy_has=True if hasattr(_np, name) else None)

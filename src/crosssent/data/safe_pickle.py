"""A restricted, bounded reader for the pickles of feature releases (MMSA and the like).

What a pickle may build: builtin containers and scalars, numpy arrays, dtypes and scalars.
Nothing else, and not even those by handing the pickle the real callables:

- a global is looked up as an exact ``(module, name)`` pair in ``_ALLOWED``, which maps it to a
  checking stand-in written here; no module is ever imported because a pickle names it;
- every stand-in checks its arguments: ``str`` takes text or bytes only (``str`` of a
  container would render a shared-reference DAG into gigabytes), ``bytes`` never takes a
  count, ``numpy.dtype`` takes a plain type code only and always makes a copy, and so on;
- the only object that may receive ``BUILD`` state is a numpy array made by
  ``_reconstruct`` or a dtype made by ``numpy.dtype``; the state is checked before numpy sees
  it: raw data must be exactly shape x itemsize bytes, and a dtype that holds Python objects
  is refused unless it is the plain object dtype, whose arrays then come from a list of
  already-checked objects (the form NumPy itself writes them in; MMSA stores clip ids and
  texts so). Raw bytes read as object pointers, which crashed the process, cannot happen;
- the reader is bounded (``Bounds``): file size, opcodes and elements built, nesting depth and
  seconds.

Every refusal is a ``ValueError`` naming the file: one line, never a traceback, a crash or a hang.
The pure-Python unpickler is used (``pickle._Unpickler``) because its ``BUILD`` step can be
checked; feature arrays arrive as a few large byte strings, so it is not slow for them.
"""

from __future__ import annotations

import pickle
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from struct import error as struct_error
from typing import Any

import numpy as np
from numpy._core.multiarray import _reconstruct as _np_reconstruct
from numpy._core.multiarray import scalar as _np_scalar


@dataclass(frozen=True)
class Bounds:
    """Limits of one read. ``elements``: opcodes run plus items put in containers by a call;
    ``depth``: nesting of containers in the result (and of marks while reading)."""

    max_bytes: int = 16 * 2**30
    elements: int = 50_000_000
    depth: int = 100
    seconds: float = 600.0
    stack: int = 1_000_000


class _Refused(pickle.UnpicklingError):
    """A pickle asked for something this reader does not do."""


_SCALARS = (int, float, bool, complex, str, bytes, type(None))
_DTYPE_CODE = re.compile(r"^[?bBhHiIlLqQpPefdgFDGbiufcSUVOMm][0-9]{0,6}(\[[a-zA-Z0-9]+\])?$")


def _need(condition: bool, what: str) -> None:
    if not condition:
        raise _Refused(what)


def _as_bytes(raw: Any) -> bytes:
    """Raw data as bytes (a Python 2 pickle read with ``latin1`` gives it as text)."""
    if isinstance(raw, str):
        return raw.encode("latin1")
    _need(isinstance(raw, (bytes, bytearray, pickle.PickleBuffer)), f"raw data of type {type(raw).__name__}")
    return bytes(raw)


def _shape(shape: Any) -> tuple[int, ...]:
    _need(
        isinstance(shape, tuple) and len(shape) <= 32 and all(type(n) is int and n >= 0 for n in shape),
        f"array shape {shape!r:.80}",
    )
    return shape


def _plain_dtype(dtype: Any) -> np.dtype:
    """A dtype without Python objects inside (the plain object dtype aside, checked by callers)."""
    _need(isinstance(dtype, np.dtype), f"a dtype of type {type(dtype).__name__}")
    _need(not dtype.hasobject or dtype == np.dtype(object), f"dtype {dtype!s:.80} holds Python objects inside a structure")
    return dtype


class _Reader(pickle._Unpickler):  # type: ignore[name-defined]
    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]
    stack: list[Any]  # the pure-Python unpickler's own state, set by load()
    metastack: list[Any]

    def __init__(self, handle: Any, *, bounds: Bounds) -> None:
        super().__init__(handle, encoding="latin1")
        self.bounds = bounds
        self.count = 0
        self.deadline = time.monotonic() + bounds.seconds
        self.fresh: dict[int, Any] = {}  # objects that may still receive BUILD state, by id

    # -- bookkeeping -------------------------------------------------------------------------
    def spend(self, n: int) -> None:
        self.count += n
        if self.count > self.bounds.elements:
            raise _Refused(f"it builds more than {self.bounds.elements} elements")
        if time.monotonic() > self.deadline:
            raise _Refused(f"reading it takes more than {self.bounds.seconds:g} s")

    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # Python 2's name for builtins, used by protocol 0-2 pickles
            module = "builtins"
        make = _ALLOWED.get((module, name))
        if make is None:
            raise _Refused(f"pickle holds a forbidden object {module}.{name}; refusing to load it")
        return make(self)

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        _need(self.fresh.pop(id(inst), None) is inst, f"state for a {type(inst).__name__}")
        if isinstance(inst, np.ndarray):
            _build_array(inst, state)
        else:
            _build_dtype(inst, state)

    dispatch[pickle.BUILD[0]] = load_build  # type: ignore[assignment]


def _counted(op: Callable[[Any], None]) -> Callable[[Any], None]:
    def run(self: _Reader) -> None:
        op(self)
        self.count += 1
        if not self.count & 0xFFF:
            self.spend(0)
        if len(self.metastack) > self.bounds.depth:
            raise _Refused(f"it nests deeper than {self.bounds.depth} levels")
        if len(self.stack) > self.bounds.stack:
            raise _Refused(f"its stack grows past {self.bounds.stack} items")

    return run


_Reader.dispatch = {code: _counted(op) for code, op in _Reader.dispatch.items()}


# -- the stand-ins: each takes the reader and returns what the pickle may call --------------
def _container(kind: type) -> Callable[[_Reader], Callable[..., Any]]:
    def make(reader: _Reader) -> Callable[..., Any]:
        def build(*args: Any) -> Any:
            _need(
                len(args) <= 1 and all(isinstance(a, (list, tuple, dict, set, frozenset, str, bytes)) for a in args),
                f"{kind.__name__}() of {', '.join(type(a).__name__ for a in args)}",
            )
            reader.spend(len(args[0]) if args else 0)
            return kind(*args)

        return build

    return make


def _scalar_type(kind: Callable[..., Any]) -> Callable[[_Reader], Callable[..., Any]]:
    def make(reader: _Reader) -> Callable[..., Any]:
        def build(*args: Any) -> Any:
            _need(
                len(args) <= 2 and all(isinstance(a, _SCALARS) for a in args),
                f"{getattr(kind, '__name__', kind)}() of {', '.join(type(a).__name__ for a in args)}",
            )
            if kind is bytes:
                _need(not args or not isinstance(args[0], int), "bytes() of a count")
            return kind(*args)

        return build

    return make


def _encode(reader: _Reader) -> Callable[..., Any]:
    def encode(text: Any, encoding: Any = "utf-8") -> bytes:
        _need(isinstance(text, str) and encoding in ("latin1", "latin-1", "utf-8", "utf8"), "_codecs.encode() arguments")
        return text.encode(encoding)

    return encode


def _ndarray_class(reader: _Reader) -> Any:
    return np.ndarray  # only ever handed to _reconstruct, which checks that it got this


def _reconstruct(reader: _Reader) -> Callable[..., Any]:
    def reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
        _need(subtype is np.ndarray, f"an array of type {subtype!r:.80}")
        array: np.ndarray = _np_reconstruct(np.ndarray, (0,), b"b")  # type: ignore[assignment]
        reader.fresh[id(array)] = array
        return array

    return reconstruct


def _dtype(reader: _Reader) -> Callable[..., Any]:
    def dtype(code: Any, align: Any = False, copy: Any = True) -> np.dtype:
        _need(isinstance(code, str) and bool(_DTYPE_CODE.match(code)) and isinstance(align, (bool, int)), f"dtype({code!r:.40})")
        made = np.dtype(code, bool(align), True)  # always a copy: BUILD must never touch numpy's own
        reader.fresh[id(made)] = made
        return made

    return dtype


def _scalar(reader: _Reader) -> Callable[..., Any]:
    def scalar(dtype: Any, raw: Any = None) -> Any:
        dtype = _plain_dtype(dtype)
        if dtype.hasobject:  # numpy returns the object itself: it was built by this reader
            return raw
        data = _as_bytes(raw)
        _need(len(data) == dtype.itemsize, f"a {dtype} scalar from {len(data)} bytes")
        return _np_scalar(dtype, data)

    return scalar


def _frombuffer(reader: _Reader) -> Callable[..., Any]:
    def frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
        dtype = _plain_dtype(dtype)
        _need(not dtype.hasobject, "an object array from raw bytes")
        data, shape = _as_bytes(buffer), _shape(shape)
        _need(len(data) == int(np.prod(shape, dtype=object)) * dtype.itemsize, "raw data whose length does not fit its shape")
        _need(order in ("C", "F"), f"array order {order!r:.20}")
        return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy()

    return frombuffer


def _build_array(array: np.ndarray, state: Any) -> None:
    _need(isinstance(state, tuple) and len(state) in (4, 5), "array state")
    version, shape, dtype, fortran, raw = state if len(state) == 5 else (1, *state)
    _need(version in (0, 1) and isinstance(fortran, bool), "array state")
    shape, dtype = _shape(shape), _plain_dtype(dtype)
    size = int(np.prod(shape, dtype=object))
    if dtype.hasobject:  # the plain object dtype: items are objects this reader built, as a list
        _need(isinstance(raw, list) and len(raw) == size, "an object array from raw bytes")
    else:
        raw = _as_bytes(raw)
        _need(len(raw) == size * dtype.itemsize, "raw data whose length does not fit its shape")
    array.__setstate__((version, shape, dtype, fortran, raw))


def _build_dtype(dtype: np.dtype, state: Any) -> None:
    _need(isinstance(state, tuple) and len(state) in (8, 9) and state[1] in ("<", ">", "|", "="), "dtype state")
    names, fields = state[3], state[4]
    if fields is not None:  # a structure: every field's own dtype was checked when it was built
        _need(
            isinstance(fields, dict) and all(isinstance(f, tuple) and f and isinstance(f[0], np.dtype) for f in fields.values()),
            "dtype fields",
        )
    _need(names is None or (isinstance(names, tuple) and all(isinstance(n, str) for n in names)), "dtype names")
    dtype.__setstate__(state)  # type: ignore[attr-defined]
    _plain_dtype(dtype)


_ALLOWED: dict[tuple[str, str], Callable[[_Reader], Any]] = {
    ("builtins", "dict"): _container(dict),
    ("builtins", "list"): _container(list),
    ("builtins", "tuple"): _container(tuple),
    ("builtins", "set"): _container(set),
    ("builtins", "frozenset"): _container(frozenset),
    ("collections", "OrderedDict"): _container(OrderedDict),
    ("builtins", "int"): _scalar_type(int),
    ("builtins", "float"): _scalar_type(float),
    ("builtins", "bool"): _scalar_type(bool),
    ("builtins", "complex"): _scalar_type(complex),
    ("builtins", "str"): _scalar_type(str),
    ("builtins", "bytes"): _scalar_type(bytes),
    ("builtins", "slice"): _scalar_type(slice),
    ("_codecs", "encode"): _encode,  # how Python 2 pickles store bytes (read with encoding='latin1')
    ("numpy", "ndarray"): _ndarray_class,
    ("numpy", "dtype"): _dtype,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy 1.x and 2.x names
    _ALLOWED[(_module, "_reconstruct")] = _reconstruct
    _ALLOWED[(_module, "scalar")] = _scalar
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_module, "_frombuffer")] = _frombuffer
for _name in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool_"):
    _ALLOWED[("numpy", _name)] = _scalar_type(getattr(np, _name))


def _check_depth(value: Any, limit: int) -> None:
    """The result's containers nest at most ``limit`` deep (walked once per object, no recursion)."""
    seen: set[int] = set()
    todo = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list, tuple, set, frozenset)) or (isinstance(item, np.ndarray) and item.dtype.hasobject):
            if depth > limit:
                raise _Refused(f"it nests deeper than {limit} levels")
            if id(item) in seen:
                continue
            seen.add(id(item))
            children = (
                list(item.keys()) + list(item.values())
                if isinstance(item, dict)
                else item.ravel().tolist()
                if isinstance(item, np.ndarray)
                else item
            )
            todo.extend((child, depth + 1) for child in children)


def safe_load(path: str | Path, *, bounds: Bounds = Bounds()) -> Any:
    """The object a pickle file holds, built only from allowed parts and within ``bounds``;
    anything else is a ``ValueError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    if path.stat().st_size > bounds.max_bytes:
        raise ValueError(f"{path}: refusing to read a pickle over {bounds.max_bytes} bytes")
    try:
        with path.open("rb") as handle:
            value = _Reader(handle, bounds=bounds).load()
        _check_depth(value, bounds.depth)
        return value
    except _Refused as err:
        message = str(err) if "forbidden object" in str(err) else f"refusing this pickle: {err}"
        raise ValueError(f"{path}: {message}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        IndexError,
        OverflowError,
        UnicodeError,
        struct_error,
    ) as err:
        raise ValueError(f"{path}: not a valid pickle ({type(err).__name__}: {str(err)[:200]})") from None
    except (MemoryError, RecursionError) as err:
        raise ValueError(f"{path}: refusing this pickle: it is too large or too deep to read ({type(err).__name__})") from None

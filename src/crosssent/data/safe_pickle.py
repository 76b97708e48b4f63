"""A restricted unpickler for feature releases: numpy arrays, numpy dtypes and builtin
containers/scalars only. Anything else is refused before it is constructed, so a malicious or
unexpected pickle never executes code."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # how Python 2 pickles store bytes (read with encoding='latin1')
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "int"), ("builtins", "float"), ("builtins", "str"),
    ("builtins", "bytes"), ("builtins", "bool"), ("builtins", "complex"), ("builtins", "slice"),
    ("collections", "OrderedDict"),
}
# numpy scalar types (numpy.float32, numpy.int64, ...) appear as dtype constructors
NUMPY_SCALARS = {
    "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
    "uint32", "uint64", "bool_", "str_", "bytes_", "object_",
}


class _Restricted(pickle.Unpickler):
    def __init__(self, handle: Any, *, where: str) -> None:
        super().__init__(handle, encoding="latin1")
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # Python 2's name for builtins, used by protocol 0-2 pickles
            module = "builtins"
        base = module.split(".")[0]
        if (module, name) in ALLOWED or (base == "numpy" and name in NUMPY_SCALARS):
            return super().find_class(module, name)
        if base == "numpy" and module.endswith("dtypes") and name.endswith("DType"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{self.where}: pickle holds a forbidden object {module}.{name}; refusing to load it")


def safe_load(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        with path.open("rb") as handle:
            return _Restricted(handle, where=str(path)).load()
    except pickle.UnpicklingError as err:
        raise ValueError(str(err) if str(path) in str(err) else f"{path}: not a valid pickle ({err})") from None
    except (EOFError, ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: not a valid pickle ({err})") from None

"""The restricted unpickler: numpy arrays and builtins load; anything else is refused unbuilt."""

import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

from crosssent.data.safe_pickle import safe_load


def test_arrays_scalars_and_containers_load(tmp_path):
    data = {
        "features": np.arange(6, dtype=np.float32).reshape(2, 3),
        "ids": np.array(["a", "b"], dtype=object),
        "lengths": [np.int64(3), np.float16(0.5)],
        "meta": OrderedDict(split=("train", {1, 2})),
        "raw": b"\x00\xff",
    }
    for protocol in (2, 4):  # protocol 2 stores bytes through _codecs.encode, as Python 2 pickles do
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        loaded = safe_load(path)
        np.testing.assert_array_equal(loaded["features"], data["features"])
        assert loaded["features"].dtype == np.float32 and list(loaded["ids"]) == ["a", "b"]
        assert loaded["lengths"] == data["lengths"] and loaded["meta"] == data["meta"] and loaded["raw"] == b"\x00\xff"


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/crosssent-pwned",))


class Harmless:
    pass


@pytest.mark.parametrize(
    "payload, name",
    [
        (Exploit(), r"(posix|os)\.system"),
        (Harmless(), r"tests\.data\.test_safe_pickle\.Harmless"),  # any class of ours or yours, not only dangerous ones
    ],
)
def test_other_objects_are_refused_before_they_are_built(tmp_path, payload, name):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"train": payload}))
    with pytest.raises(ValueError, match=rf"evil.pkl: pickle holds a forbidden object {name}; refusing"):
        safe_load(path)
    assert not os.path.exists("/tmp/crosssent-pwned")


def test_missing_and_corrupt_files_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="nope.pkl: file not found"):
        safe_load(tmp_path / "nope.pkl")
    (tmp_path / "bad.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="bad.pkl: not a valid pickle"):
        safe_load(tmp_path / "bad.pkl")
    (tmp_path / "cut.pkl").write_bytes(pickle.dumps({"a": np.zeros(100)})[:40])
    with pytest.raises(ValueError, match="cut.pkl: not a valid pickle"):
        safe_load(tmp_path / "cut.pkl")


# --------------------------------------------------------------------------------------------
# hostile pickles built only from allowed names: each class is refused with one line, in a
# child process, so that a reader which crashes (as the old one did) fails the test instead
# of killing the test run
# --------------------------------------------------------------------------------------------
class Reduces:
    """Pickles as ``func(*args)``, with BUILD ``state`` when given."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def _dag(levels):
    """A list whose repr doubles with every level while its pickle grows by a few bytes."""
    node = ["x" * 100]
    for _ in range(levels):
        node = [node, node]
    return node


def _hostile(tmp_path):
    reconstruct = np._core.multiarray._reconstruct
    scalar = np._core.multiarray.scalar
    object_field = np.dtype([("a", "O"), ("b", "O")])
    files = {
        # raw bytes read as object pointers (segfault before)
        "object_field_array": pickle.dumps(
            Reduces(reconstruct, (np.ndarray, (0,), b"b"), (1, (2,), object_field, False, b"\x41" * 32)), protocol=2
        ),
        "object_array_from_bytes": pickle.dumps(
            Reduces(reconstruct, (np.ndarray, (0,), b"b"), (1, (4,), np.dtype("O"), False, b"\x41" * 32)), protocol=4
        ),
        "object_field_scalar": pickle.dumps(Reduces(scalar, (object_field, b"\x41" * 16)), protocol=4),
        # a numpy module that runs its command line when imported, reached by a scalar-like name
        "numpy_submodule": b"\x80\x02cnumpy.f2py.__main__\nint8\n.",
        "numpy_unknown": b"\x80\x02cnumpy.nonexistent_module\nfloat32\n.",
        # small files that blow up: str() of a shared-reference DAG, bytes() of a count
        "string_dag": pickle.dumps(Reduces(str, (_dag(60),)), protocol=4),
        "bytes_count": pickle.dumps(Reduces(bytes, (10**12,)), protocol=4),
        "array_bigger_than_its_bytes": pickle.dumps(
            Reduces(reconstruct, (np.ndarray, (0,), b"b"), (1, (10**6, 10**6), np.dtype("f4"), False, b"\0" * 8))
        ),
        # deep nesting: lists, marks
        "deep_lists": b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b".",
        "deep_marks": b"\x80\x02" + b"(" * 100_000 + b".",
        # state given to something that is not a fresh array or dtype
        "build_a_list": b"\x80\x02]}b.",
    }
    for name, data in files.items():
        (tmp_path / f"{name}.pkl").write_bytes(data)
    return files


CHILD = """
import json, sys
from crosssent.data.safe_pickle import safe_load
out = {}
for path in sys.argv[1:]:
    try:
        safe_load(path)
        out[path] = "loaded"
    except ValueError as err:
        out[path] = str(err)
out["imported_f2py"] = "numpy.f2py.__main__" in sys.modules
print(json.dumps(out))
"""


def test_hostile_pickles_are_refused_in_one_line_without_crashing_or_hanging(tmp_path):
    import json
    import subprocess
    import sys
    import time

    files = _hostile(tmp_path)
    paths = [str(tmp_path / f"{name}.pkl") for name in files]
    started = time.monotonic()
    child = subprocess.run([sys.executable, "-c", CHILD, *paths], capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-2000:]  # a crash (-11) or SystemExit fails here
    assert time.monotonic() - started < 120
    answers = json.loads(child.stdout.strip().splitlines()[-1])
    assert answers.pop("imported_f2py") is False
    expected = {
        "object_field_array": "holds Python objects inside a structure",
        "object_array_from_bytes": "an object array from raw bytes",
        "object_field_scalar": "holds Python objects inside a structure",
        "numpy_submodule": "forbidden object numpy.f2py.__main__.int8",
        "numpy_unknown": "forbidden object numpy.nonexistent_module.float32",
        "string_dag": "str() of list",
        "bytes_count": "bytes() of a count",
        "array_bigger_than_its_bytes": "raw data whose length does not fit its shape",
        "deep_lists": "nests deeper than 100 levels",
        "deep_marks": "nests deeper than 100 levels",
        "build_a_list": "state for a list",
    }
    for name, message in expected.items():
        answer = answers[str(tmp_path / f"{name}.pkl")]
        assert answer.startswith(str(tmp_path / f"{name}.pkl") + ": ") and message in answer, (name, answer)
        assert "\n" not in answer


def test_the_reader_is_bounded_in_size_elements_and_time(tmp_path):
    from crosssent.data.safe_pickle import Bounds

    path = tmp_path / "many.pkl"
    path.write_bytes(pickle.dumps({"ids": [f"clip{i}" for i in range(20_000)]}, protocol=2))
    assert len(safe_load(path)["ids"]) == 20_000
    with pytest.raises(ValueError, match="many.pkl: refusing to read a pickle over 1000 bytes"):
        safe_load(path, bounds=Bounds(max_bytes=1000))
    with pytest.raises(ValueError, match="many.pkl: refusing this pickle: it builds more than 5000 elements"):
        safe_load(path, bounds=Bounds(elements=5000))
    with pytest.raises(ValueError, match="many.pkl: refusing this pickle: reading it takes more than 0 s"):
        safe_load(path, bounds=Bounds(seconds=0))
    copies = tmp_path / "copies.pkl"  # the same big list copied by many calls: counted per call
    big = list(range(10_000))
    copies.write_bytes(pickle.dumps([Reduces(tuple, (big,)) for _ in range(50)], protocol=4))
    assert len(copies.read_bytes()) < 100_000
    with pytest.raises(ValueError, match="builds more than 200000 elements"):
        safe_load(copies, bounds=Bounds(elements=200_000))


def test_real_release_pickle_reads_as_pickle_does():
    """The GCNet MOSI release (numpy 1.x names, object arrays of ids): the same values."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2].parent / "shared/data/mosi/GCNet/CMUMOSI_features_raw_2way.pkl"
    if not path.is_file():
        pytest.skip("../shared is absent")
    ours = safe_load(path)
    with path.open("rb") as handle:
        theirs = pickle.load(handle, encoding="latin1")
    assert pickle.dumps(ours, protocol=4) == pickle.dumps(theirs, protocol=4)

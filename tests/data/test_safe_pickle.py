"""The restricted unpickler: numpy arrays and builtins load; anything else is refused unbuilt."""

import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

from crosssent.data.safe_pickle import safe_load


def test_arrays_scalars_and_containers_load(tmp_path):
    data = {
        "features": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array(["a", "b"], dtype=object),
        "lengths": [np.int64(3), np.float16(0.5)], "meta": OrderedDict(split=("train", {1, 2})), "raw": b"\x00\xff",
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


@pytest.mark.parametrize("payload, name", [
    (Exploit(), r"(posix|os)\.system"),
    (Harmless(), r"tests\.data\.test_safe_pickle\.Harmless"),  # any class of ours or yours, not only dangerous ones
])
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

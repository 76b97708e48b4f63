import pytest

from crosssent.data.dataset import DatasetMeta, drop_modalities, load_dataset, save_dataset, summarize

META = DatasetMeta(name="t", task="mosi", label_min=-3, label_max=3, alignment="clip", audio_dim=2)


def cols(**changes):
    base = {
        "id": ["a", "b", "c"],
        "text": ["x", "y", "z"],
        "label": [1.0, -2.0, 0.0],
        "split": ["train", "valid", "test"],
        "audio": [[[1.0, 2.0]], [], [[0.5, 0.5]]],
    }
    return {**base, **changes}


def test_roundtrip_and_summary(tmp_path):
    save_dataset(cols(), META, tmp_path / "d", where="test")
    table, meta = load_dataset(tmp_path / "d")
    assert meta == META and table["id"] == ["a", "b", "c"]
    assert table["audio_length"] == [1, 0, 1]
    summary = summarize(table, meta)
    assert summary["splits"]["valid"]["missing_audio"] == 1
    assert summary["splits"]["train"]["positive"] == 1


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"id": ["a", "a", "c"]}, "clip id 'a' occurs more than once"),
        ({"split": ["train", "train", "test"]}, "split 'valid' is empty"),
        ({"split": ["train", "dev", "test"]}, "clip 'b' has split 'dev'"),
        ({"label": [1.0, float("nan"), 0.0]}, "clip 'b' has a NaN/missing label"),
        ({"label": [1.0, 3.5, 0.0]}, r"clip 'b' has label 3.5 outside \[-3.0, 3.0\]"),
        ({"audio": [[[1.0, 2.0]], [[1.0]], []]}, "clip 'b' has audio frames of width 1, expected 2"),
    ],
)
def test_bad_columns_are_refused_and_nothing_is_written(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        save_dataset(cols(**changes), META, tmp_path / "d", where="src.csv")
    assert not (tmp_path / "d").exists()
    assert list(tmp_path.iterdir()) == []


def test_not_a_dataset(tmp_path):
    with pytest.raises(ValueError, match="not a CrossSent dataset"):
        load_dataset(tmp_path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda meta: {**meta, "task": "imdb"}, r"invalid metadata \(task: Input should be 'mosi', 'mosei' or 'sims'\)"),
        (lambda meta: {**meta, "audio_dims": 3}, r"invalid metadata \(audio_dims: Extra inputs are not permitted\)"),
    ],
)
def test_edited_metadata_is_one_line_naming_the_field(tmp_path, edit, message):
    import json

    save_dataset(cols(), META, tmp_path / "d", where="test")
    path = tmp_path / "d" / "crosssent.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    with pytest.raises(ValueError, match=message) as caught:
        load_dataset(tmp_path / "d")
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)
    path.write_text("{")
    with pytest.raises(ValueError, match=r"invalid metadata \(the top level: Invalid JSON"):
        load_dataset(tmp_path / "d")


def test_drop_modalities_removes_the_stream_and_says_so(tmp_path):
    save_dataset(cols(), META, tmp_path / "d", where="test")
    table, meta = load_dataset(tmp_path / "d")
    dropped, new_meta = drop_modalities(table, meta, ["audio"], where="data.drop_modalities")
    assert "audio" not in dropped.column_names and "audio_length" not in dropped.column_names
    assert new_meta.audio_dim == 0 and new_meta.alignment == "none"
    assert "audio left out" in new_meta.notes[-1]
    assert meta == META and "audio" in table.column_names  # the inputs are untouched
    assert drop_modalities(table, meta, [], where="x") == (table, meta)
    with pytest.raises(ValueError, match="data.drop_modalities: cannot drop visual, the dataset has none"):
        drop_modalities(table, meta, ["visual"], where="data.drop_modalities")
    with pytest.raises(ValueError, match="unknown modality 'text'"):
        drop_modalities(table, meta, ["text"], where="x")


def test_a_saved_dataset_folder_gets_the_mode_a_plain_mkdir_gives(tmp_path):
    import stat

    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    save_dataset(cols(), META, tmp_path / "dataset", where="test")  # written in a temporary folder, then moved
    assert stat.S_IMODE((tmp_path / "dataset").stat().st_mode) == stat.S_IMODE(plain_dir.stat().st_mode)

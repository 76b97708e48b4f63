import numpy as np
import pytest

from crosssent.data.dataset import load_dataset
from crosssent.data.sources.tables import convert, read_labels

LABELS = """video_id,clip_id,text,label,mode
v1,1,good movie,1.5,train
v1,2,bad film,-2.0,valid
v2,1,it was ok,0.0,test
v2,2,great,2.4,train
"""


def files(tmp_path, labels=LABELS, audio_rows=("v1_1,1,2", "v1_1,3,4", "v1_2,5,6", "v2_1,7,8")):
    (tmp_path / "label.csv").write_text(labels)
    (tmp_path / "audio.csv").write_text("id,f0,f1\n" + "\n".join(audio_rows) + "\n")
    np.savez(tmp_path / "visual.npz", v1_1=np.ones(3), v2_2=np.zeros(3))
    return tmp_path / "label.csv"


def test_label_and_feature_tables(tmp_path):
    path, report = convert(
        files(tmp_path),
        tmp_path / "out",
        name="t",
        task="mosi",
        audio=tmp_path / "audio.csv",
        visual=tmp_path / "visual.npz",
        alignment="clip",
    )
    table, meta = load_dataset(path)
    assert table["id"] == ["v1_1", "v1_2", "v2_1", "v2_2"]
    assert meta.audio_dim == 2 and meta.visual_dim == 3
    assert table["audio"][0] == [[1.0, 2.0], [3.0, 4.0]] and table["audio_length"][3] == 0
    assert any("visual: 2 clip(s) without features" in r for r in report)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"audio_rows": ("v9_9,1,2",)}, "clip id 'v9_9' has no row in"),
        ({"labels": LABELS.replace("1.5,train", "nan,train")}, "clip 'v1_1' has a NaN/missing label"),
        ({"labels": LABELS.replace("1.5,train", "4.5,train")}, r"label 4.5 outside \[-3.0, 3.0\]"),
        ({"labels": LABELS.replace(",valid", ",train")}, "split 'valid' is empty"),
        ({"labels": LABELS.replace("text,", "words,")}, "missing column"),
        ({"audio_rows": ("v1_1,1",)}, "line 2 has 2 fields, header has 3"),
    ],
)
def test_bad_tables(tmp_path, kwargs, message):
    label = files(tmp_path, **kwargs)
    with pytest.raises(ValueError, match=message):
        convert(label, tmp_path / "out", name="t", task="mosi", audio=tmp_path / "audio.csv", visual=None, alignment="clip")
    assert not (tmp_path / "out").exists()


def test_missing_label_file(tmp_path):
    with pytest.raises(ValueError, match="nope.csv: file not found"):
        convert(tmp_path / "nope.csv", tmp_path / "out", name="t", task="mosi", audio=None, visual=None, alignment="clip")


def test_read_labels_takes_the_transcript_from_the_named_column(tmp_path):
    path = tmp_path / "label.csv"
    path.write_text("video_id,clip_id,text,label,mode,text_en\nv1,1,好电影,0.5,train,good movie\n")
    assert read_labels(path, text_column="text_en")["text"] == ["good movie"]
    assert read_labels(path)["text"] == ["好电影"]
    with pytest.raises(ValueError, match="label.csv: missing column\\(s\\) text_de"):
        read_labels(path, text_column="text_de")

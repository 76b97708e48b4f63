"""Scoring new transcripts with an exported model folder."""

import numpy as np
import pytest

from crosssent.inference.predict import gather_clips, predict_folder, read_transcripts, unused_streams_note
from crosssent.scoring import evaluate_folder
from crosssent.train.trainer import train_run
from tests.conftest import tiny_settings


def test_a_transcript_scores_as_its_clip_does_in_evaluation(tmp_path, synthetic_dir):
    # Trained without A/V, so evaluation of the test split sees exactly what predict sees:
    # the transcript, tokenized the way the training data was (word alignment here).
    out = tmp_path / "run"
    train_run(tiny_settings(synthetic_dir, data={"drop_modalities": ["audio", "visual"]}, train={"max_epochs": 1}), out)
    _, rows = evaluate_folder(out / "model", synthetic_dir, ("test",))
    from crosssent.data.dataset import load_dataset

    table, _ = load_dataset(synthetic_dir)
    text_of = dict(zip(table["id"], table["text"]))
    clips = [(clip, text_of[clip]) for clip, _, _, _ in rows]
    prep, preds = predict_folder(out / "model", clips)
    assert unused_streams_note(prep) is None
    np.testing.assert_allclose(preds, [p for _, _, _, p in rows], atol=1e-5)
    assert len(set(np.round(preds, 4))) > 1  # a real score per clip, not a constant


def test_a_model_with_audio_and_visual_scores_text_alone_and_says_so(tmp_path, synthetic_dir):
    out = tmp_path / "run"
    train_run(tiny_settings(synthetic_dir, train={"max_epochs": 1}), out)
    prep, preds = predict_folder(out / "model", [("a", "i love this great film"), ("b", "awful boring plot")])
    assert preds.shape == (2,) and np.isfinite(preds).all()
    assert "audio (8 features) and visual (6 features)" in unused_streams_note(prep)


def test_clips_come_from_arguments_then_the_csv(tmp_path):
    path = tmp_path / "clips.csv"
    path.write_text("id,text\nx1,so good\nx2,bad one\n", encoding="utf-8")
    assert gather_clips(["fine"], path) == [("1", "fine"), ("x1", "so good"), ("x2", "bad one")]
    path.write_text("text\nso good\n", encoding="utf-8")
    assert read_transcripts(path) == [("1", "so good")]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        ("id,words\na,good\n", "no 'text' column (columns: id, words)"),
        ("id,text\n", "no rows"),
        ("id,text\na,good\nb,  \n", "clip 'b' has an empty transcript"),
        ("id,text\na,good\na,bad\n", "clip id 'a' appears more than once"),
        (b"id,text\na,caf\xe9\n", "clips.csv: not UTF-8 text"),
    ],
)
def test_bad_transcript_files_are_named(tmp_path, content, message):
    path = tmp_path / "clips.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        gather_clips([], path)
    with pytest.raises(ValueError, match="nothing to score"):
        gather_clips([], None)


def test_hiding_every_stream_scores_each_clip_from_its_transcript_alone(tmp_path, synthetic_dir):
    # evaluate --hide audio --hide visual and crosssent predict must agree clip by clip: both
    # leave the A/V path empty. Unhidden, the same model predicts differently (it uses A/V).
    out = tmp_path / "run"
    train_run(tiny_settings(synthetic_dir, train={"max_epochs": 1}), out)
    _, hidden = evaluate_folder(out / "model", synthetic_dir, ("test",), hide=("audio", "visual"))
    _, full = evaluate_folder(out / "model", synthetic_dir, ("test",))
    from crosssent.data.dataset import load_dataset

    table, _ = load_dataset(synthetic_dir)
    text_of = dict(zip(table["id"], table["text"]))
    _, preds = predict_folder(out / "model", [(clip, text_of[clip]) for clip, _, _, _ in hidden])
    np.testing.assert_allclose(preds, [p for _, _, _, p in hidden], atol=1e-5)
    assert not np.allclose([p for _, _, _, p in full], [p for _, _, _, p in hidden], atol=1e-3)
    with pytest.raises(ValueError, match="--hide text: choose from audio, visual"):
        evaluate_folder(out / "model", synthetic_dir, ("test",), hide=("text",))


def test_a_model_folder_without_its_weights_or_tokenizer_is_one_line(tmp_path, synthetic_dir):
    out = tmp_path / "run"
    train_run(tiny_settings(synthetic_dir, data={"drop_modalities": ["audio", "visual"]}, train={"max_epochs": 1}), out)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        (out / "model" / name).unlink(missing_ok=True)
    with pytest.raises(ValueError, match=r"model: not a complete model folder \(tokenizer.json is missing\)"):
        predict_folder(out / "model", [("a", "good")])
    (out / "model" / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="model.safetensors is missing"):
        predict_folder(out / "model", [("a", "good")])

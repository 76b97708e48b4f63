"""A new recording as the model reads it: a model trained on audio (and faces) built from
recordings gets the same streams for a new recording, in predict --media and in
POST /predict-recording."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from crosssent.cli import app
from crosssent.features.audio import audio_extractor
from crosssent.features.media import read_audio
from crosssent.features.pooling import clip_vector
from crosssent.features.recording import RecordingReader
from crosssent.features.visual import FACE_MEASURES
from crosssent.inference.predict import score_clips
from crosssent.inference.serve import create_app
from crosssent.model.folder import load_model_folder, load_preprocessing
from crosssent.train.trainer import train_run
from tests.conftest import tiny_settings
from tests.features.test_audio import needs_opensmile
from tests.features.test_build import build
from tests.features.test_transcribe import RAW, needs_raw_clips, needs_whisper
from tests.features.test_visual import needs_face

pytestmark = [needs_whisper, needs_raw_clips, needs_opensmile]
CLIPS = {"a": "03bSnISJMiM_1.wav", "b": "Oz06ZWiO20M_6.mp4"}


def _late_fusion_on(folder: Path, recordings: list[str], **build_settings) -> Path:
    """A late-fusion model (the streams go straight to the head), one epoch, trained on features
    built from copies of the raw MOSI recordings: two train clips, one valid, one test."""
    media = folder / "media"
    media.mkdir()
    rows = ["id,label,split,text"]
    for n, (split, label) in enumerate((("train", 2.4), ("train", -0.8), ("valid", 2.4), ("test", -0.8))):
        name = recordings[n % len(recordings)]
        shutil.copy(RAW / name, media / f"c{n}{Path(name).suffix}")
        rows.append(f"c{n},{label},{split},clip {n} text")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    data, _ = build(media, folder / "labels.csv", folder / "data", **build_settings)
    train_run(tiny_settings(data, model={"variant": "late_fusion"}, train={"max_epochs": 1}), folder / "run")
    return folder / "run" / "model"


@pytest.fixture(scope="module")
def voice_model(tmp_path_factory):
    """Trained on egemaps features of the two raw MOSI recordings."""
    return _late_fusion_on(tmp_path_factory.mktemp("voice"), [CLIPS["a"], CLIPS["b"]], name="raw-mosi")


def test_the_model_folder_names_its_audio_extractor(voice_model):
    prep = load_preprocessing(voice_model)
    assert prep.audio_extractor == "egemaps" and prep.audio_dim == 50 and "opensmile" in prep.audio_extractor_version


def test_predict_media_feeds_the_recordings_audio(voice_model):
    wav = RAW / CLIPS["a"]
    heard = CliRunner().invoke(app, ["predict", "--model", str(voice_model), "--media", str(wav)])
    assert heard.exit_code == 0, heard.output
    assert "audio (egemaps) computed from the recordings" in heard.output
    line = next(line for line in heard.output.splitlines() if line.startswith("03bSnISJMiM_1"))
    transcript = line.split(None, 3)[3]
    typed = CliRunner().invoke(app, ["predict", "--model", str(voice_model), "--text", transcript])
    assert "typed transcripts have no recording" in typed.output
    typed_score = float(next(line for line in typed.output.splitlines() if line.startswith("1 ")).split()[1])
    assert abs(float(line.split()[1]) - typed_score) > 1e-4  # the voice changed the score


def test_the_service_feeds_the_recordings_audio_too(voice_model):
    prep = load_preprocessing(voice_model)
    reader = RecordingReader(audio_extractor=prep.audio_extractor, version=prep.audio_extractor_version, alignment=prep.alignment)
    client = TestClient(create_app(voice_model, transcriber=reader))
    wav = RAW / CLIPS["a"]
    answer = client.post("/predict-recording", params={"name": wav.name}, content=wav.read_bytes())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["streams_used"] == ["text", "audio"] and body["audio_visual_left_empty"] is False
    cli = CliRunner().invoke(app, ["predict", "--model", str(voice_model), "--media", str(wav)])
    printed = next(line for line in cli.output.splitlines() if line.startswith("03bSnISJMiM_1"))
    assert np.isclose(body["clips"][0]["prediction"], float(printed.split()[1]), atol=1e-3)


def test_another_extractor_version_is_refused():
    with pytest.raises(ValueError, match="but this installation has"):
        RecordingReader(audio_extractor="egemaps", version="eGeMAPSv02 low-level descriptors, opensmile 0.0")


@pytest.fixture(scope="module")
def voice_and_face_model(tmp_path_factory):
    """Trained on egemaps audio and face features of the raw MOSI video."""
    return _late_fusion_on(tmp_path_factory.mktemp("face"), [CLIPS["b"]], name="raw-mosi-av", visual="face")


@needs_face
def test_predict_media_feeds_the_videos_face_and_says_when_a_recording_has_none(voice_and_face_model):
    prep = load_preprocessing(voice_and_face_model)
    assert prep.visual_extractor == "face" and prep.visual_dim == 2 * len(FACE_MEASURES)
    video, wav = RAW / CLIPS["b"], RAW / CLIPS["a"]
    heard = CliRunner().invoke(app, ["predict", "--model", str(voice_and_face_model), "--media", str(video), "--media", str(wav)])
    assert heard.exit_code == 0, heard.output
    assert "audio (egemaps) and visual (face) computed from the recordings" in heard.output
    assert "no visual stream:" in heard.output and "no video track" in heard.output
    reader = RecordingReader.for_model(prep)
    client = TestClient(create_app(voice_and_face_model, transcriber=reader))
    answer = client.post("/predict-recording", params={"name": video.name}, content=video.read_bytes())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["streams_used"] == ["text", "audio", "visual"] and body["audio_visual_left_empty"] is False
    printed = next(line for line in heard.output.splitlines() if line.startswith("Oz06ZWiO20M_6"))
    assert np.isclose(body["clips"][0]["prediction"], float(printed.split()[1]), atol=1e-3)
    blind = client.post("/predict-recording", params={"name": wav.name}, content=wav.read_bytes()).json()
    assert blind["streams_used"] == ["text", "audio"] and blind["audio_visual_left_empty"] is True
    assert "no video track" in blind["visual_missing"]
    # the face reaches the score: the same words and voice with another face score otherwise (the
    # training clips are one video, so this face itself standardises to the training mean)
    model, tokenizer, _ = load_model_folder(voice_and_face_model)
    seen = reader(video)
    with_face = score_clips(model, tokenizer, prep, [seen.text], [seen.audio], [seen.visual])
    other_face = score_clips(model, tokenizer, prep, [seen.text], [seen.audio], [seen.visual * 1.1])
    assert abs(float(with_face[0] - other_face[0])) > 1e-4


def test_another_visual_extractor_version_is_refused():
    with pytest.raises(ValueError, match="the model's visual stream was computed by face"):
        RecordingReader(visual_extractor="face", visual_version="face mesh measures v0")


def test_a_model_on_a_middle_whisper_layer_hears_a_new_recording_through_that_layer(tmp_path):
    model = _late_fusion_on(tmp_path, [CLIPS["a"], CLIPS["b"]], name="raw-mosi-layer2", audio="whisper-layer2")
    prep = load_preprocessing(model)
    assert prep.audio_extractor == "whisper-layer2" and prep.audio_dim == 1024 and "layer 2" in prep.audio_extractor_version
    wav = RAW / CLIPS["a"]
    heard = CliRunner().invoke(app, ["predict", "--model", str(model), "--media", str(wav)])
    assert heard.exit_code == 0, heard.output
    assert "audio (whisper-layer2) computed from the recordings" in heard.output
    reader = RecordingReader.for_model(prep)
    seen = reader(wav)
    layer2 = audio_extractor("whisper-layer2")(read_audio(wav))  # (frames, 512), the states after layer 2
    assert np.allclose(np.asarray(seen.audio).reshape(-1), clip_vector(layer2).reshape(-1), atol=1e-4)
    last = clip_vector(audio_extractor("whisper")(read_audio(wav))).reshape(-1)
    assert not np.allclose(np.asarray(seen.audio).reshape(-1), last, atol=0.1)  # not the last layer's
    scorer, tokenizer, _ = load_model_folder(model)
    printed = float(next(line for line in heard.output.splitlines() if line.startswith("03bSnISJMiM_1")).split()[1])
    scored = score_clips(scorer, tokenizer, prep, [seen.text], [seen.audio], [seen.visual])
    assert np.isclose(float(scored[0]), printed, atol=1e-3)

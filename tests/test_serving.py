"""The HTTP service: the same scores as crosssent predict, and bad requests answered with 422."""

import numpy as np
import pytest
from fastapi.testclient import TestClient

from crosssent import serving
from crosssent.prediction import predict_folder
from crosssent.serving import create_app
from crosssent.training import train_run
from crosssent.transcription import MediaTranscript, error_rate
from tests.conftest import tiny_settings
from tests.test_transcription import OFFICIAL, RAW, needs_raw_clips, needs_whisper


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, synthetic_dir):
    out = tmp_path_factory.mktemp("serve") / "run"
    train_run(tiny_settings(synthetic_dir, train={"max_epochs": 1}), out)
    return out / "model"


def test_predict_answers_what_crosssent_predict_prints(model_dir):
    client = TestClient(create_app(model_dir))
    assert client.get("/health").json() == {"status": "ok", "trained_on": "synthetic"}
    texts = ["i love this great film", "awful and boring plot", "it was a movie"]
    answer = client.post("/predict", json={"clips": [{"id": "a", "text": texts[0]}, {"text": texts[1]}, {"text": texts[2]}]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [c["id"] for c in body["clips"]] == ["a", "2", "3"]
    assert body["trained_on"] == "synthetic" and body["audio_visual_left_empty"] is True
    _, expected = predict_folder(model_dir, list(zip(["a", "2", "3"], texts)))
    np.testing.assert_allclose([c["prediction"] for c in body["clips"]], expected, atol=1e-5)
    assert [c["polarity"] for c in body["clips"]] == ["positive" if p > 0 else "negative" for p in expected]


@pytest.mark.parametrize("payload, message", [
    ({"clips": []}, "at least 1 item"),
    ({"clips": [{"text": "good"}, {"text": " "}]}, "clip '2' has an empty transcript"),
    ({"clips": [{"id": "x", "text": "good"}, {"id": "x", "text": "bad"}]}, "clip id 'x' appears more than once"),
    ({"clips": [{"txt": "good"}]}, "Field required"),
])
def test_bad_requests_are_422_with_the_reason(model_dir, payload, message):
    answer = TestClient(create_app(model_dir)).post("/predict", json=payload)
    assert answer.status_code == 422 and message in answer.text, answer.text


def test_a_folder_that_is_not_a_model_fails_before_serving(tmp_path):
    with pytest.raises(ValueError, match="not a CrossSent model folder"):
        create_app(tmp_path)


class FakeTranscriber:
    """Stands in for the speech model: records what it was given, answers a fixed transcript."""

    def __init__(self, text="i love this great film"):
        self.text, self.seen = text, []

    def __call__(self, path):
        self.seen.append((path.name, path.read_bytes()))
        if not self.text:
            raise ValueError(f"{path}: no speech found")
        return MediaTranscript(clip=path.stem, path=path, text=self.text, language="en", duration_s=1.5)


def test_a_recording_is_transcribed_then_scored_as_its_transcript(model_dir):
    fake = FakeTranscriber()
    answer = TestClient(create_app(model_dir, transcriber=fake)).post(
        "/predict-recording", params={"name": "clip 1.mp4"}, content=b"recorded bytes")
    assert answer.status_code == 200, answer.text
    assert fake.seen == [("clip 1.mp4", b"recorded bytes")]
    body = answer.json()
    assert (body["transcript"], body["language"], body["duration_s"]) == (fake.text, "en", 1.5)
    _, expected = predict_folder(model_dir, [("clip 1", fake.text)])
    assert body["clips"][0]["id"] == "clip 1"
    np.testing.assert_allclose(body["clips"][0]["prediction"], expected[0], atol=1e-5)


def test_bad_recordings_are_answered_with_the_reason(model_dir, monkeypatch):
    client = TestClient(create_app(model_dir, transcriber=FakeTranscriber(text="")))
    silent = client.post("/predict-recording", params={"name": "quiet.wav"}, content=b"x")
    assert silent.status_code == 422 and silent.json()["detail"] == "quiet.wav: no speech found"  # no server path shown
    empty = client.post("/predict-recording", params={"name": "quiet.wav"}, content=b"")
    assert empty.status_code == 422 and "the request body is empty" in empty.text
    for name in ("../up.wav", "..", "."):
        assert client.post("/predict-recording", params={"name": name}, content=b"x").status_code == 422, name
    assert client.post("/predict-recording", content=b"x").status_code == 422  # no name
    monkeypatch.setattr(serving, "MAX_RECORDING_BYTES", 4)
    assert client.post("/predict-recording", params={"name": "big.wav"}, content=b"12345").status_code == 413
    text_only = TestClient(create_app(model_dir)).post("/predict-recording", params={"name": "a.wav"}, content=b"x")
    assert text_only.status_code == 404 and "--speech-model" in text_only.text
    body = client.get("/openapi.json").json()["paths"]["/predict-recording"]["post"]["requestBody"]
    assert "application/octet-stream" in body["content"]  # /docs offers a file upload


@needs_whisper
@needs_raw_clips
def test_a_real_recording_over_http(model_dir):
    from crosssent.transcription import Transcriber

    wav = RAW / "03bSnISJMiM_1.wav"
    client = TestClient(create_app(model_dir, transcriber=Transcriber()))
    answer = client.post("/predict-recording", params={"name": wav.name}, content=wav.read_bytes())
    assert answer.status_code == 200, answer.text
    assert answer.json()["clips"][0]["id"] == "03bSnISJMiM_1"
    assert error_rate(OFFICIAL["03bSnISJMiM_1"], answer.json()["transcript"]) <= 0.2  # 0 measured here

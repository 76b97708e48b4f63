"""The HTTP service: the same scores as crosssent predict, and bad requests answered with 422."""

import contextlib
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

from crosssent.features.transcribe import MediaTranscript, error_rate
from crosssent.inference import serve as serving
from crosssent.inference.predict import predict_folder
from crosssent.inference.serve import create_app
from crosssent.train.trainer import train_run
from tests.conftest import tiny_settings
from tests.features.test_transcribe import OFFICIAL, RAW, needs_raw_clips, needs_whisper


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


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"clips": []}, "at least 1 item"),
        ({"clips": [{"text": "good"}, {"text": " "}]}, "clip '2' has an empty transcript"),
        ({"clips": [{"id": "x", "text": "good"}, {"id": "x", "text": "bad"}]}, "clip id 'x' appears more than once"),
        ({"clips": [{"txt": "good"}]}, "Field required"),
    ],
)
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
        "/predict-recording", params={"name": "clip 1.mp4"}, content=b"recorded bytes"
    )
    assert answer.status_code == 200, answer.text
    assert fake.seen == [("clip 1.mp4", b"recorded bytes")]
    body = answer.json()
    assert (body["transcript"], body["language"], body["duration_s"]) == (fake.text, "en", 1.5)
    _, expected = predict_folder(model_dir, [("clip 1", fake.text)])
    assert body["clips"][0]["id"] == "clip 1"
    np.testing.assert_allclose(body["clips"][0]["prediction"], expected[0], atol=1e-5)


def test_bad_recordings_are_answered_with_the_reason(model_dir):
    client = TestClient(create_app(model_dir, transcriber=FakeTranscriber(text="")))
    silent = client.post("/predict-recording", params={"name": "quiet.wav"}, content=b"x")
    assert silent.status_code == 422 and silent.json()["detail"] == "quiet.wav: no speech found"  # no server path shown
    empty = client.post("/predict-recording", params={"name": "quiet.wav"}, content=b"")
    assert empty.status_code == 422 and "the request body is empty" in empty.text
    for name in ("../up.wav", "..", "."):
        assert client.post("/predict-recording", params={"name": name}, content=b"x").status_code == 422, name
    assert client.post("/predict-recording", content=b"x").status_code == 422  # no name
    small = TestClient(create_app(model_dir, transcriber=FakeTranscriber(), limits=serving.Limits(recording_bytes=4)))
    assert small.post("/predict-recording", params={"name": "big.wav"}, content=b"12345").status_code == 413
    chunked = small.post("/predict-recording", params={"name": "big.wav"}, content=iter([b"123", b"45"]))  # no Content-Length
    assert chunked.status_code == 413 and "over 4 bytes" in chunked.text
    text_only = TestClient(create_app(model_dir)).post("/predict-recording", params={"name": "a.wav"}, content=b"x")
    assert text_only.status_code == 404 and "--speech-model" in text_only.text
    body = client.get("/openapi.json").json()["paths"]["/predict-recording"]["post"]["requestBody"]
    assert "application/octet-stream" in body["content"]  # /docs offers a file upload


@needs_whisper
@needs_raw_clips
def test_a_real_recording_over_http(model_dir):
    from crosssent.features.transcribe import Transcriber

    wav = RAW / "03bSnISJMiM_1.wav"
    client = TestClient(create_app(model_dir, transcriber=Transcriber()))
    answer = client.post("/predict-recording", params={"name": wav.name}, content=wav.read_bytes())
    assert answer.status_code == 200, answer.text
    assert answer.json()["clips"][0]["id"] == "03bSnISJMiM_1"
    assert error_rate(OFFICIAL["03bSnISJMiM_1"], answer.json()["transcript"]) <= 0.2  # 0 measured here


# --------------------------------------------------------------------------------------------
# a real server on loopback: concurrency and the bounds on what a client can make it hold
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def running_server(app, limits=serving.Limits()):
    """uvicorn with ``crosssent serve``'s config on 127.0.0.1 and a free port, in a thread."""
    import uvicorn

    server = uvicorn.Server(serving.server_config(app, host="127.0.0.1", port=0, limits=limits, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _clips(n, start=0):
    words = ["good", "bad", "great", "boring", "film", "plot", "love", "awful", "fine"]
    return [
        {"id": f"c{start + i}", "text": " ".join(words[(start + i * j) % len(words)] for j in range(1, 2 + i % 6))}
        for i in range(n)
    ]


def test_concurrent_requests_get_exactly_the_sequential_answers(model_dir):
    import httpx

    requests = [{"clips": _clips(1 + k % 5, start=k)} for k in range(24)]
    with running_server(create_app(model_dir)) as port:
        url = f"http://127.0.0.1:{port}/predict"
        with httpx.Client(timeout=60) as client:
            alone = [client.post(url, json=r).json() for r in requests]

        def ask(index):
            with httpx.Client(timeout=60) as client:
                return [(index, client.post(url, json=requests[index])) for _ in range(3)]

        with ThreadPoolExecutor(max_workers=12) as pool:  # 12 requests in flight at once
            answers = [a for batch in pool.map(ask, [k % len(requests) for k in range(48)]) for a in batch]
    assert len(answers) == 144
    for index, answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.json() == alone[index]


@pytest.mark.parametrize(
    "body, field",
    [
        ('{"clips": [{"id": "a", "text": NaN}]}', "text"),
        ('{"clips": [{"id": Infinity, "text": "good"}]}', "id"),
        ('{"clips": [{"text": "good"}], "extra": -Infinity}', "extra"),
        ('{"clips": [{"id": "a", "text": "good \\ud800 film"}]}', "text"),
        ('{"clips": [{"id": "\\udfff", "text": "good"}]}', "id"),
    ],
)
def test_nan_infinity_and_lone_surrogates_are_422_naming_the_field(model_dir, body, field):
    answer = TestClient(create_app(model_dir)).post(
        "/predict", content=body.encode(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][-1] == field
    assert "input" not in answer.json()["detail"][0]  # nothing echoed back


def test_request_bodies_and_clips_are_bounded(model_dir):
    limits = serving.Limits(predict_bytes=20_000)
    client = TestClient(create_app(model_dir, limits=limits))
    big = {"clips": [{"text": "good film " * 1500}]}  # 15,000 characters: over the per-clip bound
    answer = client.post("/predict", json=big)
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"][-1] == "text"
    huge = {"clips": [{"text": "good film"}] * 1000}  # over 20 kB: over this service's body bound
    assert client.post("/predict", json=huge).status_code == 413

    def chunked():  # no Content-Length: counted as it comes
        for _ in range(30):
            yield b" " * 1000

    answer = client.post("/predict", content=chunked(), headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "over 20000 bytes" in answer.text
    assert client.post("/predict", json={"clips": [{"text": "good"}]}).status_code == 200


def test_a_connection_that_never_finishes_its_request_is_closed(model_dir):
    limits = serving.Limits(head_seconds=0.5, body_seconds=0.5)
    with running_server(create_app(model_dir, limits=limits), limits) as port:
        for first in (b"", b"POST /predict HTTP/1.1\r\nHost: x\r\n"):  # nothing, or half a head
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(first)
                started = time.monotonic()
                assert sock.recv(1024) == b""  # closed by the server
                assert time.monotonic() - started < 4
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # a body that stalls
            sock.sendall(
                b'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"clips"'
            )
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 408"), answer

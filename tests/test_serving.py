"""The HTTP service: the same scores as crosssent predict, and bad requests answered with 422."""

import numpy as np
import pytest
from fastapi.testclient import TestClient

from crosssent.prediction import predict_folder
from crosssent.serving import create_app
from crosssent.training import train_run
from tests.conftest import tiny_settings


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

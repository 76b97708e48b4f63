"""An HTTP service around an exported model folder (FastAPI): ``crosssent serve``.

``GET /health`` says which data the model was trained on; ``POST /predict`` takes
``{"clips": [{"id": "a", "text": "..."}, ...]}`` (``id`` optional: numbered from 1) and answers
with a prediction and a polarity per clip, scored from the transcript as ``crosssent predict``
does (audio/visual left empty). The model is loaded once, before the service accepts requests.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from crosssent.evaluation import load_exported
from crosssent.prediction import check_clips, polarity, score_transcripts

MAX_CLIPS_PER_REQUEST = 1024


class Clip(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    text: str


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clips: list[Clip] = Field(min_length=1, max_length=MAX_CLIPS_PER_REQUEST)


class ScoredClip(BaseModel):
    id: str
    prediction: float
    polarity: str


class PredictResponse(BaseModel):
    trained_on: str
    label_min: float
    label_max: float
    audio_visual_left_empty: bool  # true when the model was trained with A/V it does not get here
    clips: list[ScoredClip]


def create_app(model_dir: Path) -> FastAPI:
    """The service for one model folder (a bad folder fails here, before serving)."""
    model, tokenizer, prep = load_exported(model_dir)
    has_streams = bool(prep.audio_dim or prep.visual_dim)
    app = FastAPI(title="CrossSent", summary=f"sentiment of transcripts, model trained on {prep.trained_on}")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "trained_on": prep.trained_on}

    @app.post("/predict")
    def predict(request: PredictRequest) -> PredictResponse:
        clips = [(c.id if c.id is not None else str(n), c.text) for n, c in enumerate(request.clips, start=1)]
        try:
            check_clips(clips)
        except ValueError as err:
            raise HTTPException(status_code=422, detail=str(err)) from None
        preds = score_transcripts(model, tokenizer, prep, [text for _, text in clips])
        return PredictResponse(
            trained_on=prep.trained_on, label_min=prep.label_min, label_max=prep.label_max,
            audio_visual_left_empty=has_streams,
            clips=[ScoredClip(id=c, prediction=float(p), polarity=polarity(p)) for (c, _), p in zip(clips, preds)],
        )

    return app

"""An HTTP service around an exported model folder (FastAPI): ``crosssent serve``.

``GET /health`` says which data the model was trained on; ``POST /predict`` takes
``{"clips": [{"id": "a", "text": "..."}, ...]}`` (``id`` optional: numbered from 1) and answers
with a prediction and a polarity per clip, scored from the transcript as ``crosssent predict``
does (audio/visual left empty). With a speech model (``crosssent serve --speech-model
whisper-base``), ``POST /predict-recording?name=clip.mp4`` takes a recording as the raw request
body, transcribes it (``transcription.py``) and answers the same way plus the transcript. Models
are loaded once, before the service accepts requests.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from crosssent.evaluation import load_exported
from crosssent.prediction import check_clips, polarity, score_transcripts
from crosssent.transcription import MediaTranscript

MAX_CLIPS_PER_REQUEST = 1024
MAX_RECORDING_BYTES = 64 * 2**20


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


class ScoredRecording(PredictResponse):
    transcript: str
    language: str
    duration_s: float


def create_app(model_dir: Path, *, transcriber: Callable[[Path], MediaTranscript] | None = None) -> FastAPI:
    """The service for one model folder (a bad folder fails here, before serving); recordings
    are accepted when a ``transcriber`` (``transcription.Transcriber``) is given."""
    model, tokenizer, prep = load_exported(model_dir)
    has_streams = bool(prep.audio_dim or prep.visual_dim)
    app = FastAPI(title="CrossSent", summary=f"sentiment of transcripts, model trained on {prep.trained_on}")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "trained_on": prep.trained_on}

    def scored(clips: list[tuple[str, str]]) -> dict:
        preds = score_transcripts(model, tokenizer, prep, [text for _, text in clips])
        return dict(
            trained_on=prep.trained_on, label_min=prep.label_min, label_max=prep.label_max,
            audio_visual_left_empty=has_streams,
            clips=[ScoredClip(id=c, prediction=float(p), polarity=polarity(p)) for (c, _), p in zip(clips, preds)],
        )

    @app.post("/predict")
    def predict(request: PredictRequest) -> PredictResponse:
        clips = [(c.id if c.id is not None else str(n), c.text) for n, c in enumerate(request.clips, start=1)]
        try:
            check_clips(clips)
        except ValueError as err:
            raise HTTPException(status_code=422, detail=str(err)) from None
        return PredictResponse(**scored(clips))

    # the raw body is read by hand (no multipart dependency); declared here so /docs offers an upload
    raw_body = {"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}

    @app.post("/predict-recording", openapi_extra=raw_body)
    async def predict_recording(
        request: Request, name: str = Query(min_length=1, max_length=200, pattern=r"^[\w.\- ]+$"),
    ) -> ScoredRecording:
        if transcriber is None:
            raise HTTPException(status_code=404, detail="this service takes transcripts only: start it with --speech-model whisper-base")
        if not any(ch.isalnum() for ch in name):  # '.', '..': not a file name
            raise HTTPException(status_code=422, detail=f"recording name {name!r} holds no letter or digit")
        with tempfile.TemporaryDirectory() as tmp:
            path, size = Path(tmp) / Path(name).name, 0
            with path.open("wb") as handle:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_RECORDING_BYTES:
                        raise HTTPException(status_code=413, detail=f"recording {name!r}: over {MAX_RECORDING_BYTES >> 20} MiB")
                    handle.write(chunk)
            if size == 0:
                raise HTTPException(status_code=422, detail=f"recording {name!r}: the request body is empty")
            try:  # off the event loop: transcribing and scoring take seconds
                found = await run_in_threadpool(transcriber, path)
            except ValueError as err:
                raise HTTPException(status_code=422, detail=str(err).replace(str(path), name)) from None
        answer = await run_in_threadpool(scored, [(found.clip, found.text)])
        return ScoredRecording(**answer, transcript=found.text, language=found.language, duration_s=found.duration_s)

    return app

"""An HTTP service around an exported model folder (FastAPI): ``crosssent serve``.

``GET /health`` says which data the model was trained on; ``POST /predict`` takes
``{"clips": [{"id": "a", "text": "..."}, ...]}`` (``id`` optional: numbered from 1) and answers
with a prediction and a polarity per clip, scored from the transcript as ``crosssent predict``
does (audio/visual left empty). With a speech model (``crosssent serve --speech-model
whisper-base``), ``POST /predict-recording?name=clip.mp4`` takes a recording as the raw request
body, transcribes it and, for a model trained on audio built from recordings, computes the same
audio features (``features/recording.py``); it answers the same way plus the transcript and the
streams used. Models are loaded once, before the service accepts requests.

One model serves every request: FastAPI scores in a thread pool, and a forward pass keeps no
per-call state (``modeling.py``), so concurrent requests get exactly the answers they get alone.
What a client can make the service hold is bounded (``Limits``; docs/serving.md): the bytes of a
request body, the clips per request and the characters per clip, the seconds a request head or
body may take to arrive, and the connections served at once. A bad request is a 4xx naming the
field; it never reaches the model.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import ClientDisconnect

from crosssent.features.recording import Recording
from crosssent.features.transcribe import MediaTranscript
from crosssent.inference.predict import check_clips, polarity, score_clips
from crosssent.model.onnx_runtime import load_runtime

MAX_CLIPS_PER_REQUEST = 1024
MAX_TEXT_CHARS = 10_000  # a minute of speech is about 1,000 characters; the model reads max_len tokens
MAX_ID_CHARS = 200
MAX_PREDICT_BYTES = 4 * 2**20  # room for 1024 clips of a few thousand characters each
MAX_RECORDING_BYTES = 64 * 2**20


def _no_lone_surrogates(value: str | None) -> str | None:
    """JSON can spell a lone UTF-16 surrogate (\\ud800), which is no character of any text."""
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("holds a lone surrogate (\\ud800-\\udfff), which is not text") from None
    return value


class Clip(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    text: str = Field(max_length=MAX_TEXT_CHARS)

    _text_is_text = field_validator("id", "text")(_no_lone_surrogates)


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
    streams_used: list[str]  # "text", and "audio" / "visual" when computed from the recording
    clips: list[ScoredClip]


class ScoredRecording(PredictResponse):
    transcript: str
    language: str
    duration_s: float
    visual_missing: str = ""  # why a model that reads faces got none from this recording


@dataclass(frozen=True)
class Limits:
    """What one client can make the service hold. ``head_seconds``: from connecting (or from the
    previous answer on a kept-alive connection) until the request line and headers are in;
    ``body_seconds``: until the whole body is in; ``connections``: served at once (more get 503)."""

    predict_bytes: int = MAX_PREDICT_BYTES
    recording_bytes: int = MAX_RECORDING_BYTES
    head_seconds: float = 10.0
    body_seconds: float = 30.0
    keep_alive_seconds: float = 5.0
    connections: int = 128


def _validation_answer(request: Request, err: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 without the ``input`` it would echo: an echoed NaN or lone surrogate cannot
    be written as JSON (a 500), and an echoed megabyte is a megabyte sent back."""
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in err.errors()]
    return JSONResponse(status_code=422, content={"detail": detail})


def create_app(
    model_dir: Path,
    *,
    transcriber: Callable[[Path], MediaTranscript | Recording] | None = None,
    limits: Limits = Limits(),
    runtime: str = "torch",
) -> FastAPI:
    """The service for one model folder (a bad folder fails here, before serving); recordings
    are accepted when a ``transcriber`` is given (``features.recording.RecordingReader``, or a
    plain ``features.transcribe.Transcriber`` for transcripts alone)."""
    # ONNX Runtime's threads never busy-wait here: the speech model and extractors need the cores
    model, tokenizer, prep = load_runtime(model_dir, runtime, spin=False)
    app = FastAPI(title="CrossSent", summary=f"sentiment of transcripts, model trained on {prep.trained_on}")
    app.add_exception_handler(RequestValidationError, _validation_answer)  # type: ignore[arg-type]
    app.add_middleware(BodyLimits, limits=limits)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "trained_on": prep.trained_on}

    def scored(clips: list[tuple[str, str]], audio: np.ndarray | None = None, visual: np.ndarray | None = None) -> dict:
        preds = score_clips(model, tokenizer, prep, [text for _, text in clips], [audio] * len(clips), [visual] * len(clips))
        used = ["text"] + [m for m, x in (("audio", audio), ("visual", visual)) if x is not None]
        left_empty = any(getattr(prep, f"{m}_dim") and m not in used for m in ("audio", "visual"))
        return dict(
            trained_on=prep.trained_on,
            label_min=prep.label_min,
            label_max=prep.label_max,
            audio_visual_left_empty=left_empty,
            streams_used=used,
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
    raw_body = {
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    }

    @app.post("/predict-recording", openapi_extra=raw_body)
    async def predict_recording(
        request: Request,
        name: str = Query(min_length=1, max_length=200, pattern=r"^[\w.\- ]+$"),
    ) -> ScoredRecording:
        if transcriber is None:
            raise HTTPException(
                status_code=404, detail="this service takes transcripts only: start it with --speech-model whisper-base"
            )
        if not any(ch.isalnum() for ch in name):  # '.', '..': not a file name
            raise HTTPException(status_code=422, detail=f"recording name {name!r} holds no letter or digit")
        with tempfile.TemporaryDirectory() as tmp:
            path, size = Path(tmp) / Path(name).name, 0
            with path.open("wb") as handle:
                try:
                    async for chunk in request.stream():
                        size += len(chunk)
                        if size > limits.recording_bytes:  # a chunked body has no Content-Length for BodyLimits
                            too_big = f"recording {name!r}: over {limits.recording_bytes} bytes"
                            raise HTTPException(status_code=413, detail=too_big)
                        handle.write(chunk)
                except ClientDisconnect:  # gone, or too slow (BodyLimits): nobody waits for an answer
                    raise HTTPException(status_code=408, detail=f"recording {name!r}: the body did not arrive in time") from None
            if size == 0:
                raise HTTPException(status_code=422, detail=f"recording {name!r}: the request body is empty")
            try:  # off the event loop: transcribing and scoring take seconds
                found = await run_in_threadpool(transcriber, path)
            except ValueError as err:
                raise HTTPException(status_code=422, detail=str(err).replace(str(path), name)) from None
        answer = await run_in_threadpool(
            scored, [(found.clip, found.text)], getattr(found, "audio", None), getattr(found, "visual", None)
        )
        return ScoredRecording(
            **answer,
            transcript=found.text,
            language=found.language,
            duration_s=found.duration_s,
            visual_missing=getattr(found, "visual_missing", ""),
        )

    return app


# --------------------------------------------------------------------------------------------
# bounds on what a client can make the service hold
# --------------------------------------------------------------------------------------------
async def _answer(send: Callable[..., Any], status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimits:
    """ASGI middleware: a ``/predict`` body is read whole here, at most ``limits.predict_bytes``
    (413 beyond, before the JSON is parsed) and within ``limits.body_seconds`` (408 after); a
    recording's body is streamed by its endpoint, and a pause past ``body_seconds`` ends it."""

    def __init__(self, app: Any, *, limits: Limits) -> None:
        self.app, self.limits = app, limits

    async def __call__(self, scope: dict, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        limit = {"/predict": self.limits.predict_bytes, "/predict-recording": self.limits.recording_bytes}.get(path)
        if limit is None:
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await _answer(send, 413, f"request body over {limit} bytes (Content-Length {declared.decode('latin1')[:20]})")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.body_seconds
        if path == "/predict-recording":

            async def timed_receive() -> dict:
                try:
                    return await asyncio.wait_for(receive(), timeout=max(deadline - loop.time(), 0.0))
                except TimeoutError:
                    return {"type": "http.disconnect"}

            return await self.app(scope, timed_receive, send)
        chunks, size = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), timeout=max(deadline - loop.time(), 0.0))
            except TimeoutError:
                return await _answer(send, 408, f"the request body did not arrive within {self.limits.body_seconds:g} s")
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return await _answer(send, 413, f"request body over {limit} bytes")
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


def timed_protocol(head_seconds: float) -> type:
    """uvicorn's h11 protocol, closing a connection whose request head has not come in within
    ``head_seconds`` of connecting or of the previous answer (uvicorn itself times out only an
    idle kept-alive connection, and no longer once a single byte has come in)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None
        _timed_cycle: Any = None

        def _start_head_timer(self) -> None:
            self._stop_head_timer()
            self._head_timer = self.loop.call_later(head_seconds, self._head_timed_out)

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._start_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and self.cycle is not self._timed_cycle:  # a head came in
                self._timed_cycle = self.cycle
                self._stop_head_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._start_head_timer()

    return TimedH11Protocol


def server_config(app: FastAPI, *, host: str, port: int, limits: Limits = Limits(), log_level: str = "info") -> Any:
    """The uvicorn config ``crosssent serve`` runs: h11 with the head timeout, bounded
    connections and header size."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=timed_protocol(limits.head_seconds),
        timeout_keep_alive=int(max(1, limits.keep_alive_seconds)),
        limit_concurrency=limits.connections,
        h11_max_incomplete_event_size=64 * 1024,
        log_level=log_level,
    )

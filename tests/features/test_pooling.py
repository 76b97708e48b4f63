"""From frames to a dataset's stream: per clip, per word, unaligned."""

import numpy as np
import pytest

from crosssent.features.pooling import clip_vector, downsample, pool, stream_width, word_means


def test_clip_vector_is_mean_then_std():
    frames = np.array([[1.0, 10.0], [3.0, 10.0]], dtype=np.float32)
    np.testing.assert_allclose(clip_vector(frames), [[2.0, 10.0, 1.0, 0.0]])
    assert stream_width(512, "clip") == 1024 and stream_width(25, "word") == 25


def test_word_means_average_the_frames_inside_each_span():
    frames = np.arange(10, dtype=np.float32)[:, None]  # 10 frames at 10 frames/s: frame i = value i
    words = word_means(frames, 10.0, [(0.0, 0.3), (0.3, 0.5), (0.95, 0.96)])
    np.testing.assert_allclose(words[:, 0], [1.0, 3.5, 9.0])  # a span shorter than a frame: the nearest frame


def test_downsample_averages_to_the_target_rate():
    frames = np.arange(12, dtype=np.float32)[:, None]
    np.testing.assert_allclose(downsample(frames, 50.0, target=10.0)[:, 0], [2.0, 7.0, 10.5])


def test_word_alignment_needs_spans_and_alignments_are_named():
    with pytest.raises(ValueError, match="needs the words' time spans"):
        pool(np.zeros((3, 2)), 10.0, "word")
    with pytest.raises(ValueError, match="unknown alignment 'frame'"):
        pool(np.zeros((3, 2)), 10.0, "frame")


def test_masked_frames_take_no_part_in_any_mean():
    frames = np.array([[1.0], [100.0], [3.0], [100.0], [5.0], [7.0]], dtype=np.float32)  # 10 frames/s
    valid = np.array([True, False, True, False, True, True])
    np.testing.assert_allclose(pool(frames, 10.0, "clip", valid=valid), [[4.0, np.std([1.0, 3.0, 5.0, 7.0])]])
    # the second word's span holds only a masked frame: it takes the valid frame nearest its middle
    words = pool(frames, 10.0, "word", [(0.0, 0.3), (0.31, 0.38)], valid=valid)
    np.testing.assert_allclose(words[:, 0], [2.0, 3.0])
    # a window of masked frames only is left out, never fed as zeros
    np.testing.assert_allclose(pool(frames, 20.0, "unaligned", valid=valid)[:, 0], [1.0, 3.0, 6.0])
    with pytest.raises(ValueError, match="no usable frame"):
        pool(frames, 10.0, "clip", valid=np.zeros(6, dtype=bool))

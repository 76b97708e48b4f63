"""Rows of an aligned table -> a typed Batch; the epoch order a resumed run must repeat."""

import torch

from crosssent.data.collate import Batch, EpochSeededSampler, collate


def row(clip, *, tokens, audio_frames=None):
    out = {"id": clip, "input_ids": tokens, "attention_mask": [1] * len(tokens), "label": 0.5}
    if audio_frames is not None:
        out["audio"] = [[float(f)] * 2 for f in range(audio_frames)]
        out["audio_mask"] = [1] * audio_frames
    return out


def test_rows_stack_with_the_model_dtypes_and_absent_streams_stay_none():
    batch = collate([row("a", tokens=[2, 7, 3], audio_frames=4), row("b", tokens=[2, 8, 3], audio_frames=4)])
    assert batch.id == ["a", "b"]
    assert batch.input_ids.dtype == torch.long and batch.input_ids.shape == (2, 3)
    assert batch.label.dtype == torch.float32 and batch.audio.shape == (2, 4, 2)
    assert batch.audio_mask.dtype == torch.bool and batch.audio_mask.all()
    assert batch.visual is None and batch.visual_mask is None  # no visual stream in these rows
    inputs = batch.model_inputs()
    assert set(inputs) == {"input_ids", "attention_mask", "audio", "audio_mask", "visual", "visual_mask"}
    assert inputs["visual"] is None and torch.equal(inputs["audio"], batch.audio)


def test_to_moves_every_tensor_and_keeps_the_ids():
    batch = collate([row("a", tokens=[2, 3])])
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and moved is not batch and moved.id == ["a"]
    assert torch.equal(moved.input_ids, batch.input_ids) and moved.audio is None


def test_epoch_order_depends_only_on_seed_and_epoch():
    def order(seed, epoch):
        sampler = EpochSeededSampler(20, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(0, 1) == order(0, 1)  # a resumed run sees the same order
    assert sorted(order(0, 1)) == list(range(20)) and len(EpochSeededSampler(20, seed=0)) == 20
    assert order(0, 1) != order(0, 2) and order(0, 1) != order(1, 1)

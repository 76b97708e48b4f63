"""Recordings + a label table -> a canonical dataset with audio features; resumable, and a clip
whose recording is missing or silent is kept without audio and named."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from crosssent.data.dataset import load_dataset
from crosssent.features import audio as audio_module
from crosssent.features.build import build_from_table, find_media, import_ravdess, merge_caches
from crosssent.features.visual import FACE_MEASURES
from tests.features.test_audio import needs_opensmile
from tests.features.test_media import write_tone
from tests.features.test_transcribe import RAW, needs_raw_clips, needs_whisper
from tests.features.test_visual import needs_face

SPLITS = ["train"] * 4 + ["valid"] * 2 + ["test"] * 2


def _recordings(folder: Path, n: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_tone(folder / f"c{i}.wav", seconds=1.0, amplitude=0.1 + 0.1 * (i % 4), hz=150 + 40 * i)
    return folder


def _labels(path: Path, ids: list[str]) -> Path:
    lines = ["id,label,split,text"] + [f"{c},{(i % 5) - 2.0},{SPLITS[i % 8]},clip number {i}" for i, c in enumerate(ids)]
    path.write_text("\n".join(lines) + "\n")
    return path


def build(media: Path, labels: Path, out: Path, **settings):
    """``build_from_table`` of an ``id,label,split,text`` table: egemaps clip vectors unless told."""
    columns = {"id_column": "id", "label_column": "label", "split_column": "split", "text_column": "text"}
    options = {"audio": "egemaps", "alignment": "clip", "task": "mosi", "name": "tones", "report": lambda _: None}
    return build_from_table(media, labels, out, **{**columns, **options, **settings})


@needs_opensmile
def test_a_folder_of_recordings_becomes_a_dataset_with_audio(tmp_path, monkeypatch):
    media = _recordings(tmp_path / "media")
    write_tone(media / "c7.wav", amplitude=0.0)  # digital silence
    labels = _labels(tmp_path / "labels.csv", [f"c{i}" for i in range(8)] + ["gone"])
    lines = []
    out, report = build(media, labels, tmp_path / "data", report=lines.append)
    table, meta = load_dataset(out)
    assert meta.audio_dim == 50 and meta.alignment == "clip" and "egemaps: eGeMAPSv02" in meta.audio_features
    assert table["audio_length"] == [1, 1, 1, 1, 1, 1, 1, 0, 0]
    assert any("clip gone: no recording found" in line for line in report)
    assert any("clip c7:" in line and "silent" in line for line in report)
    assert table["text"][0] == "clip number 0" and any("9/9 clips" in line for line in lines)
    # a second build reads every clip from the cache: the extractor is never called
    monkeypatch.setattr(audio_module.Egemaps, "__call__", lambda self, audio: pytest.fail("extracted again"))
    shutil.rmtree(out)
    again, _ = build(media, labels, tmp_path / "data")
    assert load_dataset(again)[0]["audio"][:7] == table["audio"][:7]


def test_the_mmsa_raw_layout_names_clips_video_then_clip(tmp_path):
    _recordings(tmp_path / "Raw" / "vidA", 2)
    write_tone(tmp_path / "Raw" / "vidB" / "3.wav")
    assert sorted(find_media(tmp_path)) == ["vidA_c0", "vidA_c1", "vidB_3"]
    (tmp_path / "Raw" / "vidB" / "3.mp3").write_bytes(b"")
    with pytest.raises(ValueError, match="would both be clip 'vidB_3'"):
        find_media(tmp_path)


@needs_opensmile
def test_bad_tables_and_outputs_are_one_line(tmp_path):
    media = _recordings(tmp_path / "media", 2)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label,split\nc0,good,train\n")
    with pytest.raises(ValueError, match=r"labels.csv: line 2 \(clip 'c0'\) has a non-numeric label"):
        build(media, labels, tmp_path / "o", name="")
    with pytest.raises(ValueError, match="it holds the input"):
        build(media, labels, media, name="")
    with pytest.raises(ValueError, match="--alignment must be one of clip, word, unaligned"):
        build(media, _labels(tmp_path / "l.csv", ["c0", "c1"]), tmp_path / "o", name="", alignment="frame")


@needs_opensmile
def test_ravdess_is_split_by_actor(tmp_path):
    source = tmp_path / "src"
    audio = source / "ravdess" / "audio"
    rows = ["id,actor,sex,emotion,intensity,statement,repetition,text,valence"]
    for actor in (1, 15, 17):
        for n, valence in enumerate((2.0, -2.0)):
            clip = f"03-01-0{n + 3}-01-01-01-{actor:02d}"
            write_tone(audio / f"{clip}.wav", amplitude=0.2 + 0.3 * n)
            rows.append(f"{clip},{actor},male,x,normal,1,1,Kids are talking by the door,{valence}")
    (source / "ravdess" / "labels.csv").write_text("\n".join(rows) + "\n")
    out, _ = import_ravdess(source, tmp_path / "rv", audio="egemaps", report=lambda _: None)
    table, meta = load_dataset(out)
    split = dict(zip(table["id"], table["split"]))
    assert [split[f"03-01-03-01-01-01-{a:02d}"] for a in (1, 15, 17)] == ["train", "valid", "test"]
    assert meta.name == "ravdess" and meta.task == "mosi" and "split by actor" in meta.source
    assert json.loads((out / "crosssent.json").read_text())["audio_dim"] == 50


@needs_opensmile
def test_a_noisy_copy_of_chosen_splits_says_its_snr_and_differs_from_the_clean_build(tmp_path):
    media = _recordings(tmp_path / "media")
    labels = _labels(tmp_path / "labels.csv", [f"c{i}" for i in range(8)])
    clean, _ = build(media, labels, tmp_path / "clean")
    noisy, report = build(media, labels, tmp_path / "snr0", noise_snr=0.0, splits=("test",))
    (clean_table, clean_meta), (table, meta) = load_dataset(clean), load_dataset(noisy)
    assert clean_meta.audio_noise_snr_db is None and meta.audio_noise_snr_db == 0.0
    assert "white noise at 0 dB SNR" in meta.audio_features and any("0 dB SNR" in line for line in report)
    assert table["id"] == clean_table["id"] and table["audio_length"] == [0] * 6 + [1, 1]  # only the test clips computed
    assert any("6 other clips kept without them" in line for line in report)
    assert all(not np.allclose(a, b) for a, b in zip(clean_table["audio"][6:], table["audio"][6:]))
    assert (tmp_path / "snr0.build-cache" / "egemaps-clip-snr0" / "c6.npz").is_file()
    again, _ = build(media, labels, tmp_path / "snr0-again", noise_snr=0.0, splits=("test",))
    assert load_dataset(again)[0]["audio"] == table["audio"]  # seeded by clip and SNR: the same noise
    untold = tmp_path / "test-text-only.csv"  # transcripts for the test clips only: nothing else is needed
    rows = labels.read_text().splitlines()
    untold.write_text("\n".join([rows[0], *(r if ",test," in r else r.rsplit(",", 1)[0] + "," for r in rows[1:])]) + "\n")
    partial, _ = build(media, untold, tmp_path / "partial", noise_snr=0.0, splits=("test",))
    assert load_dataset(partial)[0]["text"][:1] == [""] and load_dataset(partial)[0]["audio"][6:] == table["audio"][6:]
    with pytest.raises(ValueError, match="--split dev: no clip is in that split"):
        build(media, labels, tmp_path / "o", splits=("dev",))
    with pytest.raises(ValueError, match="--noise-snr adds noise to the waveform before audio extraction"):
        build(media, labels, tmp_path / "o", audio="none", noise_snr=10.0)


@needs_whisper
@needs_face
@needs_raw_clips
def test_the_raw_mosi_recordings_build_with_whisper_and_face_features_and_recognised_text(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    for clip, name in (("a", "03bSnISJMiM_1.wav"), ("b", "Oz06ZWiO20M_6.mp4"), ("c", "03bSnISJMiM_1.wav")):
        shutil.copy(RAW / name, media / f"{clip}{Path(name).suffix}")
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label,split\na,2.4,train\nb,-0.8,valid\nc,2.4,test\n")  # no text column: recognised
    out, report = build(media, labels, tmp_path / "data", audio="whisper", alignment="word", name="raw", visual="face")
    table, meta = load_dataset(out)
    assert meta.audio_dim == 512 and meta.alignment == "word" and meta.visual_dim == len(FACE_MEASURES)
    assert meta.visual_extractor == "face" and "mediapipe 0.10.21" in meta.visual_extractor_version
    assert "really good" in table["text"][0].lower()
    for text, frames in zip(table["text"], table["audio"]):
        assert len(frames) == len(text.split()) and np.isfinite(np.array(frames)).all()
    # the video has a face in every frame: one visual frame per word; the wav has no picture
    assert [len(v) for v in table["visual"]] == [0, len(table["text"][1].split()), 0]
    assert np.isfinite(np.array(table["visual"][1])).all() and np.array(table["visual"][1]).std(0).max() > 0
    assert any("clip a:" in line and "no video track; kept without visual" in line for line in report)


@needs_opensmile
def test_workers_and_shards_give_the_dataset_one_process_gives(tmp_path):
    media = _recordings(tmp_path / "media")
    labels = _labels(tmp_path / "labels.csv", [f"c{i}" for i in range(8)])
    one, _ = build(media, labels, tmp_path / "one")
    two, _ = build(media, labels, tmp_path / "two", workers=2)
    assert load_dataset(two)[0]["audio"] == load_dataset(one)[0]["audio"]
    # two machines, one shard each, then their caches merged and the dataset written without --shard
    caches = []
    for i in (1, 2):
        cache, lines = build(media, labels, tmp_path / f"m{i}" / "out", shard=(i, 2))
        assert cache.name == "egemaps-clip" and len(list(cache.glob("*.npz"))) == 4 and "merge" in lines[-1]
        assert not (tmp_path / f"m{i}" / "out").exists()  # a shard writes no dataset
        caches.append(cache)
    target = tmp_path / "final.build-cache" / "egemaps-clip"
    _, report = merge_caches(caches, target)
    assert "8 clip streams copied from 2 cache(s)" in report[0]
    final, _ = build(media, labels, tmp_path / "final")
    assert load_dataset(final)[0]["audio"] == load_dataset(one)[0]["audio"]
    with pytest.raises(ValueError, match="--shard 3/2: expected i/n with 1 <= i <= n"):
        build(media, labels, tmp_path / "x", shard=(3, 2))
    (caches[1] / "extractor.txt").write_text("another version\n")
    with pytest.raises(ValueError, match="the caches were made by different extractors"):
        merge_caches(caches, target)
    with pytest.raises(ValueError, match="made by 'another version', not by this installation's"):
        build(media, labels, tmp_path / "m2" / "out", shard=(2, 2))


def test_a_clip_id_never_picks_a_path_outside_the_cache():
    from crosssent.features.build import cache_name

    assert cache_name("03-01-05-02-01-01-01") == "03-01-05-02-01-01-01.npz"
    for hostile in ("../../x", "/etc/passwd", ".hidden", "a/b", ""):
        name = cache_name(hostile)
        assert "/" not in name and not name.startswith(".") and name.startswith("id-")


@needs_whisper
@needs_raw_clips
def test_a_given_transcript_is_timed_by_forced_alignment_not_recognised(tmp_path, monkeypatch):
    from crosssent.features.transcribe import Transcriber

    media = tmp_path / "media"
    media.mkdir()
    for clip in ("a", "b", "c"):
        shutil.copy(RAW / "03bSnISJMiM_1.wav", media / f"{clip}.wav")
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "id,label,split,text\na,2.4,train,anyhow it was really good\nb,2.4,valid,anyhow it was really good\n"
        "c,2.4,test,anyhow it was really good\n"
    )
    monkeypatch.setattr(Transcriber, "recognise", lambda *a, **k: pytest.fail("recognised a clip whose transcript is given"))
    out, _ = build(media, labels, tmp_path / "data", alignment="word", name="timed")
    frames = np.array(load_dataset(out)[0]["audio"][0])
    assert frames.shape == (5, 25) and len({tuple(f) for f in frames}) == 5  # five words, each its own span
    from crosssent.features.media import read_audio

    words = Transcriber().align(read_audio(RAW / "03bSnISJMiM_1.wav"), "anyhow it was really good", where=RAW)
    assert [w for w, _, _ in words] == ["anyhow", "it", "was", "really", "good"]
    # Whisper's own recognition of this clip times "really" at 2.24-2.64 s (checked by hand)
    assert abs(words[3][1] - 2.24) < 0.15 and abs(words[3][2] - 2.64) < 0.15

"""The embedded default dataset: synthetic clips whose sentiment is split between the words and
a "tone" that only the audio/visual streams carry.

Each clip has 6-12 words. Its text score ``t`` is the mean polarity of its sentiment words
(``good`` +1, ``terrible`` -2, ...; 0 when it has none). Its tone ``s`` in {-1, 0, +1} is drawn
independently of the words (sarcasm, enthusiasm): the label is ``clip(t + tone_weight*s + noise,
-3, 3)``. The tone shows up as an audio "emphasis" dimension on the sentiment words and as a
visual "smile" dimension on a random half of the words; all other dimensions are noise. A
text-only model cannot know ``s``, so a model that uses audio/visual well has a clearly lower
error: this is the end-to-end check that the A/V path works.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crosssent.data.dataset import Alignment, DatasetMeta, save_dataset

POLARITY = {
    "good": 1.0,
    "nice": 1.0,
    "fun": 1.0,
    "enjoyed": 1.5,
    "great": 2.0,
    "love": 2.0,
    "excellent": 2.0,
    "bad": -1.0,
    "dull": -1.0,
    "boring": -1.0,
    "disliked": -1.5,
    "terrible": -2.0,
    "hate": -2.0,
    "awful": -2.0,
}
FILLER = (
    "the movie film plot actor story it was i this and really scenes music ending character so just watched saw about"
).split()
AUDIO_DIM, VISUAL_DIM = 8, 6


def _clip(rng: np.random.Generator, *, tone_weight: float, label_noise: float, feature_noise: float):
    n_words = int(rng.integers(6, 13))
    words = list(rng.choice(FILLER, size=n_words))
    n_sent = int(rng.choice([0, 1, 1, 2]))
    slots = sorted(rng.choice(n_words, size=n_sent, replace=False).tolist())
    sentiment = list(POLARITY)
    for slot in slots:
        words[slot] = str(rng.choice(sentiment))
    text_score = float(np.mean([POLARITY[words[i]] for i in slots])) if slots else 0.0
    tone = int(rng.choice([-1, 0, 1], p=[0.3, 0.4, 0.3]))
    label = float(np.clip(text_score + tone_weight * tone + rng.normal(0, label_noise), -3, 3))
    audio = rng.normal(0, feature_noise, (n_words, AUDIO_DIM))
    visual = rng.normal(0, feature_noise, (n_words, VISUAL_DIM))
    emphasis = slots or [int(rng.integers(n_words))]
    audio[emphasis, 0] += 1.5 * tone  # stressed sentiment words
    smiles = rng.random(n_words) < 0.5
    visual[smiles, 0] += 1.0 * tone
    return " ".join(words), round(label, 3), audio, visual


def generate(
    out_dir: str | Path,
    *,
    n_train: int = 800,
    n_valid: int = 200,
    n_test: int = 300,
    seed: int = 0,
    alignment: Alignment = "word",
    tone_weight: float = 1.5,
    label_noise: float = 0.2,
    feature_noise: float = 0.5,
    missing_audio: float = 0.0,
    missing_visual: float = 0.0,
    shift: int = 0,
) -> Path:
    """Write a canonical synthetic dataset. ``missing_*``: share of clips without that stream;
    ``shift``: A/V frames delayed by this many words (circularly), a misalignment stress test;
    ``alignment``: ``word`` (one frame per word), ``unaligned`` (three frames per word),
    or ``clip`` (one mean vector per clip)."""
    if alignment == "none":
        raise ValueError("synthetic data always has audio/visual; use --alignment word, unaligned or clip")
    for name, value in (("missing_audio", missing_audio), ("missing_visual", missing_visual)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {k: [] for k in ("id", "text", "label", "split", "audio", "visual")}
    for split, count in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        for i in range(count):
            text, label, audio, visual = _clip(rng, tone_weight=tone_weight, label_noise=label_noise, feature_noise=feature_noise)
            if shift:
                audio, visual = np.roll(audio, shift, axis=0), np.roll(visual, shift, axis=0)
            if alignment == "unaligned":
                audio = np.repeat(audio, 3, axis=0) + rng.normal(0, 0.05, (3 * len(audio), AUDIO_DIM))
                visual = np.repeat(visual, 3, axis=0) + rng.normal(0, 0.05, (3 * len(visual), VISUAL_DIM))
            elif alignment == "clip":
                audio, visual = audio.mean(0, keepdims=True), visual.mean(0, keepdims=True)
            cols["id"].append(f"synth_{split}_{i:05d}")
            cols["text"].append(text)
            cols["label"].append(label)
            cols["split"].append(split)
            cols["audio"].append([] if rng.random() < missing_audio else audio.astype(np.float32).tolist())
            cols["visual"].append([] if rng.random() < missing_visual else visual.astype(np.float32).tolist())
    meta = DatasetMeta(
        name="synthetic",
        task="mosi",
        label_min=-3.0,
        label_max=3.0,
        alignment=alignment,
        audio_dim=AUDIO_DIM,
        visual_dim=VISUAL_DIM,
        audio_features="synthetic: dim 0 = tone emphasis on sentiment words, rest noise",
        visual_features="synthetic: dim 0 = smile on half of the words, rest noise",
        source=f"crosssent data synth (seed={seed})",
        notes=[
            f"label = clip(text_score + {tone_weight} * tone + N(0, {label_noise}), -3, 3); tone is in A/V only",
            f"missing_audio={missing_audio}, missing_visual={missing_visual}, shift={shift}",
        ],
    )
    return save_dataset(cols, meta, out_dir, where="synthetic generator")

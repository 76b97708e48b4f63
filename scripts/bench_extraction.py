"""Feature-extraction speed: clips/s of `crosssent data build` per extractor on 4 s clips.

    .venv/bin/python scripts/bench_extraction.py ../shared/data/mosi/raw_samples/Oz06ZWiO20M_6.mp4 \
        --clips 40 --out runs/bench-extraction

Cuts the first 4 s of a video with sound (re-encoded: H.264 + AAC), copies it ``--clips`` times
under distinct names, and times a fresh build (empty cache) of each setting below with 1 and 2
worker processes. Prints a Markdown table (also written to OUT/extraction.md) with clips/s and
the time a MOSI-size corpus (2199 clips) would take at that rate. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import shutil
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from crosssent.features.build import build_from_table

MOSI_CLIPS = 2199
SETTINGS = [  # (audio, visual, alignment)
    ("whisper", "none", "clip"),
    ("egemaps", "none", "clip"),
    ("none", "face", "clip"),
    ("whisper", "face", "clip"),
    ("whisper", "face", "word"),
]


def cut(source: Path, target: Path, seconds: float = 4.0) -> None:
    """The first ``seconds`` of ``source`` (video and sound), re-encoded."""
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        vin, ain = src.streams.video[0], src.streams.audio[0]
        vout = dst.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        aout = dst.add_stream("aac", rate=ain.codec_context.sample_rate)
        clock = Fraction(1, int(round(vin.average_rate)))
        shown = 0
        for frame in src.decode(vin, ain):
            if frame.time is None or frame.time >= seconds:
                continue
            if isinstance(frame, av.VideoFrame):
                frame.pts, frame.time_base = shown, clock  # the picture's own clock, from 0
                shown += 1
                dst.mux(vout.encode(frame))
            else:
                frame.pts = None
                dst.mux(aout.encode(frame))
        dst.mux(vout.encode())
        dst.mux(aout.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path)
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-extraction"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--only", nargs=3, metavar=("AUDIO", "VISUAL", "ALIGNMENT"), help="time this one setting alone")
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    media = args.out / "media"
    media.mkdir(parents=True)
    cut(args.video, media / "c0.mp4")
    for i in range(1, args.clips):
        shutil.copy(media / "c0.mp4", media / f"c{i}.mp4")
    splits = ["train", "valid", "test"]
    # typed transcripts, as MOSI has: only word alignment runs the recogniser (for word times)
    text = "i think it was really good"
    rows = ["id,label,split,text"] + [f"c{i},{np.sin(i):.3f},{splits[i % 3]},{text}" for i in range(args.clips)]
    (args.out / "labels.csv").write_text("\n".join(rows) + "\n")
    lines = [
        f"{args.clips} copies of a 4 s clip cut from {args.video.name}; fresh cache each time",
        "",
        "| audio | visual | alignment | workers | clips/s | MOSI-size (2199 clips) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for audio, visual, alignment in [tuple(args.only)] if args.only else SETTINGS:
        for workers in args.workers:
            out = args.out / f"data-{audio}-{visual}-{alignment}-{workers}"
            started = time.monotonic()
            table = {"task": "mosi", "name": "bench", "id_column": "id", "label_column": "label", "split_column": "split"}
            streams = {"audio": audio, "visual": visual, "alignment": alignment, "workers": workers}
            build_from_table(media, args.out / "labels.csv", out, **table, **streams, text_column="text", report=lambda _: None)
            rate = args.clips / (time.monotonic() - started)
            line = f"| {audio} | {visual} | {alignment} | {workers} | {rate:.2f} | {MOSI_CLIPS / rate / 60:.0f} min |"
            print(line, flush=True)
            lines.append(line)
            shutil.rmtree(out)
            shutil.rmtree(out.with_name(out.name + ".build-cache"))
    (args.out / "extraction.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / 'extraction.md'}")


if __name__ == "__main__":
    main()

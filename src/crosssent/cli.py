"""The ``crosssent`` command: thin wrappers that parse, call one function, and report.

Every expected failure (bad file, key, shape, label, config) ends with one line on stderr,
``error: ...``, and exit code 2; nothing half-written is left behind.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from crosssent.features.transcribe import ChineseScript

app = typer.Typer(help="CrossSent: multimodal sentiment analysis (GMRA).", no_args_is_help=True, add_completion=False)
data_app = typer.Typer(help="Create, convert and inspect canonical datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


# Options that several commands take, declared once (Typer reads the help from the alias).
Runtime = Annotated[
    str,
    typer.Option(help="torch, onnx (MODEL/model.onnx) or int8 (MODEL/model.int8.onnx); write them with crosssent export --onnx"),
]
Language = Annotated[str | None, typer.Option(help="spoken language of a recording, e.g. en or zh (detected if not given)")]
Script = Annotated[
    ChineseScript,
    typer.Option(help="script of a Chinese transcript (simplified matches CH-SIMS, the data Chinese models are trained on)"),
]


def _fail(err: Exception) -> NoReturn:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(code=2)


def _echo_err(line: str) -> None:
    typer.echo(line, err=True)


def _write_dataset(make: Callable[[], tuple[Path, list[str]]]) -> None:
    """Run an importer/converter; print its report, or fail with its one-line error."""
    try:
        path, report = make()
    except ValueError as err:
        _fail(err)
    for line in report:
        typer.echo(line)
    typer.echo(f"wrote {path}")


def _quiet_libraries(*, lightning: bool = False) -> None:
    import warnings

    if lightning:
        import importlib

        importlib.import_module("lightning.pytorch")  # it sets its loggers' levels when imported

    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    # ... but never this one: it is how a model that trains with its dropout off shows itself.
    warnings.filterwarnings("default", message=r"Found \d+ module\(s\) in eval mode")
    for name in ("transformers", "datasets", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import datasets
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    # Arrow saves of a few thousand clips take milliseconds; their bars only clutter the log.
    datasets.disable_progress_bars()


@app.command()
def train(
    config: Annotated[Path, typer.Option(help="YAML config (configs/*.yaml)")],
    out: Annotated[Path, typer.Option(help="run directory to write")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="override, e.g. model.inject_layer=2")] = None,
    resume: Annotated[bool, typer.Option(help="continue an interrupted run from its last checkpoint")] = False,
) -> None:
    """Train one model and write RUN_DIR (config, checkpoints, logs, model/, predictions, metrics)."""
    _quiet_libraries(lightning=True)
    from crosssent.scoring import format_table
    from crosssent.train.config import load_settings
    from crosssent.train.trainer import RunInterrupted, train_run

    try:
        settings = load_settings(config, set_ or [])
        metrics = train_run(settings, out, resume=resume)
    except RunInterrupted as err:
        typer.echo(f"stopped: {err}; continue with --resume", err=True)
        raise typer.Exit(code=3) from None
    except ValueError as err:
        _fail(err)
    if metrics is not None:
        typer.echo(format_table(metrics))
        typer.echo(f"wrote {out}/metrics.json, predictions.csv and model/")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="exported model folder (RUN_DIR/model)")],
    data: Annotated[Path, typer.Option(help="canonical dataset folder")],
    split: Annotated[list[str], typer.Option(help="split(s) to score")] = ["test"],
    out: Annotated[Path | None, typer.Option(help="write metrics (and predictions) here")] = None,
    hide: Annotated[list[str], typer.Option(help="withhold a stream (audio, visual) from every clip, as if missing")] = [],
    runtime: Runtime = "torch",
    transfer: Annotated[
        bool,
        typer.Option(
            "--transfer",
            help="data from another corpus: streams it lacks (or has at another width) are left empty, and predictions are "
            "mapped linearly from the model's label range to the data's (e.g. x3 from CH-SIMS's [-1, 1] to MOSI's "
            "[-3, 3]); the data's metric convention applies",
        ),
    ] = False,
) -> None:
    """Score an exported model on a dataset; prints the metrics table and writes JSON."""
    _quiet_libraries()
    from crosssent.scoring import evaluate_folder, format_table
    from crosssent.train.run_dir import RunDir, write_evaluation

    hidden = "".join(f"-hide-{m}" for m in hide)  # never overwrites the evaluation with every stream
    hidden += (f"-{runtime}" if runtime != "torch" else "") + ("-transfer" if transfer else "")
    out_dir = out or RunDir(model.parent).evaluation(data.resolve().name + hidden)
    try:
        if out_dir.exists() and not out_dir.is_dir():
            raise ValueError(f"--out {out_dir}: exists and is not a folder")
        metrics, rows = evaluate_folder(model, data, tuple(split), hide=tuple(hide), runtime=runtime, transfer=transfer)
        write_evaluation(out_dir, metrics, rows)
    except ValueError as err:
        _fail(err)
    typer.echo(format_table(metrics))
    typer.echo(f"wrote {out_dir}/metrics.json")


@app.command()
def predict(
    model: Annotated[Path, typer.Option(help="exported model folder (RUN_DIR/model)")],
    text: Annotated[list[str], typer.Option(help="a transcript to score (repeatable)")] = [],
    input: Annotated[Path | None, typer.Option(help="CSV of new clips: a 'text' column, optionally 'id'")] = None,
    media: Annotated[
        list[Path],
        typer.Option(
            help="a recording (wav, mp4, ...) to transcribe and score; its id is the file name without suffix (repeatable)"
        ),
    ] = [],
    speech_model: Annotated[
        str, typer.Option(help="for --media: 'whisper-base' or a CTranslate2 Whisper folder")
    ] = "whisper-base",
    language: Language = None,
    chinese_script: Script = ChineseScript.simplified,
    out: Annotated[Path | None, typer.Option(help="also write id,prediction,polarity,text as CSV here")] = None,
    runtime: Runtime = "torch",
) -> None:
    """Score new clips from their transcripts, or from recordings transcribed first, with an
    exported model. A model trained on audio/visual streams computed from recordings (crosssent
    data build) gets the same streams for each recording; other streams are left empty."""
    _quiet_libraries()
    from crosssent.atomic_files import check_file_target
    from crosssent.inference.predict import (
        check_clips,
        format_scores,
        gather_clips,
        read_recordings,
        score_folder,
        unused_streams_note,
        write_scores,
    )
    from crosssent.model.folder import load_preprocessing
    from crosssent.model.onnx_runtime import RUNTIMES

    try:
        if out is not None:
            check_file_target(out)
        if runtime not in RUNTIMES:
            raise ValueError(f"--runtime {runtime}: choose from {', '.join(RUNTIMES)}")
        prep = load_preprocessing(model)  # a wrong folder, bad text or bad CSV fails before any transcribing
        clips = gather_clips(text, input, more_to_come=bool(media))
        none: list = [None] * len(clips)
        heard, heard_audio, heard_visual = read_recordings(
            media, prep, speech_model=speech_model, language=language, chinese_script=chinese_script, report=_echo_err
        )
        clips, audio, visual = clips + heard, none + heard_audio, none + heard_visual
        check_clips(clips)  # a recording's id may repeat a transcript's
        prep, preds = score_folder(model, clips, audio, visual, runtime=runtime)
    except ValueError as err:
        _fail(err)
    given = tuple(m for m, s in (("audio", audio), ("visual", visual)) if any(x is not None for x in s))
    note = unused_streams_note(prep, given=given, from_recordings=bool(media))
    if note:
        typer.echo(note)
    typer.echo(format_scores(clips, preds, prep))
    if out is not None:
        write_scores(out, clips, preds)
        typer.echo(f"wrote {out}")


@app.command()
def transcribe(
    media: Annotated[list[Path], typer.Argument(help="recordings to transcribe (wav, mp3, mp4, ...)")],
    out: Annotated[Path, typer.Option(help="CSV to write: id,text,language,duration_s (crosssent predict --input reads it)")],
    speech_model: Annotated[str, typer.Option(help="'whisper-base' or a CTranslate2 Whisper folder")] = "whisper-base",
    language: Language = None,
    chinese_script: Script = ChineseScript.simplified,
) -> None:
    """Transcribe recordings with a speech model, into a CSV that predict --input scores."""
    _quiet_libraries()
    from crosssent.atomic_files import check_file_target
    from crosssent.features.transcribe import transcribe_files, write_transcripts

    try:
        check_file_target(out)
        transcripts = transcribe_files(
            media, model=speech_model, language=language, chinese_script=chinese_script, report=_echo_err
        )
        write_transcripts(out, transcripts)
    except ValueError as err:
        _fail(err)
    typer.echo(f"wrote {out} ({len(transcripts)} transcripts)")


@app.command()
def serve(
    model: Annotated[Path, typer.Option(help="exported model folder (RUN_DIR/model)")],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    speech_model: Annotated[
        str | None,
        typer.Option(help="also take recordings (POST /predict-recording): 'whisper-base' or a CTranslate2 Whisper folder"),
    ] = None,
    language: Language = None,
    chinese_script: Script = ChineseScript.simplified,
    runtime: Runtime = "torch",
) -> None:
    """Serve an exported model over HTTP: POST /predict with transcripts, GET /health, and with
    --speech-model POST /predict-recording with a recording."""
    _quiet_libraries()
    try:
        import uvicorn

        from crosssent.inference.serve import create_app, server_config
    except ImportError as err:
        _fail(ValueError(f"crosssent serve needs the serve extra ({err.name} is missing): pip install 'crosssent[serve]'"))
    try:
        from crosssent.features.recording import RecordingReader
        from crosssent.features.transcribe import resolve_speech_model
        from crosssent.model.folder import load_preprocessing

        if speech_model:
            resolve_speech_model(speech_model)  # a bad speech model is named before the model folder is read
        prep = load_preprocessing(model)
        transcriber = None
        if speech_model:  # a model trained on streams built from recordings gets the same streams
            transcriber = RecordingReader.for_model(
                prep, speech_model=speech_model, language=language, chinese_script=chinese_script
            )
        service = create_app(model, transcriber=transcriber, runtime=runtime)
    except ValueError as err:
        _fail(err)
    typer.echo(f"serving {model} on http://{host}:{port} (POST /predict, GET /health)", err=True)
    uvicorn.Server(server_config(service, host=host, port=port)).run()


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="exported model folder (RUN_DIR/model)")],
    onnx: Annotated[
        bool, typer.Option("--onnx", help="write MODEL/model.onnx for ONNX Runtime (dynamic batch, token and frame axes)")
    ] = False,
    quantize: Annotated[
        str | None, typer.Option(help="int8: also write MODEL/model.int8.onnx (dynamic int8 quantisation of the weights)")
    ] = None,
) -> None:
    """Export a model folder for another runtime; predict and serve then take --runtime onnx|int8.
    Each file is checked against the torch model before it is kept."""
    _quiet_libraries()
    if not onnx:
        _fail(ValueError("nothing to export: give --onnx"))
    from crosssent.model.onnx_runtime import export_onnx

    try:
        written = export_onnx(model, quantize=quantize)
    except ValueError as err:
        _fail(err)
    for path in written:
        typer.echo(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")


@app.command()
def bench(
    out: Annotated[Path, typer.Option(help="folder for bench.md and bench.json (bench-runtime.md/.json with --runtime)")],
    config: Annotated[Path | None, typer.Option(help="run config whose model section is measured (configs/*.yaml)")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override, e.g. model.backbone=mpnet")] = None,
    variant: Annotated[list[str], typer.Option(help="variants; the first is the reference")] = ["text_only", "crosssent"],
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
    warmup: Annotated[int, typer.Option(help="untimed calls before timing")] = 20,
    iters: Annotated[int, typer.Option(help="timed calls")] = 50,
    batch: Annotated[int, typer.Option(help="batch size of the throughput measurement")] = 64,
    audio_dim: Annotated[int, typer.Option(help="width of the audio sequence fed in")] = 74,
    visual_dim: Annotated[int, typer.Option(help="width of the visual sequence fed in")] = 35,
    model: Annotated[
        Path | None,
        typer.Option(help="with --runtime: exported model folder (RUN_DIR/model; crosssent export --onnx --quantize int8 first)"),
    ] = None,
    runtime: Annotated[
        list[str],
        typer.Option(help="torch, onnx, int8 (repeatable; the first is the reference): time one model's runtimes side by side"),
    ] = [],
    runtime_batch: Annotated[int, typer.Option(help="with --runtime: clips per call")] = 1,
    rounds: Annotated[
        int, typer.Option(help="with --runtime or --interleave: interleaved rounds (each times every runtime / variant once)")
    ] = 5,
    interleave: Annotated[
        bool,
        typer.Option(
            "--interleave",
            help="time the variants in one process, round after round, with paired ratios to the first (shapes: --length x "
            "--batch-size)",
        ),
    ] = False,
    length: Annotated[list[int], typer.Option(help="with --interleave: token lengths (repeatable)")] = [32, 50, 128],
    batch_size: Annotated[list[int], typer.Option(help="with --interleave: batch sizes (repeatable)")] = [1, 8, 64],
    train_batch: Annotated[int, typer.Option(help="with --interleave: also time a training step at this batch (0: no)")] = 0,
) -> None:
    """Parameters, latency, throughput and peak memory of each variant (forward only); with
    --model and --runtime, the clips/s of one exported model in each runtime, interleaved."""
    _quiet_libraries()
    if runtime:
        _bench_runtimes(model, runtime, out, batch=runtime_batch, rounds=rounds, calls=iters)
        return
    if config is None:
        _fail(ValueError("give --config (variants) or --model with --runtime (runtimes)"))
    if interleave:
        _bench_interleaved(
            config,
            set_ or [],
            variant,
            out,
            lengths=length,
            batches=batch_size,
            rounds=rounds,
            calls=iters,
            warmup=warmup,
            audio_dim=audio_dim,
            visual_dim=visual_dim,
            train_batch=train_batch,
        )
        return
    from crosssent.inference.bench import bench_shape, format_bench, run_bench
    from crosssent.train.config import load_settings

    try:
        settings = load_settings(config, set_ or [])
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"--device {device}: no CUDA device is visible")
        shape = bench_shape(
            max_len=settings.data.max_len,
            audio_dim=audio_dim,
            visual_dim=visual_dim,
            throughput_batch=batch,
            warmup=warmup,
            iters=iters,
        )
        report = run_bench(settings.model, variant, shape, device=device, progress=typer.echo)
    except ValueError as err:
        _fail(err)
    command = " ".join(
        [f"crosssent bench --config {config} --out {out}"]
        + [f"--set {o}" for o in set_ or []]
        + [f"--variant {v}" for v in variant]
        + [
            f"--device {device} --warmup {warmup} --iters {iters} --batch {batch}",
            f"--audio-dim {audio_dim} --visual-dim {visual_dim}",
        ]
    )
    _write_bench(out, "bench", report, format_bench(report, command=command))


def _write_bench(out: Path, stem: str, report: dict, text: str) -> None:
    """OUT/STEM.json and OUT/STEM.md of a benchmark, and the table on the terminal."""
    from crosssent.atomic_files import write_json_atomic, write_text_atomic

    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / f"{stem}.json", report)
    write_text_atomic(out / f"{stem}.md", text)
    typer.echo(text)
    typer.echo(f"wrote {out}/{stem}.md and {stem}.json")


def _bench_interleaved(
    config: Path,
    overrides: list[str],
    variants: list[str],
    out: Path,
    *,
    lengths: list[int],
    batches: list[int],
    rounds: int,
    calls: int,
    warmup: int,
    audio_dim: int,
    visual_dim: int,
    train_batch: int,
) -> None:
    from crosssent.inference.bench import format_interleaved, run_interleaved
    from crosssent.train.config import load_settings

    try:
        settings = load_settings(config, overrides)
        report = run_interleaved(
            settings.model,
            variants,
            lengths=lengths,
            batches=batches,
            audio_dim=audio_dim,
            visual_dim=visual_dim,
            rounds=rounds,
            calls=calls,
            warmup=warmup,
            train_batch=train_batch,
            progress=_echo_err,
        )
    except ValueError as err:
        _fail(err)
    command = " ".join(
        [f"crosssent bench --config {config} --out {out} --interleave"]
        + [f"--set {o}" for o in overrides]
        + [f"--variant {v}" for v in variants]
        + [f"--length {n}" for n in lengths]
        + [f"--batch-size {b}" for b in batches]
        + [
            f"--rounds {rounds} --iters {calls} --warmup {warmup} --audio-dim {audio_dim} "
            f"--visual-dim {visual_dim} --train-batch {train_batch}"
        ]
    )
    _write_bench(out, "bench-interleaved", report, format_interleaved(report, command=command))


def _bench_runtimes(model: Path | None, runtimes: list[str], out: Path, *, batch: int, rounds: int, calls: int) -> None:
    from crosssent.inference.bench import format_runtime_bench, run_runtime_bench

    try:
        if model is None:
            raise ValueError("--runtime needs --model (an exported model folder)")
        report = run_runtime_bench(model, runtimes, batch=batch, rounds=rounds, calls=calls, progress=_echo_err)
    except ValueError as err:
        _fail(err)
    command = (
        f"crosssent bench --model {model} --out {out} "
        + " ".join(f"--runtime {r}" for r in runtimes)
        + f" --runtime-batch {batch} --rounds {rounds} --iters {calls}"
    )
    _write_bench(out, "bench-runtime", report, format_runtime_bench(report, command=command))


@app.command("bench-service")
def bench_service_command(
    model: Annotated[Path, typer.Option(help="exported model folder (RUN_DIR/model) to serve")],
    out: Annotated[Path, typer.Option(help="folder for service-bench.md and service-bench.json")],
    clients: Annotated[list[int], typer.Option(help="concurrent clients (repeatable)")] = [1, 8, 32],
    requests: Annotated[int, typer.Option(help="requests per level (one clip each)")] = 200,
    time_limit: Annotated[float, typer.Option(help="seconds at most per level")] = 120.0,
) -> None:
    """A bounded load test of crosssent serve on 127.0.0.1: requests/s, p50/p99 latency, errors
    and the server's memory at each number of concurrent clients."""
    _quiet_libraries()
    from crosssent.inference.service_bench import bench_service, format_service_bench

    try:
        report = bench_service(model, clients=clients, requests=requests, time_limit_s=time_limit, progress=typer.echo)
    except ValueError as err:
        _fail(err)
    command = (
        f"crosssent bench-service --model {model} --out {out} "
        + " ".join(f"--clients {c}" for c in clients)
        + f" --requests {requests} --time-limit {time_limit:g}"
    )
    _write_bench(out, "service-bench", report, format_service_bench(report, command=command))


@app.command()
def plot(
    kind: Annotated[
        str,
        typer.Argument(
            help="scatter (predicted vs true, level confusion), curves (training and validation by epoch), tsne (fused clip "
            "embeddings, one panel per run) or attention (GMRA cross-attention, gates, encoder self-attention of chosen "
            "clips)"
        ),
    ],
    runs: Annotated[list[Path], typer.Argument(help="finished run directories (RUN_DIR); tsne takes several, side by side")],
    out: Annotated[Path, typer.Option(help="PNG file to write")],
    split: Annotated[str, typer.Option(help="which split's clips (scatter, tsne, attention)")] = "test",
    data: Annotated[
        Path | None, typer.Option(help="tsne, attention: dataset to run the model on (default: the run's own data.path)")
    ] = None,
    clip: Annotated[
        list[str], typer.Option(help="attention: a clip id to draw (repeatable; default: the split's first two)")
    ] = [],
    layer: Annotated[int, typer.Option(help="attention: encoder layer whose self-attention is drawn (1 = first)")] = 1,
    seed: Annotated[int, typer.Option(help="tsne: random seed of the t-SNE layout")] = 0,
) -> None:
    """Draw a figure of finished runs, readable without the code."""
    _quiet_libraries()
    from crosssent.experiments.plots import plot as draw

    try:
        path = draw(kind, runs, out, split=split, data=data, clips=clip or None, layer=layer, seed=seed)
    except ValueError as err:
        _fail(err)
    typer.echo(f"wrote {path}")


@app.command()
def robustness(
    out: Annotated[
        Path, typer.Option(help="folder for robustness.md/.csv/.json and one robustness-CORRUPTION.png per corruption")
    ],
    model: Annotated[
        list[Path], typer.Option(help="exported model folder (RUN_DIR/model); repeat to compare models on one plot")
    ] = [],
    data: Annotated[Path | None, typer.Option(help="canonical dataset folder the models were trained on")] = None,
    corruption: Annotated[
        list[str],
        typer.Option(
            help="noise (SNR 20/10/0 dB), dropout (p 0.1/0.3/0.5), frame_drop (p 0.1/0.3/0.5), missing (audio/visual/both), "
            "shift (1/2/4 tokens, word-aligned data only); repeatable, default all that apply"
        ),
    ] = [],
    split: Annotated[str, typer.Option(help="which split is corrupted and scored")] = "test",
    seed: Annotated[int, typer.Option(help="seed of the corruptions (the same corrupted input for every model)")] = 0,
    waveform: Annotated[
        list[Path],
        typer.Option(
            help="a noisy copy of --data, built from the same recordings with white noise on the waveform before extraction "
            "(crosssent data build ... --noise-snr DB --split test); repeat for several SNRs"
        ),
    ] = [],
    report_only: Annotated[
        bool, typer.Option(help="measure nothing: rewrite (and --publish) the report of a finished --out folder")
    ] = False,
    publish_to: Annotated[
        Path | None,
        typer.Option("--publish", help="also publish the report as the page OUT_NAME.md of this folder (docs/results)"),
    ] = None,
) -> None:
    """Score models under test-time corruptions of their audio/visual input, each at several
    strengths, with the mean GMRA gate under each: a table and one curve figure per corruption.
    With --waveform, also under real-world noise added to the recordings before extraction."""
    _quiet_libraries()
    from crosssent.data.dataset import load_meta
    from crosssent.experiments.robustness import CORRUPTIONS, measure, publish_outputs, read_outputs, write_outputs

    try:
        if report_only:  # the cells and command of the finished folder
            cells, command = read_outputs(out)
        elif not model or data is None:
            raise ValueError("--model and --data are needed (or --report-only to rewrite a finished --out folder)")
        else:
            chosen = corruption or [c for c in CORRUPTIONS if c != "shift" or load_meta(data).alignment == "word"]
            cells = measure(model, data, corruptions=chosen, split=split, seed=seed, waveform=tuple(waveform), report=_echo_err)
            command = "crosssent robustness " + " ".join(
                [
                    *(f"--model {m}" for m in model),
                    f"--data {data}",
                    f"--out {out}",
                    *(f"--corruption {c}" for c in corruption),
                    *(f"--waveform {w}" for w in waveform),
                    *([f"--split {split}"] if split != "test" else []),
                    *([f"--seed {seed}"] if seed else []),
                ]
            )
        written = write_outputs(cells, out, command=command)
        if publish_to is not None:
            written.append(publish_outputs(out, publish_to))
    except ValueError as err:
        _fail(err)
    typer.echo((out / "robustness.md").read_text(encoding="utf-8"))
    typer.echo(f"wrote {', '.join(str(p) for p in written)}")


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="finished run directories")],
    split: Annotated[str, typer.Option(help="which split to show")] = "test",
) -> None:
    """Print the metrics of several finished runs side by side."""
    from crosssent.train.run_dir import compare_runs

    try:
        typer.echo(f"{split} metrics")
        typer.echo(compare_runs(runs, split))
    except ValueError as err:
        _fail(err)


@app.command()
def experiment(
    config: Annotated[Path, typer.Option(help="experiment config (configs/experiments/*.yaml)")],
    out: Annotated[Path | None, typer.Option(help="experiment folder (default runs/experiments/NAME)")] = None,
    max_runs: Annotated[int | None, typer.Option(help="make at most N new runs, then stop (continue later)")] = None,
    report_only: Annotated[bool, typer.Option(help="only rebuild the reports from finished (or recorded) runs")] = False,
    publish_to: Annotated[
        Path | None,
        typer.Option(
            "--publish",
            help="also publish results.md: as the page NAME.md of a folder, whose index.md is regenerated (docs/results), or "
            "as a marked section of a Markdown file",
        ),
    ] = None,
) -> None:
    """Run datasets x variants x seeds (resumable) and write results.{md,csv,json}."""
    _quiet_libraries(lightning=True)
    from crosssent.experiments.config import load_experiment
    from crosssent.experiments.report import publish, write_reports
    from crosssent.experiments.runner import GridIncomplete, run_grid, sync_records
    from crosssent.train.trainer import RunInterrupted

    try:
        exp = load_experiment(config)
        folder = out or Path("runs/experiments") / exp.name
        command = f"crosssent experiment --config {config}" + (f" --out {out}" if out else "")
        if report_only:
            restored = sync_records(exp, folder)
            if restored:
                typer.echo(f"restored {restored} run(s) from {exp.records}")
            write_reports(exp, folder, wall_seconds=0.0, command=command)
        else:
            run_grid(exp, folder, max_runs=max_runs, echo=typer.echo, command=command)
        report = (folder / "results.md").read_text(encoding="utf-8")
        if publish_to is not None:
            inside = publish_to.suffix.lower() == ".md"  # a section of a document, not a page of its own
            shown = report.replace("# Experiment", "### Experiment", 1).replace("\n## ", "\n#### ") if inside else report
            publish(shown, exp.name, publish_to, figures_from=folder)
    except (GridIncomplete, RunInterrupted) as err:
        typer.echo(f"stopped: {err}; run the same command again to continue", err=True)
        raise typer.Exit(code=3) from None
    except ValueError as err:
        _fail(err)
    typer.echo(report)


@app.command()
def summary(
    config: Annotated[
        Path | None,
        typer.Option(help="summary config (configs/summaries/*.yaml): rows across published pages, or an excerpt of one"),
    ] = None,
    publish_to: Annotated[
        Path | None,
        typer.Option("--publish", help="also write the table into this Markdown file, between its NAME markers"),
    ] = None,
    links: Annotated[
        Path | None,
        typer.Option(help="instead: write every number this Markdown file links to a published page again from that page"),
    ] = None,
) -> None:
    """Tables copied from the published pages (docs/results), never typed: a row per grid, or
    the tables of chosen sections of one page. With --links, the numbers of a document's prose,
    each a link to the page cell it comes from, are copied again; numbers typed outside such
    links are listed."""
    from crosssent.atomic_files import write_text_atomic
    from crosssent.experiments.report import publish
    from crosssent.experiments.summary import load_summary, refresh_links, render_summary, unlinked_numbers

    if (config is None) == (links is None) or (links is not None and publish_to is not None):
        _fail(ValueError("give --config (with --publish if wanted) or --links DOC"))
    try:
        if links is not None:
            if links.suffix.lower() != ".md" or not links.is_file():
                raise ValueError(f"{links}: --links needs an existing Markdown file")
            text = links.read_text(encoding="utf-8")
            fresh = refresh_links(text, links.parent)
            changed = sum(a != b for a, b in zip(text.splitlines(), fresh.splitlines(), strict=True))
            if fresh != text:
                write_text_atomic(links, fresh)
            for line in unlinked_numbers(fresh):
                typer.echo(f"typed, not linked: {links}: {line}", err=True)
            typer.echo(f"{links}: {changed} line(s) with linked numbers rewritten")
            return
        assert config is not None
        spec = load_summary(config)
        table = render_summary(spec)
        if publish_to is not None:
            if publish_to.suffix.lower() != ".md" or not publish_to.is_file():
                raise ValueError(f"{publish_to}: --publish needs an existing Markdown file")
            publish(f"<!-- generated by crosssent summary --config {config}; do not edit -->\n{table}", spec.name, publish_to)
    except ValueError as err:
        _fail(err)
    typer.echo(table, nl=False)


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="dataset folder to write")],
    n_train: Annotated[int, typer.Option(help="clips in the train split")] = 800,
    n_valid: Annotated[int, typer.Option(help="clips in the valid split")] = 200,
    n_test: Annotated[int, typer.Option(help="clips in the test split")] = 300,
    seed: Annotated[int, typer.Option(help="random seed: the same seed writes the same dataset")] = 0,
    alignment: Annotated[str, typer.Option(help="word | unaligned | clip")] = "word",
    tone_weight: Annotated[float, typer.Option(help="share of the label carried by A/V only")] = 1.5,
    label_noise: Annotated[float, typer.Option(help="std of the Gaussian noise added to each label")] = 0.2,
    feature_noise: Annotated[float, typer.Option(help="std of the Gaussian noise in every A/V feature")] = 0.5,
    missing_audio: Annotated[float, typer.Option(help="share of clips without audio")] = 0.0,
    missing_visual: Annotated[float, typer.Option(help="share of clips without visual")] = 0.0,
    shift: Annotated[int, typer.Option(help="delay A/V by this many words")] = 0,
) -> None:
    """Write the synthetic default dataset (text carries part of the label, A/V the rest)."""
    _quiet_libraries()
    from crosssent.data.sources.synthetic import generate

    if alignment not in ("word", "unaligned", "clip"):
        _fail(ValueError(f"--alignment must be word, unaligned or clip, got {alignment!r}"))
    try:
        path = generate(
            out,
            n_train=n_train,
            n_valid=n_valid,
            n_test=n_test,
            seed=seed,
            alignment=alignment,  # type: ignore[arg-type]
            tone_weight=tone_weight,
            label_noise=label_noise,
            feature_noise=feature_noise,
            missing_audio=missing_audio,
            missing_visual=missing_visual,
            shift=shift,
        )
    except ValueError as err:
        _fail(err)
    typer.echo(f"wrote {path} ({n_train}/{n_valid}/{n_test} clips)")


@data_app.command("convert")
def data_convert(
    kind: Annotated[str, typer.Argument(help="mmsa (a pickle) or tables (label CSV + feature tables)")],
    source: Annotated[Path, typer.Argument(help="MMSA pickle file, or the label CSV")],
    out: Annotated[Path, typer.Option(help="dataset folder to write")],
    name: Annotated[str, typer.Option(help="dataset name")] = "",
    task: Annotated[str, typer.Option(help="metric convention: mosi | mosei | sims")] = "mosi",
    audio: Annotated[Path | None, typer.Option(help="tables: audio feature table (.csv or .npz)")] = None,
    visual: Annotated[Path | None, typer.Option(help="tables: visual feature table (.csv or .npz)")] = None,
    alignment: Annotated[str, typer.Option(help="tables: word | unaligned | clip")] = "clip",
    strict: Annotated[bool, typer.Option(help="refuse NaN/inf features instead of replacing them by 0")] = False,
) -> None:
    """Convert an MMSA pickle or label/feature tables into a canonical dataset."""
    _quiet_libraries()
    from crosssent.data.sources import mmsa, tables

    def make() -> tuple[Path, list[str]]:
        from crosssent.data.dataset import check_output_dir

        check_output_dir(out, (source, audio, visual))  # before reading anything; saving checks again
        if kind == "mmsa":
            return mmsa.convert(source, out, name=name or source.stem, task=task, strict=strict)
        if kind == "tables":
            return tables.convert(
                source,
                out,
                name=name or source.stem,
                task=task,
                audio=audio,
                visual=visual,
                alignment=alignment,
                strict=strict,
            )
        raise ValueError(f"unknown source kind {kind!r}; use mmsa or tables")

    _write_dataset(make)


@data_app.command("import")
def data_import(
    name: Annotated[
        str,
        typer.Argument(help="mosi-clip | mosi-bclstm | mosei-text | sims-text | sims-text-en | sims-text-bilingual | ravdess"),
    ],
    source: Annotated[Path, typer.Argument(help="folder holding mosi/, mosei/, sims/, ravdess/ (e.g. ../shared/data)")],
    out: Annotated[Path, typer.Option(help="dataset folder to write")],
    audio: Annotated[
        str,
        typer.Option(
            help="ravdess: audio features from the recordings: whisper, whisper-layer1 to whisper-layer5, "
            "whisper-layersA-B (layers A to B concatenated), or egemaps"
        ),
    ] = "whisper",
    alignment: Annotated[str, typer.Option(help="ravdess: clip (mean and std per clip), word or unaligned")] = "clip",
    workers: Annotated[int, typer.Option(help="ravdess: processes extracting features at once")] = 1,
    noise_snr: Annotated[
        float | None,
        typer.Option(
            help="ravdess: add white noise at this SNR (dB) to every waveform before extraction (a corrupted copy for "
            "crosssent robustness --waveform)"
        ),
    ] = None,
    split: Annotated[
        list[str],
        typer.Option(
            help="ravdess: compute streams only for this split's clips, the others kept without (repeatable; default all)"
        ),
    ] = [],
) -> None:
    """Import a public release (see docs/data.md) into the canonical format, with checks."""
    _quiet_libraries()
    if name == "ravdess":
        from crosssent.features.build import import_ravdess

        _write_dataset(
            lambda: import_ravdess(
                source,
                out,
                audio=audio,
                alignment=alignment,
                workers=workers,
                noise_snr=noise_snr,
                splits=tuple(split),
                report=typer.echo,
            )
        )
        return
    from crosssent.data.sources.releases import import_release

    _write_dataset(lambda: import_release(name, source, out))


@data_app.command("build")
def data_build(
    media_dir: Annotated[Path, typer.Argument(help="folder of recordings: <id>.<ext>, or MMSA's Raw/VIDEO_ID/CLIP_ID.mp4")],
    labels: Annotated[Path, typer.Option(help="label table (CSV): MMSA's label.csv layout, or name the columns below")],
    out: Annotated[Path, typer.Option(help="dataset folder to write")],
    audio: Annotated[
        str,
        typer.Option(
            help="audio features: whisper (Whisper base encoder states), whisper-layerN (after its middle layer N, 1-5), "
            "whisper-layersA-B (after layers A to B, concatenated), egemaps (openSMILE eGeMAPS v02) or none"
        ),
    ] = "whisper",
    visual: Annotated[
        str,
        typer.Option(
            help="visual features: face (MediaPipe face-mesh measures: head pose and expression, 10 frames/s, faceless frames "
            "masked) or none"
        ),
    ] = "none",
    alignment: Annotated[
        str, typer.Option(help="clip (mean and std per clip), word (per word, from word time stamps) or unaligned")
    ] = "clip",
    task: Annotated[str, typer.Option(help="metric convention: mosi | mosei | sims")] = "mosi",
    name: Annotated[str, typer.Option(help="dataset name (default: the label table's file name)")] = "",
    id_column: Annotated[str | None, typer.Option(help="clip id column (default: MMSA's video_id + clip_id)")] = None,
    label_column: Annotated[str, typer.Option(help="label column")] = "label",
    split_column: Annotated[str, typer.Option(help="split column: train / valid / test")] = "mode",
    text_column: Annotated[str, typer.Option(help="transcript column (empty or absent: recognised by Whisper base)")] = "text",
    workers: Annotated[int, typer.Option(help="processes extracting features at once")] = 1,
    shard: Annotated[
        str | None,
        typer.Option(
            help="i/n: compute only every n-th clip from the i-th into the cache (spread a corpus over machines; then "
            "crosssent data merge)"
        ),
    ] = None,
    noise_snr: Annotated[
        float | None,
        typer.Option(
            help="add white noise at this SNR (dB) to every waveform before extraction (a corrupted copy for crosssent "
            "robustness --waveform)"
        ),
    ] = None,
    split: Annotated[
        list[str],
        typer.Option(help="compute streams only for this split's clips, the others kept without (repeatable; default all)"),
    ] = [],
) -> None:
    """Build a canonical dataset from recordings and a label table, with real audio and visual
    features (cached per clip: an interrupted build resumes)."""
    _quiet_libraries()
    from crosssent.features.build import build_from_table

    part = None
    if shard is not None:
        i, _, n = shard.partition("/")
        if not (i.isdigit() and n.isdigit()):
            _fail(ValueError(f"--shard {shard}: expected i/n, e.g. 1/4"))
        part = (int(i), int(n))
    if workers < 1:
        _fail(ValueError(f"--workers {workers}: at least 1"))
    _write_dataset(
        lambda: build_from_table(
            media_dir,
            labels,
            out,
            audio=audio,
            alignment=alignment,
            task=task,
            name=name,
            id_column=id_column,
            label_column=label_column,
            split_column=split_column,
            text_column=text_column,
            visual=visual,
            workers=workers,
            shard=part,
            noise_snr=noise_snr,
            splits=tuple(split),
            report=typer.echo,
        )
    )


@data_app.command("merge")
def data_merge(
    caches: Annotated[
        list[Path],
        typer.Argument(help="build caches of the shards, one stream (OUT.build-cache/EXTRACTOR-ALIGNMENT on each machine)"),
    ],
    into: Annotated[Path, typer.Option(help="the cache of the final build: OUT.build-cache/EXTRACTOR-ALIGNMENT")],
) -> None:
    """Merge the per-clip streams of several --shard builds into one cache (once per stream:
    audio and visual have a cache each); then run the same data build without --shard to write
    the dataset (nothing is computed again)."""
    from crosssent.features.build import merge_caches

    _write_dataset(lambda: merge_caches(caches, into))


@data_app.command("inspect")
def data_inspect(path: Annotated[Path, typer.Argument(help="canonical dataset folder")]) -> None:
    """Print metadata, clip counts, label statistics and missing modalities per split."""
    _quiet_libraries()
    from crosssent.data.dataset import load_dataset, summarize

    try:
        table, meta = load_dataset(path)
    except ValueError as err:
        _fail(err)
    typer.echo(json.dumps({"meta": meta.model_dump(), "summary": summarize(table, meta)}, indent=2))


if __name__ == "__main__":  # pragma: no cover  (python -m crosssent.cli: torchrun, bench-service)
    sys.exit(app())

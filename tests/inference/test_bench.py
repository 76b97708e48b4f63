"""The efficiency benchmark on the tiny random backbone (counts exact, timings only positive)."""

import pytest

from crosssent.inference.bench import BenchShape, format_bench, run_bench
from crosssent.train.config import ModelSettings

TINY = ModelSettings(backbone="tiny-random", inject_layer=1, adapter_dim=16, head_hidden=32)
SHAPE = BenchShape(max_len=12, audio_dim=5, visual_dim=3, throughput_batch=4, warmup=1, iters=2)


def test_rows_count_what_each_variant_adds_to_the_reference():
    report = run_bench(TINY, ["text_only", "crosssent", "mag"], SHAPE, isolate=False, progress=lambda _: None)
    rows = {r["variant"]: r for r in report["rows"]}
    assert report["reference_variant"] == "text_only"
    assert rows["text_only"]["parameters_m_change_pct"] == 0
    assert rows["crosssent"]["parameters_m"] > rows["text_only"]["parameters_m"]
    # the backbone is the same for every variant; what differs is the fusion on top of it
    assert len({r["backbone_parameters_m"] for r in rows.values()}) == 1
    for row in rows.values():
        assert row["latency_ms"] > 0 and row["throughput"] > 0 and row["peak_memory_mb"] > 0
    text = format_bench(report, command="crosssent bench --config c.yaml --out o")
    assert "| crosssent | " in text and "%)" in text and "Quoted (the paper" in text


def test_the_added_parameters_are_the_fusion_modules_exactly():
    from crosssent.model.backbones import load_backbone
    from crosssent.model.modeling import build_model

    report = run_bench(TINY, ["text_only", "crosssent"], SHAPE, isolate=False, progress=lambda _: None)
    backbone, _ = load_backbone("tiny-random")
    config = TINY.model_copy(update={"variant": "crosssent"}).to_model_config(audio_dim=5, visual_dim=3, source="t")
    model = build_model(config, backbone=backbone)
    fusion = sum(p.numel() for n, p in model.named_parameters() if "fusion" in n or "_proj" in n or "_norm" in n)
    added = report["rows"][1]["parameters_m"] - report["rows"][0]["parameters_m"]
    assert added * 1e6 == pytest.approx(fusion, abs=0.5)


@pytest.mark.slow
def test_isolated_processes_report_the_same_parameters_and_errors_name_the_variant():
    shape = SHAPE.model_copy(update={"iters": 1, "warmup": 0})
    together = run_bench(TINY, ["text_only", "crosssent"], shape, isolate=False, progress=lambda _: None)
    apart = run_bench(TINY, ["text_only", "crosssent"], shape, isolate=True, progress=lambda _: None)
    assert [r["parameters_m"] for r in apart["rows"]] == [r["parameters_m"] for r in together["rows"]]
    bad = ModelSettings(backbone="tiny-random", inject_layer=9)
    with pytest.raises(ValueError, match="variant crosssent: "):
        run_bench(bad, ["crosssent"], shape, isolate=True, progress=lambda _: None)


def test_an_unknown_variant_is_refused_before_anything_runs():
    with pytest.raises(ValueError, match="--variant foo: choose from crosssent, text_only, mag, late_fusion"):
        run_bench(TINY, ["text_only", "foo"], SHAPE, isolate=False, progress=lambda _: None)


def _die_without_answering():
    import os

    os._exit(9)  # as the kernel's out-of-memory killer would end it: no exception, no answer


def test_a_measuring_process_that_dies_is_an_error_not_a_hang():
    import threading

    from crosssent.inference.bench import measure_in_fresh_process

    errors = []

    def call():
        try:
            measure_in_fresh_process(_die_without_answering, what="variant x")
        except ValueError as err:
            errors.append(str(err))

    waiting = threading.Thread(target=call, daemon=True)  # a hang must fail the test, not stall the suite
    waiting.start()
    waiting.join(timeout=60)
    assert not waiting.is_alive(), "still waiting for a process that died"
    assert errors == ["variant x: the measuring process died (exit code 9)"]


def test_interleaved_rounds_give_paired_ratios_per_shape_and_a_training_step():
    from crosssent.inference.bench import format_interleaved, run_interleaved

    seen = []
    shapes = {"lengths": [8, 12], "batches": [1, 3], "audio_dim": 5, "visual_dim": 3, "train_batch": 2}
    report = run_interleaved(TINY, ["text_only", "crosssent"], **shapes, rounds=3, calls=2, warmup=1, progress=seen.append)
    assert [(r["kind"], r["length"], r["batch"]) for r in report["rows"]] == [
        ("forward", 8, 1),
        ("forward", 8, 3),
        ("forward", 12, 1),
        ("forward", 12, 3),
        ("train step", 8, 2),
    ]
    for row in report["rows"]:
        ref, gmra = row["variants"]["text_only"], row["variants"]["crosssent"]
        assert ref["ratio"] == 1.0 and ref["ratio_range"] == [1.0, 1.0]
        assert gmra["ms"] > 0 and gmra["ratio_range"][0] <= gmra["ratio"] <= gmra["ratio_range"][1]
    for row in report["rows"][:4]:  # forward rows also count the work: GMRA's is extra, never free
        ref, gmra = row["variants"]["text_only"], row["variants"]["crosssent"]
        assert ref["flop_ratio"] == 1.0 and gmra["flop_ratio"] > 1.0 and gmra["gflop"] > ref["gflop"] > 0
    assert "gflop" not in report["rows"][4]["variants"]["crosssent"]
    assert report["parameters_m"]["crosssent"] > report["parameters_m"]["text_only"] and len(seen) == 5
    text = format_interleaved(report, command="crosssent bench --config c --out o --interleave")
    assert "| train step | 8 | 2 | crosssent |" in text and "ratio to text_only" in text and "GFLOP per call" in text
    with pytest.raises(ValueError, match="--variant foo"):
        run_interleaved(TINY, ["foo"], lengths=[8], batches=[1], audio_dim=5, visual_dim=3)


def test_forward_flops_counts_linear_maps_and_cpu_attention_exactly():
    import torch

    from crosssent.inference.bench import forward_flops

    class Attend(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(4, 3)

        def forward(self, x, q, k, v):
            self.proj(x)  # (5, 4) @ (4, 3): 2 * 5 * 4 * 3 = 120
            # 2 heads, 5 queries, 7 keys, width 4: scores and context, 2 * 2 * 5 * 4 * 7 each
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    inputs = {"x": torch.randn(5, 4), "q": torch.randn(1, 2, 5, 4), "k": torch.randn(1, 2, 7, 4), "v": torch.randn(1, 2, 7, 4)}
    assert forward_flops(Attend(), inputs) == 120 + 2 * (2 * 2 * 5 * 4 * 7)

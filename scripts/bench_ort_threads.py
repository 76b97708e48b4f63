"""How do ONNX Runtime's thread settings change batch-1 speed against torch? Times the torch model,
the exported file and its int8 form as crosssent loads them (spinning on), each ONNX file also
without spinning and on one thread without spinning, interleaved over rounds as crosssent bench
does, and prints each one's median clips/s and paired ratio to torch.

    .venv/bin/python scripts/bench_ort_threads.py runs/mosi-minilm/model
"""

import argparse
from pathlib import Path

import onnxruntime as ort
import torch

from crosssent.inference.bench import BenchShape, _paired, rotated_rounds, runtime_inputs, seconds_per_call
from crosssent.model.folder import ONNX_INT8_NAME, ONNX_NAME
from crosssent.model.onnx_runtime import OnnxModel, load_runtime

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument(
    "model", type=Path, help="model folder holding model.onnx and model.int8.onnx (crosssent export --onnx --quantize int8)"
)
parser.add_argument("--rounds", type=int, default=5)
parser.add_argument("--iters", type=int, default=30)
args = parser.parse_args()

torch_model, tokenizer, prep = load_runtime(args.model, "torch")
models = {"torch": torch_model}
for name, file in (("onnx", ONNX_NAME), ("int8", ONNX_INT8_NAME)):
    models[name] = OnnxModel(args.model / file, torch_model.config)
    models[f"{name}, no spinning"] = OnnxModel(args.model / file, torch_model.config, spin=False)
    models[f"{name}, 1 thread, no spinning"] = OnnxModel(args.model / file, torch_model.config, threads=1, spin=False)

inputs = runtime_inputs(1, prep, len(tokenizer))
timing = BenchShape(max_len=prep.max_len, warmup=5, iters=args.iters)
rates = rotated_rounds(
    list(models), lambda name: 1 / seconds_per_call(models[name], inputs, timing, torch.device("cpu")), args.rounds
)
print(f"ONNX Runtime {ort.__version__}, torch threads {torch.get_num_threads()}, batch 1, {prep.max_len} tokens")
for name, row in _paired(rates, value="clips_per_s", value_range="range").items():
    low, high = row["ratio_range"]
    print(f"{name:28s} {row['clips_per_s']:7.1f} clips/s  {row['ratio']:.2f}x torch ({low:.2f}-{high:.2f})")

"""Does ONNX Runtime's transformer optimiser (attention, LayerNorm, GELU fusions) speed up an
exported model at batch 1? Times the exported and the optimised file interleaved.

    .venv/bin/python scripts/bench_ort_optimiser.py runs/mosi-minilm/model --heads 12 --hidden 384
"""

import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.transformers.optimizer import optimize_model

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("model", type=Path, help="model folder holding model.onnx (crosssent export --onnx)")
parser.add_argument("--heads", type=int, default=12)
parser.add_argument("--hidden", type=int, default=384)
args = parser.parse_args()
src = args.model / "model.onnx"
opt = optimize_model(str(src), model_type="bert", num_heads=args.heads, hidden_size=args.hidden, opt_level=1)
print("fused ops:", opt.get_fused_operator_statistics(), flush=True)
opt.save_model_to_file("/tmp/model.opt.onnx")


def session(path):
    o = ort.SessionOptions()
    o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    o.log_severity_level = 3
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


sessions = {"onnx": session(str(src)), "optimised": session("/tmp/model.opt.onnx")}
names = [i.name for i in sessions["onnx"].get_inputs()]
rng = np.random.default_rng(0)
feeds = {"input_ids": rng.integers(5, 1000, (1, 50)).astype(np.int64), "attention_mask": np.ones((1, 50), np.int64)}
for n in names:
    if n in ("audio", "visual"):  # one clip-level frame of the input's width
        feeds[n] = rng.normal(size=(1, 1, sessions["onnx"].get_inputs()[names.index(n)].shape[2])).astype(np.float32)
    if n.endswith("_mask"):
        feeds[n] = np.ones((1, 1), bool)
ref = sessions["onnx"].run(None, feeds)[0]
got = sessions["optimised"].run(None, feeds)[0]
print("max difference", float(np.abs(ref - got).max()), flush=True)
rates = {k: [] for k in sessions}
for _round in range(5):
    for k, s in sessions.items():
        for _ in range(5):
            s.run(None, feeds)
        t = time.perf_counter()
        for _ in range(30):
            s.run(None, feeds)
        rates[k].append(30 / (time.perf_counter() - t))
print({k: round(float(np.median(v)), 1) for k, v in rates.items()}, flush=True)

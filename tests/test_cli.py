"""The command line: happy paths and every bad input of the pipeline issue, each a one-line
error with exit code 2 and nothing half-written."""

import csv
import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from crosssent.cli import _quiet_libraries, app
from tests.conftest import TINY_TRAIN
from tests.features.test_transcribe import MANDARIN, RAW, needs_raw_clips, needs_whisper, write_silence

runner = CliRunner()


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_error(result, message):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], result.output


def write_config(tmp_path, data_path, **model):
    tree = {
        "data": {"path": str(data_path), "max_len": 24},
        "model": {**TINY_TRAIN["model"], **model},
        "train": {**TINY_TRAIN["train"], "max_epochs": 1},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text("# crosssent train --config cfg.yaml --out run\n" + yaml.safe_dump(tree))
    return path


def test_synth_inspect_train_evaluate(tmp_path):
    data = tmp_path / "d"
    assert run("data", "synth", "--out", data, "--n-train", 48, "--n-valid", 16, "--n-test", 16).exit_code == 0
    inspected = run("data", "inspect", data)
    assert inspected.exit_code == 0 and '"audio_dim": 8' in inspected.output
    cfg = write_config(tmp_path, data)
    trained = run("train", "--config", cfg, "--out", tmp_path / "run", "--set", "train.seed=3")
    assert trained.exit_code == 0, trained.output
    assert "acc2_non0" in trained.output
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["seed"] == 3
    evaluated = run(
        "evaluate",
        "--model",
        tmp_path / "run" / "model",
        "--data",
        data,
        "--split",
        "valid",
        "--split",
        "test",
        "--out",
        tmp_path / "ev",
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert set(json.loads((tmp_path / "ev" / "metrics.json").read_text())) == {"valid", "test"}


def test_interrupted_run_exits_nonzero_and_resumes(tmp_path, synthetic_dir):
    cfg = write_config(tmp_path, synthetic_dir)
    out = tmp_path / "run"
    cut = run("train", "--config", cfg, "--out", out, "--set", "train.max_epochs=2", "--set", "train.interrupt_after_epochs=1")
    assert cut.exit_code == 3 and not (out / "metrics.json").exists()
    done = run("train", "--config", cfg, "--out", out, "--set", "train.max_epochs=2", "--resume")
    assert done.exit_code == 0 and (out / "metrics.json").exists()


def test_missing_files(tmp_path, synthetic_dir):
    assert_clean_error(run("train", "--config", tmp_path / "nope.yaml", "--out", tmp_path / "r"), "config file not found")
    assert_clean_error(run("data", "convert", "mmsa", tmp_path / "nope.pkl", "--out", tmp_path / "o"), "nope.pkl: file not found")
    cfg = write_config(tmp_path, tmp_path / "no-data")
    assert_clean_error(run("train", "--config", cfg, "--out", tmp_path / "r"), "crosssent.json is missing")
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()


def test_forbidden_pickle_and_missing_key(tmp_path):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"train": subprocess.Popen}))
    assert_clean_error(run("data", "convert", "mmsa", evil, "--out", tmp_path / "o"), "forbidden object subprocess.Popen")
    partial = tmp_path / "partial.pkl"
    partial.write_bytes(pickle.dumps({"train": {"id": np.array(["a"])}}))
    assert_clean_error(run("data", "convert", "mmsa", partial, "--out", tmp_path / "o"), "split 'train' has no key 'raw_text'")
    assert not (tmp_path / "o").exists()


def test_feature_width_different_from_config(tmp_path, synthetic_dir):
    cfg = write_config(tmp_path, synthetic_dir, audio_dim=74)
    assert_clean_error(run("train", "--config", cfg, "--out", tmp_path / "r"), "model.audio_dim=74 in the config but")
    assert not (tmp_path / "r").exists()


LABELS = "video_id,clip_id,text,label,mode\nv,1,good,1.0,train\nv,2,bad,-1.0,valid\nv,3,ok,0.0,test\n"


@pytest.mark.parametrize(
    "labels,features,message",
    [
        (LABELS.replace("valid", "train"), None, "split 'valid' is empty"),
        (LABELS.replace("-1.0", "nan"), None, "clip 'v_2' has a NaN/missing label"),
        (LABELS.replace("-1.0", "-7"), None, "clip 'v_2' has label -7.0 outside [-3.0, 3.0]"),
        (LABELS, "id,f0\nv_1,0.5\nw_9,0.1\n", "clip id 'w_9' has no row in"),
    ],
)
def test_bad_tables(tmp_path, labels, features, message):
    (tmp_path / "label.csv").write_text(labels)
    args = ["data", "convert", "tables", tmp_path / "label.csv", "--out", tmp_path / "o"]
    if features:
        (tmp_path / "audio.csv").write_text(features)
        args += ["--audio", tmp_path / "audio.csv"]
    assert_clean_error(run(*args), message)
    assert not (tmp_path / "o").exists()


def test_unknown_backbone_and_folder_without_weights(tmp_path, synthetic_dir):
    cfg = write_config(tmp_path, synthetic_dir, backbone="bert-tiny-please")
    assert_clean_error(run("train", "--config", cfg, "--out", tmp_path / "r"), "unknown backbone alias 'bert-tiny-please'")
    folder = tmp_path / "empty-backbone"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    cfg = write_config(tmp_path, synthetic_dir, backbone=str(folder))
    assert_clean_error(run("train", "--config", cfg, "--out", tmp_path / "r"), "has no weights")
    assert not (tmp_path / "r").exists()


def test_bad_override_and_bad_value(tmp_path, synthetic_dir):
    cfg = write_config(tmp_path, synthetic_dir)
    assert_clean_error(run("train", "--config", cfg, "--out", tmp_path / "r", "--set", "model.variant=bigger"), "model.variant")
    assert_clean_error(run("train", "--config", cfg, "--out", tmp_path / "r", "--set", "train.nonsense=1"), "train.nonsense")


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path, synthetic_dir):
    """Lightning's DDP over gloo with two local processes, through the real console script."""
    cfg = write_config(tmp_path, synthetic_dir)
    exe = [sys.executable, "-m", "crosssent.cli"]
    result = subprocess.run(
        exe
        + [
            "train",
            "--config",
            str(cfg),
            "--out",
            str(tmp_path / "ddp"),
            "--set",
            "train.strategy=ddp",
            "--set",
            "train.devices=2",
            "--set",
            "train.accelerator=cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "ddp" / "run_info.json").read_text())["world_size"] == 2
    assert set(json.loads((tmp_path / "ddp" / "metrics.json").read_text())) == {"valid", "test"}


def test_quiet_logging_keeps_lightnings_warning_about_modules_in_eval_mode():
    with warnings.catch_warnings(record=True) as caught:
        _quiet_libraries()
        warnings.warn("Found 3 module(s) in eval mode at the start of training.", UserWarning, stacklevel=1)
        warnings.warn("some other library chatter", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["Found 3 module(s) in eval mode at the start of training."]


def test_experiment_report_only_publishes_and_bad_config_is_one_line(tmp_path):
    base = Path(__file__).resolve().parents[1] / "configs" / "synthetic.yaml"
    config = tmp_path / "exp.yaml"
    config.write_text(f"name: cli-exp\nbase: {base}\ndatasets: {{d: [data.path=unused]}}\nvariants: [crosssent]\nseeds: [0]\n")
    doc = tmp_path / "doc.md"
    doc.write_text("# Results\n")
    result = run("experiment", "--config", config, "--out", tmp_path / "out", "--report-only", "--publish", doc)
    assert result.exit_code == 0, result.output
    assert "# Experiment `cli-exp`" in result.output and (tmp_path / "out" / "results.json").exists()
    assert "<!-- begin cli-exp -->\n### Experiment `cli-exp`" in doc.read_text()
    config.write_text("name: cli-exp\nbase: b.yaml\ndatasets: {d: []}\nvariants: [bigger]\n")
    assert_clean_error(run("experiment", "--config", config, "--report-only"), "unknown variant 'bigger'")


def test_summary_prints_and_publishes_the_glance_table_and_bad_input_is_one_line(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # the config's page and experiment folders are relative, like a run config's data
    config = root / "configs" / "summaries" / "at-a-glance.yaml"
    doc = tmp_path / "doc.md"
    doc.write_text("# Results\n\n<!-- begin at-a-glance -->\nold table\n<!-- end at-a-glance -->\n\nreadings\n")
    result = run("summary", "--config", config, "--publish", doc)
    assert result.exit_code == 0, result.output
    text = doc.read_text()
    assert "old table" not in text and text.endswith("readings\n") and result.output.splitlines()[0] in text
    assert "[mosei-minilm](results/mosei-minilm.md)" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(config.read_text().replace("page: mosei-minilm", "page: mosei-absent", 1))
    assert_clean_error(run("summary", "--config", bad, "--publish", doc), "mosei-absent.md: published page not found")
    assert "old table" not in doc.read_text() and "mosei-minilm" in doc.read_text()  # left as it was
    assert_clean_error(run("summary", "--config", config, "--publish", tmp_path / "none.md"), "none.md: --publish needs")


def test_summary_links_copies_linked_numbers_again_and_names_typed_ones(tmp_path):
    pages = tmp_path / "results"
    pages.mkdir()
    (pages / "p.md").write_text("# P\n\n## d (test split)\n\n| variant | corr |\n|---|---|\n| crosssent | 0.647 ± 0.018 |\n")
    doc = tmp_path / "doc.md"
    doc.write_text('Corr [0.5](results/p.md#d-test-split "crosssent; corr"), typed 0.7.\n')
    result = run("summary", "--links", doc)
    assert result.exit_code == 0, result.output
    assert doc.read_text() == 'Corr [0.647](results/p.md#d-test-split "crosssent; corr"), typed 0.7.\n'
    assert "1 line(s) with linked numbers rewritten" in result.output
    assert "typed, not linked" in result.stderr and "line 1: Corr" in result.stderr
    doc.write_text('[1](results/p.md#d-test-split "late_fusion; corr")\n')
    assert_clean_error(run("summary", "--links", doc), 'link "late_fusion; corr": no table of section #d-test-split')
    assert doc.read_text() == '[1](results/p.md#d-test-split "late_fusion; corr")\n'  # nothing half-written
    assert_clean_error(run("summary", "--links", doc, "--config", doc), "give --config")
    assert_clean_error(run("summary", "--links", tmp_path / "none.md"), "none.md: --links needs an existing Markdown file")


def test_predict_scores_new_transcripts_and_bad_input_is_one_line(tmp_path, synthetic_dir):
    cfg = write_config(tmp_path, synthetic_dir)
    assert run("train", "--config", cfg, "--out", tmp_path / "run").exit_code == 0
    model = tmp_path / "run" / "model"
    clips = tmp_path / "clips.csv"
    clips.write_text("id,text\nnew1,i love this great film\nnew2,awful and boring\n", encoding="utf-8")
    scored = run("predict", "--model", model, "--text", "it was good", "--input", clips, "--out", tmp_path / "p.csv")
    assert scored.exit_code == 0, scored.output
    assert "left empty" in scored.output  # the model reads audio and visual; this says they are absent
    rows = read_csv(tmp_path / "p.csv")
    assert [r["id"] for r in rows] == ["1", "new1", "new2"] and rows[1]["text"] == "i love this great film"
    for row in rows:  # the file holds the printed scores
        printed = [row["id"], f"{float(row['prediction']):.3f}", row["polarity"]]
        assert any(line.split()[:3] == printed for line in scored.output.splitlines())
    assert_clean_error(run("predict", "--model", tmp_path / "run", "--text", "x"), "not a CrossSent model folder")
    assert_clean_error(run("predict", "--model", model), "nothing to score")
    assert_clean_error(run("predict", "--model", model, "--input", tmp_path / "none.csv"), "none.csv: no such file")
    bad = run("predict", "--model", model, "--text", "   ", "--out", tmp_path / "q.csv")
    assert_clean_error(bad, "clip '1' has an empty transcript")
    assert not (tmp_path / "q.csv").exists()
    # the robustness check: the same clips with a stream withheld go to their own folder
    hidden = run("evaluate", "--model", model, "--data", synthetic_dir, "--hide", "audio")
    assert hidden.exit_code == 0, hidden.output
    assert (model.parent / "evaluations" / f"{synthetic_dir.name}-hide-audio" / "metrics.json").is_file()
    assert not (model.parent / "evaluations" / synthetic_dir.name).exists()
    assert_clean_error(run("evaluate", "--model", model, "--data", synthetic_dir, "--hide", "text"), "--hide text")


@needs_whisper
@needs_raw_clips
def test_recordings_are_transcribed_then_scored_as_their_transcripts(tmp_path, synthetic_dir):
    cfg = write_config(tmp_path, synthetic_dir)
    assert run("train", "--config", cfg, "--out", tmp_path / "run").exit_code == 0
    model, recordings = tmp_path / "run" / "model", [RAW / "03bSnISJMiM_1.wav", RAW / "Oz06ZWiO20M_6.mp4"]
    done = run("transcribe", *recordings, "--out", tmp_path / "t.csv")
    assert done.exit_code == 0, done.output
    assert "transcribed 2/2" in done.output
    transcripts = read_csv(tmp_path / "t.csv")
    assert [r["id"] for r in transcripts] == ["03bSnISJMiM_1", "Oz06ZWiO20M_6"] and {r["language"] for r in transcripts} == {"en"}
    scored = run("predict", "--model", model, "--media", recordings[0], "--media", recordings[1], "--out", tmp_path / "m.csv")
    assert scored.exit_code == 0, scored.output
    from_media = read_csv(tmp_path / "m.csv")
    assert [(r["id"], r["text"]) for r in from_media] == [(r["id"], r["text"]) for r in transcripts]
    assert run("predict", "--model", model, "--input", tmp_path / "t.csv", "--out", tmp_path / "c.csv").exit_code == 0
    assert [r["prediction"] for r in read_csv(tmp_path / "c.csv")] == [r["prediction"] for r in from_media]
    wrong = run("predict", "--model", tmp_path / "run", "--media", recordings[0])
    assert_clean_error(wrong, "not a CrossSent model folder")
    assert "transcribed" not in wrong.output  # refused before any transcribing
    quiet = run("transcribe", recordings[0], write_silence(tmp_path / "quiet.wav"), "--out", tmp_path / "q.csv")
    assert_clean_error(quiet, "quiet.wav: no speech found")
    assert not (tmp_path / "q.csv").exists()


@needs_whisper
def test_transcribe_writes_chinese_in_the_script_asked_for(tmp_path):
    texts = {}
    for script in ("simplified", "traditional"):
        done = run("transcribe", MANDARIN, "--chinese-script", script, "--out", tmp_path / f"{script}.csv")
        assert done.exit_code == 0, done.output
        [row] = read_csv(tmp_path / f"{script}.csv")
        texts[script] = row["text"]
    assert texts["simplified"].startswith("这部电影") and texts["traditional"].startswith("這部電影")
    refused = run("transcribe", MANDARIN, "--chinese-script", "pinyin", "--out", tmp_path / "p.csv")
    assert refused.exit_code == 2 and "'pinyin' is not one of" in refused.output and not (tmp_path / "p.csv").exists()


def test_serve_refuses_a_folder_that_is_not_a_model(tmp_path):
    assert_clean_error(run("serve", "--model", tmp_path), "not a CrossSent model folder")
    assert_clean_error(
        run("serve", "--model", tmp_path, "--speech-model", tmp_path / "none"), "nor a folder holding a CTranslate2 model.bin"
    )


def test_bench_writes_its_report_with_the_command_and_refuses_a_missing_gpu(tmp_path, synthetic_dir):
    cfg = write_config(tmp_path, synthetic_dir)
    done = run(
        "bench", "--config", cfg, "--out", tmp_path / "b", "--variant", "text_only", "--warmup", 0, "--iters", 1, "--batch", 2
    )
    assert done.exit_code == 0, done.output
    report = (tmp_path / "b" / "bench.md").read_text()
    assert f"crosssent bench --config {cfg} --out {tmp_path / 'b'} --variant text_only" in report
    assert json.loads((tmp_path / "b" / "bench.json").read_text())["rows"][0]["variant"] == "text_only"
    import torch

    if not torch.cuda.is_available():
        assert_clean_error(run("bench", "--config", cfg, "--out", tmp_path / "c", "--device", "cuda"), "no CUDA device")
        assert not (tmp_path / "c").exists()
    assert_clean_error(
        run("bench", "--config", cfg, "--out", tmp_path / "d", "--iters", 0),
        "--iters: Input should be greater than or equal to 1",
    )


# --------------------------------------------------------------------------------------------
# inputs that destroyed data or corrupted results silently, and tracebacks where one line is due
# --------------------------------------------------------------------------------------------
def test_convert_never_deletes_a_folder_it_did_not_make(tmp_path, monkeypatch):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "label.csv").write_text(LABELS)
    assert_clean_error(run("data", "convert", "tables", folder / "label.csv", "--out", folder), "it holds the input")
    assert (folder / "label.csv").read_text() == LABELS  # the input is still there
    (tmp_path / "label.csv").write_text(LABELS)
    (folder / "notes.txt").write_text("mine")
    assert_clean_error(
        run("data", "convert", "tables", tmp_path / "label.csv", "--out", folder),
        "not empty and not a CrossSent dataset (label.csv, notes.txt)",
    )
    assert (folder / "notes.txt").read_text() == "mine"
    monkeypatch.chdir(tmp_path)
    assert_clean_error(run("data", "convert", "tables", "label.csv", "--out", "."), "--out .: it holds the input")
    (tmp_path / "file").write_text("x")
    assert_clean_error(run("data", "convert", "tables", "label.csv", "--out", "file"), "--out file: exists and is not a folder")
    made = tmp_path / "made"
    assert run("data", "convert", "tables", "label.csv", "--out", made).exit_code == 0
    assert run("data", "convert", "tables", "label.csv", "--out", made).exit_code == 0  # its own kind: replaced
    assert sorted(p.name for p in made.iterdir()) == ["crosssent.json", "table"]


@pytest.mark.parametrize(
    "table, message",
    [
        ("\ufeff" + LABELS, None),  # a byte-order mark (spreadsheet programs write one) is not part of a name
        (LABELS.replace("v,3,ok,0.0,test", "v,3,ok"), "line 4 has 3 fields, the header has 5"),
        (LABELS.replace("v,1,good,", 'v,1,"good,'), "not a readable CSV (unexpected end of data)"),
        (LABELS.replace("good", "g" * 200_000), "a field is over 131072 characters"),
    ],
)
def test_label_tables_read_strictly(tmp_path, table, message):
    (tmp_path / "label.csv").write_text(table, encoding="utf-8")
    result = run("data", "convert", "tables", tmp_path / "label.csv", "--out", tmp_path / "o")
    if message is None:
        assert result.exit_code == 0, result.output
    else:
        assert_clean_error(result, "label.csv: ")
        assert_clean_error(result, message)
        assert not (tmp_path / "o").exists()


def test_bad_feature_archives_and_encodings_are_one_line(tmp_path):
    (tmp_path / "label.csv").write_text(LABELS)
    np.savez(tmp_path / "cube.npz", v_1=np.zeros((2, 3, 4)))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "cube.npz").read_bytes()[:60])
    (tmp_path / "latin.csv").write_bytes(LABELS.replace("good", "caf\xe9").encode("latin1"))
    base = ["data", "convert", "tables", tmp_path / "label.csv", "--out", tmp_path / "o"]
    assert_clean_error(run(*base, "--audio", tmp_path / "cube.npz"), "cube.npz: clip 'v_1' has a 3-D array")
    assert_clean_error(run(*base, "--audio", tmp_path / "cut.npz"), "cut.npz: cannot read")
    assert_clean_error(
        run("data", "convert", "tables", tmp_path / "latin.csv", "--out", tmp_path / "o"), "latin.csv: not UTF-8 text"
    )
    hostile = tmp_path / "f2py.pkl"  # imported a numpy module that ran its command line, then exited 0
    hostile.write_bytes(b"\x80\x02cnumpy.f2py.__main__\nint8\n.")
    assert_clean_error(run("data", "convert", "mmsa", hostile, "--out", tmp_path / "o"), "forbidden object numpy.f2py")
    assert not (tmp_path / "o").exists()


def _trained_model(tmp_path, synthetic_dir):
    """RUN/model of a one-epoch run on the synthetic data, trained through the command line."""
    cfg = write_config(tmp_path, synthetic_dir)
    assert run("train", "--config", cfg, "--out", tmp_path / "run").exit_code == 0
    return tmp_path / "run" / "model"


def test_predict_reads_a_byte_order_mark_and_refuses_bad_outputs(tmp_path, synthetic_dir):
    model = _trained_model(tmp_path, synthetic_dir)
    clips = tmp_path / "clips.csv"
    clips.write_text("\ufeffid,text\nmine,so good\n", encoding="utf-8")
    scored = run("predict", "--model", model, "--input", clips, "--out", tmp_path / "p.csv")
    assert scored.exit_code == 0 and read_csv(tmp_path / "p.csv")[0]["id"] == "mine", scored.output
    assert_clean_error(run("predict", "--model", model, "--text", "good", "--out", tmp_path), "is a folder; give a file name")
    assert_clean_error(
        run("predict", "--model", model, "--text", "good", "--out", clips / "p.csv"), "clips.csv is a file, not a folder"
    )
    assert_clean_error(run("evaluate", "--model", model, "--data", synthetic_dir, "--out", clips), "exists and is not a folder")
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "crosssent.json").write_text((synthetic_dir / "crosssent.json").read_text())
    assert_clean_error(run("data", "inspect", stub), "its table/ folder is missing")


def _model_copy(tmp_path, model, name):
    import shutil

    copy = tmp_path / name
    shutil.copytree(model, copy)
    return copy


def test_a_model_folder_is_complete_and_consistent_or_refused(tmp_path, synthetic_dir):
    model = _trained_model(tmp_path, synthetic_dir)
    assert (model / "model.safetensors").stat().st_mode & 0o777 == (model / "config.json").stat().st_mode & 0o777

    def edit(name, path, **change):
        folder = _model_copy(tmp_path, model, name)
        tree = json.loads((folder / path).read_text())
        (folder / path).write_text(json.dumps({**tree, **change}))
        return folder

    no_tokenizer = _model_copy(tmp_path, model, "no-tokenizer")
    (no_tokenizer / "tokenizer.json").unlink()
    truncated = _model_copy(tmp_path, model, "truncated")
    (truncated / "model.safetensors").write_bytes((model / "model.safetensors").read_bytes()[:5000])
    cases = [
        (no_tokenizer, "not a complete model folder (tokenizer.json is missing)"),
        (
            edit("huge", "backbone/config.json", hidden_size=2**20, intermediate_size=2**22),
            "tensor backbone.embeddings.word_embeddings.weight has shape",
        ),
        (edit("audio", "config.json", audio_dim=7), "tensor audio_norm.mean has shape (8,)"),
        (edit("variant", "config.json", variant="mag"), "holds no tensor fusion.audio_gate.weight"),
        (truncated, "model.safetensors: not a complete safetensors file"),
        (
            edit("prep", "preprocessing.json", visual_dim=9),
            "preprocessing.json has visual_dim=9 but config.json has visual_dim=6",
        ),
    ]
    for folder, message in cases:
        assert_clean_error(run("evaluate", "--model", folder, "--data", synthetic_dir), message)
        assert_clean_error(run("predict", "--model", folder, "--text", "good"), message)


def test_train_refuses_what_it_cannot_do_in_one_line_and_writes_nothing(tmp_path, synthetic_dir):
    cfg = write_config(tmp_path, synthetic_dir)
    out = tmp_path / "r"
    assert_clean_error(run("train", "--config", tmp_path, "--out", out), "is a folder; give a config file")
    assert_clean_error(run("train", "--config", cfg, "--out", out, "--set", "train.seed=[1,"), "the value is not valid YAML")
    assert_clean_error(run("train", "--config", cfg, "--out", cfg), "exists and is not a folder")
    assert_clean_error(
        run("train", "--config", cfg, "--out", out, "--set", "data.max_len=600"),
        "data.max_len=600 but the backbone reads at most 128 tokens",
    )
    assert not out.exists()


def test_resume_refuses_other_settings_and_a_bad_checkpoint(tmp_path, synthetic_dir):
    cfg = write_config(tmp_path, synthetic_dir)
    out = tmp_path / "run"
    cut = run("train", "--config", cfg, "--out", out, "--set", "train.max_epochs=2", "--set", "train.interrupt_after_epochs=1")
    assert cut.exit_code == 3
    saved = (out / "config.yaml").read_text()
    changed = run("train", "--config", cfg, "--out", out, "--set", "train.max_epochs=2", "--set", "train.lr_new=0.5", "--resume")
    assert_clean_error(changed, "cannot resume: the run was made with train.lr_new=0.003 but this command asks for 0.5")
    assert (out / "config.yaml").read_text() == saved
    (out / "checkpoints" / "last.ckpt").write_bytes(pickle.dumps({"state": subprocess.Popen}))
    bad = run("train", "--config", cfg, "--out", out, "--set", "train.max_epochs=2", "--resume")
    assert_clean_error(bad, "last.ckpt: not a checkpoint that loads as weights only")
    assert "Traceback" not in bad.output


def _commands(group, prefix=()):
    """Every (path, command) under a Typer group, groups included (Typer carries its own click)."""
    yield prefix, group
    if hasattr(group, "list_commands"):
        context = type(group).context_class(group)
        for name in group.list_commands(context):
            yield from _commands(group.get_command(context, name), prefix + (name,))


def test_every_command_and_option_is_described_in_help():
    import typer.main

    missing = []
    commands = list(_commands(typer.main.get_command(app)))
    assert len(commands) > 15  # train, evaluate, predict, serve, experiment, robustness, plot, data ...
    for path, command in commands:
        if not (command.help or "").strip():
            missing.append(" ".join(path) or "crosssent")
        for param in command.params:
            if param.name != "help" and not (getattr(param, "help", None) or "").strip():
                missing.append(f"{' '.join(path)} {param.name}")
        result = run(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
    assert not missing, f"no help text: {missing}"

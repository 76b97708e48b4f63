import re
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_linear_probe_finds_the_synthetic_audio_signal(tmp_path):
    from crosssent.data.sources.synthetic import generate

    data = generate(tmp_path / "synthetic", n_train=600, n_valid=100, n_test=300, seed=1)
    done = subprocess.run([sys.executable, str(SCRIPTS / "linear_probe_audio.py"), str(data),
                           "--backbone", "tiny-random"], capture_output=True, text=True, check=True)
    test_mae = {}
    for line in done.stdout.splitlines():
        found = re.match(r"^(text|audio|text\+audio) .*\| test Non0-ACC2 [0-9.]+ MAE ([0-9.]+)$", line)
        if found:
            test_mae[found[1]] = float(found[2])
    assert set(test_mae) == {"text", "audio", "text+audio"}
    # the synthetic tone lives in the audio only: adding it must help the (random) text probe
    assert test_mae["text+audio"] < test_mae["text"] - 0.1

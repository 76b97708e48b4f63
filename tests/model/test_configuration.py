"""The model config saved in every exported model folder: round trip and one-line errors."""

import json

import pytest
from pydantic import ValidationError

from crosssent.model.configuration import UNUSED_FIELDS, CrossSentConfig


def test_a_saved_config_loads_back_equal(tmp_path):
    config = CrossSentConfig(variant="mag", audio_dim=73, pooling="mean", gate_bias_init=-4.0)
    config.save(tmp_path / "config.json")
    assert CrossSentConfig.load(tmp_path / "config.json") == config
    assert json.loads((tmp_path / "config.json").read_text())["audio_dim"] == 73


def test_configs_are_frozen_and_checked_when_built():
    config = CrossSentConfig()
    with pytest.raises(ValidationError):
        config.inject_layer = 5  # frozen: a config is never changed after it is made
    with pytest.raises(ValidationError):
        CrossSentConfig(dropout=1.0)
    with pytest.raises(ValidationError):
        CrossSentConfig(adaptor_dim=8)  # a misspelt field is an error, not ignored


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "model config not found"),
        ("{", "not valid JSON"),
        ('{"variant": "bigger"}', "variant: Input should be 'crosssent', 'text_only', 'mag' or 'late_fusion'"),
        ('{"inject_layer": 0}', "inject_layer: Input should be greater than or equal to 1"),
        ('{"adaptor_dim": 8}', "adaptor_dim: Extra inputs are not permitted"),
        ("[1, 2]", "the top level: Input should be a valid dictionary"),
    ],
)
def test_a_bad_config_file_is_one_line_naming_the_file_and_field(tmp_path, content, message):
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError) as caught:
        CrossSentConfig.load(path)
    text = str(caught.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text, text


def test_every_variant_lists_the_fields_it_never_reads():
    assert set(UNUSED_FIELDS) == {"crosssent", "text_only", "mag", "late_fusion"}
    assert "inject_layer" in UNUSED_FIELDS["text_only"] and "inject_layer" not in UNUSED_FIELDS["crosssent"]
    assert all(field in CrossSentConfig.model_fields for fields in UNUSED_FIELDS.values() for field in fields)

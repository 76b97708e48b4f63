import pytest
from pydantic import BaseModel, ValidationError

from crosssent.validation_errors import first_problem


class _Inner(BaseModel):
    rate: float


class _Outer(BaseModel):
    name: str
    layers: list[_Inner]


def _error(data) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Outer.model_validate(data)
    return caught.value


def test_names_the_dotted_path_of_the_first_bad_field_in_one_line():
    line = first_problem(_error({"name": "x", "layers": [{"rate": 1}, {"rate": "fast"}]}))
    assert line == "layers.1.rate: Input should be a valid number, unable to parse string as a number"


def test_reports_only_the_first_of_several_errors():
    err = _error({"layers": [{"rate": "fast"}]})
    assert len(err.errors()) == 2
    assert first_problem(err) == "name: Field required"


def test_a_document_that_is_not_a_mapping_is_named_the_top_level():
    assert first_problem(_error([1, 2])).startswith("the top level: Input should be a valid dictionary")
    with pytest.raises(ValidationError) as caught:
        _Outer.model_validate_json("{")
    assert first_problem(caught.value).startswith("the top level: Invalid JSON")

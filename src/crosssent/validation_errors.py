"""One line out of pydantic's multi-line validation report, for the error a user reads.

Every loader of a hand-editable file (run config, experiment config, model ``config.json``,
``preprocessing.json``, a dataset's ``crosssent.json``) raises ``ValueError(f"{path}: {...}")``
with this line, so a bad file is named with the first field that is wrong and why.
A leaf module: it imports nothing of ours.
"""

from __future__ import annotations

from pydantic import ValidationError


def first_problem(err: ValidationError) -> str:
    """``"train.lr_backbone: Input should be a valid number"`` for the first error in ``err``.

    The field path is dotted (list indices included); an error about the whole document (not a
    mapping, not valid JSON) has no field and reads ``"the top level: ..."``.
    """
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the top level"
    return f"{where}: {first['msg']}"

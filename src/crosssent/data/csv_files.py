"""Reading the CSV tables people hand in (label tables, feature tables, clips to score).

One place for what every such reader must do: UTF-8 with or without a byte-order mark
(spreadsheet programs write one, and it would otherwise glue itself to the first column's
name), strict quoting (an unterminated quote is an error, not a field that swallows the rest of
the file), a bound on one field's size, rows as long as the header, and a one-line
``ValueError`` naming the file and line for each of these.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

MAX_FIELD_CHARS = 131_072  # csv's own default bound, stated here so messages can name it


def csv_rows(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank row, the header first (line 1)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    line = 0
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, strict=True)
            for row in reader:
                line = reader.line_num
                if row:
                    yield line, row
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.start} cannot be decoded); save it as UTF-8") from None
    except csv.Error as err:
        reason = f"a field is over {MAX_FIELD_CHARS} characters" if "field larger" in str(err) else str(err)
        raise ValueError(f"{path}: line {line + 1}: not a readable CSV ({reason})") from None


def read_csv(path: str | Path, *, required: Sequence[str] = ()) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows as dicts) of a CSV with a header; every row has the header's length and
    every ``required`` column is there."""
    path = Path(path)
    rows = csv_rows(path)
    first = next(rows, None)
    header = [name.strip() for name in first[1]] if first else []
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (columns: {', '.join(header) or 'none'})")
    out = []
    for line, row in rows:
        if len(row) != len(header):
            raise ValueError(f"{path}: line {line} has {len(row)} fields, the header has {len(header)}")
        out.append(dict(zip(header, row)))
    return header, out

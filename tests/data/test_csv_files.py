"""Reading the CSV tables people hand in: one-line errors naming the file and line."""

import pytest

from crosssent.data.csv_files import MAX_FIELD_CHARS, read_csv


def write(tmp_path, data: bytes):
    path = tmp_path / "t.csv"
    path.write_bytes(data)
    return path


def test_a_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    header, rows = read_csv(write(tmp_path, "\ufeffid,text\na,good\n".encode("utf-8")), required=["id", "text"])
    assert header == ["id", "text"] and rows == [{"id": "a", "text": "good"}]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"id,text\na,good,extra\n", "t.csv: line 2 has 3 fields, the header has 2"),
        (b'id,text\na,"never closed\nb,x\n', "t.csv: line 2: not a readable CSV (unexpected end of data)"),
        (b"id,text\na,caf\xe9\n", "t.csv: not UTF-8 text (byte 13"),
        (b"id,words\na,good\n", "t.csv: missing column(s) text (columns: id, words)"),
        (("id,text\na," + "x" * (MAX_FIELD_CHARS + 1) + "\n").encode(), f"a field is over {MAX_FIELD_CHARS} characters"),
    ],
)
def test_bad_tables_are_one_line(tmp_path, data, message):
    with pytest.raises(ValueError) as caught:
        read_csv(write(tmp_path, data), required=["text"])
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_blank_lines_are_skipped_and_a_missing_file_is_named(tmp_path):
    assert read_csv(write(tmp_path, b"id,text\n\na,good\n\n"))[1] == [{"id": "a", "text": "good"}]
    with pytest.raises(ValueError, match="nope.csv: file not found"):
        read_csv(tmp_path / "nope.csv")

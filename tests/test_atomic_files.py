import stat

import pytest

from crosssent.atomic_files import atomic_dir, write_bytes_atomic, write_json_atomic, write_text_atomic


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_replaced_whole_with_the_mode_a_plain_open_gives(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    write_text_atomic(tmp_path / "report.md", "old\n")
    write_text_atomic(tmp_path / "report.md", "ü\n")
    write_bytes_atomic(tmp_path / "sub" / "figure.png", b"\x89PNG")
    write_json_atomic(tmp_path / "m.json", {"a": 1})
    assert (tmp_path / "report.md").read_bytes() == "ü\n".encode()
    assert (tmp_path / "m.json").read_text() == '{\n  "a": 1\n}\n'
    for path in (tmp_path / "report.md", tmp_path / "sub" / "figure.png", tmp_path / "m.json"):
        assert mode(path) == mode(plain)
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary file left


def test_a_folder_is_replaced_only_when_its_block_ends_without_error(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v1")
        assert not target.exists()  # nothing visible while the block runs
    assert (target / "weights").read_text() == "v1" and mode(target) == mode(plain)
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "weights").write_text("half")
            raise RuntimeError("killed")
    assert (target / "weights").read_text() == "v1"  # the old folder stays whole
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v2")
    assert (target / "weights").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "plain"]  # no temporary folder left


def test_a_csv_is_written_whole_with_its_header_and_quoting(tmp_path):
    from crosssent.atomic_files import write_csv_atomic

    write_csv_atomic(tmp_path / "t.csv", ["id", "text"], iter([("a", 'so "good", really'), ("b", "这部电影")]))
    assert (tmp_path / "t.csv").read_text(encoding="utf-8").splitlines() == ["id,text", 'a,"so ""good"", really"', "b,这部电影"]
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # no temp file left beside it

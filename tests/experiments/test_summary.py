"""The summary table across experiments: means as the published pages print them, floors from
the experiment configs' quoted entries, bad rows refused with the file and row named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from crosssent.experiments.config import ExperimentConfig
from crosssent.experiments.report import mean_ci, read_page_tables, render_markdown, render_transfer
from crosssent.experiments.summary import load_summary, render_summary

META = {"command": "crosssent experiment --config c.yaml", "hardware": "x", "wall_seconds": 0.0, "run_seconds": 0.0}


def _entry(values: dict[str, list[float]], seeds: list[int], missing: list[int] | None = None) -> dict:
    return {
        "seeds": seeds,
        "missing_seeds": missing or [],
        "test": {k: mean_ci(v) for k, v in values.items()},
        "valid_mse": mean_ci([0.5] * len(seeds)),
        "code": [],
    }


def _page(tmp_path: Path, *, floor: bool = True) -> Path:
    """A page written by the report code itself (render_markdown + a transfer table after it)."""
    mosi = {"acc2_has0": [0.8, 0.82], "acc2_non0": [0.84, 0.86], "f1_non0": [0.84, 0.86], "acc7": [0.40, 0.41]}
    results = {
        "mosi-clip": {
            "crosssent": _entry({**mosi, "mae": [0.80, 0.79], "corr": [0.774, 0.776]}, [0, 1]),
            "no_gmra": _entry({**{k: v[:1] for k, v in mosi.items()}, "mae": [0.7], "corr": [0.70]}, [0], missing=[1]),
        }
    }
    quoted = {"mosi-clip": {"floor, issue #4 (one seed)": {"acc2_non0": 0.826, "acc7": 0.346, "mae": 0.886, "corr": 0.771}}}
    config = ExperimentConfig(
        name="grid",
        base=Path("b.yaml"),
        datasets={"mosi-clip": []},
        variants=["crosssent", "no_gmra"],
        quoted=quoted if floor else {},
    )
    other = {"corr": mean_ci([0.1]), "acc2_non0": mean_ci([0.5]), "seeds": 1}
    transfer = {"columns": ["mosi-clip", "OTHER"], "rows": {"mosi-clip": {"OTHER": other}}}
    page = tmp_path / "docs" / "results" / "grid.md"
    page.parent.mkdir(parents=True)
    page.write_text(render_markdown(config, results, {}, META) + render_transfer(transfer))
    experiments = tmp_path / "configs" / "experiments"
    experiments.mkdir(parents=True)
    (experiments / "grid.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return page


def _config(tmp_path: Path, **row) -> Path:
    path = tmp_path / "summary.yaml"
    first = {"data": "MOSI", "backbone": "MiniLM", "page": "grid", "dataset": "mosi-clip", **row}
    path.write_text(yaml.safe_dump({"name": "glance", "rows": [first]}))
    return path


def test_read_page_tables_gives_back_the_cells_as_printed_and_stops_at_the_table(tmp_path):
    tables = read_page_tables(_page(tmp_path).read_text())
    assert list(tables) == ["mosi-clip"]  # the transfer table after it is not a dataset table
    assert set(tables["mosi-clip"]) == {"crosssent", "no_gmra"}
    row = tables["mosi-clip"]["crosssent"]
    assert row["seeds"] == "2" and row["acc2_non0"] == "85.00 ± 1.41" and row["corr"] == "0.775 ± 0.001"
    assert tables["mosi-clip"]["no_gmra"]["seeds"] == "1 (missing [1])"


def test_summary_row_copies_the_page_means_and_the_quoted_floor(tmp_path):
    _page(tmp_path)
    paper = {"acc2_non0": 0.8978, "acc7": 0.521, "mae": 0.563, "corr": 0.878}
    config = load_summary(_config(tmp_path, floor_from="grid", paper=paper))
    table = render_summary(config, tmp_path)
    row = [c.strip() for c in table.splitlines()[2].strip("|").split("|")]
    assert row[0] == "MOSI ([grid](results/grid.md))" and row[1] == "MiniLM"
    assert row[2] == "2 / 1 (missing [1])"  # the text-only column has fewer seeds: said, not hidden
    assert row[3] == "85.00 / 40.50 / 0.795 / 0.775"
    assert row[4] == "84.00 / 40.00 / 0.700 / 0.700"
    assert row[5] == "82.6 / 34.6 / 0.886 / 0.771"
    assert row[6] == "89.78 / 52.1 / 0.563 / 0.878"


def test_summary_without_floor_paper_or_text_only_shows_dashes(tmp_path):
    _page(tmp_path, floor=False)
    table = render_summary(load_summary(_config(tmp_path, text_only=None)), tmp_path)
    row = [c.strip() for c in table.splitlines()[2].strip("|").split("|")]
    assert row[2] == "2" and row[4] == "–" and row[5] == "–" and row[6] == "–"
    with pytest.raises(ValueError, match="grid: no quoted floor for mosi-clip"):
        render_summary(load_summary(_config(tmp_path, floor_from="grid")), tmp_path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"page": "absent"}, "absent.md: published page not found"),
        ({"dataset": "mosei-text"}, "grid.md: mosei-text: no such dataset table"),
        ({"fused": "mag"}, "grid.md: mosi-clip: no finished runs of 'mag'"),
    ],
)
def test_summary_refuses_a_row_the_pages_cannot_fill(tmp_path, row, message):
    _page(tmp_path)
    with pytest.raises(ValueError, match=message):
        render_summary(load_summary(_config(tmp_path, **row)), tmp_path)


def test_quoted_numbers_without_a_column_of_the_table_are_refused(tmp_path):
    _page(tmp_path)
    with pytest.raises(ValueError, match="row 'MOSI': paper: the quoted numbers lack 'acc7', a column of this table"):
        render_summary(load_summary(_config(tmp_path, paper={"acc2_non0": 0.9, "mae": 0.5, "corr": 0.8})), tmp_path)


def test_load_summary_names_the_file_and_the_problem(tmp_path):
    with pytest.raises(ValueError, match="summary.yaml: rows\\[0\\].paper: unknown metric 'acc9'"):
        load_summary(_config(tmp_path, paper={"acc9": 0.1}))
    bad = tmp_path / "summary.yaml"
    bad.write_text("name: x\nrows: []\n")
    with pytest.raises(ValueError, match="summary.yaml: "):
        load_summary(bad)


def test_excerpt_copies_one_section_table_as_printed(tmp_path):
    page = _page(tmp_path)
    path = tmp_path / "excerpt.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "excerpt": {"page": "grid", "headings": ["Transfer (test splits)"]}}))
    block = render_summary(load_summary(path), tmp_path)
    lines = block.splitlines()
    assert lines[0] == "| trained on | mosi-clip | OTHER |"
    assert lines[2] in page.read_text() and "Corr 0.100, Non0-ACC2 50.00 (1 seed)" in lines[2]
    assert lines[3] == "" and lines[4] == 'From [grid](results/grid.md), "Transfer (test splits)".'
    both = ["mosi-clip (test split)", "Transfer (test splits)"]
    path.write_text(yaml.safe_dump({"name": "x", "excerpt": {"page": "grid", "headings": both}}))
    block = render_summary(load_summary(path), tmp_path)
    assert block.startswith("*mosi-clip (test split)*\n\n| variant | seeds |")
    assert "\n*Transfer (test splits)*\n\n| trained on" in block
    assert block.endswith('From [grid](results/grid.md), "mosi-clip (test split)", "Transfer (test splits)".\n')
    path.write_text(yaml.safe_dump({"name": "x", "excerpt": {"page": "grid", "headings": ["Robustness"]}}))
    with pytest.raises(ValueError, match="grid.md: no section '## Robustness'"):
        render_summary(load_summary(path), tmp_path)
    path.write_text(yaml.safe_dump({"name": "x"}))
    with pytest.raises(ValueError, match="give either rows or an excerpt"):
        load_summary(path)


# --- numbers in prose, each a link to the page cell it comes from


def _linked(title: str, text: str = "?", anchor: str = "mosi-clip-test-split") -> str:
    return f'[{text}](results/grid.md#{anchor} "{title}")'


def test_a_linked_number_is_copied_from_the_page_cell_its_title_names(tmp_path):
    from crosssent.experiments.summary import refresh_links

    _page(tmp_path)
    doc = (
        f"Corr {_linked('crosssent; corr')} ± {_linked('crosssent; corr; 2')}, text-only MAE "
        f"{_linked('no_gmra; mae')}; transfer {_linked('mosi-clip; OTHER', anchor='transfer-test-splits')}."
    )
    fresh = refresh_links(doc, tmp_path / "docs")
    assert fresh == (
        f"Corr {_linked('crosssent; corr', '0.775')} ± {_linked('crosssent; corr; 2', '0.001')}, text-only MAE "
        f"{_linked('no_gmra; mae', '0.700')}; transfer {_linked('mosi-clip; OTHER', '0.100', anchor='transfer-test-splits')}."
    )
    assert refresh_links(fresh, tmp_path / "docs") == fresh  # copying again changes nothing


def test_a_stale_linked_number_is_written_again_and_a_link_naming_nothing_is_refused(tmp_path):
    from crosssent.experiments.summary import refresh_links

    _page(tmp_path)
    assert refresh_links(_linked("crosssent; corr", "0.9"), tmp_path / "docs") == _linked("crosssent; corr", "0.775")
    for title, anchor, message in [
        ("crosssent; corr", "no-such-section", "no section #no-such-section"),
        ("mag; corr", "mosi-clip-test-split", "no table of section #mosi-clip-test-split has the row 'mag'"),
        ("crosssent; corr; 4", "mosi-clip-test-split", "holds 2 number(s), not a number 4"),
        ("crosssent; corr; two", "mosi-clip-test-split", "ROW; COLUMN; N"),
        ("no_such_label", "mosi-clip-test-split", "has no 'no_such_label NUMBER'"),
    ]:
        with pytest.raises(ValueError, match="grid.md: link") as err:
            refresh_links(_linked(title, anchor=anchor), tmp_path / "docs")
        assert message in str(err.value)
    with pytest.raises(ValueError, match="linked page not found"):
        refresh_links('[1](results/missing.md#a "x; y")', tmp_path / "docs")


def test_a_row_can_be_named_by_its_first_cells_and_a_label_by_its_value():
    from crosssent.experiments.summary import linked_value

    page = (
        "# P\n\n## Every cell\n\n| model | corruption | strength | corr |\n|---|---|---|---|\n"
        "| m | noise | 10.0 | 0.5 |\n| m | noise | 0.0 | -0.25 |\n\nWhat GMRA does: mean_gate 0.195, other 3\n\n"
        "| vs | corr |\n|---|---|\n| m | +0.074 (p – / 0.020) |\n"
    )
    assert linked_value(page, "every-cell", "m & noise & 0.0; corr") == "-0.25"
    assert linked_value(page, "every-cell", "m; corr") == "0.5"  # the first row whose first cell matches
    assert linked_value(page, "every-cell", "mean_gate") == "0.195"
    assert linked_value(page, "every-cell", "vs=m; corr") == "+0.074"  # the table whose header starts "vs"
    assert linked_value(page, "every-cell", "vs=m; corr; 2") == "0.020"  # "–" is not a number


def test_unlinked_numbers_finds_typed_decimals_and_percentages_only_where_they_are_claims():
    from crosssent.experiments.summary import unlinked_numbers

    text = "\n".join(
        [
            "Corr 0.72 typed.",  # 1: a claim typed by hand
            f"Corr {_linked('crosssent; corr', '0.775')}, seeds 3, layer 6, lr 1e-3, 2026-12-08.",
            "`--set train.ema_decay=0.97` and [a page](results/x-0.5.md).",
            "<!-- begin block -->",
            "| 0.5 | 0.6 |",
            "<!-- end block -->",
            "calls 16 % of clips positive",  # 7: a percentage
            "## Quoted numbers",
            "paper: 89.78",
            "## Ours",
            "```bash",
            "python x.py --p 0.3",
            "```",
            "ahead by 4.6 points",  # 14
            "version 0.10.21 of a package, and a sentence ending in 0.7.",  # 15: the last one
        ]
    )
    assert [line.split(":")[0] for line in unlinked_numbers(text)] == ["line 1", "line 7", "line 14", "line 15"]
    assert unlinked_numbers("version 0.10.21 of a package") == []

"""docs/results.md: every table ``crosssent summary`` makes from the published pages (At a
glance, transfer, RAVDESS, robustness) is the one it makes now (nobody edits them by hand, and
a page republished without its table fails here); every page is linked from the readings and
listed in the generated index, and every figure linked is there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crosssent.experiments.summary import load_summary, render_summary

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results.md"
PAGES = RESULTS.parent / "results"
GLANCE = ROOT / "configs" / "summaries" / "at-a-glance.yaml"


SUMMARIES = sorted((ROOT / "configs" / "summaries").glob("*.yaml"))


@pytest.mark.parametrize("path", SUMMARIES, ids=lambda p: p.stem)
def test_every_generated_table_is_the_one_its_command_makes_now(path):
    text = RESULTS.read_text()
    config = load_summary(path)
    assert f"<!-- begin {config.name} -->" in text, f"{path.name}: its table is not in results.md"
    block = text.split(f"<!-- begin {config.name} -->\n", 1)[1].split(f"<!-- end {config.name} -->", 1)[0]
    assert block.split("\n", 1)[1] == render_summary(config, ROOT), (
        f"run: crosssent summary --config configs/summaries/{path.name} --publish docs/results.md"
    )


def test_the_glance_table_is_in_its_section():
    text = RESULTS.read_text()
    assert text.index(f"<!-- begin {load_summary(GLANCE).name} -->") > text.index("## At a glance")


def test_every_grid_with_a_quoted_floor_has_its_floor_in_the_glance_table():
    """A grid that draws a quoted floor as a dashed line shows it in the summary too."""
    import yaml

    config = load_summary(GLANCE)
    with_floor = {
        path.stem
        for path in (ROOT / "configs" / "experiments").glob("*.yaml")
        if any(label.startswith("floor") for v in (yaml.safe_load(path.read_text()).get("quoted") or {}).values() for label in v)
    }
    assert with_floor and with_floor <= {row.floor_from for row in config.rows}


def test_every_linked_figure_is_there():
    links = re.findall(r"\]\((figures/[^)\s]+\.png)\)", RESULTS.read_text())
    assert len(links) >= 5  # the At-a-glance links and the figures of the readings
    missing = [link for link in links if not (RESULTS.parent / link).is_file()]
    page_links = [
        (page, link) for page in PAGES.glob("*.md") for link in re.findall(r"\]\((\.\./figures/[^)\s]+\.png)\)", page.read_text())
    ]
    assert len(page_links) >= 12  # one per published page with records
    missing += [f"{page.name}: {link}" for page, link in page_links if not (PAGES / link).is_file()]
    assert missing == []


def test_every_page_is_linked_from_the_readings_and_listed_in_the_generated_index():
    from crosssent.experiments.report import render_index

    pages = sorted(p.stem for p in PAGES.glob("*.md") if p.name != "index.md")
    text, index = RESULTS.read_text(), (PAGES / "index.md").read_text()
    assert [p for p in pages if f"(results/{p}.md)" not in text] == []
    assert [p for p in pages if f"]({p}.md)" not in index] == []
    assert render_index(PAGES) == index  # the index is what the pages say, regenerated


LINKED = [RESULTS, ROOT / "README.md", ROOT / "docs" / "training.md"]


@pytest.mark.parametrize("path", LINKED, ids=lambda p: p.name)
def test_every_linked_number_is_the_one_its_page_prints_now(path):
    from crosssent.experiments.summary import refresh_links

    text = path.read_text()
    assert "](" in text and refresh_links(text, path.parent) == text, f"run: crosssent summary --links {path.relative_to(ROOT)}"


@pytest.mark.parametrize("path", [RESULTS, ROOT / "README.md"], ids=lambda p: p.name)
def test_no_measured_number_is_typed_by_hand(path):
    """Outside links to page cells, code, generated blocks and the quoted section, no decimal and
    no percentage: a result in the prose is a link to the cell it comes from."""
    from crosssent.experiments.summary import RESULT_LINK, unlinked_numbers

    text = path.read_text()
    assert unlinked_numbers(text) == []
    if path == RESULTS:
        assert len(RESULT_LINK.findall(text)) >= 100  # the readings' numbers are there, linked

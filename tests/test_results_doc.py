"""docs/results.md: the hand-copied "At a glance" table must agree with the runner's tables (the
generated pages docs/results/NAME.md) and the quoted floors of the experiment configs; every page
is linked from the readings and listed in the generated index, and every figure linked is there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from crosssent.metrics import RAW_VALUE_KEYS

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results.md"
PAGES = RESULTS.parent / "results"

# At-a-glance row (its first cell starts with this, then the backbone) -> published block
BLOCKS = {
    ("MOSI official split", "mpnet"): "mosi-mpnet",
    ("MOSI official split", "MiniLM"): "mosi-minilm",
    ("MOSI bc-LSTM split", "MiniLM"): "mosi-bclstm-minilm",
    ("MOSEI official split", "MiniLM"): "mosei-minilm",
    ("CH-SIMS official split", "e5-small"): "sims-e5",
    ("CH-SIMS official split", "mpnet"): "sims-mpnet-en",
}
# Rows for a dataset's current default (first cell also holds "current default") -> block and the
# variants copied into the crosssent and no_gmra columns (None: "–")
DEFAULT_ROWS = {
    ("MOSI official split", "mpnet"): ("mosi-mpnet-epochs-8", "crosssent", "no_gmra"),
    ("MOSI official split", "MiniLM"): ("mosi-minilm", "crosssent_ema_0.97", "no_gmra_ema_0.97"),
    ("CH-SIMS official split", "e5-small"): ("sims-e5", "crosssent_ema_0.97", None),
    ("MOSEI official split", "MiniLM"): ("mosei-minilm", "crosssent_ema_0.9975", None),
}
COLUMNS = {"mosi": ("acc2_non0", "acc7", "mae", "corr"), "sims": ("acc2", "acc5", "mae", "corr")}


def cells(line: str) -> list[str]:
    """The cells of one Markdown table row."""
    return [c.strip() for c in line.strip("|").split("|")]


def glance_rows(text: str) -> list[list[str]]:
    section = text.split("## At a glance", 1)[1].split("\n## ", 1)[0]
    return [cells(line) for line in section.splitlines() if line.startswith("| ")][1:]  # without the header


def block_means(text: str, block: str) -> dict[str, dict[str, str]]:
    """variant -> column -> mean as printed, from the test-split table of a published page."""
    page = PAGES / f"{block}.md"
    assert page.is_file(), f"no published page {block}"
    assert f"(results/{block}.md)" in text, f"{block}'s page is not linked from results.md"
    body = re.search(r"(.*)", page.read_text(), re.S)
    assert body
    lines = [line for line in body.group(1).splitlines() if line.startswith("| ")]
    header = cells(lines[0])
    table = {}
    for line in lines[1:]:
        row = cells(line)
        if row[0] == "vs":  # the paired-comparison table starts here
            break
        table[row[0]] = {name: cell.split(" ±")[0] for name, cell in zip(header, row)}
    return table


def test_every_glance_row_names_a_published_block():
    rows = glance_rows(RESULTS.read_text())
    found = {(key, row[1]) for row in rows for key, _ in BLOCKS if row[0].startswith(key)}
    assert found == set(BLOCKS)


@pytest.mark.parametrize("key", sorted(BLOCKS))
def test_glance_numbers_are_the_published_means(key):
    text = RESULTS.read_text()
    _assert_copied(text, key, _glance_row(text, key, current_default=False), BLOCKS[key], "crosssent", "no_gmra")


@pytest.mark.parametrize("key", sorted(DEFAULT_ROWS))
def test_glance_rows_of_current_defaults_are_the_published_means(key):
    text = RESULTS.read_text()
    _assert_copied(text, key, _glance_row(text, key, current_default=True), *DEFAULT_ROWS[key])


def _glance_row(text, key, *, current_default):
    return next(
        r
        for r in glance_rows(text)
        if r[0].startswith(key[0]) and r[1] == key[1] and ("current default" in r[0]) == current_default
    )


def _assert_copied(text, key, row, block, fused, text_only):
    means = block_means(text, block)
    columns = COLUMNS["sims" if key[0].startswith("CH-SIMS") else "mosi"]
    assert row[2] == means[fused]["seeds"]
    if text_only is None:
        assert row[4] == "–"
    else:
        assert row[2] == means[text_only]["seeds"]
    for variant, cell in [(v, c) for v, c in ((fused, row[3]), (text_only, row[4])) if v is not None]:
        copied = [v.strip() for v in cell.split("/")]
        published = [means[variant][c] for c in columns]
        for c, got, want in zip(columns, copied, published):
            decimals = len(got.split(".")[1])
            assert float(got) == pytest.approx(round(float(want), decimals), abs=1e-9), (key, variant, c)


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


@pytest.mark.parametrize("key", sorted(BLOCKS))
def test_glance_floors_are_the_configs_quoted_floors(key):
    """The floor column and the dashed lines of the figures come from the same numbers."""
    config = yaml.safe_load((RESULTS.parents[1] / "configs" / "experiments" / f"{BLOCKS[key]}.yaml").read_text())
    floors = [
        values
        for labelled in config.get("quoted", {}).values()
        for label, values in labelled.items()
        if label.startswith("floor")
    ]
    row = _glance_row(RESULTS.read_text(), key, current_default=False)
    if not floors:
        assert row[5] == "–"
        return
    columns = COLUMNS["sims" if key[0].startswith("CH-SIMS") else "mosi"]
    copied = [[float(x) for x in part.split(",")] for part in row[5].split(":")[-1].split("/")]  # per column, per seed
    quoted = [[f[c] * (1 if c in RAW_VALUE_KEYS else 100) for f in floors] for c in columns]
    assert copied == [pytest.approx(q, abs=1e-9) for q in quoted]

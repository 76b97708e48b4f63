"""Tables of results.md made from the published pages, never typed.

A summary config (``configs/summaries/*.yaml``) makes one block of a document, in one of two
ways. ``excerpt``: a section's table copied from one published page as printed (e.g. the
transfer table of ``transfer-minilm``). ``rows``: a table across experiments (results.md's
"At a glance"); each row names a published page
(``docs/results/PAGE.md``, written by ``crosssent experiment --publish``), the dataset section
of that page, and the two variants shown side by side (GMRA and the text-only model). The
means are taken from the page as printed (``report.read_page_tables``), so the summary can
never disagree with the page; a quoted floor comes from the ``quoted`` entries of the
experiment config that draws it as a dashed line, and the paper's numbers are the row's own
``paper`` entry, marked as quoted. ``crosssent summary --config C --publish docs/results.md``
writes the table between ``<!-- begin NAME -->`` markers (``report.publish``).

A number in the readings' prose is never typed either: it is a link to the cell of the
published page it comes from, ``[0.647](results/ravdess-minilm.md#ravdess-whisper-test-split
"crosssent; corr")``. The anchor is the page's ``## `` section; the title names the row and the
column of the first table of that section that has both (``vs=late_fusion`` names the row of
the table whose header starts with ``vs``; ``a & b`` the row whose first two cells are a and b),
then optionally which number of the cell
(``; 2``: a paired cell ``+4.61 (p 0.047 / 0.004)`` holds three, a mean ``0.647 ± 0.018`` two).
A title without ``;`` names a ``LABEL VALUE`` pair in the section's text (``mean_gate``).
``crosssent summary --links docs/results.md`` writes every linked number again from the pages
(``refresh_links``); ``unlinked_numbers`` finds a measured-looking number (a decimal, a
percentage) typed outside links, code, generated blocks and the quoted section.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from crosssent.experiments.config import ALL_METRIC_KEYS, load_experiment, read_yaml_model
from crosssent.experiments.report import read_page_tables
from crosssent.metrics import RAW_VALUE_KEYS

# The four headline columns per metric convention (the page's table tells which one applies).
COLUMNS = {"mosi": ("acc2_non0", "acc7", "mae", "corr"), "sims": ("acc2", "acc5", "mae", "corr")}


class SummaryRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data: str  # the first cell: data, features, what makes the row
    backbone: str
    page: str  # a published page, docs/results/PAGE.md
    dataset: str  # that page's dataset section
    fused: str = "crosssent"
    text_only: str | None = "no_gmra"  # None: no text-only runs under this row's settings ("–")
    # the experiment config (configs/experiments/NAME.yaml) whose quoted floor(s) of ``dataset``
    # (labels starting with "floor") fill the floor column; None: "–"
    floor_from: str | None = None
    paper: dict[str, float] | None = None  # quoted from the paper, on metrics.json's scale


class Excerpt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    page: str  # a published page, docs/results/PAGE.md
    # titles of its ``## `` sections, e.g. "Transfer (test splits)": the first table of each, in this order
    headings: list[str] = Field(min_length=1)


class SummaryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str  # the marker name in the published document
    pages: Path = Path("docs/results")
    experiments: Path = Path("configs/experiments")
    rows: list[SummaryRow] = []
    excerpt: Excerpt | None = None


def load_summary(path: str | Path) -> SummaryConfig:
    path = Path(path)
    config = read_yaml_model(path, SummaryConfig, "summary config")
    if bool(config.rows) == (config.excerpt is not None):
        raise ValueError(f"{path}: give either rows or an excerpt")
    for i, row in enumerate(config.rows):
        unknown = next((k for k in (row.paper or {}) if k not in ALL_METRIC_KEYS), None)
        if unknown:
            raise ValueError(f"{path}: rows[{i}].paper: unknown metric {unknown!r}")
    return config


def _quoted(values: dict[str, float], columns: tuple[str, ...], where: str) -> str:
    """Quoted numbers as their source gives them: raw values to three places, shares in %."""
    missing = next((c for c in columns if c not in values), None)
    if missing is not None:
        raise ValueError(f"{where}: the quoted numbers lack {missing!r}, a column of this table")
    return " / ".join(f"{values[c]:.3f}" if c in RAW_VALUE_KEYS else f"{round(values[c] * 100, 2):g}" for c in columns)


def _floor_cell(config: SummaryConfig, row: SummaryRow, columns: tuple[str, ...], root: Path) -> str:
    if row.floor_from is None:
        return "–"
    experiment = load_experiment(root / config.experiments / f"{row.floor_from}.yaml")
    floors = {label: v for label, v in experiment.quoted.get(row.dataset, {}).items() if label.startswith("floor")}
    if not floors:
        raise ValueError(f"{row.floor_from}: no quoted floor for {row.dataset}")
    where = f"{row.floor_from}.yaml: quoted: {row.dataset}"
    if len(floors) == 1:
        return _quoted(next(iter(floors.values())), columns, where)
    # several (one per seed): each tagged with the last part of its label ("seed 0")
    return "; ".join(f"{label.rsplit(', ', 1)[-1]}: {_quoted(v, columns, where)}" for label, v in floors.items())


def _page_text(config: SummaryConfig, name: str, root: Path) -> tuple[Path, str]:
    page = root / config.pages / f"{name}.md"
    if not page.is_file():
        raise ValueError(f"{page}: published page not found (crosssent experiment --publish {config.pages})")
    return page, page.read_text(encoding="utf-8")


def _render_excerpt(config: SummaryConfig, excerpt: Excerpt, root: Path) -> str:
    """The first table of each named section of the page, as printed, with a link to the page."""
    page, text = _page_text(config, excerpt.page, root)
    tables = []
    for heading in excerpt.headings:
        section = text.split(f"\n## {heading}\n", 1)
        if len(section) == 1:
            raise ValueError(f"{page}: no section '## {heading}'")
        body = section[1].split("\n#", 1)[0].splitlines()
        start = next((i for i, line in enumerate(body) if line.startswith("| ")), None)
        if start is None:
            raise ValueError(f"{page}: section '{heading}' has no table")
        end = start + next((i for i, line in enumerate(body[start:]) if not line.startswith("|")), len(body) - start)
        tables.append(
            "\n".join([f"*{heading}*", "", *body[start:end]]) if len(excerpt.headings) > 1 else "\n".join(body[start:end])
        )
    sections = ", ".join(f'"{h}"' for h in excerpt.headings)
    return "\n\n".join(tables) + f"\n\nFrom [{excerpt.page}](results/{excerpt.page}.md), {sections}.\n"


def _means(table: dict[str, dict[str, str]], variant: str, columns: tuple[str, ...], where: str) -> str:
    if variant not in table:
        raise ValueError(f"{where}: no finished runs of {variant!r}")
    return " / ".join(table[variant][c].split(" ±")[0] for c in columns)


def render_summary(config: SummaryConfig, root: Path = Path(".")) -> str:
    """The block in Markdown, from the published pages under ``root``."""
    if config.excerpt is not None:
        return _render_excerpt(config, config.excerpt, root)
    lines = [
        "| data (features) | backbone | seeds | `crosssent` | `text_only` (`no_gmra` in older grids) "
        "| floor, issue #4 (quoted) | paper (quoted) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in config.rows:
        page, text = _page_text(config, row.page, root)
        where = f"{page}: {row.dataset}"
        table = read_page_tables(text).get(row.dataset)
        if not table:
            raise ValueError(f"{where}: no such dataset table on the page")
        columns = COLUMNS["sims" if "acc2" in next(iter(table.values())) else "mosi"]
        seeds = table[row.fused]["seeds"] if row.fused in table else "0"
        if row.text_only is not None and row.text_only in table and table[row.text_only]["seeds"] != seeds:
            seeds += f" / {table[row.text_only]['seeds']}"
        cells = [
            f"{row.data} ([{row.page}](results/{row.page}.md))",
            row.backbone,
            seeds,
            _means(table, row.fused, columns, where),
            "–" if row.text_only is None else _means(table, row.text_only, columns, where),
            _floor_cell(config, row, columns, root),
            "–" if row.paper is None else _quoted(row.paper, columns, f"row {row.data!r}: paper"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# [TEXT](results/PAGE.md#ANCHOR "TITLE"): a number linked to the page cell it is copied from
# (README.md links them as docs/results/PAGE.md: the target is read relative to the document)
RESULT_LINK = re.compile(r'\[([^\]\n]*)\]\(((?:[\w.-]+/)*results/([\w.-]+)\.md)#([\w-]+) "([^"\n]+)"\)')
# a number as a page prints it: signed, maybe decimal, not part of a name ("Non0", "ACC2")
_NUMBER = re.compile(r"(?<![\w.])[+\-−]?\d+(?:\.\d+)?(?!\w|\.\d)")


def heading_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _sections(text: str) -> dict[str, str]:
    """A page's ``## `` sections by anchor (the first of two with the same heading)."""
    sections: dict[str, str] = {}
    for chunk in re.split(r"^## ", text, flags=re.M)[1:]:
        heading, _, body = chunk.partition("\n")
        sections.setdefault(heading_anchor(heading), body.split("\n# ", 1)[0])
    return sections


def _tables(body: str) -> list[tuple[list[str], list[list[str]]]]:
    """Each Markdown table of a section: header cells and body rows, backticks dropped."""
    tables, block = [], []
    for line in [*body.splitlines(), ""]:
        if line.startswith("|"):
            block.append([cell.strip().replace("`", "") for cell in line.strip().strip("|").split("|")])
        elif block:
            tables.append((block[0], block[2:]))
            block = []
    return tables


def linked_value(page_text: str, anchor: str, title: str) -> str:
    """The number a link's title names on a page, as printed (see the module's docstring)."""
    sections = _sections(page_text)
    if anchor not in sections:
        raise ValueError(f"no section #{anchor} (sections: {', '.join(sections)})")
    body = sections[anchor]
    parts = [part.strip() for part in title.split(";")]
    if len(parts) == 1:
        found = re.search(rf"(?<![\w-]){re.escape(parts[0])}:? ({_NUMBER.pattern})", body)
        if found is None:
            raise ValueError(f"section #{anchor} has no '{parts[0]} NUMBER'")
        return found.group(1)
    if len(parts) not in (2, 3) or (len(parts) == 3 and not parts[2].isdigit()):
        raise ValueError(f"title {title!r}: ROW; COLUMN or ROW; COLUMN; N (N = which number of the cell)")
    row, column, which = parts[0], parts[1], int(parts[2]) if len(parts) == 3 else 1
    first = None
    if "=" in row:
        first, row = (x.strip() for x in row.split("=", 1))
    for header, rows in _tables(body):
        if (first is not None and header[0] != first) or column not in header:
            continue
        keys = [key.strip() for key in row.split(" & ")]  # "model & noise & 10.0": the row's first cells
        cells = next((r for r in rows if r[: len(keys)] == keys), None)
        if cells is None or len(cells) != len(header):
            continue
        numbers = _NUMBER.findall(cells[header.index(column)])
        if not 1 <= which <= len(numbers):
            raise ValueError(f"cell {row!r} / {column!r} holds {len(numbers)} number(s), not a number {which}")
        return numbers[which - 1]
    raise ValueError(f"no table of section #{anchor} has the row {row!r} and the column {column!r}")


def refresh_links(text: str, folder: Path) -> str:
    """``text`` with every linked number written again from the page it links (under
    ``folder``, the document's own folder); a link that names nothing there is an error."""
    pages: dict[str, str] = {}

    def value(match: re.Match[str]) -> str:
        target, anchor, title = match.group(2, 4, 5)
        path = folder / target
        if target not in pages:
            if not path.is_file():
                raise ValueError(f"{path}: linked page not found")
            pages[target] = path.read_text(encoding="utf-8")
        try:
            number = linked_value(pages[target], anchor, title)
        except ValueError as err:
            raise ValueError(f'{path}: link "{title}": {err}') from None
        return f'[{number}]({target}#{anchor} "{title}")'

    return RESULT_LINK.sub(value, text)


_MEASURED = re.compile(r"(?<![\w.])\d+\.\d+(?!\w|\.\d)|(?<![\w.])\d+(?:\.\d+)? ?%")


def unlinked_numbers(text: str) -> list[str]:
    """``line N: ...`` for each decimal or percentage typed by hand: outside linked numbers,
    code, links' targets, HTML comments, generated blocks and a ``## Quoted`` section (numbers
    quoted from the paper and the issues, not ours)."""

    def blank(match: re.Match[str]) -> str:  # a block left out, its lines kept so line numbers hold
        return "\n" * match.group(0).count("\n")

    text = re.sub(r"<!-- begin ([\w-]+) -->.*?<!-- end \1 -->", blank, text, flags=re.S)
    text = re.sub(r"^```.*?^```", blank, text, flags=re.S | re.M)
    text = re.sub(r"^## Quoted.*?(?=^## |\Z)", blank, text, flags=re.S | re.M)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = RESULT_LINK.sub("", text)
    text = re.sub(r"`[^`\n]*`", "", text)
    text = re.sub(r"\]\([^)\s]*\)", "]", text)
    return [f"line {n}: {line.strip()[:100]}" for n, line in enumerate(text.splitlines(), start=1) if _MEASURED.search(line)]

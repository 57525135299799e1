"""OUT/index.html: one page to review a measured folder.

Plain HTML with a little inline JavaScript: no server, no internet, images by relative
path, so the folder can be zipped and mailed. On top the model that measured and the
folder's summary table, one row per recording, sortable by clicking a column header; a
failed recording's row is red, one with few accepted beats (fewer than
MIN_ACCEPTED_BEATS, or under half of its beats) amber. Below, per recording, its report
image and its beats, rejected ones shaded with their reasons. Images load lazily and
sections off screen are not laid out, so a page of 200 recordings opens at once.

A recording's name may hold any character a file name can: every link is URL-encoded
(a "#" or "?" would end the path, a "%" start an escape) and then HTML-escaped, and each
section's anchor is its name made safe for an id, numbered when two names give the same
one ("a b" and "a_b").
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from urllib.parse import quote

from measurement.beats import BEAT_FIELDS, SUMMARY_NUMBERS, WALL_FIELDS
from runtime import files

MIN_ACCEPTED_BEATS = 3  # a scanner reader averages at least three beats

# Column headings; the unit suffix of each field name sets its number format.
HEADINGS = {
    "name": "recording", "status": "status", "n_beats_accepted": "beats accepted",
    "lvid_d_mm": "LVIDd mm", "lvid_s_mm": "LVIDs mm", "heart_rate_bpm": "HR bpm",
    "ef_percent": "EF %", "fs_percent": "FS %", "volume_d_ul": "EDV µL",
    "volume_s_ul": "ESV µL", "sv_ul": "SV µL", "co_ml_min": "CO mL/min",
    "t_ed_s": "ED s", "t_es_s": "ES s", "t_end_s": "next ED s", "quality": "quality",
    "reasons": "rejected for",
    "error": "problem", "ivs_d_mm": "IVSd mm", "ivs_s_mm": "IVSs mm", "lvpw_d_mm": "LVPWd mm",
    "lvpw_s_mm": "LVPWs mm", "lv_mass_mg": "LV mass mg", "lv_mass_corrected_mg": "LV mass corr. mg",
    "rwt": "RWT",
}  # fmt: skip
DECIMALS = {
    "_mm": 2, "_bpm": 0, "_percent": 1, "_ul": 1, "_ml_min": 1, "_s": 3, "quality": 2,
    "_mg": 1, "rwt": 2,
}  # fmt: skip
SUMMARY_COLUMNS = ["name", "status", *SUMMARY_NUMBERS[1:], "error"]  # n_beats joins accepted
BEAT_COLUMNS = ["t_ed_s", *[f for f in BEAT_FIELDS if f != "t_ed_s"], "quality", "reasons"]

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
table.sortable th { cursor: pointer; background: #eef; position: sticky; top: 0; }
th[aria-sort=ascending]::after { content: " ▲"; }
th[aria-sort=descending]::after { content: " ▼"; }
tr.failed { background: #f8d7d7; }
tr.few { background: #fbecc8; }
tr.rejected { background: #f3dede; color: #844; }
section { content-visibility: auto; contain-intrinsic-size: auto 1200px; }
section img { max-width: 100%; border: 1px solid #ccc; }
.legend span { padding: 1px 6px; margin-right: 1em; }
"""

# Sorts a table by the clicked column: numbers by value (data-value), text by text, empty
# cells last either way; a second click reverses the order.
SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((th, column) => {
  th.addEventListener("click", () => {
    const body = th.closest("table").tBodies[0];
    const order = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    th.closest("tr").querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", order === 1 ? "ascending" : "descending");
    const key = (row) => row.cells[column].dataset.value ?? row.cells[column].textContent;
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      if (x === "" || y === "") return (x === "") - (y === "");
      const nx = Number(x), ny = Number(y);
      const by = isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny;
      return order * by;
    });
    body.append(...rows);
  });
});
"""


def write_review_page(
    path: Path,
    rows: list[dict],
    beats: dict[str, list[dict]],
    title: str,
    model: str | None = None,
) -> None:
    """Write the page: `rows` as in summary.csv, `beats` per measured recording as in
    REC_beats.csv, `model` the checkpoint that measured (None: not named). Report images
    are linked when they sit next to the page."""
    failed = sum(row["status"] == "failed" for row in rows)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}: review</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        *([] if model is None else [f'<p class="model">Measured with {escape(model)}.</p>']),
        f"<p>{len(rows)} recording(s), {len(rows) - failed} measured, {failed} failed. "
        "Click a column heading to sort.</p>",
        '<p class="legend"><span class="failed" style="background:#f8d7d7">failed</span>'
        f'<span style="background:#fbecc8">fewer than {MIN_ACCEPTED_BEATS} or under half of '
        'the beats accepted</span><span style="background:#f3dede">rejected beat</span></p>',
    ]
    anchors = unique_anchors([row["name"] for row in rows])
    parts.append(summary_table(rows, anchors))
    for row, anchor in zip(rows, anchors, strict=True):
        parts.append(recording_section(path.parent, row, beats.get(row["name"]), anchor))
    parts.append(f"<script>{SCRIPT}</script></body></html>\n")
    files.write_text(path, "\n".join(parts))


def shown_columns(columns: list[str], rows: list[dict]) -> list[str]:
    """The columns, less the wall measurements when no row has one (a cavity-only model)."""
    return [c for c in columns if c not in WALL_FIELDS or any(r.get(c) for r in rows)]


def summary_table(rows: list[dict], anchors: list[str]) -> str:
    """The sortable table; each row's name links to its section (`anchors`, in row order)."""
    columns = shown_columns(SUMMARY_COLUMNS, rows)
    head = "".join(f"<th>{escape(HEADINGS[c])}</th>" for c in columns)
    body = []
    for row, anchor in zip(rows, anchors, strict=True):
        cells = []
        for column in columns:
            if column == "name":
                name = escape(row["name"])
                cells.append(f'<td class="text"><a href="#{anchor}">{name}</a></td>')
            elif column == "n_beats_accepted":
                accepted, total = row.get("n_beats_accepted"), row.get("n_beats")
                shown = "" if total is None else f"{accepted} / {total}"
                value = "" if accepted is None else accepted
                cells.append(f'<td data-value="{value}">{shown}</td>')
            else:
                cells.append(cell(column, row.get(column)))
        body.append(f'<tr class="{row_mark(row)}">{"".join(cells)}</tr>')
    return (
        f'<table class="sortable" id="summary"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def row_mark(row: dict) -> str:
    """failed, few (too few beats accepted) or nothing."""
    if row["status"] == "failed":
        return "failed"
    accepted, total = row.get("n_beats_accepted") or 0, row.get("n_beats") or 0
    return "few" if accepted < MIN_ACCEPTED_BEATS or 2 * accepted < total else ""


def recording_section(folder: Path, row: dict, beats: list[dict] | None, anchor: str) -> str:
    name = row["name"]
    parts = [f'<section id="{anchor}"><h2>{escape(name)}</h2>']
    if row.get("error"):
        parts.append(f'<p style="color:#a00">{escape(row["error"])}</p>')
    report = f"{name}_report.png"
    if (folder / report).is_file():
        link = link_to(report)
        parts.append(
            f'<a href="{link}"><img src="{link}" loading="lazy" alt="report of {escape(name)}"></a>'
        )
    if beats:
        columns = shown_columns(BEAT_COLUMNS, beats)
        head = "".join(f"<th>{escape(HEADINGS.get(c, c))}</th>" for c in ["beat", *columns])
        body = []
        for number, beat in enumerate(beats, start=1):
            mark = "" if beat["accepted"] == "true" else ' class="rejected"'
            cells = "".join(cell(c, beat.get(c)) for c in columns)
            body.append(f"<tr{mark}><td>{number}</td>{cells}</tr>")
        parts.append(
            f'<table class="beats"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
        )
    parts.append("</section>")
    return "".join(parts)


def cell(column: str, value: object) -> str:
    """A table cell; numbers rounded for reading, with their exact value to sort by."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '<td data-value=""></td>'
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f'<td class="text">{escape(str(value))}</td>'
    decimals = next((d for suffix, d in DECIMALS.items() if column.endswith(suffix)), None)
    shown = f"{value:.{decimals}f}" if decimals is not None else str(value)
    return f'<td data-value="{value!r}">{shown}</td>'


def unique_anchors(names: list[str]) -> list[str]:
    """An id per name, in order: the name with every character but letters, digits, - and
    _ made _, then -2, -3, ... for a name whose id an earlier one already has."""
    taken: set[str] = set()
    anchors = []
    for name in names:
        base = "rec-" + "".join(
            c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in name
        )
        anchor, number = base, 1
        while anchor in taken:
            number += 1
            anchor = f"{base}-{number}"
        taken.add(anchor)
        anchors.append(anchor)
    return anchors


def link_to(file_name: str) -> str:
    """A relative link to a file next to the page, as an HTML attribute value."""
    return escape(quote(file_name, safe=""))


def escape(text: str) -> str:
    return html.escape(text, quote=True)

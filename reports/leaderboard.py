"""The leaderboard: one self-contained static HTML page (no server, no network, assets inlined).

    html = page([("lra_accuracy_paper", table), ...], [("caption", png_bytes), ...], "...")
    Path("reports/out/leaderboard.html").write_text(html)

Every table is sortable (click a header; the first click puts the better end on top: highest
accuracy and speed, lowest memory); rows not measured here (reported ones) sort among
themselves, below ours. Each row's provenance (commits, devices, dates) shows on hover and in
the row's expander. A link may carry a sort: `leaderboard.html#sort=<table id>:<column>`.
"""

from __future__ import annotations

import base64
import html

from reports import tables
from reports.data import slug

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1a1a1a; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2.2rem; }
nav a { margin-right: 1rem; }
section { overflow-x: auto; }  /* a table wider than the page scrolls in its own section */
table { border-collapse: collapse; margin: .6rem 0; font-variant-numeric: tabular-nums; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #ddd; text-align: right;
         vertical-align: top; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; white-space: normal; min-width: 9rem; }
thead th { border-bottom: 2px solid #333; cursor: pointer; user-select: none;
           white-space: nowrap; }
thead th:hover { background: #f0f0f0; }
thead th[aria-sort=ascending]::after { content: " \\25B2"; }
thead th[aria-sort=descending]::after { content: " \\25BC"; }
tbody.reported { color: #555; font-style: italic; }
tbody.reported tr:first-child td { border-top: 2px solid #999; }
tbody.reported-label td { border-top: 2px solid #999; color: #8a3b00; font-weight: bold; }
table.words td, table.words th { white-space: normal; text-align: left; min-width: 6rem; }
table.words td:first-child { min-width: 13rem; } table.words td:nth-child(3) { min-width: 20rem; }
td.best { font-weight: 700; }
td.missing { color: #999; }
tr:hover td { background: #fafae6; }
details summary { cursor: pointer; }
.prov { font-size: .8rem; color: #555; font-style: normal; max-width: 28rem; }
.plugin { font-size: .75rem; color: #0b5394; background: #eaf1fb; border-radius: 3px;
          padding: 0 .3rem; white-space: nowrap; }
sup { color: #a33; }
ol.notes, p.legend { font-size: .85rem; color: #444; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #444; }
"""

SCRIPT = """
function cellKey(td, numeric) {
  if (!numeric) return td.textContent.trim().toLowerCase();
  return td.dataset.value === "" ? null : parseFloat(td.dataset.value);
}
function sortBy(th) {
  const table = th.closest("table"), col = th.cellIndex, numeric = th.dataset.type === "num";
  const first = th.dataset.first || "ascending";
  const dir = th.getAttribute("aria-sort") === first
    ? (first === "ascending" ? "descending" : "ascending") : first;
  for (const h of table.tHead.rows[0].cells) h.removeAttribute("aria-sort");
  th.setAttribute("aria-sort", dir);
  const sign = dir === "ascending" ? 1 : -1;
  for (const body of table.tBodies) {
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = cellKey(a.cells[col], numeric), y = cellKey(b.cells[col], numeric);
      if (x === null || y === null) return (x === null) - (y === null);  // missing: last
      return x < y ? -sign : x > y ? sign : 0;
    });
    for (const r of rows) body.appendChild(r);
  }
}
for (const th of document.querySelectorAll("table.sortable thead th")) {
  th.addEventListener("click", () => sortBy(th));
}
const wanted = /^#sort=([\\w-]+):(\\d+)$/.exec(location.hash);
if (wanted) {
  const table = document.getElementById(wanted[1]);
  if (table) table.tHead.rows[0].cells[+wanted[2]].click();
}
document.body.dataset.ready = wanted ? "sorted" : "yes";
"""


def _cell_html(table: tables.Table, cell: tables.TableCell) -> str:
    value = "" if cell.mean is None else repr(cell.mean)
    marks = "".join(
        f'<sup title="{html.escape(table.notes[i - 1])}">[{i}]</sup>' for i in cell.notes
    )
    missing = cell.mean is None and not cell.extra  # a verdict in words is not missing
    classes = " ".join(c for c in ("best" * cell.best, "missing" * missing) if c)
    cls = f' class="{classes}"' if classes else ""
    return f'<td data-value="{value}"{cls}>{html.escape(tables.format_cell(cell))}{marks}</td>'


def table_html(table: tables.Table, table_id: str) -> str:
    """A sortable <table> with ours and reported rows in separate bodies, notes under it."""
    higher = table.higher_is_better or [True] * len(table.columns)
    label = html.escape(table.row_label)
    head = [f'<th data-type="text" data-first="ascending">{label}</th>']
    kind = "text" if table.wrap else "num"
    for column, up in zip(table.columns, higher, strict=True):
        first = "descending" if up else "ascending"
        head.append(f'<th data-type="{kind}" data-first="{first}">{html.escape(column)}</th>')
    classes = "sortable words" if table.wrap else "sortable"
    out = [
        f'<table class="{classes}" id="{table_id}">',
        f"<caption hidden>{html.escape(table.title)}</caption>",
        f"<thead><tr>{''.join(head)}</tr></thead>",
    ]
    for kind, rows in (("ours", table.ours), ("reported", table.reported)):
        if not rows:
            continue
        if kind == "reported" and table.reported_label:  # its own body: sorting leaves it
            span = len(table.columns) + 1
            out.append(
                f'<tbody class="reported-label"><tr><td colspan="{span}">'
                f"{html.escape(table.reported_label)}</td></tr></tbody>"
            )
        out.append(f'<tbody class="{kind}">')
        for name, cells in rows.items():
            prov = html.escape(table.provenance.get(name, ""))
            source = table.sources.get(name)
            badge = f' <span class="plugin">plugin: {html.escape(source)}</span>' if source else ""
            first = (
                f"<td><details><summary>{html.escape(name)}{badge}</summary>"
                f'<div class="prov">{prov}</div></details></td>'
            )
            out.append(
                f'<tr title="{prov}">{first}{"".join(_cell_html(table, c) for c in cells)}</tr>'
            )
        out.append("</tbody>")
    out.append("</table>")
    if table.notes:
        items = "".join(f"<li>{html.escape(n)}</li>" for n in table.notes)
        out.append(f'<ol class="notes">{items}</ol>')
    out.append(f'<p class="legend">{html.escape(table.legend)}</p>')
    return "\n".join(out)


def page(
    named_tables: list[tuple[str, tables.Table]],
    figures: list[tuple[str, bytes]],
    summary: str,
    missing: list[str] = (),
    beside: dict[str, list[tuple[str, bytes]]] | None = None,
) -> str:
    """The whole page: summary, every (name, table) sortable, every figure inlined as PNG,
    and what could not be built (`missing`) with the reason. `beside[name]`: figures shown
    under table `name` (a section's own figures) instead of with the others at the end.

    A table's element id is `t-<name>` (its section: `t-<name>-section`)."""
    ids = [f"t-{slug(name)}" for name, _ in named_tables]
    nav = "".join(
        f'<a href="#{i}-section">{html.escape(name)}</a>'
        for i, (name, _) in zip(ids, named_tables, strict=True)
    )
    body = [
        "<h1>Efficient attention: leaderboard</h1>",
        f"<p>{html.escape(summary)} Hover a row, or open its name, for where its numbers come "
        "from (commit, device, date). Click a column header to sort.</p>",
        f"<nav>{nav}<a href='#figures'>Figures</a></nav>",
    ]
    if missing:
        items = "".join(f"<li>{html.escape(m)}</li>" for m in missing)
        body.append(f'<p>Not on this page yet:</p><ul class="missing">{items}</ul>')

    def figure(caption: str, png: bytes) -> str:
        data = base64.b64encode(png).decode("ascii")
        return (
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    for (name, table), table_id in zip(named_tables, ids, strict=True):
        body.append(f'<section id="{table_id}-section"><h2>{html.escape(table.title)}</h2>')
        body.append(table_html(table, table_id))
        body += [figure(caption, png) for caption, png in (beside or {}).get(name, [])]
        body.append("</section>")
    body.append('<section id="figures"><h2>Figures</h2>')
    body += [figure(caption, png) for caption, png in figures]
    if not figures:
        body.append("<p>No figures: the results hold no sweep, curve or efficiency rows.</p>")
    body.append("</section>")
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>Efficient attention: leaderboard</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )

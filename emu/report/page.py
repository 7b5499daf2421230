"""The building blocks of a report page: escaping, tables, images, the document.

Every page :mod:`emu.report.html` writes is one HTML file that needs no other
file and no JavaScript: the style sheet is inline and images are embedded as
base64 PNG.
"""

from __future__ import annotations

import base64
import html
import json
import re

from emu.report.schema import shorten

#: The first bytes of every PNG file.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The longest question a page shows (a longer one is shortened in the middle).
QUESTION_MAX = 600

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; overflow-wrap: anywhere; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.8em; }
p.question { font-size: 1.1em; font-style: italic; }
p.meta, p.note { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.88em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.55em; vertical-align: top; }
th { background: #f3f3f3; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.overridden td { background: #fff6d5; }
td.src { font-size: 0.85em; color: #444; max-width: 34em; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.82em; }
pre.wrap { white-space: pre-wrap; overflow-wrap: anywhere; }
details summary { cursor: pointer; color: #444; }
ul.reading li { margin: 0.25em 0; }
dl.glossary dt { font-weight: bold; margin-top: 0.6em; }
dl.glossary dd { margin-left: 1.5em; }
dl.glossary span.src, a.term { color: #444; }
"""


def esc(x) -> str:
    """``x`` as HTML text."""
    return html.escape(str(x), quote=True)


def table(header: list, rows: list, numeric_from: int = 1, row_classes=None,
          caption=None) -> str:
    """An HTML table; cells from column ``numeric_from`` on are right-aligned.
    A cell given as ``(text, css class)`` gets that class instead."""
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead>")
    out.append("<tbody>")
    for n, row in enumerate(rows):
        cls = f' class="{row_classes[n]}"' if row_classes and row_classes[n] else ""
        cells = []
        for i, c in enumerate(row):
            if isinstance(c, tuple):             # (text, css class)
                cells.append(f'<td class="{c[1]}">{esc(c[0])}</td>')
            elif i >= numeric_from:
                cells.append(f'<td class="n">{esc(c)}</td>')
            else:
                cells.append(f"<td>{esc(c)}</td>")
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


#: The line under a text table's header: a run of dashes per column, two spaces apart.
_RULE = re.compile(r"\A-+(  -+)*\Z")


def text_tables(text: str) -> str:
    """Text made of paragraphs and text tables (a header, a line of dashes per
    column, the rows, as :func:`emu.study.lib.table` and the text reports lay
    them out) as HTML: each table an HTML table, each other line a paragraph.
    The dashes give each column's span, so a cell with spaces stays whole."""
    lines = text.rstrip("\n").split("\n")
    out: list = []
    i = 0
    while i < len(lines):
        rule = lines[i + 1].rstrip() if i + 1 < len(lines) else ""
        if lines[i].strip() and _RULE.match(rule):
            spans = [m.span() for m in re.finditer(r"-+", rule)]
            spans[-1] = (spans[-1][0], None)          # the last column takes the rest
            gaps = [(b, c) for (_, b), (c, _) in zip(spans, spans[1:])]
            block, i = [lines[i]], i + 2
            # a row has blanks between the columns; a note under the table has not
            while i < len(lines) and lines[i].strip() \
                    and all(not lines[i][b:c].strip() for b, c in gaps):
                block.append(lines[i])
                i += 1
            cells = [[line[a:b].strip() for a, b in spans] for line in block]
            out.append(table(cells[0], cells[1:]))
            continue
        if lines[i].strip():
            out.append(f"<p>{esc(lines[i].strip())}</p>")
        i += 1
    return "\n".join(out)


def compact_json(value, indent: str = "") -> str:
    """``value`` as JSON, an object's keys one a line, a list of plain values on
    one line (a curve of hundreds of numbers is one line, not hundreds)."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k))}: {compact_json(v, inner)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(inner + compact_json(v, inner) for v in value) + \
            f"\n{indent}]"
    return json.dumps(value, separators=(", ", ": "))


def collapsed(summary: str, body: str) -> str:
    """``body`` (HTML) folded under a one-line ``summary`` the reader opens."""
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"


def figure(png_path: str, title: str, caption: str) -> str:
    """A figure: the PNG at ``png_path`` embedded, its title and caption."""
    with open(png_path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{esc(title)}">'
            f"<figcaption><strong>{esc(title)}.</strong> {esc(caption)}</figcaption></figure>")


def document(title: str, body: list) -> str:
    """The whole page: ``body``'s non-empty parts under ``title``."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(b for b in body if b) + "\n</body>\n</html>\n")


def heading(cfg: dict, title: str, full: str = "") -> list:
    """A page's title and, if ``cfg`` has one, the scenario's question; a title
    that was shortened shows its ``full`` text on hover."""
    question = cfg.get("question") or ""
    hover = f' title="{esc(full)}"' if full and full != title else ""
    return [f"<h1{hover}>{esc(title)}</h1>",
            f'<p class="question">{esc(shorten(question, QUESTION_MAX))}</p>' if question else ""]

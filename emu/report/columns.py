"""Text fitted to a terminal's columns: the tables and sentences ``emu`` prints.

Every width here is in display columns, not characters: a Chinese or
Japanese character or an emoji takes two, a combining mark none, so that a
label in any script keeps its table aligned.  ``width=None`` everywhere means
"as wide as the text is" (``--wide``).

This module imports nothing of emu: ``emu tlb`` uses it without the
machine's start-up cost.
"""

from __future__ import annotations

from typing import Optional, Sequence
from unicodedata import combining, east_asian_width

#: The fewest columns a wrapped column is narrowed to (its cells wrap within it).
WRAP_MIN = 20


def columns(text: str) -> int:
    """The columns ``text`` takes on a terminal."""
    return sum(0 if combining(c) else 2 if east_asian_width(c) in "WF" else 1 for c in text)


def _head(text: str, limit: int) -> str:
    """The longest start of ``text`` within ``limit`` columns (at least one
    character of a non-empty text, so that cutting always moves on)."""
    used = 0
    for i, c in enumerate(text):
        used += columns(c)
        if used > limit:
            return text[:max(i, 1)]
    return text


def clip(text: str, limit: int, mark: str = "...") -> str:
    """``text`` shortened to ``limit`` columns, ``mark`` in its middle (a
    terminal's ``...``; a report's ``…``, :func:`emu.report.schema.shorten`)."""
    if columns(text) <= limit:
        return text
    room = limit - columns(mark)
    tail = room // 2
    return _head(text, room - tail) + mark + _head(text[::-1], tail)[::-1]


def fold(text: str, width: int, cut: bool = True, indent: str = "") -> list:
    """``text``'s words on lines of at most ``width`` columns, the lines after
    the first behind ``indent``; a word longer than a line is cut into pieces
    if ``cut``, else left whole on its line."""
    out, line, room = [], "", width
    for word in text.split():
        if line and columns(line) + 1 + columns(word) <= room:
            line += " " + word
            continue
        if line:
            out.append(line)
            room = width - columns(indent)
        while cut and columns(word) > room:
            piece = _head(word, room)
            out.append(piece)
            room, word = width - columns(indent), word[len(piece):]
        line = word
    out.append(line)
    return out[:1] + [indent + rest for rest in out[1:]]


def wrap(line: str, width: Optional[int]) -> str:
    """A line of prose wrapped at ``width`` columns (None: as it is), its
    indent kept and the lines after the first indented two more.  A word
    longer than a line (a path) is left whole."""
    if width is None or columns(line) <= width:
        return line
    lead = line[:len(line) - len(line.lstrip(" "))]
    return "\n".join(lead + part for part in fold(line.strip(), width - len(lead), False, "  "))


def fit_lines(parts: Sequence[str], width: Optional[int]) -> str:
    """``parts`` as lines: each part of one line is prose, wrapped at
    ``width`` (see :func:`wrap`); a part of several lines (a table, already
    fitted) is kept as it is, never filled like a paragraph."""
    return "\n".join(part if "\n" in part else wrap(part, width) for part in parts)


def _pad(cell: str, width: int, right: bool) -> str:
    space = " " * (width - columns(cell))
    return space + cell if right else cell + space


def table(header: Optional[list], rows: list, width: Optional[int] = None, keys: int = 1,
          text: Sequence[int] = ()) -> str:
    """A text table (``header`` None: no header, no rule): its first ``keys``
    columns and its columns of words ``text`` (units, descriptions,
    sources) left-aligned, the others right-aligned.

    Given a ``width``, a table wider than that is fitted: the cells of the
    first ``keys`` columns that would leave less than 24 columns for the
    others are shortened in the middle, the widest column's first; the
    cells of the ``text`` columns go on continuation lines within the room
    the others leave, down to :data:`WRAP_MIN` columns; then the columns that still do not fit go
    into further blocks, each repeating the first ``keys`` columns.  A
    column wider than the terminal on its own still overflows it.
    """
    cells = [[str(c) for c in r] for r in ([header] if header else []) + list(rows)]
    if not cells:
        return ""
    if width is not None:
        cap = _key_cap([max(columns(r[i]) for r in cells) for i in range(keys)],
                       max(24, width - 24) - 2 * (keys - 1))
        cells = [[clip(c, cap) for c in r[:keys]] + r[keys:] for r in cells]
    widths = [max(columns(r[i]) for r in cells) for i in range(len(cells[0]))]
    lead = list(range(keys))
    if width is None:
        return _block(cells, widths, lead + list(range(keys, len(widths))), keys, header,
                      text)
    need = [min(w, WRAP_MIN) if i in text else w for i, w in enumerate(widths)]
    blocks, cols, used = [], [], sum(widths[:keys]) + 2 * (keys - 1)
    for i in range(keys, len(widths)):
        if cols and used + 2 + need[i] > width:
            blocks.append(cols)
            cols, used = [], sum(widths[:keys]) + 2 * (keys - 1)
        cols.append(i)
        used += 2 + need[i]
    blocks.append(cols)
    out = []
    for cols in blocks:
        fitted = list(widths)
        texts = [i for i in cols if i in text]
        room = width - sum(widths[i] + 2 for i in lead + cols if i not in text)
        for i in texts:
            fitted[i] = min(widths[i], max(WRAP_MIN, (room - 2 * (len(texts) - 1)) // len(texts)))
        out.append(_block(cells, fitted, lead + cols, keys, header, text))
    return "\n\n".join(out)


def _key_cap(widths: list, room: int) -> int:
    """The widest a key column may be so that the key columns, ``widths``
    wide, fit in ``room`` columns together: the widest are shortened first,
    each to at least 5 columns."""
    cap = max(widths)
    while cap > 5 and sum(min(w, cap) for w in widths) > room:
        cap -= 1
    return cap


def _block(cells: list, widths: list, cols: list, keys: int, header, text) -> str:
    """The lines of ``cols``, a cell of a ``text`` column folded to its width."""
    out = []
    for n, r in enumerate(cells):
        parts = [fold(r[i], widths[i]) if i in text else [r[i]] for i in cols]
        for k in range(max(map(len, parts))):
            out.append("  ".join(_pad(p[k] if k < len(p) else "", widths[i],
                                      i >= keys and i not in text)
                                 for i, p in zip(cols, parts)).rstrip())
        if n == 0 and header:
            out.append("  ".join("-" * widths[i] for i in cols))
    return "\n".join(out)

"""Our own Markdown (as the bundled .md templates write it) as HTML for an LMS, maths as \\( \\) for MathJax.

Only the subset the templates use is understood: headings, paragraphs, numbered and bulleted lists,
pipe tables, ``**bold**``, ``*italic*``, inline ``$...$`` and display ``$$...$$`` maths. Everything is
HTML-escaped, maths included, so the output is well-formed whatever the text holds. A general Markdown
library would mangle the maths (``w_1 ... w_2`` reads as emphasis) and is not needed for this subset.
"""

from __future__ import annotations

import html
import re

_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.S)
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EM = re.compile(r"(?<![*\w])\*(?!\s)(.+?)(?<!\s)\*(?![*\w])")
_CODE = re.compile(r"`([^`]+)`")
_NUMBERED = re.compile(r"^\s*\d+\.\s+")
_BULLET = re.compile(r"^\s*[-*]\s+")


def inline(text: str) -> str:
    """One line of text: maths to \\( \\) or \\[ \\], the rest escaped with bold, italic and code.

    Maths is set aside first (as numbered placeholders), so that bold around maths (``**Model $f_1$:**``)
    is seen as one span and nothing inside the maths is taken for emphasis.
    """
    maths: list[str] = []

    def hold(match: re.Match) -> str:
        if match.group(1) is not None:
            maths.append(r"\[" + html.escape(match.group(1).strip(), quote=False) + r"\]")
        else:
            maths.append(r"\(" + html.escape(match.group(2), quote=False) + r"\)")
        return f"\x00{len(maths) - 1}\x00"

    words = html.escape(_MATH.sub(hold, text.replace("\x00", "")), quote=False)
    words = _CODE.sub(r"<code>\1</code>", words)
    words = _STRONG.sub(r"<strong>\1</strong>", words)
    words = _EM.sub(r"<em>\1</em>", words)
    return re.sub("\x00([0-9]+)\x00", lambda m: maths[int(m.group(1))], words)


def _table(lines: list[str]) -> str:
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    body = [r for r in rows if not all(re.fullmatch(r":?-{2,}:?", c) for c in r if c)]
    if not body:  # only separator lines (or bare pipes): nothing to show
        return ""
    head, rest = body[0], body[1:]
    out = ["<table>", "<tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in rest]
    out.append("</table>")
    return "\n".join(out)


def _list(lines: list[str], numbered: bool) -> str:
    marker = _NUMBERED if numbered else _BULLET
    items: list[str] = []
    for line in lines:
        if marker.match(line):
            items.append(marker.sub("", line, count=1))
        elif items:
            items[-1] += " " + line.strip()
    tag = "ol" if numbered else "ul"
    return f"<{tag}>" + "".join(f"<li>{inline(item)}</li>" for item in items) + f"</{tag}>"


def to_html(markdown: str) -> str:
    """HTML for Markdown in the subset the bundled templates use."""
    blocks = re.split(r"\n\s*\n", markdown.strip())
    out = []
    for block in blocks:
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        first = lines[0].lstrip()
        if first.startswith("#"):
            level = min(len(first) - len(first.lstrip("#")) + 2, 6)
            out.append(f"<h{level}>{inline(first.lstrip('#').strip())}</h{level}>")
            if len(lines) > 1:
                out.append(f"<p>{inline(' '.join(l.strip() for l in lines[1:]))}</p>")
        elif all(line.lstrip().startswith("|") for line in lines):
            if table := _table(lines):
                out.append(table)
        elif _NUMBERED.match(lines[0]):
            out.append(_list(lines, numbered=True))
        elif _BULLET.match(lines[0]):
            out.append(_list(lines, numbered=False))
        elif first.startswith("$$"):
            out.append(f"<p>{inline(' '.join(lines))}</p>")
        else:
            out.append(f"<p>{inline(' '.join(line.strip() for line in lines))}</p>")
    return "\n".join(out)

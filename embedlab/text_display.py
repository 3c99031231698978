"""Document text made safe to show: snippets cut to length, HTML-escaped hover text for Plotly (which renders a
subset of HTML in hover labels and legends), markdown-escaped text for Streamlit, and FTS5 snippets whose
\\x02…\\x03 marks become bold markdown or « » in dataframes."""
from __future__ import annotations

import html
import re
from typing import Any, Sequence

SNIPPET_CHARS = 100
MARK_OPEN, MARK_CLOSE = "\x02", "\x03"  # what storage.corpora.keyword_search puts around matched words

_SPACE = re.compile(r"\s+")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&=\"'^%@])")


def short_text(text: str | None, limit: int = SNIPPET_CHARS) -> str:
    """Whitespace collapsed and cut to `limit` characters with an ellipsis (not escaped: for dataframes)."""
    flat = _SPACE.sub(" ", text or "").strip()
    return flat if len(flat) <= limit else flat[:max(1, limit - 1)].rstrip() + "…"


def snippet(text: str | None, limit: int = SNIPPET_CHARS) -> str:
    """A hover snippet: cut first, then HTML-escaped (so no entity is cut in half)."""
    return html.escape(short_text(text, limit), quote=True)


def hover_texts(texts: Sequence[str], labels: Sequence[Any] | None = None, *,
                limit: int = SNIPPET_CHARS) -> list[str]:
    """Per-document hover text: the escaped snippet, after the escaped label when `labels` are given (pass
    them when the map is not coloured by label; otherwise the trace name already says it). The only raw
    HTML is ours."""
    if labels is None:
        return [snippet(t, limit) for t in texts]
    return [(f"<i>{html.escape(str(lab), quote=True)}</i><br>" if lab is not None else "") + snippet(t, limit)
            for t, lab in zip(texts, labels)]


def escape_markdown(text: str) -> str:
    """Text that Streamlit's markdown shows literally: every markdown-significant character backslash-escaped
    (links, images, LaTeX `$`, `:colour[...]` directives, HTML), newlines flattened."""
    return _MD_SPECIAL.sub(r"\\\1", _SPACE.sub(" ", text))


def marked_to_markdown(snippet_text: str) -> str:
    """An FTS5 snippet with \\x02…\\x03 marks as markdown: marked words bold, everything escaped."""
    out, bold = [], False
    for part in re.split(r"([\x02\x03])", snippet_text or ""):
        if part == MARK_OPEN:
            bold = True
        elif part == MARK_CLOSE:
            bold = False
        elif part:
            escaped = escape_markdown(part)
            out.append(f"**{escaped.strip()}**" if bold and escaped.strip() else escaped)
    return "".join(out)


def marked_to_plain(snippet_text: str) -> str:
    """An FTS5 snippet with its marks shown as « » (for dataframes, which show text literally)."""
    return _SPACE.sub(" ", (snippet_text or "").replace(MARK_OPEN, "«").replace(MARK_CLOSE, "»")).strip()

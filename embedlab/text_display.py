"""Text from data (names, labels, ids, document texts, run parameters, notes, messages that echo them) made inert
for the two places that would read it as markup. The only two escaping functions of EmbedLab:

- `display_text`: for Streamlit, whose Markdown (st.markdown, st.caption, alerts, toasts, metric, expander, tab,
  button, radio and segmented-control labels, widget help) renders links, images, `$…$` LaTeX, `:red[…]`
  directives and `:material/…:` icons. Every ASCII punctuation character but quotes is backslash-escaped
  (CommonMark shows an escaped character literally), whitespace is flattened to single spaces (a newline cannot
  start a heading, list or table), and an invisible word joiner breaks the patterns that Streamlit replaces after
  escapes are resolved (`:material_x:` icons, `:streamlit:`, emoji, bare-URL autolinks).
- `html_text`: for HTML (the offline report) and Plotly's text (trace names, legends, hover text, titles, tick
  labels), which renders a subset of HTML tags and decodes entities. `&`, `<` and `>` are escaped; quotes become
  the numeric entities `&#x22;` and `&#x27;`, which Plotly decodes (it knows only a few named entities, so
  `&quot;` would show literally) and which keep the text safe inside an HTML attribute too; `%` becomes `&#x25;`,
  so text put into a hover template cannot name a `%{variable}`.

Dataframes, selectbox and multiselect options, `st.text`, `st.code` and `st.json` show text literally: they take
the plain text (`short_text`), never an escaped one. FTS5 snippets mark matched words with \\x02…\\x03; they become
bold Markdown (`marked_to_markdown`) or « » in dataframes (`marked_to_plain`)."""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

SNIPPET_CHARS = 100
MARK_OPEN, MARK_CLOSE = "\x02", "\x03"  # what storage.corpora.keyword_search puts around matched words

_SPACE = re.compile(r"\s+")
# Every ASCII punctuation character but the quotes, which mean nothing to Markdown outside the link titles and
# directive attributes whose brackets are escaped.
_MARKDOWN_PUNCTUATION = re.compile(r"([!#-&(-/:-@\[-`{-~])")
# Where Streamlit's Markdown replaces text after escapes are resolved (a backslash cannot stop it): `:name:` icons,
# emoji and the Streamlit logo, and GFM's autolinks of `scheme://`, `www.` and `user@host.domain`. An invisible
# word joiner after the first colon, inside `www.` or after the `@` breaks each pattern and shows nothing.
_TEXT_LEVEL = re.compile(r"(?<=:)(?=//|[\w+-]+:)|(?<=www)(?=\.)|(?<=@)(?=[-\w]+\.[-\w])", re.IGNORECASE)
WORD_JOINER = "\u2060"
_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#x22;", "'": "&#x27;", "%": "&#x25;"})


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def display_text(value: Any, *, keep_lines: bool = False) -> str:
    """`value` as Streamlit Markdown that shows it literally, on one line (None shows as nothing); with
    `keep_lines`, each line of it on a line of its own (Markdown hard breaks; blank lines separate paragraphs)."""
    if keep_lines:
        return "  \n".join(display_text(line) for line in _text(value).splitlines())
    flat = _TEXT_LEVEL.sub(WORD_JOINER, _SPACE.sub(" ", _text(value)))
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", flat)


def html_text(value: Any) -> str:
    """`value` as HTML or Plotly text that shows it literally (None shows as nothing)."""
    return _text(value).translate(_HTML)


def short_text(text: str | None, limit: int = SNIPPET_CHARS) -> str:
    """Whitespace collapsed and cut to `limit` characters with an ellipsis (not escaped: for dataframes)."""
    flat = _SPACE.sub(" ", text or "").strip()
    return flat if len(flat) <= limit else flat[:max(1, limit - 1)].rstrip() + "…"


def snippet(text: str | None, limit: int = SNIPPET_CHARS) -> str:
    """A hover snippet: cut first, then escaped with `html_text` (so no entity is cut in half)."""
    return html_text(short_text(text, limit))


def hover_texts(texts: Sequence[str], labels: Sequence[Any] | None = None, *,
                limit: int = SNIPPET_CHARS) -> list[str]:
    """Per-document hover text: the escaped snippet, after the escaped label when `labels` are given (pass
    them when the map is not coloured by label; otherwise the trace name already says it). The only raw
    HTML is ours."""
    if labels is None:
        return [snippet(t, limit) for t in texts]
    return [(f"<i>{html_text(lab)}</i><br>" if lab is not None else "") + snippet(t, limit)
            for t, lab in zip(texts, labels)]


def marked_to_markdown(snippet_text: str) -> str:
    """An FTS5 snippet with \\x02…\\x03 marks as Markdown: marked words bold, everything else `display_text`."""
    out, bold = [], False
    for part in re.split(r"([\x02\x03])", snippet_text or ""):
        if part == MARK_OPEN:
            bold = True
        elif part == MARK_CLOSE:
            bold = False
        elif part:
            escaped = display_text(part)
            out.append(f"**{escaped.strip()}**" if bold and escaped.strip() else escaped)
    return "".join(out)


def marked_to_plain(snippet_text: str) -> str:
    """An FTS5 snippet with its marks shown as « » (for dataframes, which show text literally)."""
    return _SPACE.sub(" ", (snippet_text or "").replace(MARK_OPEN, "«").replace(MARK_CLOSE, "»")).strip()

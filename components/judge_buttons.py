"""Judge in place: wherever documents are listed against a query, each can be marked relevant (2), partly relevant
(1) or not relevant (0) in one click, and un-marked by clicking its grade again. A list may also own the page's
keyboard: a bar with a cursor over the list, `J`/`K` to move, `2`/`1`/`0` to grade the document under the cursor (the
cursor then moves on) and `X` to clear its grade (Streamlit's button shortcuts; one list of a page owns them at a
time, the one judged last, so two lists never answer the same key).

A list's judgments are read fresh on every draw (one indexed query), so a list drawn again shows its grades and who
gave them. Judging without a judge name asks for one first (`components.judge_name`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import streamlit as st

from components.judge_name import ask_before_judging, current_judge
from components.state import get_workspace
from embedlab.errors import UserError
from embedlab.judgments import NOT_RELEVANT, PARTLY, RELEVANT, Query
from embedlab.text_display import display_text, short_text

GRADES = (RELEVANT, PARTLY, NOT_RELEVANT)
BUTTON_LABELS = {RELEVANT: "Relevant", PARTLY: "Partly", NOT_RELEVANT: "Not"}
GRADE_WORDS = {3: "highly relevant", RELEVANT: "relevant", PARTLY: "partly", NOT_RELEVANT: "not relevant"}
GRADE_MARKS = {3: "✓✓", RELEVANT: "✓", PARTLY: "½", NOT_RELEVANT: "✗"}
GRADE_HELP = {RELEVANT: "Relevant to the query (grade 2)", PARTLY: "Partly relevant (grade 1)",
              NOT_RELEVANT: "Not relevant (grade 0)"}
KEYS = {"next": "J", "previous": "K", RELEVANT: "2", PARTLY: "1", NOT_RELEVANT: "0", "clear": "X"}
KEYS_OWNER_KEY = "judge_keys_owner"     # the list (its key) whose keyboard bar is drawn
CURSOR_BADGE = "⌨ the keys grade this one"


@dataclass(frozen=True)
class JudgeTarget:
    """Where a listed document's judgment goes: the session, the corpus the documents are rows of, the query."""
    session_id: int
    corpus_id: int
    query: Query

    @property
    def name(self) -> str:
        return f"{self.session_id}:{self.corpus_id}:{self.query.key}"


@dataclass(frozen=True)
class JudgeScope:
    """A session's corpus whose lists can be judged (the query comes with each list)."""
    session_id: int
    corpus_id: int

    def target(self, query: Query) -> JudgeTarget:
        return JudgeTarget(self.session_id, self.corpus_id, query)


@dataclass(frozen=True)
class JudgeItem:
    """One row of a judge list: the document (a row of the target's corpus), a head line (Markdown, already escaped)
    and its text (plain)."""
    target: JudgeTarget
    doc: int
    head: str
    text: str


class Grades:
    """Every judge's grades of the listed (query, document) pairs, read once per draw."""

    def __init__(self, by_pair: Mapping[tuple[str, int], Mapping[str, int]]) -> None:
        self.by_pair = {k: dict(v) for k, v in by_pair.items()}

    @classmethod
    def load(cls, session_id: int, corpus_id: int, docs: Sequence[int]) -> Grades:
        """The grades of these documents of a corpus, for every query and judge."""
        if not docs:
            return cls({})
        rows = get_workspace().judgments(session_id, corpus_id, doc_idxs=sorted({int(d) for d in docs}))
        by_pair: dict[tuple[str, int], dict[str, int]] = {}
        for r in rows:
            by_pair.setdefault((r.query.key, int(r.doc_idx)), {})[r.judge] = int(r.grade)
        return cls(by_pair)

    def of(self, target: JudgeTarget, doc: int) -> dict[str, int]:
        """{judge: grade} of one pair."""
        return self.by_pair.get((target.query.key, int(doc)), {})

    def mine(self, target: JudgeTarget, doc: int) -> int | None:
        judge = current_judge()
        return self.of(target, doc).get(judge) if judge else None


def grades_for(items: Sequence[JudgeItem]) -> Grades:
    """The grades of a list's pairs (items of one corpus)."""
    if not items:
        return Grades({})
    first = items[0].target
    return Grades.load(first.session_id, first.corpus_id, [i.doc for i in items])


def describe_grades(grades: Mapping[str, int], judge: str | None) -> str:
    """"✓ relevant (you) · ½ partly (bob)" — every judge's grade of a pair, the user's first; "" when unjudged."""
    order = sorted(grades, key=lambda j: (j != judge, j))
    return " · ".join(f"{GRADE_MARKS.get(grades[j], '?')} {GRADE_WORDS.get(grades[j], str(grades[j]))} "
                      f"({'you' if j == judge else j})" for j in order)


# --- judging ----------------------------------------------------------------------------------------------------


def _store(target: JudgeTarget, doc: int, grade: int | None, toggle: bool) -> None:
    """Record the judge's grade of a pair (None: clear it; with `toggle`, the grade it already has clears it)."""
    ws, judge = get_workspace(), current_judge()
    if not judge:
        return
    try:
        current = ws.judgments(target.session_id, target.corpus_id, query=target.query, doc_idxs=[doc],
                               judges=[judge])
        if grade is None or (toggle and current and int(current[0].grade) == grade):
            ws.unjudge(target.session_id, target.corpus_id, target.query, doc, judge)
        else:
            ws.judge(target.session_id, target.corpus_id, target.query, doc, grade, judge)
    except UserError as exc:
        st.toast(display_text(exc), icon=":material/warning:")


def judge(target: JudgeTarget, doc: int, grade: int | None, *, toggle: bool = True) -> None:
    """A click on a grade (None: clear): stored now, or once a judge's name is given."""
    ask_before_judging(_store, target, int(doc), grade, toggle)


def judge_buttons(target: JudgeTarget, doc: int, grades: Grades, *, key: str,
                  on_click: Callable[[], None] | None = None, cursor: bool = False) -> None:
    """Relevant / Partly / Not for one document: the judge's own grade is the primary button, and a click on it
    un-marks the document; under them, who judged it how. With `cursor`, a badge says the keys grade this one."""
    mine = grades.mine(target, doc)
    if cursor:
        st.badge(CURSOR_BADGE, color="blue")

    def clicked(grade: int) -> None:
        if on_click is not None:
            on_click()
        judge(target, doc, grade)

    cols = st.columns(len(GRADES), gap="small")
    for col, grade in zip(cols, GRADES):
        col.button(BUTTON_LABELS[grade], key=f"{key}-g{grade}", on_click=clicked, args=(grade,), width="stretch",
                   type="primary" if mine == grade else "secondary",
                   help=GRADE_HELP[grade] + (" — click again to un-mark" if mine == grade else ""))
    said = describe_grades(grades.of(target, doc), current_judge())
    if said:
        st.caption("Judged: " + display_text(said))


# --- the keyboard -------------------------------------------------------------------------------------------------


def owns_keys(list_key: str, *, default: bool = False) -> bool:
    """Whether list `list_key` draws the keyboard bar: it took the keys last, or nobody did and it is the default."""
    owner = st.session_state.get(KEYS_OWNER_KEY)
    return owner == list_key or (owner is None and default)


def take_keys(list_key: str) -> None:
    st.session_state[KEYS_OWNER_KEY] = list_key


def _cursor_key(list_key: str) -> str:
    return f"judge_cursor_{list_key}"


def point_cursor(list_key: str, doc: int) -> None:
    """Put list `list_key`'s keyboard cursor on document `doc` when the list is next drawn (and give it the keys)."""
    st.session_state[f"{_cursor_key(list_key)}_wanted"] = int(doc)
    take_keys(list_key)


def cursor_of(list_key: str, items: Sequence[JudgeItem]) -> int:
    """The keyboard cursor's position in the list (0 for a new list: its first item)."""
    wanted = st.session_state.pop(f"{_cursor_key(list_key)}_wanted", None)
    docs = [i.doc for i in items]
    if wanted in docs:
        set_cursor(list_key, items, docs.index(wanted))
    kept = st.session_state.get(_cursor_key(list_key))
    names = _names(items)
    if not kept or kept[0] != names or not items:
        return 0
    return min(max(int(kept[1]), 0), len(items) - 1)


def _names(items: Sequence[JudgeItem]) -> tuple:
    return tuple((i.target.name, i.doc) for i in items)


def set_cursor(list_key: str, items: Sequence[JudgeItem], position: int) -> None:
    st.session_state[_cursor_key(list_key)] = (_names(items), int(position))


def keyboard_bar(items: Sequence[JudgeItem], grades: Grades, *, key: str, what: str = "Result") -> int:
    """The keyboard's bar over a list: the document under the cursor (its head and text), and the buttons whose
    shortcuts judge it (2, 1, 0, X) and move the cursor (J, K); a grade moves the cursor on. Returns the cursor."""
    pos = cursor_of(key, items)
    item = items[pos]
    mine = grades.mine(item.target, item.doc)

    def move(by: int) -> None:
        set_cursor(key, items, min(max(cursor_of(key, items) + by, 0), len(items) - 1))

    def graded(grade: int | None) -> None:
        now = cursor_of(key, items)
        judge(items[now].target, items[now].doc, grade, toggle=False)
        if grade is not None:
            set_cursor(key, items, min(now + 1, len(items) - 1))

    with st.container(border=True, key=f"{key}-keys"):
        st.markdown(f"⌨ **{what} {pos + 1} of {len(items)}** · {item.head}"
                    + (f" · yours: **{GRADE_WORDS[mine]}**" if mine is not None else " · not judged by you"))
        st.caption(display_text(short_text(item.text, 220)))
        grade_cols = st.columns([1.45, 1, 1], gap="small")
        for col, grade in zip(grade_cols, GRADES):
            col.button(BUTTON_LABELS[grade], key=f"{key}-key-{grade}", shortcut=KEYS[grade], on_click=graded,
                       args=(grade,), type="primary" if mine == grade else "secondary", width="stretch",
                       help=f"{GRADE_HELP[grade]} ({KEYS[grade]}), then the next one")
        move_cols = st.columns([1.45, 1, 1], gap="small")
        move_cols[0].button("Previous", key=f"{key}-key-prev", shortcut=KEYS["previous"], on_click=move, args=(-1,),
                            disabled=pos == 0, help="The previous one (K)", width="stretch")
        move_cols[1].button("Next", key=f"{key}-key-next", shortcut=KEYS["next"], on_click=move, args=(1,),
                            disabled=pos == len(items) - 1, help="The next one (J)", width="stretch")
        move_cols[2].button("Clear", key=f"{key}-key-clear", shortcut=KEYS["clear"], on_click=graded, args=(None,),
                            disabled=mine is None, help="Remove your grade (X)", width="stretch")
    return pos


def keys_here_button(key: str, *, where=None) -> None:
    """A small button that gives this list the keyboard (when another list has it)."""
    (where or st).button("⌨ Judge with the keyboard here", key=f"{key}-take-keys", on_click=take_keys, args=(key,),
                         type="tertiary", help="J/K move, 2/1/0 grade, X clears (one list of the page at a time)")


# --- a list of results ------------------------------------------------------------------------------------------


def judge_list(items: Sequence[JudgeItem], *, key: str, what: str = "Result", keys_default: bool = False,
               on_focus: Callable[[int], None] | None = None, page_size: int = 10) -> None:
    """Results to judge, one row each (head, text, Relevant / Partly / Not), `page_size` at a time, with the
    keyboard bar when this list owns the keys (`keys_default`: when no list has taken them yet). `on_focus(doc)`
    adds a Focus button per row."""
    if not items:
        st.caption("Nothing to judge.")
        return
    grades = grades_for(items)
    if owns_keys(key, default=keys_default):
        pos = keyboard_bar(items, grades, key=key, what=what)
    else:
        pos = None
        keys_here_button(key)
    pages = max(1, -(-len(items) // page_size))
    page = 0
    if pages > 1:
        page_key = f"{key}-page"
        if pos is not None and st.session_state.get(f"{key}-page-follow") != pos:
            st.session_state[f"{key}-page-follow"] = pos       # the page follows the keyboard's cursor
            st.session_state[page_key] = pos // page_size + 1
        if st.session_state.get(page_key, 1) > pages:          # the list got shorter
            st.session_state[page_key] = pages
        page = int(st.number_input(f"Page (of {pages})", 1, pages, key=page_key, step=1)) - 1
    for n in range(page * page_size, min(len(items), (page + 1) * page_size)):
        item = items[n]
        _row(item, n, grades, key=key, items=items, cursor=pos == n, on_focus=on_focus)


def _row(item: JudgeItem, n: int, grades: Grades, *, key: str, items: Sequence[JudgeItem], cursor: bool,
         on_focus: Callable[[int], None] | None) -> None:
    row_key = f"{key}-{n}-{item.doc}"

    def here() -> None:
        take_keys(key)
        set_cursor(key, items, n)

    with st.container(border=True, key=row_key):
        text_col, buttons_col = st.columns([3, 2], vertical_alignment="center")
        with text_col:
            st.markdown(item.head)
            st.caption(display_text(short_text(item.text, 240)))
            if on_focus is not None:
                st.button("Focus", key=f"{row_key}-focus", on_click=on_focus, args=(item.doc,), type="tertiary",
                          help=f"Focus document #{item.doc} on the map")
        with buttons_col:
            judge_buttons(item.target, item.doc, grades, key=row_key, on_click=here, cursor=cursor)

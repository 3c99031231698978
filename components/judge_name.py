"""Who is judging: a judge name per browser, typed in the sidebar, kept in this browser session's state, in the
address bar (`?judge=`, through `components.share_link`) and in the browser's local storage (a tiny custom
component, so a new tab of the same browser starts with the same name). A judgment asked for before a name is
given waits (`ask_before_judging`) until the name is typed in a dialog, then is recorded under it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from embedlab.errors import UserError
from embedlab.judgments import clean_judge
from embedlab.text_display import display_text

JUDGE_KEY = "judge_name"            # the judge's name (None or ""): what every judge button reads
INPUT_KEY = "judge_input"           # the sidebar's text input; it follows JUDGE_KEY, never leads it
PENDING_KEY = "judge_pending"       # a judgment clicked before a name was given: (callback, args)
DIALOG_INPUT_KEY = "judge_dialog_name"
MEMORY_KEY = "judge_memory"         # the local-storage element

# The name in the browser's local storage: data {"name": null} asks for the stored name (sent back as the trigger
# "remembered"); a string is stored, "" forgets it. Text only: nothing from data becomes markup.
_MEMORY_JS = """
export default function(component) {
  const { data, setTriggerValue } = component;
  const KEY = "embedlab.judge";
  let stored = null;
  try { stored = window.localStorage.getItem(KEY); } catch (e) { return; }
  const name = data ? data.name : null;
  if (name === null || name === undefined) {
    if (stored) setTriggerValue("remembered", stored);
  } else if (name === "") {
    window.localStorage.removeItem(KEY);
  } else if (name !== stored) {
    window.localStorage.setItem(KEY, name);
  }
}
"""
_memory_element = st.components.v2.component("embedlab_judge_memory", js=_MEMORY_JS)


def current_judge() -> str | None:
    """The judge's name in this browser session, or None."""
    name = st.session_state.get(JUDGE_KEY)
    return name or None


def set_judge(name: str | None) -> None:
    """Make `name` (cleaned; None or blank: nobody) this browser's judge. A name that cannot be a judge's raises a
    UserError."""
    st.session_state[JUDGE_KEY] = clean_judge(name) if name and name.strip() else ""


def _typed() -> None:
    try:
        set_judge(st.session_state.get(INPUT_KEY))
    except UserError as exc:
        st.session_state[INPUT_KEY] = st.session_state.get(JUDGE_KEY) or ""
        st.toast(display_text(exc), icon=":material/warning:")


def _remembered(result_key: str) -> None:
    value = (st.session_state.get(result_key) or {}).get("remembered")
    if value and not current_judge():
        try:
            set_judge(str(value))
        except UserError:
            return


def judge_sidebar() -> str | None:
    """The sidebar's "Judge" box (and the local-storage memory); return the judge's name."""
    ss = st.session_state
    name = current_judge()
    if ss.get(INPUT_KEY) != (name or ""):
        ss[INPUT_KEY] = name or ""
    st.sidebar.text_input("Judge", key=INPUT_KEY, on_change=_typed, max_chars=100, placeholder="Your name",
                          help="Your name on the relevance judgments you make (neighbours, search hits, a run's "
                               "lists). Kept in the address bar and in this browser.")
    with st.sidebar:
        _memory_element(key=MEMORY_KEY, data={"name": ss.get(JUDGE_KEY)}, height=0,
                        on_remembered_change=lambda: _remembered(MEMORY_KEY))
    return current_judge()


def ask_before_judging(action: Callable[..., Any], *args: Any) -> None:
    """Run `action(*args)` now when a judge is named; otherwise keep it and ask for a name first (`judge_dialog`
    runs it once the name is given)."""
    if current_judge():
        action(*args)
    else:
        st.session_state[PENDING_KEY] = (action, args)


def _forget_pending() -> None:
    st.session_state.pop(PENDING_KEY, None)


@st.dialog("Who is judging?", on_dismiss=_forget_pending)
def _name_dialog() -> None:
    st.markdown("Judgments carry the judge's name, so that two people's judgments can be compared. Your name is "
                "kept in this browser and in the address bar.")
    with st.form("judge_dialog_form", border=False):
        name = st.text_input("Your name", key=DIALOG_INPUT_KEY, max_chars=100)
        go = st.form_submit_button("Judge", type="primary")
    if go:
        try:
            set_judge(name)
        except UserError as exc:
            st.error(display_text(exc))
            return
        if not current_judge():
            st.error("Type a name first.")
            return
        action, args = st.session_state.pop(PENDING_KEY)
        action(*args)
        st.rerun()
    if st.button("Cancel", key="judge_dialog_cancel"):
        _forget_pending()
        st.rerun()


def judge_dialog() -> None:
    """Ask for the judge's name when a judgment waits for one (call once per run, anywhere on the page)."""
    if st.session_state.get(PENDING_KEY) is not None:
        if current_judge():
            action, args = st.session_state.pop(PENDING_KEY)
            action(*args)
        else:
            _name_dialog()

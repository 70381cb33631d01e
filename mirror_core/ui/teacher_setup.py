"""What Generate's teacher calls are made with: API keys typed for this browser session, the prompt
templates (edited as new versions), and the price table the estimate and the budget cap read.

Typed keys live only in this session's memory and reach a job through its process's environment
(keys_env) — never the job config, the database or a command line.
"""

from __future__ import annotations

import sqlite3

import pandas as pd
import streamlit as st

from mirror_core import prompts
from mirror_core.errors import MirrorError
from mirror_core.generation import pricing
from mirror_core.teachers import keys
from mirror_core.ui import lazy


def api_keys() -> None:
    """One password field per provider (key_<provider>); says when the environment already has one."""
    with st.expander("API keys (held in this browser session only)"):
        for provider, var in keys.ENV_VARS.items():
            have = keys.get_key(provider, required=False)
            st.text_input(f"{provider} key" + (" — found in the environment" if have else f" (or set {var})"),
                          type="password", key=f"key_{provider}")


def keys_env() -> dict[str, str]:
    """Keys typed on this page, as environment variables for the job process."""
    ss = st.session_state
    return {var: ss[f"key_{p}"] for p, var in keys.ENV_VARS.items() if ss.get(f"key_{p}")}


def templates(conn: sqlite3.Connection) -> None:
    """Pick a prompt template, edit its body, save it as a new version (new runs use it). Drawn only while
    unfolded (ui.lazy); an unsaved edit survives folding."""
    lazy.keep(st.session_state, ["g_tpl"], ("g_tpl_body_",))
    box = lazy.expander("Prompt templates", key="g_tpl_open")
    if box is None:
        return
    with box:
        tlist = prompts.list_templates(conn)
        name = st.selectbox("Template", [t["name"] for t in tlist], key="g_tpl",
                            format_func=lambda n: next(f"{t['name']} (v{t['version']}, {t['kind']})" for t in tlist
                                                       if t["name"] == n))
        current = prompts.get(conn, name)
        body = st.text_area("Body (system message above a line `---`, then the user message)", current.body,
                            height=300, key=f"g_tpl_body_{name}_{current.version}")
        if st.button("Save as a new version", key="g_tpl_save"):
            try:
                t = prompts.edit(conn, name, body)
            except MirrorError as exc:
                st.error(str(exc))
            else:
                st.success(f"{t.name} is now v{t.version}; new runs use it.")


def prices(conn: sqlite3.Connection) -> None:
    """The price table and a row to set one model's input/output price, drawn only while unfolded."""
    lazy.keep(st.session_state, ["g_price_provider", "g_price_model", "g_price_in", "g_price_out"])
    box = lazy.expander("Prices (USD per million tokens)", key="g_prices_open")
    if box is None:
        return
    with box:
        st.dataframe(pd.DataFrame(pricing.price_rows(conn)), hide_index=True, key="g_prices")
        c1, c2, c3, c4, c5 = st.columns([1, 2, 1, 1, 1])
        pp = c1.selectbox("Provider", ["anthropic", "openai"], key="g_price_provider")
        pm = c2.text_input("Model", key="g_price_model")
        pin = c3.number_input("Input", min_value=0.0, key="g_price_in")
        pout = c4.number_input("Output", min_value=0.0, key="g_price_out")
        if c5.button("Set price", key="g_price_set") and pm:
            pricing.set_price(conn, pp, pm, pin, pout)
            st.rerun()

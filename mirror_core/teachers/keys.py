"""API keys: an explicit in-memory value, else the environment, else Streamlit secrets.

Keys are held in memory only. They never go into the job config (jobs.submit refuses secret-looking
fields), the database, logs or command lines: the app hands a typed key to the job through the
environment of the launched process.
"""

from __future__ import annotations

import os

from mirror_core.errors import MissingKeyError

ENV_VARS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}


def env_var(provider: str) -> str:
    try:
        return ENV_VARS[provider]
    except KeyError:
        raise MissingKeyError(f"Provider '{provider}' takes no API key; known: {', '.join(ENV_VARS)}.") from None


def _from_streamlit_secrets(name: str) -> str | None:
    # Only consult secrets when a secrets file exists: touching st.secrets otherwise prints a warning,
    # and outside the app streamlit may not even be importable.
    from pathlib import Path

    candidates = [Path.home() / ".streamlit" / "secrets.toml", Path.cwd() / ".streamlit" / "secrets.toml"]
    if not any(p.exists() for p in candidates):
        return None
    try:
        import streamlit as st

        value = st.secrets.get(name)
    except Exception:  # noqa: BLE001 - a malformed secrets file must not hide the env-var advice below
        return None
    return str(value) if value else None


def get_key(provider: str, explicit: str | None = None, *, required: bool = True) -> str | None:
    """The key for `provider`; raises MissingKeyError naming the variable when none is found and required."""
    if explicit:
        return explicit
    name = env_var(provider)
    value = os.environ.get(name) or _from_streamlit_secrets(name)
    if value:
        return value
    if required:
        raise MissingKeyError(
            f"No API key for {provider}: set the environment variable {name}, add {name} to "
            f".streamlit/secrets.toml, or type it into the key field on the Generate page.")
    return None

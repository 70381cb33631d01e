"""API keys: an explicit in-memory value, else the environment, else Streamlit secrets.

Streamlit secrets are read from the `.streamlit/secrets.toml` files Streamlit itself reads, without
importing streamlit: the library below the pages never does.

Keys are held in memory only. They never go into the job config (jobs.submit refuses secret-looking
fields), the database, logs or command lines: the app hands a typed key to the job through the
environment of the launched process.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from mirror_core.errors import MissingKeyError

ENV_VARS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}


def env_var(provider: str) -> str:
    try:
        return ENV_VARS[provider]
    except KeyError:
        raise MissingKeyError(f"Provider '{provider}' takes no API key; known: {', '.join(ENV_VARS)}.") from None


def secrets_files() -> list[Path]:
    """Where Streamlit looks for secrets, lowest precedence first: the user's, then the working folder's."""
    return [Path.home() / ".streamlit" / "secrets.toml", Path.cwd() / ".streamlit" / "secrets.toml"]


def _from_streamlit_secrets(name: str) -> str | None:
    # Read the TOML ourselves rather than through st.secrets: this module is imported by the CLI and by
    # job processes, which must not load streamlit (seconds of import, and a warning when no file exists).
    # Same files and precedence as Streamlit: both are merged, the working folder's value wins.
    value = None
    for path in secrets_files():
        if not path.is_file():
            continue
        try:
            with path.open("rb") as f:
                found = tomllib.load(f).get(name)
        except (OSError, tomllib.TOMLDecodeError):
            continue  # a malformed secrets file must not hide the env-var advice of get_key's error
        if found:
            value = found
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

"""API keys: explicit, then environment, then Streamlit's secrets files, read without importing streamlit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirror_core.errors import MissingKeyError
from mirror_core.teachers import keys

ROOT = Path(__file__).resolve().parents[1]


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in keys.ENV_VARS.values()}
    env["HOME"] = str(home)
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_keys_resolve_a_secret_without_importing_streamlit(tmp_path):
    """The CLI and job processes import keys; streamlit must stay out of them, and secrets still resolve."""
    home, project = tmp_path / "home", tmp_path / "project"
    (project / ".streamlit").mkdir(parents=True)
    (project / ".streamlit" / "secrets.toml").write_text('ANTHROPIC_API_KEY = "sk-ant-from-secrets"\n')
    home.mkdir()
    code = ("import json, sys\n"
            "from mirror_core.teachers import keys\n"
            "key = keys.get_key('anthropic')\n"
            "print(json.dumps({'key': key, 'streamlit': sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit')}))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=project, env=_clean_env(home),
                         capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == {"key": "sk-ant-from-secrets", "streamlit": []}


@pytest.fixture
def places(tmp_path, monkeypatch):
    home, project = tmp_path / "home", tmp_path / "project"
    for d in (home, project):
        (d / ".streamlit").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(project)
    for var in keys.ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    return home / ".streamlit" / "secrets.toml", project / ".streamlit" / "secrets.toml"


def test_the_working_folder_secret_wins_over_the_users(places):
    user, project = places
    user.write_text('ANTHROPIC_API_KEY = "user-key"\nOPENAI_API_KEY = "user-openai"\n')
    project.write_text('ANTHROPIC_API_KEY = "project-key"\n')
    assert keys.get_key("anthropic") == "project-key"
    assert keys.get_key("openai") == "user-openai"  # merged, as Streamlit merges the two files


def test_environment_wins_over_secrets_and_explicit_over_both(places, monkeypatch):
    places[1].write_text('ANTHROPIC_API_KEY = "project-key"\n')
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    assert keys.get_key("anthropic") == "env-key"
    assert keys.get_key("anthropic", "typed-key") == "typed-key"


def test_a_malformed_secrets_file_still_gives_the_advice(places):
    places[1].write_text("ANTHROPIC_API_KEY = \n")
    with pytest.raises(MissingKeyError, match="set the environment variable ANTHROPIC_API_KEY"):
        keys.get_key("anthropic")
    assert keys.get_key("anthropic", required=False) is None

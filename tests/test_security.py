"""Security (issue 11, items 1 and 2): the app serves on localhost unless told otherwise, and no API key
quoted by a provider error is stored, logged or shown.

The key tests use the real OpenAI and Anthropic SDKs against a 127.0.0.1 stub that answers 401 with a
body quoting the key it was sent (as real providers do), run the CLI as a user would, then read every
byte under the project home (database, WAL, job logs) and every line the CLI and the Generate page show.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mirror_core import redact, store
from teacher_stub import Stub

ROOT = Path(__file__).resolve().parent.parent
# Not a real key of anyone's; shaped like each provider's.
OPENAI_KEY = "sk-proj-TESTKEY0penAI1234567890abcdefXYZ"
ANTHROPIC_KEY = "sk-ant-api03-TESTKEYanthropic0987654321qwerty"
OTHER_KEY = "sk-ant-api03-SOMEONEELSESkey5555555555abcdef"   # a key-shaped string this process never held
LOCAL_KEY = "vllm-secret-NotKeyShaped-4242424242"             # a key given in memory only, no known shape


class KeyEchoStub(Stub):
    """Every request gets a 401 whose body quotes the key the client sent (and another key-shaped string)."""

    def handle(self, h, body: dict) -> None:
        auth = h.headers.get("x-api-key") or h.headers.get("authorization", "")
        key = auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else auth
        with self.lock:
            self.requests.append({"path": h.path, "key": key, "t": 0.0, "text": "", "purpose": "cot", "auth": auth})
        self._send(h, 401, {"error": {"type": "authentication_error", "code": "invalid_api_key",
                                      "message": f"Incorrect API key provided: {key}. Also tried {OTHER_KEY}. "
                                                 f"Header was: {auth}"}})


def _dataset(conn, n=2):
    conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at)"
                 " VALUES ('toy', 'test', 'numeric', 'h', ?)", (store.now(),))
    for i in range(n):
        conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                     " VALUES (1, ?, 'train', ?, ?, 'numeric')", (f"q{i}", f"What is {i} + 2?", str(i + 2)))


def _cli(*args, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "mirror_core", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


def _bytes_under(home: Path) -> dict[str, bytes]:
    """Every file under the project home: the database, its WAL and shared memory, each run's job.log."""
    return {str(p.relative_to(home)): p.read_bytes() for p in home.rglob("*") if p.is_file()}


def _assert_nowhere(secrets: list[str], home: Path, outputs: list[str], job_log: bool = True) -> None:
    files = _bytes_under(home)
    assert any(name.endswith("mirror.sqlite3") for name in files)
    assert any(n.endswith("job.log") for n in files) == job_log
    for secret in secrets:
        for name, data in files.items():
            assert secret.encode() not in data, f"{secret} is stored in {name}"
        for text in outputs:
            assert secret not in text


@pytest.mark.parametrize("provider,env_name,key", [("openai", "OPENAI_API_KEY", OPENAI_KEY),
                                                   ("anthropic", "ANTHROPIC_API_KEY", ANTHROPIC_KEY)])
def test_401_quoting_the_key_is_redacted_in_store_log_cli_and_jobs_json(home, conn, provider, env_name, key):
    _dataset(conn)
    conn.close()
    with KeyEchoStub() as stub:
        base = stub.url + ("/v1" if provider == "openai" else "")
        env = {env_name: key, "MIRROR_HOME": str(home)}
        gen = _cli("generate", "--dataset", "toy", "--teacher", f"{provider}:some-model", "--base-url", base,
                   "--n-cots", "1", "--k-evals", "1", "--wait", env_extra=env)
        assert stub.requests and all(r["key"] == key for r in stub.requests)  # the key was sent: it could leak
    assert gen.returncode == 1
    listed = _cli("jobs", "list", "--json", env_extra=env)
    logs = _cli("jobs", "logs", "1", "--lines", "200", env_extra=env)
    resumed = _cli("jobs", "wait", "1", env_extra=env)
    c = store.connect(home)
    row = c.execute("SELECT error, raw FROM teacher_calls LIMIT 1").fetchone()
    run_error = c.execute("SELECT error FROM runs WHERE id = 1").fetchone()[0]
    c.close()
    # The provider's message is kept, the key is not.
    assert "Incorrect API key provided: [REDACTED]" in row["error"] and "[REDACTED]" in row["raw"]
    assert "Incorrect API key provided: [REDACTED]" in run_error
    outputs = [gen.stdout, gen.stderr, listed.stdout, listed.stderr, logs.stdout, resumed.stderr]
    assert "[REDACTED]" in json.loads(listed.stdout)[0]["error"] and "[REDACTED]" in gen.stderr
    _assert_nowhere([key, OTHER_KEY], home, outputs)


def test_in_memory_key_given_to_a_teacher_is_redacted(home, conn, monkeypatch):
    """A key that is in no environment variable and has no known shape (typed into the app, read from
    Streamlit secrets) is masked too, once it has been given to a teacher."""
    from mirror_core.errors import TeacherError
    from mirror_core.generation import pipeline
    from mirror_core.teachers.registry import make_teacher

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    _dataset(conn)
    with KeyEchoStub() as stub:
        teacher = make_teacher("openai:local-model", base_url=stub.url + "/v1", api_key=LOCAL_KEY)
        cfg = pipeline.GenConfig(dataset="toy", teachers=["openai:local-model"], n_cots=1, k_evals=0,
                                 base_url=stub.url + "/v1")
        with pytest.raises(TeacherError) as info:
            pipeline.run(conn, cfg, [teacher], run_id=None, log=lambda m: None)
        teacher.close()
        assert stub.requests and stub.requests[0]["key"] == LOCAL_KEY
    assert LOCAL_KEY not in str(info.value)
    errors = [r["error"] for r in conn.execute("SELECT error FROM teacher_calls")]
    assert errors and all("Incorrect API key provided: [REDACTED]" in e for e in errors)
    conn.execute("PRAGMA wal_checkpoint(FULL)")
    _assert_nowhere([LOCAL_KEY, OTHER_KEY], home, [str(info.value)], job_log=False)


def test_generate_page_shows_no_key(home, conn, monkeypatch):
    _dataset(conn)
    with KeyEchoStub() as stub:
        env = {"OPENAI_API_KEY": OPENAI_KEY, "MIRROR_HOME": str(home)}
        gen = _cli("generate", "--dataset", "toy", "--teacher", "openai:m", "--base-url", stub.url + "/v1",
                   "--n-cots", "1", "--k-evals", "1", "--wait", env_extra=env)
    assert gen.returncode == 1
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    at = AppTest.from_file("../pages/2_Generate.py", default_timeout=60).run()
    assert not at.exception
    shown = [e.value for e in at.error] + [html.unescape(h.value) for h in at.html] + \
            [df.value.to_string() for df in at.dataframe]
    assert any("[REDACTED]" in s for s in shown)  # the failed calls and the run error are on the page
    assert not any(OPENAI_KEY in s or OTHER_KEY in s for s in shown)


def test_redact_masks_known_and_key_shaped_strings_only(monkeypatch):
    monkeypatch.setenv("SOMEPROVIDER_API_KEY", "plain-provider-secret-123")
    monkeypatch.setenv("SHORT_API_KEY", "abc")  # too short to be a key: "abc" elsewhere stays
    text = ("key plain-provider-secret-123, sk-ant-api03-abcdefghijklmnopqrstuvwxyz, sk-abcdefghij0123456789, "
            "Authorization: Bearer abcdefghijklmnop, abc, scikit-learn, sk-short, risk-averse")
    out = redact.redact(text)
    assert out == ("key [REDACTED], [REDACTED], [REDACTED], Authorization: Bearer [REDACTED], abc, scikit-learn, "
                   "sk-short, risk-averse")
    assert redact.redact_obj({"a": [text], "n": 3}) == {"a": [out], "n": 3}


def test_redacting_stream_masks_a_key_written_in_pieces(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    path = tmp_path / "log"
    with open(path, "w") as f:
        s = redact.RedactingStream(f)
        s.write("401: " + OPENAI_KEY[:10])
        s.write(OPENAI_KEY[10:] + " end\nnext ")
        s.flush()
    assert path.read_text() == "401: [REDACTED] end\nnext "


# ---------------------------------------------------------------- item 1: serving address

def _make_run(*args: str) -> str:
    return subprocess.run(["make", "-n", "run", *args], capture_output=True, text=True, cwd=ROOT,
                          check=True).stdout


def test_make_run_serves_localhost_unless_an_address_is_given():
    line = [ln for ln in _make_run().splitlines() if "streamlit run" in ln][0]
    assert "--server.address 127.0.0.1" in line and "0.0.0.0" not in line
    line = [ln for ln in _make_run("ADDRESS=0.0.0.0").splitlines() if "streamlit run" in ln][0]
    assert "--server.address 0.0.0.0" in line
    readme = (ROOT / "README.md").read_text()
    assert "ADDRESS=0.0.0.0" in readme and "authentication" in readme

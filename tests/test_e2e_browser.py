"""Real browser end to end: `streamlit run app.py` on 127.0.0.1, Debian's Chromium driven by Playwright.

Imports the built-in GSM8K from the home page, generates CoTs with two fake teachers from the Generate
page, then on the Review page filters by a search, edits a CoT,
reloads and sees the edit and the filter persisted. Saves a screenshot under test-output/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mirror_core import store

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
OUT = ROOT / "test-output"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_server(home):
    if not Path(CHROMIUM).exists():
        # `make test` installs it first (scripts/ensure-chromium), so under CI a missing browser is a failure,
        # never a silent skip; a bare `pytest` on a machine without it skips with this reason.
        msg = "Debian's chromium is not installed (scripts/ensure-chromium installs it)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    port = _free_port()
    env = dict(os.environ, MIRROR_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    log = open(home / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if urllib.request.urlopen(base + "/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail("streamlit did not start:\n" + (home / "streamlit.log").read_text()[-2000:])
        time.sleep(0.3)
    yield base, env
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _settled(page, timeout=30_000):
    """Wait until Streamlit finished the current script run and every widget is drawn (no skeletons)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => { const app = document.querySelector('[data-testid=\"stApp\"]');"
        " return app && !['running', 'initial'].includes(app.dataset.testScriptState)"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]'); }",
        timeout=timeout)
    page.wait_for_timeout(300)


def _open(page, url, heading):
    """Load a page and wait until its title is drawn and its script run has finished."""
    page.goto(url)
    page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)
    _settled(page, 60_000)


def _shot(page, path):
    """Screenshot of the whole page: Streamlit scrolls inside its main block, so grow the viewport to fit it."""
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll("
                           "'[data-testid=\"stMain\"], [data-testid=\"stMainBlockContainer\"]')].map(e => e.scrollHeight))")
    old = page.viewport_size
    page.set_viewport_size({"width": old["width"], "height": min(max(height + 40, old["height"]), 5000)})
    page.wait_for_timeout(400)
    page.screenshot(path=str(path))
    page.set_viewport_size(old)


def _number(page, label, value):
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    _settled(page)


def _pick(page, combobox, option):
    page.get_by_role("combobox", name=combobox).click()
    page.get_by_role("option", name=option, exact=True).click()
    _settled(page)


def _generate_from_page(page, base, teachers, questions, n_cots, k_evals, timeout_s=120, dev_questions=2):
    """Generate page: swap the default teacher for `teachers`, launch, follow the live progress until done."""
    _open(page, base + "/Generate", "Generate")
    page.get_by_test_id("stMultiSelect").filter(has_text="Teachers").get_by_role("button", name="Remove local").click()
    _settled(page)
    for t in teachers:
        _pick(page, "Teachers", t)
    page.keyboard.press("Escape")
    _number(page, "Questions (0 = all)", questions)
    _number(page, "Dev questions too", dev_questions)
    _number(page, "CoTs per question (N)", n_cots)
    _number(page, "Self-evaluations per CoT (K)", k_evals)
    page.get_by_role("button", name="Launch generation").click()
    _settled(page)
    page.get_by_text("succeeded:", exact=False).first.wait_for(timeout=timeout_s * 1000)
    _settled(page)


def test_import_generate_filter_edit_reload(app_server, home):
    from playwright.sync_api import expect, sync_playwright

    base, env = app_server
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        try:
            # 1. import the built-in data from the home page
            page.goto(base)
            page.get_by_role("button", name="Import the built-in GSM8K").click()
            expect(page.get_by_text("Imported 'gsm8k'")).to_be_visible(timeout=60_000)

            # 2. generate with two fake teachers from the Generate page, following its live progress
            _generate_from_page(page, base, ["fake", "fake:b"], questions=6, n_cots=2, k_evals=2)

            # 3. filter on the Review page with a full-text search
            page.goto(base + "/Review")
            expect(page.get_by_text("CoTs", exact=False).first).to_be_visible(timeout=30_000)
            search = page.get_by_role("textbox", name="Search questions, CoTs, critiques")
            search.fill("arithmetic")
            search.press("Enter")
            _settled(page)
            assert "q=arithmetic" in page.url
            conn = store.connect(home)
            from mirror_core.review import queries
            from mirror_core.review.filters import ReviewFilter

            n = queries.count(conn, ReviewFilter(q="arithmetic"))
            assert 0 < n["cots"] < conn.execute("SELECT COUNT(*) FROM rationales").fetchone()[0]
            expect(page.get_by_text(f"{n['cots']} CoTs", exact=True).first).to_be_visible()

            # 4. edit the first CoT in place
            page.get_by_text("Edit", exact=True).first.click()
            box = page.get_by_role("textbox", name="CoT text")
            expect(box).to_be_visible()
            original = box.input_value()
            edited = original.rsplit("The answer is", 1)[0] + "Double-checked with a zanzibar tally.\nThe answer is 42."
            box.fill(edited)
            box.press("Control+Enter")  # commit the text area's value before clicking Save
            _settled(page)
            page.get_by_role("button", name="Save").click()
            expect(page.get_by_text("saved; answer re-parsed and graded")).to_be_visible(timeout=20_000)
            row = conn.execute("SELECT text, parsed_answer, revision FROM rationales WHERE text LIKE '%zanzibar%'")\
                .fetchone()
            assert row is not None and row["parsed_answer"] == "42" and row["revision"] == 1

            # 5. reload: the filter comes back from the URL and the edit is there
            page.reload()
            _settled(page)
            expect(page.get_by_role("textbox", name="Search questions, CoTs, critiques")).to_have_value("arithmetic")
            expect(page.get_by_text("zanzibar tally", exact=False).first).to_be_visible(timeout=20_000)
            page.screenshot(path=str(OUT / "review_e2e.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(OUT / "review_e2e_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert (OUT / "review_e2e.png").stat().st_size > 10_000

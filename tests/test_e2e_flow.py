"""The whole path through the app in a real browser (Debian's Chromium via Playwright, no display needed).

Home (one-click GSM8K) → Generate (fake teacher, launched from the page, live progress) → Review (filter
"verdict contradicts gold", edit a CoT, reject/accept, freeze a snapshot) → Train (two `tiny` students in the
background, live loss curves, the run still there from a fresh browser context, Stop and Resume) → Evaluate
(both runs in the background, compared on one page) → Loops. One screenshot per stage in test-output/.
"""

from __future__ import annotations

import re
import time

import pytest
from test_e2e_browser import CHROMIUM, OUT, _generate_from_page, _number, _open, _pick, _settled, _shot, app_server  # noqa: F401

from mirror_core import store

pytestmark = pytest.mark.browser
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 1000}


def _launch_tiny(page, method, max_steps, eval_every):
    if not page.get_by_role("textbox", name="Student").is_visible():  # open when there is no run yet
        page.get_by_text("New training run").click()
        _settled(page)
    student = page.get_by_role("textbox", name="Student")
    student.fill("tiny")
    student.press("Enter")
    _settled(page)
    _pick(page, "Method", method)
    page.get_by_text("Hyperparameters (blank").click()
    _settled(page)
    _number(page, "Max steps per stage (0 = epochs)", max_steps)
    _number(page, "Eval every", eval_every)
    _number(page, "Sequence length", 256)
    page.get_by_role("button", name="Launch", exact=True).click()
    _settled(page)


def _run_status(conn, run_id):
    return conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0]


def _wait_status(conn, run_id, statuses, timeout_s):
    deadline = time.time() + timeout_s
    while (status := _run_status(conn, run_id)) not in statuses:
        assert time.time() < deadline, f"run {run_id} is still {status}"
        time.sleep(0.5)
    return status


def test_whole_flow_through_the_pages(app_server, home):
    from playwright.sync_api import expect, sync_playwright

    base, _ = app_server
    OUT.mkdir(exist_ok=True)
    conn = store.connect(home)
    t0 = time.time()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(viewport=VIEWPORT)
        page = ctx.new_page()
        try:
            # 1. home: one-click import
            _open(page, base, "Mind's Mirror Studio")
            page.get_by_role("button", name="Import the built-in GSM8K").click()
            expect(page.get_by_text("Imported 'gsm8k'")).to_be_visible(timeout=60_000)
            _shot(page, OUT / "flow-1-data.png")

            # 2. generate from the page with the fake teacher, N=3, K=2, for 5 train + 2 dev questions;
            # the progress follows it to the end
            _generate_from_page(page, base, ["fake"], questions=5, n_cots=3, k_evals=2, dev_questions=2)
            assert conn.execute("SELECT COUNT(*) FROM rationales WHERE kind = 'cot'").fetchone()[0] == 21
            assert conn.execute("SELECT COUNT(*) FROM self_evals").fetchone()[0] == 42
            assert conn.execute("SELECT COUNT(*) FROM rationales r JOIN examples e ON e.id = r.example_id"
                                " WHERE e.split = 'dev'").fetchone()[0] == 6
            _shot(page, OUT / "flow-2-generate.png")

            # 3. review: the fake teacher's self-evaluations sometimes contradict the gold; edit, reject, accept
            _open(page, base + "/Review", "Review")
            page.get_by_test_id("stCheckbox").filter(has_text="Verdict contradicts gold").locator("label").click()
            _settled(page)
            assert "verdict_vs_gold=1" in page.url
            expect(page.get_by_text("verdict contradicts gold", exact=False).first).to_be_visible()
            # the selection follows the filter: the selected CoT is one the filter matches
            chosen = page.get_by_role("radiogroup", name="Selected CoT").locator("label:has(input:checked)")
            expect(chosen).not_to_contain_text("not in filter")
            page.get_by_text("Edit", exact=True).first.click()
            _settled(page)
            box = page.get_by_role("textbox", name="CoT text")
            box.fill(box.input_value().replace("Step 1:", "Step 1 (re-checked by hand):", 1))
            box.press("Control+Enter")
            _settled(page)
            page.get_by_role("button", name="Save").click()
            expect(page.get_by_text("saved; answer re-parsed and graded")).to_be_visible(timeout=20_000)
            # the toast names the card as labelled (never a database id); its self-evaluations are stale now
            expect(page.get_by_text(re.compile(r"^CoT \d saved; answer re-parsed and graded\. 2 self-evaluations"))
                   ).to_be_visible()
            expect(page.get_by_text("stale:", exact=False).first).to_be_visible()
            edited_id = conn.execute("SELECT id FROM rationales WHERE text LIKE '%re-checked by hand%'").fetchone()[0]
            assert conn.execute("SELECT COUNT(*) FROM self_evals WHERE rationale_id = ? AND stale = 1",
                                (edited_id,)).fetchone()[0] == 2
            reason = page.get_by_placeholder("reason (optional)")
            reason.fill("wrong final answer")
            reason.press("Enter")
            _settled(page)
            page.get_by_role("button", name="Reject").click()
            _settled(page)
            expect(reason).to_have_value("")  # the reason box clears after each action
            page.get_by_role("radiogroup", name="Selected CoT").get_by_text("CoT 2").click()
            _settled(page)
            page.get_by_role("button", name="Accept").click()
            _settled(page)
            assert conn.execute("SELECT status_reason FROM rationales WHERE status = 'rejected'").fetchone()[0] \
                == "wrong final answer"
            assert conn.execute("SELECT status_reason FROM rationales WHERE status = 'accepted'").fetchone()[0] is None
            statuses = dict(conn.execute("SELECT status, COUNT(*) FROM rationales GROUP BY status").fetchall())
            assert statuses.get("rejected") == 1 and statuses.get("accepted") == 1, statuses
            assert conn.execute("SELECT COUNT(*) FROM rationales WHERE text LIKE '%re-checked by hand%'").fetchone()[0] == 1
            _shot(page, OUT / "flow-3-review.png")
            page.get_by_text("Snapshots", exact=True).click()
            _settled(page)
            name = page.get_by_role("textbox", name="Name")
            name.fill("first")
            name.press("Enter")
            _settled(page)
            page.get_by_role("button", name="Freeze snapshot").click()
            expect(page.get_by_text("Snapshot first: 20 items")).to_be_visible(timeout=20_000)

            # 4. train two tiny students in the background; live loss curves
            _open(page, base + "/Train", "Train")
            _launch_tiny(page, "mindsmirror", max_steps=16, eval_every=8)
            run_a = conn.execute("SELECT MAX(id) FROM runs WHERE kind = 'train'").fetchone()[0]
            expect(page.get_by_text(f"Run {run_a} ·", exact=False)).to_be_visible()
            # total and per-task losses each in its own chart, named by its panel title
            for panel in ("Per-task loss", "Weighted total (Σ α · task loss)"):
                expect(page.locator(f'[data-testid="stImageContainer"] img[alt="{panel}"]')).to_be_visible(
                    timeout=60_000)
            _shot(page, OUT / "flow-4-train.png")
            # closing the browser context does not stop the job: a new context sees it
            ctx.close()
            ctx = browser.new_context(viewport=VIEWPORT)
            page = ctx.new_page()
            _open(page, base + "/Train", "Train")
            expect(page.get_by_text(f"Run {run_a} ·", exact=False)).to_be_visible()
            # a second run with another method: stop it from the page, then resume it from its checkpoint
            _launch_tiny(page, "answer-only", max_steps=40, eval_every=4)
            run_b = conn.execute("SELECT MAX(id) FROM runs WHERE kind = 'train'").fetchone()[0]
            assert run_b != run_a
            expect(page.get_by_text(f"Run {run_b} · running", exact=False)).to_be_visible(timeout=60_000)
            page.get_by_role("button", name="Stop", exact=True).click()
            expect(page.get_by_text(f"Run {run_b} · cancelled", exact=False)).to_be_visible(timeout=30_000)
            page.get_by_role("button", name="Resume", exact=True).click()
            expect(page.get_by_text(f"Run {run_b} · running", exact=False)).to_be_visible(timeout=60_000)
            _wait_status(conn, run_a, {"succeeded"}, 120)
            _wait_status(conn, run_b, {"succeeded"}, 120)
            expect(page.get_by_text(f"Run {run_b} · succeeded", exact=False)).to_be_visible(timeout=10_000)
            steps = conn.execute("SELECT COUNT(DISTINCT step) FROM metrics WHERE run_id = ? AND key = 'loss'",
                                 (run_b,)).fetchone()[0]
            assert steps == 40, steps  # resumed where it stopped: every step logged once

            # 5. evaluate both runs in the background and compare them on one page
            _open(page, base + "/Evaluate", "Evaluate")
            _number(page, "Examples (0 = all)", 8)
            for run in (run_a, run_b):
                page.get_by_role("combobox", name="Train run").click()
                page.get_by_role("option", name=f"#{run} ", exact=False).click()
                _settled(page)
                page.get_by_role("button", name="Evaluate in the background").click()
                _settled(page)
            evals = [r[0] for r in conn.execute("SELECT id FROM runs WHERE kind = 'eval' ORDER BY id")]
            assert len(evals) == 2
            for run in evals:
                _wait_status(conn, run, {"succeeded"}, 120)
            # the page follows the background evaluations by itself: no reload
            expect(page.get_by_text("Runs to plot")).to_be_visible(timeout=30_000)
            _settled(page)
            expect(page.get_by_role("img", name="Reliability of self-evaluation", exact=False)).to_be_visible()
            _shot(page, OUT / "flow-5-evaluate.png")
            page.get_by_role("tab", name="Which questions changed").click()  # drawn once its tab is opened
            expect(page.get_by_text("From run (A)")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("both wrong", exact=True).first).to_be_visible()

            # 6. loops page renders its three loops
            _open(page, base + "/Loops", "Feedback loops")
            for tab in ("ELAD", "MAPD", "Teacher as critic"):
                expect(page.get_by_role("tab", name=tab, exact=False)).to_be_visible()
            _shot(page, OUT / "flow-6-loops.png")
        except Exception:
            page.screenshot(path=str(OUT / "flow_failure.png"))
            raise
        finally:
            browser.close()
    print(f"whole flow in {time.time() - t0:.0f} s")

"""Review: a question's CoTs side by side with their self-evaluations; filter, search, fix, curate, freeze.

All queries page and aggregate in SQL (mirror_core.review.queries); edits go through
mirror_core.review.curation; the filter lives in the URL so a view can be shared and survives reload.
Keyboard: J next question, K previous, A accept, X reject, F flag the selected CoT.
"""

import re
import threading

import pandas as pd
import streamlit as st

from mirror_core import config, snapshots, store
from mirror_core.errors import ConflictError, MirrorError
from mirror_core.review import curation, queries
from mirror_core.review.filters import CHOICES, LABELS, ReviewFilter

st.set_page_config(page_title="Review · Mind's Mirror Studio", page_icon="🔍", layout="wide")
ss = st.session_state
VIEWS = ["Question", "Table", "Teacher quality", "Snapshots"]
PAGE_SIZE = 50
# widget key -> ReviewFilter field
FIELDS = {"f_dataset": "dataset", "f_split": "split", "f_teacher": "teacher", "f_correct": "correct",
          "f_verdict": "verdict", "f_vvg": "verdict_vs_gold", "f_disagree": "cots_disagree",
          "f_edited": "edited", "f_status": "status", "f_q": "q", "f_sort": "sort"}


def conn():
    url = config.database_url()
    if ss.get("_review_url") != url:  # one connection per browser session (and per project home)
        ss["_review_conn"], ss["_review_url"] = store.connect(), url
    return ss["_review_conn"]


db = conn()

# ---------------------------------------------------------------- state <-> URL
if "_review_init" not in ss:
    problems: list[str] = []
    f0 = ReviewFilter.from_params(st.query_params.to_dict(), problems)
    for key, name in FIELDS.items():
        value = getattr(f0, name)
        ss[key] = value if isinstance(value, bool) else (value or "")
    view = st.query_params.get("view", "question")
    ss["view"] = next((v for v in VIEWS if v.lower().replace(" ", "_") == view), "Question")
    try:
        ss["qnum"] = max(1, int(st.query_params.get("i", "1")))
    except ValueError:
        ss["qnum"] = 1
    ex = st.query_params.get("ex")
    ss["pin_ex"] = int(ex) if ex and ex.isdigit() else None
    ss["_review_problems"] = problems
    ss["_review_init"] = True


def current_filter() -> ReviewFilter:
    values = {name: (ss.get(key) if isinstance(ss.get(key), bool) else (ss.get(key) or None))
              for key, name in FIELDS.items()}
    values["q"] = ss.get("f_q") or ""
    values["sort"] = ss.get("f_sort") or "question"
    return ReviewFilter(**values)


f = current_filter()
if ss.get("_review_prev") != f:  # a new filter starts at its first question
    if "_review_prev" in ss:
        ss["qnum"], ss["pin_ex"], ss["tpage"] = 1, None, 1
    ss["_review_prev"] = f


def sync_url() -> None:
    params = f.to_params()
    view = ss.get("view", "Question")
    if view != "Question":
        params["view"] = view.lower().replace(" ", "_")
    if ss.get("qnum", 1) > 1:
        params["i"] = str(ss["qnum"])
    if ss.get("pin_ex"):
        params["ex"] = str(ss["pin_ex"])
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)


# ---------------------------------------------------------------- sidebar: filters with counts
st.title("Review")
for msg in ss.pop("_review_problems", []):
    st.warning(f"Link filter {msg}.")



@st.cache_resource(show_spinner=False)
def shared_counts(url: str) -> tuple:
    """One read connection, count cache and lock per project home, shared by every browser session.

    The facet cube scans every CoT (seconds on 100k); a new tab or a reload is a new session, so a
    per-session cache paid that scan on every page load. The cache is keyed on this connection's
    PRAGMA data_version, which moves whenever any connection commits, so an edit anywhere refreshes it."""
    return store.connect(), {}, threading.Lock()


shared_db, cache, cache_lock = shared_counts(config.database_url())
with cache_lock:  # one session fills the cache while the others wait for it rather than scan too
    try:
        # Each option's count is what picking it would give with the other filters kept.
        facets = queries.facet_counts(shared_db, f, cache)
        search_error = None
    except MirrorError as exc:
        search_error = str(exc)
        facets = queries.facet_counts(shared_db, f.replace(q=""), cache)


def opts(name, values):
    return [""] + list(values)


def label(name, facet_key):
    def fmt(value):
        if value == "":
            return "any"
        text = LABELS.get(name, {}).get(value, value)
        n = facets[facet_key].get(value, 0)
        return f"{text} ({n:,})"
    return fmt


with st.sidebar:
    st.header("Filters")
    st.text_input("Search questions, CoTs, critiques", key="f_q", placeholder='e.g. marbles "final step"',
                  help="Full-text search (words are ANDed; \"quoted phrase\"; prefix*).")
    names = queries.dataset_names(db)
    if ss.get("f_dataset") and ss["f_dataset"] not in names:
        names.append(ss["f_dataset"])
    st.selectbox("Dataset", opts("dataset", names), key="f_dataset", format_func=lambda v: v or "all datasets")
    st.selectbox("Split", opts("split", CHOICES["split"]), key="f_split", format_func=label("split", "by_split"))
    teachers = queries.teachers(db, f.kind)
    if ss.get("f_teacher") and ss["f_teacher"] not in teachers:
        teachers.append(ss["f_teacher"])
    st.selectbox("Teacher", opts("teacher", teachers), key="f_teacher",
                 format_func=label("teacher", "by_teacher"))
    st.selectbox("Answer vs gold", opts("correct", CHOICES["correct"]), key="f_correct",
                 format_func=label("correct", "correct"))
    st.selectbox("Self-evaluation", opts("verdict", CHOICES["verdict"]), key="f_verdict",
                 format_func=label("verdict", "verdict"))
    st.checkbox(f"Verdict contradicts gold ({facets['verdict_vs_gold']:,})", key="f_vvg",
                help="A self-evaluation says 'correct' on a wrong CoT, or 'wrong' on a right one.")
    st.checkbox(f"CoTs of the question disagree ({facets['cots_disagree']:,})", key="f_disagree",
                help="The question's CoTs reach different answers.")
    st.selectbox("Edited", opts("edited", CHOICES["edited"]), key="f_edited", format_func=label("edited", "edited"))
    st.selectbox("Status", opts("status", CHOICES["status"]), key="f_status",
                 format_func=label("status", "by_status"))
    st.selectbox("Sort", CHOICES["sort"], key="f_sort", format_func=lambda v: LABELS["sort"][v])

    def reset_filters():
        for key in FIELDS:
            ss[key] = False if key in ("f_vvg", "f_disagree") else ("question" if key == "f_sort" else "")

    st.button("Reset filters", on_click=reset_filters, key="reset_filters", disabled=f.is_default())
    st.caption("Keys: **J** next · **K** previous · **A** accept · **X** reject · **F** flag the selected CoT.")

if search_error:
    st.error(search_error)
n_cots, n_questions = facets["cots"], facets["questions"]
st.markdown(f"**{n_cots:,} CoTs** in **{n_questions:,} questions** match · {f.describe()}")

# ---------------------------------------------------------------- bulk actions over the filter
with st.expander(f"Bulk action on the {n_cots:,} CoTs of this filter"):
    b1, b2, b3 = st.columns([1, 2, 1])
    b1.selectbox("Action", list(curation.ACTIONS), key="bulk_action")
    b2.text_input("Reason", key="bulk_reason", placeholder="e.g. wrong final answer")

    def bulk_review():
        ss["bulk_pending"] = {"action": ss["bulk_action"], "reason": ss.get("bulk_reason", ""),
                              "count": curation.bulk_count(db, f), "filter": f}

    b3.button("Review…", key="bulk_review", on_click=bulk_review, disabled=n_cots == 0)
    pending = ss.get("bulk_pending")
    if pending and pending["filter"] != f:
        ss.pop("bulk_pending")
        pending = None
    if pending:
        st.warning(f"This will **{pending['action']}** **{pending['count']:,} CoTs** matching: {f.describe()}"
                   + (f" — reason: {pending['reason']}" if pending["reason"] else ""))

        def bulk_confirm():
            p = ss.pop("bulk_pending")
            try:
                n = curation.bulk_set_status(db, p["filter"], p["action"], p["reason"], expected_count=p["count"])
                ss["flash"] = ("success", f"{p['action']}: {n:,} CoTs updated.")
                ss["bulk_reason"] = ""
            except MirrorError as exc:
                ss["flash"] = ("error", str(exc))

        c1, c2 = st.columns(2)
        c1.button(f"Confirm: {pending['action']} {pending['count']:,} CoTs", key="bulk_confirm",
                  type="primary", on_click=bulk_confirm)
        c2.button("Cancel", key="bulk_cancel", on_click=lambda: ss.pop("bulk_pending", None))

flash = ss.pop("flash", None)
if flash:
    getattr(st, flash[0])(flash[1])

st.radio("View", VIEWS, key="view", horizontal=True, label_visibility="collapsed")


# ---------------------------------------------------------------- rendering helpers
def steps_md(text: str) -> str:
    """CoT text as markdown: one step per line, math kept, currency and markdown syntax defused."""
    t = text.replace("\\(", "$").replace("\\)", "$").replace("\\[", "$$").replace("\\]", "$$")
    t = re.sub(r"(?<!\$)\$(?=\s?\d)", r"\\$", t)  # "$5" is money, not math
    t = re.sub(r"(?m)^(\s*)#", r"\1\\#", t)  # "#### 18" is an answer, not a heading
    t = t.replace("*", "\\*").replace("_", "\\_")
    return "  \n".join(t.splitlines())


VERDICT_COLOR = {"correct": "green", "wrong": "red", "uncertain": "orange", None: "gray"}


def verdict_chips(evals, truth) -> str:
    chips = []
    for s in evals:
        v = s["verdict"]
        if s.get("stale"):
            chips.append(f":gray-badge[stale: {v or 'unparsed'}]")
            continue
        conf = f" {s['confidence']:.2f}" if s["confidence"] is not None else ""
        clash = (v == "correct" and truth == 0) or (v == "wrong" and truth == 1)
        chips.append(f":{VERDICT_COLOR.get(v, 'gray')}-badge[{'⚠ ' if clash else ''}{v or 'unparsed'}{conf}]")
    return " ".join(chips) if chips else ":gray-badge[no self-evaluation]"


def correctness_badge(cot) -> str:
    if cot["parse_status"] == "parse_error" or cot["parsed_answer"] is None:
        return ":gray-badge[no answer found]"
    return {1: ":green-badge[✓ correct]", 0: ":red-badge[✗ wrong]"}.get(cot["correct"], ":gray-badge[not graded]")


STATUS_BADGE = {"active": "", "accepted": ":green-badge[accepted]", "rejected": ":red-badge[rejected]",
                "flagged": ":orange-badge[flagged]"}


def run_action(func, *args, **kwargs):
    try:
        func(*args, **kwargs)
    except MirrorError as exc:
        ss["flash"] = ("error", str(exc))


def save_edit(rid, name):
    try:
        curation.edit_cot(db, rid, ss[f"text_{rid}"], expected_revision=ss[f"base_{rid}"])
    except ConflictError as exc:
        ss[f"conflict_{rid}"] = str(exc)  # the typed text stays in the text area: nothing is lost
        return
    except MirrorError as exc:
        ss["flash"] = ("error", str(exc))
        return
    stale = curation.stale_count(db, rid)
    ss["flash"] = ("success", f"{name} saved; answer re-parsed and graded."
                   + (f" {stale} self-evaluation{'s' if stale != 1 else ''} of its earlier text marked stale."
                      if stale else ""))
    for k in (f"base_{rid}", f"text_{rid}", f"conflict_{rid}"):
        ss.pop(k, None)
    ss[f"edit_{rid}"] = False


REFERENCE = "reference"


def evaluator_label(evaluator: str) -> str:
    if evaluator == REFERENCE:
        return "reference (answer vs gold, not a teacher)"
    return f"`{evaluator}`"


def reevaluate(rid, name):
    try:
        run_id = curation.reevaluate(db, rid, label=name)
    except MirrorError as exc:
        ss["flash"] = ("error", str(exc))
    else:
        ss["flash"] = ("success", f"Re-evaluating {name}: generate run {run_id} queued (see the Generate page).")


def keep_mine(rid, revision):
    ss[f"base_{rid}"] = revision  # the next save deliberately replaces their version (it stays in history)
    ss.pop(f"conflict_{rid}", None)


def cot_card(i, cot, selected):
    rid = cot["id"]
    with st.container(border=True):
        edited = f" · ✏️ rev {cot['revision']}" if cot["revision"] else ""
        st.markdown(f"{'▶ ' if selected else ''}**CoT {i + 1}** · `{cot['author']}` #{cot['sample_index']}"
                    f"{edited} {STATUS_BADGE[cot['status']]}")
        if cot["status_reason"]:
            st.caption(f"{cot['status']}: {cot['status_reason']}")
        st.markdown(f"Answer **{cot['parsed_answer'] if cot['parsed_answer'] is not None else '—'}** "
                    f"{correctness_badge(cot)}")
        if not cot["matches"]:
            st.caption("not in the current filter")
        st.markdown(steps_md(cot["text"]))
        st.markdown(verdict_chips(cot["self_evals"], cot["correct"]))
        if cot["self_evals"]:
            with st.expander(f"Critiques ({len(cot['self_evals'])})"):
                for s in cot["self_evals"]:
                    st.markdown(f"**{s['verdict'] or 'unparsed'}** · {evaluator_label(s['evaluator'])}"
                                + (f" · confidence {s['confidence']:.2f}" if s["confidence"] is not None else "")
                                + (" · :gray-badge[stale: written about an earlier text]" if s.get("stale") else ""))
                    if s["critique"]:
                        st.markdown(steps_md(s["critique"]))
                    elif s["evaluator"] == REFERENCE:
                        st.caption("No critique: the verdict compares the CoT's answer with the gold answer.")
        n_stale = sum(1 for s in cot["self_evals"] if s.get("stale"))
        if n_stale:
            st.caption(f"{n_stale} self-evaluation{'s' if n_stale != 1 else ''} judged an earlier text of this CoT "
                       "(stale: not counted in the verdict filters).")
            st.button("Re-evaluate", key=f"reeval_{rid}", on_click=reevaluate, args=(rid, f"CoT {i + 1}"),
                      help="Queue the generation run that wrote this CoT again: cached CoTs cost nothing, "
                           "edited CoTs get new self-evaluations of their current text.")
        if cot["reviews"]:
            st.markdown("Peer review: " + " · ".join(
                f"{'★' * (r['score'] or 0)}{'☆' * (5 - (r['score'] or 0))} `{r['reviewer']}`"
                for r in cot["reviews"]))
            with st.expander("Review notes"):
                for r in cot["reviews"]:
                    st.markdown(f"`{r['reviewer']}` ({r['score']}/5): {r['text'] or ''}")
        if st.toggle("Edit", key=f"edit_{rid}"):
            ss.setdefault(f"base_{rid}", cot["revision"])
            if f"text_{rid}" not in ss:
                ss[f"text_{rid}"] = cot["text"]
            st.text_area("CoT text", key=f"text_{rid}", height=220)
            conflict = ss.get(f"conflict_{rid}")
            if conflict:
                st.error(conflict)
                st.code(curation.diff(ss[f"text_{rid}"], cot["text"], old_label="yours (unsaved)",
                                      new_label=f"theirs (rev {cot['revision']})") or "(same text)",
                        language="diff")
                st.button("Keep mine over theirs", key=f"keep_{rid}", on_click=keep_mine,
                          args=(rid, cot["revision"]))
            st.button("Save", key=f"save_{rid}", type="primary", on_click=save_edit, args=(rid, f"CoT {i + 1}"))
        else:  # closing the editor discards the draft; the next edit starts from the current revision
            for k in (f"base_{rid}", f"text_{rid}", f"conflict_{rid}"):
                ss.pop(k, None)
        hist = curation.history(db, rid) if cot["revision"] else []
        if hist:
            with st.expander(f"History ({len(hist)} edits)"):
                for h in reversed(hist):
                    st.markdown(f"**rev {h['revision']}** · {h['author']} · {h['created_at'][:19].replace('T', ' ')}")
                    st.code(curation.diff(h["old_text"], h["new_text"], old_label=f"rev {h['revision'] - 1}",
                                          new_label=f"rev {h['revision']}"), language="diff")
                    st.button(f"Revert to rev {h['revision'] - 1}", key=f"revert_{rid}_{h['revision']}",
                              on_click=run_action, args=(curation.revert, db, rid, h["revision"] - 1),
                              kwargs={"expected_revision": cot["revision"]})


# ---------------------------------------------------------------- views
view = ss["view"]
if view == "Question":
    def step(delta):
        ss["pin_ex"] = None
        ss["qnum"] = min(max(1, ss.get("qnum", 1) + delta), max(1, n_questions))

    nav = st.columns([1, 1, 2, 4])
    nav[0].button("◀ Prev", key="prev", on_click=step, args=(-1,), shortcut="K",
                  disabled=ss.get("qnum", 1) <= 1 and not ss.get("pin_ex"))
    nav[1].button("Next ▶", key="next", on_click=step, args=(1,), shortcut="J",
                  disabled=ss.get("qnum", 1) >= n_questions)
    if ss.get("qnum", 1) > max(1, n_questions):
        ss["qnum"] = max(1, n_questions)
    nav[2].number_input("Question", min_value=1, max_value=max(1, n_questions), key="qnum",
                        label_visibility="collapsed", on_change=lambda: ss.update(pin_ex=None))
    ex_id = ss.get("pin_ex") or (queries.question_at(db, f, ss["qnum"] - 1) if n_questions else None)
    nav[3].caption(f"question {ss['qnum']:,} of {n_questions:,}" if not ss.get("pin_ex")
                   else f"question {ex_id} (opened from the table)")
    if ex_id is None:
        st.info("No question matches this filter. Loosen a filter or reset them in the sidebar.")
    else:
        detail = queries.question_detail(db, ex_id, f)
        ex, cots, agr = detail["example"], detail["cots"], detail["agreement"]
        with st.container(border=True):
            st.caption(f"{ex['dataset']} · {ex['split']} · {ex['ext_id']} · {ex['task_type']}")
            st.markdown(steps_md(ex["question"]))
            if ex["choices"]:
                st.markdown("  \n".join(f"**{chr(65 + k)}.** {c}" for k, c in enumerate(ex["choices"])))
            st.markdown(f"Gold answer: **{ex['answer']}**")
        if agr["answered"]:
            share = f"{agr['majority_share']:.0%}"
            gold_mark = {True: ":green-badge[majority = gold]", False: ":red-badge[majority ≠ gold]",
                         None: ""}[agr["majority_matches_gold"]]
            teach = {True: ":green-badge[teachers agree]", False: ":orange-badge[teachers disagree]",
                     None: ""}[agr["teachers_agree"]]
            spread = ", ".join(f"{a} ×{n}" for a, n in agr["answers"].items())
            st.markdown(f"**Agreement** {share} on **{agr['majority']}** ({spread}) {gold_mark} {teach}")
        if not cots:
            st.info("This question has no CoTs of this kind yet.")
        else:
            labels = [f"CoT {k + 1}" for k in range(len(cots))]
            matching = [lab for lab, c in zip(labels, cots) if c["matches"]]
            context = (ex_id, f)
            if ss.get("_sel_ctx") != context:  # another question or filter: start from its first match
                ss["_sel_ctx"], ss["_sel_explicit"], ss["act_reason"] = context, False, ""
                ss["sel_cot"] = (matching or labels)[0]
            elif ss.get("sel_cot") not in labels:
                ss["sel_cot"] = (matching or labels)[0]
            elif matching and ss["sel_cot"] not in matching and not ss.get("_sel_explicit"):
                ss["sel_cot"] = matching[0]  # the selected CoT left the filter (e.g. after an action)
            bar = st.columns([3, 2.4, 1.3, 1.3, 1.1, 1.1])
            bar[0].radio("Selected CoT", labels, key="sel_cot", horizontal=True,
                         on_change=lambda: ss.update(_sel_explicit=True),
                         format_func=lambda lab: lab if lab in matching else f"{lab} (not in filter)")
            bar[1].text_input("Reason", key="act_reason", placeholder="reason (optional)",
                              label_visibility="collapsed")
            sel = cots[labels.index(ss["sel_cot"])]
            PAST = {"accept": "accepted", "reject": "rejected", "flag": "flagged", "reset": "reset to active"}

            def act(action, rid, name):
                reason = (ss.get("act_reason") or "").strip()
                try:
                    curation.set_status(db, rid, action, reason)
                except MirrorError as exc:
                    ss["flash"] = ("error", str(exc))
                    return
                ss["flash"] = ("success", f"{name} {PAST[action]}" + (f" — reason: {reason}" if reason else "") + ".")
                ss["act_reason"], ss["_sel_explicit"] = "", False  # a reason never carries over to the next action

            for col, (action, text, key) in zip(bar[2:], [("accept", "Accept", "A"), ("reject", "Reject", "X"),
                                                           ("flag", "Flag", "F"), ("reset", "Reset", None)]):
                col.button(text, key=f"act_{action}", on_click=act, args=(action, sel["id"], ss["sel_cot"]),
                           shortcut=key)
            per_row = min(3, len(cots))
            for start in range(0, len(cots), per_row):
                cols = st.columns(per_row)
                for k, cot in enumerate(cots[start:start + per_row]):
                    with cols[k]:
                        cot_card(start + k, cot, cot["id"] == sel["id"])

elif view == "Table":
    pages = max(1, -(-n_cots // PAGE_SIZE))
    ss["tpage"] = min(ss.get("tpage", 1), pages)
    t1, t2 = st.columns([1, 5])
    t1.number_input("Page", min_value=1, max_value=pages, key="tpage")
    t2.caption(f"page {ss['tpage']} of {pages} · {PAGE_SIZE} CoTs per page")
    rows = queries.cot_rows(db, f, offset=(ss["tpage"] - 1) * PAGE_SIZE, limit=PAGE_SIZE) if not search_error else []
    if rows:
        df = pd.DataFrame([{
            "question": r["example_id"], "split": r["split"], "teacher": r["teacher"],
            "answer": r["parsed_answer"], "gold": r["gold"],
            "correct": {1: "✓", 0: "✗"}.get(r["correct"], "?"),
            "verdicts": f"✓{r['v_correct']} ✗{r['v_wrong']} ?{r['v_uncertain']}",
            "status": r["status"], "rev": r["revision"], "CoT": r["cot"].replace("\n", " ⏎ "),
            "text": r["question"]} for r in rows])
        event = st.dataframe(df, hide_index=True, width="stretch", on_select="rerun",
                             selection_mode="single-row", key="table_sel")
        chosen = event.selection.rows if event and event.selection else []
        if chosen:
            ex_id = int(df.iloc[chosen[0]]["question"])

            def open_question(ex_id=ex_id):
                ss["pin_ex"], ss["view"] = ex_id, "Question"

            st.button(f"Open question {ex_id}", key="open_q", on_click=open_question, type="primary")
    else:
        st.info("No CoT matches this filter.")

elif view == "Teacher quality":
    st.caption("Accuracy of each teacher's CoTs against the gold, and how often its self-evaluation verdicts "
               "match the truth about the CoT they judge (counted per evaluator). ECE and AUROC: how well the "
               "self-evaluation's P(correct) is calibrated against the gold and separates right CoTs from wrong "
               "ones. The reference evaluator compares each answer with the gold: calibrated by construction, "
               "not a teacher's judgment. Stale self-evaluations (of an earlier text) are left out.")
    tq = queries.teacher_quality(db, f.dataset, f.kind)
    if not tq:
        st.info("No CoTs yet.")
    else:
        st.dataframe(pd.DataFrame([{
            "teacher": ("reference (answer vs gold)" if t["teacher"] == REFERENCE else t["teacher"]),
            "CoTs": t["cots"],
            "accuracy": None if t["accuracy"] is None else round(t["accuracy"], 3),
            "no answer": t["parse_errors"], "self-evals": t["self_evals"],
            "verdict matches truth": None if t["verdict_accuracy"] is None else round(t["verdict_accuracy"], 3),
            "says correct on wrong": t["confusion"]["correct"]["wrong"],
            "says wrong on right": t["confusion"]["wrong"]["right"],
            "ECE": None if t["ece"] is None else round(t["ece"], 3),
            "AUROC": None if t["auroc"] is None else round(t["auroc"], 3)} for t in tq]),
            hide_index=True, width="stretch", key="tq_table")
        cols = st.columns(min(3, len(tq)))
        for k, t in enumerate(tq):
            with cols[k % len(cols)]:
                st.markdown(f"**{t['teacher']}**: verdict × truth")
                st.dataframe(pd.DataFrame({v: {"CoT right": c["right"], "CoT wrong": c["wrong"]}
                                           for v, c in t["confusion"].items()}), width="stretch")

else:  # Snapshots
    st.subheader("Freeze a training set")
    names = queries.dataset_names(db)
    s1, s2, s3 = st.columns([2, 2, 2])
    s1.text_input("Name", key="snap_name", placeholder="e.g. gsm8k-correct-v1")
    s2.selectbox("Policy", list(snapshots.POLICIES), key="snap_policy",
                 format_func=lambda p: f"{p} — {snapshots.POLICY_HELP[p]}")
    s3.selectbox("Dataset", [""] + names, key="snap_dataset", format_func=lambda v: v or "all datasets")
    preview = snapshots.preview_counts(db, ss.get("snap_dataset") or None)
    st.caption("Would freeze now: " + " · ".join(f"{p}: **{n:,}**" for p, n in preview.items())
               + " CoTs (rejected ones never).")

    def create():
        try:
            snap = snapshots.create_snapshot(db, ss.get("snap_name", ""), ss["snap_policy"],
                                             ss.get("snap_dataset") or None)
            ss["flash"] = ("success", f"Snapshot {snap['name']}: {snap['size']:,} items, hash {snap['hash'][:16]}…")
        except MirrorError as exc:
            ss["flash"] = ("error", str(exc))

    st.button("Freeze snapshot", key="snap_create", type="primary", on_click=create)
    snaps = snapshots.list_snapshots(db)
    if snaps:
        st.subheader("Snapshots")
        st.dataframe(pd.DataFrame([{"id": s["id"], "name": s["name"], "policy": s["policy"],
                                    "dataset": s["dataset"] or "all", "size": s["size"],
                                    "splits": ", ".join(f"{k} {v}" for k, v in (s["meta"] or {}).get("splits", {}).items()),
                                    "hash": s["hash"][:16], "created": s["created_at"][:19].replace("T", " ")}
                                   for s in snaps]), hide_index=True, width="stretch", key="snap_table")
        st.caption("Export: `python -m mirror_core snapshot export NAME --format jsonl|datasets --out PATH`")
        if len(snaps) >= 2:
            st.subheader("Compare two snapshots")
            snap_names = [s["name"] for s in snaps]
            d1, d2 = st.columns(2)
            d1.selectbox("A", snap_names, key="diff_a", index=1)
            d2.selectbox("B", snap_names, key="diff_b", index=0)
            d = snapshots.diff_snapshots(db, ss["diff_a"], ss["diff_b"])
            m = st.columns(4)
            m[0].metric(f"only in {d['a']}", f"{d['only_a']:,}")
            m[1].metric(f"only in {d['b']}", f"{d['only_b']:,}")
            m[2].metric("changed", f"{d['changed']:,}")
            m[3].metric("same", f"{d['same']:,}")
            if d["identical"]:
                st.caption("Same content hash: the two snapshots hold identical items.")
    else:
        st.info("No snapshots yet. Freeze one above; training runs pin a snapshot.")

sync_url()

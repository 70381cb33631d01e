"""Review: a question's CoTs side by side with their self-evaluations; filter, search, fix, curate, freeze.

All queries page and aggregate in SQL (mirror_core.review.queries); edits go through
mirror_core.review.curation; the filter lives in the URL so a view can be shared and survives reload.
Keyboard: J next question, K previous, A accept, X reject, F flag the selected CoT.
The views are drawn by mirror_core.ui.review_* modules; this page lays them out.
"""

import streamlit as st

from mirror_core.ui import review_filters as filters
from mirror_core.ui.review_question import question_view
from mirror_core.ui.review_snapshots import snapshots_view
from mirror_core.ui.review_tables import cot_table, teacher_quality

st.set_page_config(page_title="Review · Mind's Mirror Studio", page_icon="🔍", layout="wide")
db = filters.session_conn()
filters.init_from_url()
f = filters.current_filter()

st.title("Review")
for msg in st.session_state.pop("_review_problems", []):
    st.warning(f"Link filter {msg}.")
facets, search_error = filters.facet_counts(f)
filters.sidebar(db, f, facets)
if search_error:
    st.error(search_error)
n_cots, n_questions = facets["cots"], facets["questions"]
st.markdown(f"**{n_cots:,} CoTs** in **{n_questions:,} questions** match · {f.describe()}")
filters.bulk_action(db, f, n_cots)
filters.show_flash()

view = st.radio("View", filters.VIEWS, key="view", horizontal=True, label_visibility="collapsed")
if view == "Question":
    question_view(db, f, n_questions)
elif view == "Table":
    cot_table(db, f, n_cots, search_error)
elif view == "Teacher quality":
    teacher_quality(db, f)
else:
    snapshots_view(db)
filters.sync_url(f)

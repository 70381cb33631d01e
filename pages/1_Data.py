"""Data: import (built-in, upload with a column mapping, Hugging Face), split counts, browse examples."""

import pandas as pd
import streamlit as st

from mirror_core import answers, store
from mirror_core.data import importing, queries
from mirror_core.data.builtin import BUILTINS
from mirror_core.data.mapping import FIELDS, ColumnMap, suggest_columns
from mirror_core.data.sources import default_name, preview, save_upload
from mirror_core.errors import MirrorError

st.set_page_config(page_title="Data · Mind's Mirror Studio", page_icon="🪞", layout="wide")
st.title("Data")
conn = store.connect()


def run_import(source, **kwargs):
    try:
        with st.spinner(f"Importing {source}…"):
            result = importing.import_source(conn, source, **kwargs)
    except MirrorError as exc:
        st.error(str(exc))
        return
    (st.info if result.already_imported else st.success)(result.summary())
    for note in result.notes:
        st.caption(note)


st.subheader("Import")
builtin_tab, upload_tab, hf_tab = st.tabs(["Built-in (offline)", "Upload a file", "Hugging Face"])
with builtin_tab:
    choice = st.selectbox("Built-in data set", list(BUILTINS), format_func=lambda k: f"{k} — {BUILTINS[k][1]}",
                          key="builtin_choice")
    if st.button("Import", type="primary", key="import_builtin"):
        run_import(choice)

with upload_tab:
    upload = st.file_uploader("JSONL, JSON, CSV, TSV or Parquet", type=["jsonl", "json", "csv", "tsv", "parquet"],
                              key="upload")
    if upload is not None:
        path = save_upload(upload.name, upload.getvalue())
        try:
            keys, sample = preview(str(path))
        except MirrorError as exc:
            st.error(str(exc))
        else:
            st.dataframe(pd.DataFrame(sample).astype(str), hide_index=True)
            guess = suggest_columns(keys)
            options = ["(none)"] + keys
            cols = st.columns(6)
            mapping = {}
            for col, field in zip(cols, FIELDS):
                default = guess[field]
                mapping[field] = col.selectbox(field, options, index=options.index(default) if default else 0,
                                               key=f"map_{field}")
            c1, c2 = st.columns(2)
            task = c1.selectbox("Task type", ["detect"] + list(answers.TASK_TYPES), key="upload_task_type")
            name = c2.text_input("Dataset name", default_name(upload.name), key="upload_name")
            if st.button("Import file", type="primary", key="import_upload"):
                run_import(str(path), name=name,
                           columns=ColumnMap(**{f: (v if v != "(none)" else None) for f, v in mapping.items()}),
                           task_type=None if task == "detect" else task)

with hf_tab:
    hf_source = st.text_input("hf:NAME[:CONFIG] (needs the hub) or a save_to_disk folder on this machine",
                              key="hf_source")
    hf_name = st.text_input("Dataset name (optional)", key="hf_name")
    if st.button("Import", key="import_hf", disabled=not hf_source.strip()):
        run_import(hf_source.strip(), name=hf_name.strip() or None)

st.subheader("Data sets")
datasets = queries.list_datasets(conn)
if not datasets:
    st.info("No data yet: import the built-in GSM8K above (one click, offline).")
    st.stop()
st.dataframe(pd.DataFrame([{"name": d.name, "task type": d.task_type, **d.counts, "total": d.total,
                            "source": d.source} for d in datasets]), hide_index=True)

st.subheader("Browse")
by_name = {d.name: d for d in datasets}
c1, c2, c3 = st.columns([2, 1, 3])
ds = by_name[c1.selectbox("Data set", list(by_name), key="browse_dataset")]
split = c2.selectbox("Split", ["all", "train", "dev", "test"], key="browse_split")
search = c3.text_input("Search question, answer, rationale or id", key="browse_search")
split = None if split == "all" else split
total = queries.count_examples(conn, ds.id, split, search)
page_size = 50
pages = max(1, -(-total // page_size))
page = st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, key="browse_page")
rows = queries.page_examples(conn, ds.id, split, search, limit=page_size, offset=(page - 1) * page_size)
st.caption(f"{total:,} matching examples")
st.dataframe(pd.DataFrame([{"id": r["ext_id"], "split": r["split"], "question": r["question"],
                            "choices": " | ".join(r["choices"]) if r["choices"] else "", "answer": r["answer"],
                            "rationale": r["rationale"] or ""} for r in rows]),
             hide_index=True)

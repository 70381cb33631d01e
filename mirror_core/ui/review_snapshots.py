"""Review's Snapshots view: freeze the reviewed CoTs into a training set by a policy, list the snapshots,
and compare two of them. Snapshot logic (policies, hashing, diff) lives in mirror_core.snapshots."""

from __future__ import annotations

import sqlite3

import pandas as pd
import streamlit as st

from mirror_core import snapshots
from mirror_core.data.queries import dataset_names
from mirror_core.errors import MirrorError


def _create(db: sqlite3.Connection) -> None:
    ss = st.session_state
    try:
        snap = snapshots.create_snapshot(db, ss.get("snap_name", ""), ss["snap_policy"], ss.get("snap_dataset") or None)
        ss["flash"] = ("success", f"Snapshot {snap['name']}: {snap['size']:,} items, hash {snap['hash'][:16]}…")
    except MirrorError as exc:
        ss["flash"] = ("error", str(exc))


def _freeze_form(db: sqlite3.Connection) -> None:
    st.subheader("Freeze a training set")
    names = dataset_names(db)
    s1, s2, s3 = st.columns([2, 2, 2])
    s1.text_input("Name", key="snap_name", placeholder="e.g. gsm8k-correct-v1")
    s2.selectbox("Policy", list(snapshots.POLICIES), key="snap_policy",
                 format_func=lambda p: f"{p} — {snapshots.POLICY_HELP[p]}")
    s3.selectbox("Dataset", [""] + names, key="snap_dataset", format_func=lambda v: v or "all datasets")
    preview = snapshots.preview_counts(db, st.session_state.get("snap_dataset") or None)
    st.caption("Would freeze now: " + " · ".join(f"{p}: **{n:,}**" for p, n in preview.items())
               + " CoTs (rejected ones never).")
    st.button("Freeze snapshot", key="snap_create", type="primary", on_click=_create, args=(db,))


def _compare(db: sqlite3.Connection, snaps: list[dict]) -> None:
    st.subheader("Compare two snapshots")
    snap_names = [s["name"] for s in snaps]
    d1, d2 = st.columns(2)
    d1.selectbox("A", snap_names, key="diff_a", index=1)
    d2.selectbox("B", snap_names, key="diff_b", index=0)
    d = snapshots.diff_snapshots(db, st.session_state["diff_a"], st.session_state["diff_b"])
    m = st.columns(4)
    m[0].metric(f"only in {d['a']}", f"{d['only_a']:,}")
    m[1].metric(f"only in {d['b']}", f"{d['only_b']:,}")
    m[2].metric("changed", f"{d['changed']:,}")
    m[3].metric("same", f"{d['same']:,}")
    if d["identical"]:
        st.caption("Same content hash: the two snapshots hold identical items.")


def snapshots_view(db: sqlite3.Connection) -> None:
    """The Snapshots view: the freeze form, the list, and a comparison once there are two."""
    _freeze_form(db)
    snaps = snapshots.list_snapshots(db)
    if not snaps:
        st.info("No snapshots yet. Freeze one above; training runs pin a snapshot.")
        return
    st.subheader("Snapshots")
    st.dataframe(pd.DataFrame([{"id": s["id"], "name": s["name"], "policy": s["policy"],
                                "dataset": s["dataset"] or "all", "size": s["size"],
                                "splits": ", ".join(f"{k} {v}" for k, v in (s["meta"] or {}).get("splits", {}).items()),
                                "hash": s["hash"][:16], "created": s["created_at"][:19].replace("T", " ")}
                               for s in snaps]), hide_index=True, width="stretch", key="snap_table")
    st.caption("Export: `python -m mirror_core snapshot export NAME --format jsonl|datasets --out PATH`")
    if len(snaps) >= 2:
        _compare(db, snaps)

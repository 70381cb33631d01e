"""`python -m mirror_core snapshot create|list|diff|export`: freeze and inspect training sets."""

from __future__ import annotations

import json

from mirror_core import snapshots, store


def register(sub) -> None:
    p = sub.add_parser("snapshot", help="freeze the training set under a policy; list, diff, export")
    ssub = p.add_subparsers(dest="snapshot_command", metavar="ACTION", required=True)

    q = ssub.add_parser("create", help="freeze the current CoTs as a named, hashed snapshot")
    q.add_argument("name")
    q.add_argument("--policy", required=True, choices=list(snapshots.POLICIES),
                   help="; ".join(f"{k}: {v}" for k, v in snapshots.POLICY_HELP.items()))
    q.add_argument("--dataset", help="only this dataset's CoTs")
    q.add_argument("--teacher", action="append", metavar="SPEC",
                   help="only CoTs (and their self-evaluations) by this teacher, as stored, e.g. 'palm', "
                        "'fake', 'openai:gpt-4o-mini'; repeat for several")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(func=cmd_create)

    q = ssub.add_parser("list", help="all snapshots, newest first")
    q.add_argument("--json", action="store_true", help="print a JSON list")
    q.set_defaults(func=cmd_list)

    q = ssub.add_parser("diff", help="what differs between two snapshots")
    q.add_argument("a")
    q.add_argument("b")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(func=cmd_diff)

    q = ssub.add_parser("export", help="write a snapshot to JSONL or a `datasets` folder")
    q.add_argument("name")
    q.add_argument("--format", choices=("jsonl", "datasets"), default="jsonl")
    q.add_argument("--out", required=True, help="file (jsonl) or folder (datasets) to write")
    q.set_defaults(func=cmd_export)


def cmd_create(args) -> int:
    snap = snapshots.create_snapshot(store.connect(), args.name, args.policy, args.dataset,
                                     teachers=args.teacher)
    if args.json:
        print(json.dumps(snap))
    else:
        print(f"snapshot {snap['name']} (id {snap['id']}): policy {snap['policy']}, "
              f"size {snap['size']}, hash {snap['hash']}"
              + (f", teachers {', '.join(snap['teachers'])}" if snap["teachers"] else ""))
    return 0


def cmd_list(args) -> int:
    rows = snapshots.list_snapshots(store.connect())
    if args.json:
        keep = ("id", "name", "policy", "dataset", "size", "hash", "created_at")
        print(json.dumps([{k: r[k] for k in keep} for r in rows]))
        return 0
    if not rows:
        print("no snapshots yet; create one with `python -m mirror_core snapshot create NAME --policy all`")
    for r in rows:
        print(f"{r['id']:>4}  {r['name']:24} {r['policy']:18} size {r['size']:>7}  {r['hash'][:12]}  "
              f"{r['dataset'] or 'all datasets'}  {r['created_at']}")
    return 0


def cmd_diff(args) -> int:
    d = snapshots.diff_snapshots(store.connect(), args.a, args.b)
    if args.json:
        print(json.dumps(d))
        return 0
    print(f"{d['a']} vs {d['b']}: " + ("identical content" if d["identical"] else "different content"))
    print(f"  only in {d['a']}: {d['only_a']}\n  only in {d['b']}: {d['only_b']}\n"
          f"  changed (revision or self-evaluations): {d['changed']}\n  same: {d['same']}")
    return 0


def cmd_export(args) -> int:
    conn = store.connect()
    if args.format == "jsonl":
        n = snapshots.export_jsonl(conn, args.name, args.out)
        print(f"wrote {n} rows to {args.out}")
    else:
        per_split = snapshots.export_datasets(conn, args.name, args.out)
        print(f"wrote {sum(per_split.values())} rows to {args.out} "
              + " ".join(f"{k}={v}" for k, v in per_split.items()))
    return 0

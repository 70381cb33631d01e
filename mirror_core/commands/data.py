"""`import`, `export` and `datasets`: data commands of `python -m mirror_core`."""

from __future__ import annotations

import argparse

from mirror_core import answers, store


def register(subparsers) -> None:
    from mirror_core.data.builtin import BUILTINS

    p = subparsers.add_parser(
        "import", help="import a data set (built-in, file, save_to_disk folder or hf:NAME)",
        description="Import a data set in one transaction: all rows or none. Built-ins: "
                    + "; ".join(f"{k}: {v[1]}" for k, v in BUILTINS.items()) + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE",
                   help=f"a built-in name ({', '.join(BUILTINS)}), a .jsonl/.json/.csv/.tsv/.parquet file, "
                        "a datasets save_to_disk folder, or hf:NAME[:CONFIG]")
    p.add_argument("--name", help="dataset name (default: the built-in's name or the file's stem)")
    for field in ("id", "question", "answer", "rationale", "choices", "split"):
        p.add_argument(f"--{field}", metavar="COL", help=f"column holding the {field} (default: found by usual names)")
    p.add_argument("--task-type", choices=answers.TASK_TYPES, help="override the detected task type")
    p.set_defaults(func=cmd_import)

    p = subparsers.add_parser("export", help="export a data set to JSONL or a datasets folder")
    p.add_argument("name", metavar="NAME", help="dataset name")
    p.add_argument("--format", choices=("jsonl", "datasets"), default="jsonl", help="output format (default jsonl)")
    p.add_argument("--out", required=True, metavar="PATH", help="output file (jsonl) or new folder (datasets)")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("datasets", help="list data sets with their split counts")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_datasets)


def cmd_import(args) -> int:
    from mirror_core.data.importing import import_source
    from mirror_core.data.mapping import ColumnMap

    columns = ColumnMap(id=args.id, question=args.question, answer=args.answer, rationale=args.rationale,
                        choices=args.choices, split=args.split)
    result = import_source(store.connect(), args.source, name=args.name, columns=columns,
                           task_type=args.task_type)
    print(result.summary())
    for note in result.notes:
        print(f"note: {note}")
    return 0


def cmd_export(args) -> int:
    from mirror_core.data.export import export

    n = export(store.connect(), args.name, args.format, args.out)
    print(f"exported {n} examples of '{args.name}' to {args.out} ({args.format})")
    return 0


def cmd_datasets(args) -> int:
    import json

    from mirror_core.data.queries import list_datasets

    infos = list_datasets(store.connect())
    if args.json:
        print(json.dumps([{"name": d.name, "task_type": d.task_type, "source": d.source, "counts": d.counts,
                           "total": d.total} for d in infos]))
        return 0
    if not infos:
        print("no datasets yet; try: python -m mirror_core import gsm8k")
        return 0
    width = max(len(d.name) for d in infos)
    print(f"{'name':{width}}  {'task type':15} {'train':>7} {'dev':>7} {'test':>7}  source")
    for d in infos:
        c = d.counts
        print(f"{d.name:{width}}  {d.task_type:15} {c['train']:>7} {c['dev']:>7} {c['test']:>7}  {d.source}")
    return 0

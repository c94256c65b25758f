"""``bytelm prepare``: text, JSON lines, parquet, arrow or compressed files, folders or stdin ->
train/val/test.bin + meta.json."""


def add_parser(sub) -> None:
    from bytelm.data.formats import FORMATS
    p = sub.add_parser("prepare", help="build train/val/test splits from text, jsonl, parquet, arrow "
                                       "or compressed files, folders or stdin")
    p.add_argument("sources", nargs="+", help="files, folders (recursive; a datasets.save_to_disk "
                                              "folder is one source) or - for stdin")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--split-rule", default="auto", choices=["auto", "fraction", "enwik8"],
                   help="auto: split by file name (train/valid/test), else 90/5/5 per file at line "
                        "boundaries; a file named enwik8 gets the standard 90M/5M/5M split")
    p.add_argument("--pattern", default="*", help="file-name glob inside folders (default: all files)")
    p.add_argument("--format", default="auto", choices=FORMATS, dest="fmt",
                   help="auto: by suffix (.jsonl/.json/.ndjson, .parquet, .arrow, .bin raw, else text; "
                        ".gz/.zst/.xz/.bz2 decompressed) checked against the magic bytes; raw: any "
                        "file's bytes as they are")
    p.add_argument("--text-field", default="text",
                   help="JSON field or table column with the text; a.b reads a nested field (default: text)")
    p.add_argument("--doc-sep", default="\\n",
                   help="separates documents (JSON lines, rows, files): the text before each "
                        "document is made to end with it, adding the fewest bytes; escapes \\n \\t "
                        "\\0 \\xHH; '' for none (default: \\n)")
    p.set_defaults(func=run)


def run(args) -> int:
    from bytelm.data import prepare
    from bytelm.data.splits import parse_sep
    meta = prepare(args.sources, args.out, split_rule=args.split_rule, pattern=args.pattern,
                   doc_sep=parse_sep(args.doc_sep), fmt=args.fmt, text_field=args.text_field,
                   progress=True)
    sizes = {k: meta["splits"][k]["bytes"] for k in meta["splits"]}
    print(f"prepared {args.out}: " + ", ".join(f"{k} {v:,} bytes" for k, v in sizes.items()))
    return 0

"""``bytelm prepare``: text files, folders or stdin -> train/val/test.bin + meta.json."""


def add_parser(sub) -> None:
    p = sub.add_parser("prepare", help="build train/val/test splits from text files, folders or stdin")
    p.add_argument("sources", nargs="+", help="files, folders (recursive) or - for stdin")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--split-rule", default="auto", choices=["auto", "fraction", "enwik8"],
                   help="auto: split by file name (train/valid/test), else 90/5/5 per file at line "
                        "boundaries; a file named enwik8 gets the standard 90M/5M/5M split")
    p.add_argument("--pattern", default="*", help="file-name glob inside folders (default: all files)")
    p.set_defaults(func=run)


def run(args) -> int:
    from bytelm.data import prepare
    meta = prepare(args.sources, args.out, split_rule=args.split_rule, pattern=args.pattern)
    sizes = meta.get("sizes") or {k: meta["splits"][k]["bytes"] for k in meta.get("splits", {})}
    print(f"prepared {args.out}: " + ", ".join(f"{k} {v:,} bytes" for k, v in sizes.items()))
    return 0

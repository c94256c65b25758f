"""``bytelm info``: presets, architecture and exact parameter counts.

Models are built on the ``meta`` device: shapes without memory, so listing the 129M presets costs
neither the seconds nor the gigabyte of initialising their weights, and the counts stay exact.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="list presets, or show one preset's architecture")
    p.add_argument("preset", nargs="?", help="preset name (omit to list all)")
    p.set_defaults(func=run)


def shape_only(name: str):
    """Preset ``name`` built on the meta device (no weights allocated or initialised)."""
    import torch

    from bytelm.registry import create_model
    with torch.device("meta"):
        return create_model(name)


def run(args) -> int:
    from bytelm.registry import list_presets
    if not args.preset:
        print(f"{'preset':<22}{'params':>14}  family")
        for name in list_presets():
            m = shape_only(name)
            print(f"{name:<22}{m.n_params():>14,}  {m.config.family}")
        return 0
    model = shape_only(args.preset)
    print(f"preset {args.preset} (family {model.config.family})")
    for k, v in model.config.to_dict().items():
        print(f"  {k} = {v}")
    print(model)
    print(f"parameters: {model.n_params():,} ({model.n_params(non_embedding=True):,} non-embedding)")
    print(f"training FLOPs per byte at context {model.config.context}: "
          f"{model.flops_per_byte(model.config.context):,.0f}")
    return 0

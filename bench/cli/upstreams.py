"""`layerbench list upstreams` and `layerbench describe SPEC`: what can be loaded, and what
one upstream exposes (every layer's index, dim, stride, frame rate, final LayerNorm)."""

from __future__ import annotations

import argparse

ORDER = 10


def layer_table(up) -> str:
    """The layer table of a loaded upstream as fixed-width text."""
    rows = [("index", "name", "dim", "stride", "rate_Hz", "final_LN")]
    for spec in up.layers:
        rows.append((str(spec.index), spec.name, str(spec.dim), str(spec.stride), f"{spec.frame_rate:.2f}",
                     "yes" if spec.final_norm else "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i != 1 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)


def cmd_list(args: argparse.Namespace) -> int:
    import upstreams

    print("upstream families (spec = family:argument):")
    fams = upstreams.families()
    w = max(map(len, fams))
    for name, desc in fams.items():
        print(f"  {name.ljust(w)}  {desc}")
    print("randinit presets (randinit:<preset>):")
    pre = upstreams.presets()
    w = max(map(len, pre))
    for name, desc in pre.items():
        print(f"  {name.ljust(w)}  {desc}")
    from upstreams.hf import shipped_models

    shipped = shipped_models()
    print("models shipped with LayerBench (hf:<name>, made with `layerbench pretrain`):")
    for name, folder in shipped.items():
        print(f"  {name}  ({folder})")
    print(f"{len(fams)} families, {len(pre)} randinit presets, {len(shipped)} shipped models")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    import upstreams

    options = {"cnn_layers": True} if args.cnn_layers else {}
    if args.seed is not None:
        options["seed"] = args.seed
    if args.no_weights:
        options["pretrained"] = False
    up = upstreams.load(args.spec, **options)
    print(f"upstream {up.spec}  revision {up.revision}")
    print(layer_table(up))
    n_cnn = sum(1 for s in up.layers if s.index < 0)
    extra = f" ({n_cnn} CNN + {len(up.layers) - n_cnn} transformer positions)" if n_cnn else ""
    plural = "s" if len(up.layers) != 1 else ""
    print(f"{len(up.layers)} layer{plural}{extra}, {up.num_params:,} parameters; nothing written")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list what can be used (upstreams: families and randinit presets)")
    p.add_argument("what", choices=["upstreams"], help="what to list")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("describe", help="print an upstream's layer table and parameter count")
    p.add_argument("spec", help="upstream spec, e.g. randinit:hubert-base, hf:facebook/hubert-base-ls960, fbank")
    p.add_argument("--cnn-layers", action="store_true", help="also list the conv feature-encoder layers (cnn1..cnnN)")
    p.add_argument("--seed", type=int, default=None, help="weight seed for randinit / torchaudio without weights")
    p.add_argument("--no-weights", action="store_true",
                   help="torchaudio: build the pipeline's architecture with random weights instead of downloading")
    p.set_defaults(func=cmd_describe)

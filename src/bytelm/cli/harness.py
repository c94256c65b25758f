"""``bytelm lm-eval ARGS``: lm-evaluation-harness's CLI with the ``bytelm`` model type registered.

Everything after ``lm-eval`` goes to lm_eval unchanged, e.g.
``bytelm lm-eval --model bytelm --model_args pretrained=runs/en --tasks lambada_openai``.
"""
import argparse
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("lm-eval", help="run lm-evaluation-harness with --model bytelm "
                                       "(arguments go to lm_eval)", add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER, help="lm_eval's arguments")
    p.set_defaults(func=run, passthrough=True)


def run(args) -> int:
    from bytelm.hf import require
    require("lm_eval", extra="lm-eval")
    import bytelm.eval.harness  # noqa: F401 - registers --model bytelm
    from lm_eval.__main__ import cli_evaluate
    old = sys.argv
    sys.argv = ["lm-eval", *args.rest]
    try:
        cli_evaluate()
    except SystemExit as e:  # lm_eval's argparse: it has printed its own message
        return e.code if isinstance(e.code, int) else 1
    except ValueError as e:  # lm_eval's checks of its arguments (no tasks, bad model_args)
        if args.verbose:
            raise
        from bytelm.errors import UserError
        raise UserError(f"lm_eval: {(str(e).splitlines() or ['ValueError'])[0]}") from None
    finally:
        sys.argv = old
    return 0

"""``bytelm serve``: a local web playground over the runs named on the command line."""
import logging

from bytelm.errors import UserError

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="local web playground: surprisal, patches, compare, generate, curves")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run or checkpoint folders (only these can be shown)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0: any free one)")
    p.add_argument("--max-bytes", type=int, default=65536, help="longest text to score, in bytes")
    p.add_argument("--max-new-bytes", type=int, default=2048, help="most bytes one generation may ask for")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def _import_server():
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as e:
        raise UserError(f"bytelm serve needs the serve extra ({e.name} is missing): "
                        "pip install 'bytelm[serve]'") from None
    return uvicorn


def make_server(args):
    """The uvicorn server for ``args``, its bound socket and the URL it will answer on."""
    import socket

    from bytelm.serve import ServeConfig, create_app, load_runs
    from bytelm.serve.config import LOOPBACK
    from bytelm.train.distributed import pick_device
    uvicorn = _import_server()
    cfg = ServeConfig(host=args.host, port=args.port, max_bytes=args.max_bytes,
                      max_new_bytes=args.max_new_bytes)
    if cfg.is_loopback:
        cfg.allowed_hosts = [h for h in LOOPBACK if ":" not in h]
    else:
        log.warning("listening on %s: anyone who can reach this address can use the loaded models", cfg.host)
    runs = load_runs(args.runs, pick_device(args.device))
    sock = socket.socket(socket.AF_INET6 if ":" in cfg.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((cfg.host, cfg.port))
    except OSError as e:
        sock.close()
        raise UserError(f"cannot listen on {cfg.host}:{cfg.port}: {e.strerror or e}") from None
    # on ::1 the Host check knows the name localhost, not [::1]
    shown = "localhost" if cfg.host == "::1" else f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    server = uvicorn.Server(uvicorn.Config(create_app(runs, cfg), log_level="warning",
                                           timeout_graceful_shutdown=1))
    return server, sock, url, list(runs)


def run(args) -> int:
    server, sock, url, names = make_server(args)
    print(f"bytelm serve: {', '.join(names)} at {url}  (Ctrl-C stops)", flush=True)
    server.run(sockets=[sock])
    return 0

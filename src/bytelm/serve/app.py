"""The ``bytelm serve`` web app: a JSON API over the loaded runs plus the static page.

Endpoints (all JSON unless noted; errors are ``{"error": "<one line>"}`` with a 4xx status):

    GET  /                      the page (static/index.html)
    GET  /api/runs              the runs named at start
    GET  /api/runs/{name}/curves  train/val bits per byte from the run's metrics.jsonl
    POST /api/score             {run, text | data_b64, top_k} -> per-byte bits, candidates, patch ends
    POST /api/generate          {run, prompt, max_bytes, temperature, top_k, top_p, mode, ...}
                                -> text/event-stream: one ``data: {"byte": b}`` event per byte,
                                then ``event: done``; one generation at a time (409 otherwise)
    GET  /api/status            {"generating": bool}

Safety: only the runs loaded at start can be named (requests carry names, never paths), request
bodies, texts and generation lengths are bounded, and model work runs one request at a time.
"""
import asyncio
import base64
import binascii
import json
import logging
from functools import partial
from importlib import resources
from typing import Literal

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from bytelm.errors import UserError
from bytelm.precision import autocast_ctx
from bytelm.serve.config import ServeConfig
from bytelm.serve.guard import RequestGuard

log = logging.getLogger(__name__)
STATIC = resources.files("bytelm.serve") / "static"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoreRequest(_Strict):
    """Score a text (UTF-8 ``text``) or raw bytes (``data_b64``) with one run."""

    run: str
    text: str | None = None
    data_b64: str | None = None
    top_k: int = Field(5, ge=1, le=16)


class GenerateRequest(_Strict):
    """Stream a continuation of ``prompt``; the sampling fields are ``iter_generate``'s."""

    run: str
    prompt: str = Field(min_length=1)
    max_bytes: int = Field(200, ge=1)
    temperature: float = Field(0.8, ge=0.0, le=10.0)
    top_k: int = Field(0, ge=0, le=256)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    mode: Literal["standard", "entropy"] = "standard"
    entropy_low: float = Field(0.3, ge=0.0, le=8.0)
    entropy_high: float = Field(1.2, ge=0.0, le=8.0)
    seed: int | None = Field(None, ge=0, lt=2**63)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    """One line from pydantic's error list, e.g. ``top_p: Input should be less than or equal to 1``."""
    parts = []
    for e in exc.errors():
        if e.get("type") == "json_invalid":
            return "the request body is not valid JSON"
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    return "; ".join(parts) or "malformed request"


def _request_bytes(req: ScoreRequest, limit: int) -> bytes:
    if (req.text is None) == (req.data_b64 is None):
        raise HTTPException(400, "give exactly one of text and data_b64")
    if req.text is not None:
        data = req.text.encode("utf-8", errors="surrogatepass")
    else:
        try:
            data = base64.b64decode(req.data_b64, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(400, "data_b64 is not valid base64") from None
    if len(data) > limit:
        raise HTTPException(413, f"the text is {len(data):,} bytes, more than this server's limit of "
                                 f"{limit:,} (bytelm serve --max-bytes)")
    if len(data) < 2:
        raise HTTPException(400, "give at least 2 bytes: the first byte has no context and is not scored")
    return data


def _scores_json(run_name: str, data: bytes, s) -> JSONResponse:
    """ByteScores as JSON (bits and probabilities rounded to 1e-4 for the page; totals exact),
    encoded directly: FastAPI's generic encoder is slow on 10^5 numbers."""
    import numpy as np
    bits = np.round(s.bits, 4).tolist()
    bits[0] = None  # NaN: byte 0 is not scored
    body = {"run": run_name, "bytes": list(data), "bits": bits,
            "top_bytes": s.top_bytes.tolist(), "top_probs": np.round(s.top_probs, 4).tolist(),
            "ends": None if s.ends is None else s.ends.astype(int).tolist(), **s.totals}
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def _next_byte(it, device):
    """The generator's next byte (None at its end) under ``bytelm generate``'s default precision
    (bf16 autocast on CUDA, fp32 on CPU). Autocast is per thread and every byte may run in another
    worker thread, so each step enters it; the decoder, made at the first step, keeps its caches
    in that dtype."""
    with autocast_ctx(device, "auto"):
        return next(it, None)


def create_app(runs: dict, config: ServeConfig | None = None) -> FastAPI:
    """The app serving ``runs`` ({name: LoadedRun}) under the limits of ``config``."""
    from bytelm.eval.plots import load_curves
    from bytelm.eval.surprisal import score_bytes
    from bytelm.generate.batch import iter_generate
    cfg = config or ServeConfig()
    app = FastAPI(title="bytelm serve", docs_url=None, redoc_url=None, openapi_url=None)
    compute = asyncio.Lock()  # scoring: one request at a time
    generating = asyncio.Lock()  # generation: one stream at a time

    def get_run(name: str):
        if name not in runs:
            raise HTTPException(404, f"unknown run {name!r} (loaded: {', '.join(runs)})")
        return runs[name]

    @app.exception_handler(HTTPException)
    async def _http_error(request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        return _error(422, _validation_message(exc))

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index():
        with resources.as_file(STATIC / "index.html") as f:
            return FileResponse(f, media_type="text/html")

    @app.get("/api/runs")
    async def list_runs():
        return {"runs": [r.describe() for r in runs.values()],
                "limits": {"max_bytes": cfg.max_bytes, "max_new_bytes": cfg.max_new_bytes}}

    @app.get("/api/runs/{name}/curves")
    async def curves(name: str):
        run = get_run(name)
        if run.run_dir is None:
            raise HTTPException(404, f"run {name!r} has no metrics.jsonl (a bare checkpoint)")
        try:
            c = load_curves(run.run_dir)
        except UserError as e:
            raise HTTPException(404, str(e)) from None
        step = max(1, len(c["train"][0]) // cfg.max_curve_points)
        train = [list(col[::step]) for col in c["train"]]
        return {"name": name, "train": {"step": train[0], "bpb": train[2]},
                "val": {"step": list(c["val"][0]), "bpb": list(c["val"][2])}}

    @app.get("/api/status")
    async def status():
        return {"generating": generating.locked()}

    @app.post("/api/score")
    async def score(req: ScoreRequest):
        run = get_run(req.run)
        data = _request_bytes(req, cfg.max_bytes)
        ctx = run.model.config.context
        async with compute:
            s = await anyio.to_thread.run_sync(
                lambda: score_bytes(run.model, data, ctx, batch_size=cfg.batch_size, top_k=req.top_k))
        return _scores_json(run.name, data, s)

    @app.post("/api/generate")
    async def generate(req: GenerateRequest, request: Request):
        run = get_run(req.run)
        if req.max_bytes > cfg.max_new_bytes:
            raise HTTPException(413, f"max_bytes {req.max_bytes} is more than this server's limit of "
                                     f"{cfg.max_new_bytes} (bytelm serve --max-new-bytes)")
        if req.entropy_low > req.entropy_high:
            raise HTTPException(422, "entropy_low must be <= entropy_high")
        try:
            await asyncio.wait_for(generating.acquire(), cfg.busy_wait_s)
        except (asyncio.TimeoutError, TimeoutError):
            raise HTTPException(409, "another generation is running: stop it first") from None
        it = iter_generate(run.model, req.prompt.encode("utf-8", errors="surrogatepass"),
                           max_bytes=req.max_bytes, temperature=req.temperature, top_k=req.top_k,
                           top_p=req.top_p, seed=req.seed, mode=req.mode,
                           entropy_low=req.entropy_low, entropy_high=req.entropy_high)
        step = partial(_next_byte, it, next(run.model.parameters()).device)
        try:
            # the first byte here, so a bad prompt is a 4xx rather than an error mid-stream
            first = await anyio.to_thread.run_sync(step)
        except UserError as e:
            generating.release()
            raise HTTPException(400, str(e)) from None
        except BaseException:
            generating.release()
            raise

        async def events():
            n, b = 0, first
            try:
                while b is not None:
                    yield f"data: {json.dumps({'byte': b})}\n\n"
                    n += 1
                    # the page's stop button closes the connection; the server may not notice
                    # on writing, so ask before every byte
                    if await request.is_disconnected():
                        return
                    b = await anyio.to_thread.run_sync(step)
                yield f"event: done\ndata: {json.dumps({'n': n})}\n\n"
            finally:
                it.close()
                generating.release()
                log.debug("generation ended after %d bytes", n)
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return RequestGuard.wrap(app, cfg)

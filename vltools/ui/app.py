"""``vltools ui``: a local web app over the registry, on the MCP HTTP server's stack (Starlette + uvicorn).

Pages: the tool catalogue with a form generated from each input schema and the typed result
rendered; collections with counts and models; text, image and video search with thumbnails and
scores (video hits link to their best time), text hits reranked before/after; fact-check proofs
step by step; background runs with live progress. Server-rendered Jinja templates, one small
script. Every tool runs through the registry, in a worker thread.

Guard rules are the MCP HTTP server's (`vltools.server`): loopback by default; any other address
needs ``VLTOOLS_HTTP_TOKEN``; a token that is set is required everywhere (``Authorization:
Bearer`` or the cookie set by ``/login?token=...``). On loopback, a foreign ``Host`` header is
refused (DNS rebinding) and so is a POST whose ``Origin`` is another site (CSRF). Media are served
only from the allowed roots (`vltools.core.paths`) and only with image/video suffixes.
"""

from __future__ import annotations

import hmac
import io
import itertools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vltools.core.context import Context
from vltools.core.errors import InvalidInput, NotFound, ToolError
from vltools.core.registry import Registry, get_registry
from vltools.core.settings import get_settings
from vltools.server import check_http_binding, is_loopback
from vltools.ui.forms import form_fields, parse_form
from vltools.ui.render import IMAGE_SUFFIXES, VIDEO_SUFFIXES, render_value

HERE = Path(__file__).resolve().parent
COOKIE = "vltools_ui_token"
MAX_JOBS = 100
THUMB_SIDE = 320
TEXT_RERANKERS = ("rerank.icr", "rerank.first", "rerank.listwise", "rerank.pointwise")
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "[::1]", "::1"}


# -- background runs ---------------------------------------------------------------------------
@dataclass
class Job:
    id: str
    name: str
    inp: dict[str, Any]
    status: str = "queued"  # queued | running | done | failed
    done: float = 0.0
    total: float | None = None
    note: str = ""
    result: Any = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None

    @property
    def started_text(self) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self.started))

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status, "done": self.done, "total": self.total,
                "note": self.note, "error": self.error, "seconds": (self.finished or time.time()) - self.started}


class Jobs:
    """Runs started from the UI, newest kept (bounded); each runs in its own thread."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.items: OrderedDict[str, Job] = OrderedDict()
        self.lock = threading.Lock()
        self.ids = itertools.count(1)

    def start(self, name: str, inp: dict[str, Any]) -> Job:
        job = Job(id=f"r{next(self.ids)}", name=name, inp=inp)
        with self.lock:
            self.items[job.id] = job
            while len(self.items) > MAX_JOBS:
                self.items.popitem(last=False)

        def progress(done: float, total: float | None, note: str) -> None:
            job.done, job.total, job.note = done, total, note

        def work() -> None:
            job.status = "running"
            try:
                job.result = self.reg.call(name, inp, ctx=Context(progress=progress)).model_dump(mode="json")
                job.status = "done"
            except ToolError as err:
                job.error, job.status = err.render(), "failed"
            except Exception as err:  # a bug: shown on the run's page, the server keeps going
                job.error, job.status = f"internal error: {type(err).__name__}: {err}", "failed"
            finally:
                job.finished = time.time()

        threading.Thread(target=work, name=f"vltools-ui-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job:
        with self.lock:
            job = self.items.get(job_id)
        if job is None:
            raise NotFound(f"no run {job_id!r}", hint="see /jobs for the runs of this server")
        return job

    def list(self) -> list[Job]:
        with self.lock:
            return list(reversed(self.items.values()))


# -- guard -------------------------------------------------------------------------------------
def _host_name(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.index("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware with the MCP HTTP server's rules, adapted to a browser (cookie token, CSRF)."""

    def __init__(self, app: Any, *, host: str, token: str | None) -> None:
        self.app, self.token = app, token.encode() if token else None
        self.hosts = (LOOPBACK_NAMES | {host.lower()}) if is_loopback(host) else None

    def _ok_token(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.strip().encode(), self.token)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse, RedirectResponse

        req = Request(scope)
        if self.hosts is not None and _host_name(req.headers.get("host", "")) not in self.hosts:
            await PlainTextResponse("invalid Host header", status_code=421)(scope, receive, send)
            return
        origin = req.headers.get("origin")
        if req.method not in ("GET", "HEAD") and origin and origin != "null":
            if urlsplit(origin).netloc.lower() != req.headers.get("host", "").lower():
                await PlainTextResponse("cross-site request refused", status_code=403)(scope, receive, send)
                return
        if self.token is not None:
            if req.url.path == "/login" and self._ok_token(req.query_params.get("token", "")):
                resp = RedirectResponse("/", status_code=303)
                resp.set_cookie(COOKIE, self.token.decode(), httponly=True, samesite="strict")
                await resp(scope, receive, send)
                return
            scheme, _, given = req.headers.get("authorization", "").partition(" ")
            bearer = scheme.lower() == "bearer" and self._ok_token(given)
            if not (bearer or self._ok_token(req.cookies.get(COOKIE, ""))):
                await PlainTextResponse(
                    "unauthorized: open /login?token=YOUR_TOKEN once (the VLTOOLS_HTTP_TOKEN of this server), "
                    "or send Authorization: Bearer",
                    status_code=401, headers={"www-authenticate": 'Bearer realm="vltools"'},
                )(scope, receive, send)
                return
        await self.app(scope, receive, send)


# -- the app -----------------------------------------------------------------------------------
def build_ui_app(*, host: str = "127.0.0.1", token: str | None = None, registry: Registry | None = None) -> Any:
    """The UI's ASGI app (guarded as described in the module docstring)."""
    import anyio
    import jinja2
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)

    def reg() -> Registry:
        return registry if registry is not None else get_registry()

    jobs = Jobs(reg())
    thumbs: OrderedDict[tuple, bytes] = OrderedDict()
    thumbs_lock = threading.Lock()

    def page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.setdefault("error", None)
        return HTMLResponse(env.get_template(name).render(**ctx), status_code=status)

    async def call(name: str, inp: dict[str, Any]) -> tuple[Any, float]:
        t0 = time.monotonic()
        out = await anyio.to_thread.run_sync(lambda: reg().call(name, inp), abandon_on_cancel=True)
        return out, time.monotonic() - t0

    async def collections() -> list[Any]:
        out, _ = await call("collection.list", {})
        return list(out.collections)

    async def index(request: Request) -> Response:
        return page("index.html", entries=reg().list())

    async def tool_page(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            spec = reg().spec(name)
            t = reg().get(spec.name)
        except (ToolError, KeyError) as err:
            return page("index.html", status=404, entries=reg().list(), error=_message(err))
        fields = form_fields(t.input_model.model_json_schema())
        values: dict[str, Any] = {}
        result = before = None
        seconds = 0.0
        error = None
        status = 200
        if request.method == "POST":
            form = await request.form()
            values = {k: v for k, v in form.items() if isinstance(v, str)}
            try:
                inp = parse_form(fields, values, raw_json=values.get("__json__", ""))
                if spec.effects == "destructive" and values.get("__confirm__") is None:
                    raise InvalidInput(f"{spec.name} deletes or overwrites stored data",
                                       hint="tick 'I understand' and run it again")
                if values.get("__background__") is not None:
                    job = jobs.start(spec.name, inp)
                    return RedirectResponse(f"/jobs/{job.id}", status_code=303)
                out, seconds = await call(spec.name, inp)
                data = out.model_dump(mode="json")
                result = render_value(data)
                if spec.name.startswith("rerank."):
                    before = _input_order(inp)
            except ToolError as err:
                error, status = err.render(), 400
            except Exception as err:  # a bug in a tool: shown, the server keeps going
                error, status = f"internal error: {type(err).__name__}: {err}", 500
        return page("tool.html", status=status, spec=spec, fields=fields, values=values, result=result,
                    before=before, seconds=seconds, error=error)

    async def collections_page(request: Request) -> Response:
        return page("collections.html", collections=await collections(), home=get_settings().home)

    async def search_page(request: Request) -> Response:
        colls = await collections()
        q = request.query_params
        query = {"collection": q.get("collection") or (colls[0].name if colls else ""), "query": q.get("query", ""),
                 "k": q.get("k") or "10", "rerank": q.get("rerank", "")}
        rerankers = [r for r in TEXT_RERANKERS if r in reg().names()]
        ctx: dict[str, Any] = {"collections": colls, "q": query, "hits": None, "reranked": None, "tool": None,
                               "seconds": 0.0, "kind": None, "rerankers": rerankers}
        if not query["query"].strip():
            return page("search.html", **ctx)
        try:
            coll = next((c for c in colls if c.name == query["collection"]), None)
            if coll is None:
                raise NotFound(f"no collection {query['collection']!r}", hint="see /collections")
            try:
                k = int(query["k"])
            except ValueError:
                raise InvalidInput(f"k: {query['k']!r} is not an integer") from None
            ctx["kind"] = coll.kind
            if coll.kind in ("image", "video"):
                name = f"{coll.kind}.search"
                out, secs = await call(name, {"collection": coll.name, "query": query["query"], "k": k})
                ctx["hits"] = render_value(out.model_dump(mode="json")["hits"])
            else:
                retriever = ("retrieve.hybrid" if "hybrid" in coll.retrievers
                             else "retrieve.dense" if "dense" in coll.retrievers else "retrieve.bm25")
                name = retriever
                out, secs = await call(retriever, {"collection": coll.name, "query": query["query"], "k": k})
                ctx["hits"] = render_value(_text_rows(out.hits))
                if query["rerank"] and out.hits:
                    if query["rerank"] not in ctx["rerankers"]:
                        raise InvalidInput(f"unknown reranker {query['rerank']!r}", hint=", ".join(ctx["rerankers"]))
                    ranked, more = await call(query["rerank"], {"query": query["query"],
                                                                "ranking": out.model_dump(mode="json")})
                    ctx["reranked"] = render_value(_text_rows(ranked.hits, before=[h.id for h in out.hits]))
                    secs += more
                    name = f"{retriever} + {query['rerank']}"
            ctx["tool"], ctx["seconds"] = name, secs
        except ToolError as err:
            return page("search.html", status=400, error=err.render(), **ctx)
        return page("search.html", **ctx)

    async def factcheck_page(request: Request) -> Response:
        colls = await collections()
        q = request.query_params
        query = {"claim": q.get("claim", ""), "collection": q.get("collection", "")}
        ctx: dict[str, Any] = {"collections": colls, "q": query, "out": None, "evidence": None, "seconds": 0.0}
        if query["claim"].strip():
            try:
                out, ctx["seconds"] = await call("graph.fact_check", {"claim": query["claim"],
                                                                      "collection": query["collection"] or None})
                ctx["out"] = out
                ctx["evidence"] = render_value(out.model_dump(mode="json")["evidence"])
            except ToolError as err:
                return page("factcheck.html", status=400, error=err.render(), **ctx)
        return page("factcheck.html", **ctx)

    async def jobs_page(request: Request) -> Response:
        return page("jobs.html", jobs=jobs.list())

    async def job_page(request: Request) -> Response:
        job_id = request.path_params["job"]
        as_json = job_id.endswith(".json")
        try:
            job = jobs.get(job_id.removesuffix(".json"))
        except ToolError as err:
            return JSONResponse(err.to_dict(), 404) if as_json else page("jobs.html", 404, jobs=jobs.list(),
                                                                          error=err.render())
        if as_json:
            return JSONResponse(job.public())
        result = render_value(job.result) if job.status == "done" else None
        return page("job.html", job=job, result=result, error=job.error)

    def media_path(request: Request) -> Path:
        from vltools.core.paths import check_path

        p = check_path(request.query_params.get("path", ""), get_settings(), what="media file")
        if p.suffix.lower() not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
            raise InvalidInput(f"{p.name} is not an image or a video", hint="only media files are served")
        return p

    async def media(request: Request) -> Response:
        try:
            return FileResponse(media_path(request))
        except ToolError as err:
            return Response(err.render(), status_code=404 if err.code == "not_found" else 403, media_type="text/plain")

    def make_thumb(p: Path, at: float | None) -> bytes:
        from PIL import ImageOps

        settings = get_settings()
        if p.suffix.lower() in VIDEO_SUFFIXES:
            from vltools.models.video import sample_frames

            frames, _, _ = sample_frames(str(p), settings, timestamps=[at] if at is not None else None,
                                         n=None if at is not None else 1, max_frames=1, max_side=THUMB_SIDE)
            img = frames[0]
        else:
            from vltools.models.media import load_image

            img = load_image(str(p), settings)
        buf = io.BytesIO()
        ImageOps.contain(img, (THUMB_SIDE, THUMB_SIDE)).save(buf, format="PNG")
        return buf.getvalue()

    async def thumb(request: Request) -> Response:
        try:
            p = media_path(request)
            t = request.query_params.get("t")
            at = float(t) if t not in (None, "") else None
            st = p.stat()
            key = (str(p), st.st_mtime_ns, st.st_size, at)
            with thumbs_lock:
                data = thumbs.get(key)
            if data is None:
                data = await anyio.to_thread.run_sync(make_thumb, p, at)
                with thumbs_lock:
                    thumbs[key] = data
                    while len(thumbs) > 512:
                        thumbs.popitem(last=False)
            return Response(data, media_type="image/png", headers={"cache-control": "private, max-age=300"})
        except ToolError as err:
            return Response(err.render(), status_code=404 if err.code == "not_found" else 403, media_type="text/plain")
        except ValueError:
            return Response("t must be a number of seconds", status_code=400, media_type="text/plain")

    routes = [
        Route("/", index),
        Route("/tool/{name}", tool_page, methods=["GET", "POST"]),
        Route("/collections", collections_page),
        Route("/search", search_page),
        Route("/factcheck", factcheck_page),
        Route("/jobs", jobs_page),
        Route("/jobs/{job}", job_page),
        Route("/media", media),
        Route("/thumb", thumb),
        Route("/login", lambda request: RedirectResponse("/", status_code=303)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.jobs = jobs
    return Guard(app, host=host, token=token)


def _message(err: Exception) -> str:
    return err.render() if isinstance(err, ToolError) else str(err)


def _text_rows(hits: list[Any], before: list[str] | None = None) -> list[dict[str, Any]]:
    """Text hits as table rows (with the rank each had before reranking, when given)."""
    rows = []
    for h in hits:
        row: dict[str, Any] = {"rank": h.rank, "id": h.id, "score": h.score}
        if before is not None:
            was = before.index(h.id) + 1 if h.id in before else None
            row["was"] = was
            moved = "" if was is None or was == h.rank else ("↑" if was > h.rank else "↓") + str(abs(was - h.rank))
            row["moved"] = moved
        row["title"] = h.title
        row["text"] = (h.text[:200] + "…") if len(h.text) > 200 else h.text
        rows.append(row)
    return rows


def _input_order(inp: dict[str, Any]) -> Any:
    """The order a reranker was given (its input passages or ranking), rendered for before/after."""
    items = inp.get("passages") or (inp.get("ranking") or {}).get("hits") or []
    rows = []
    for i, p in enumerate(items, 1):
        if isinstance(p, dict):
            rows.append({"rank": i, "id": p.get("id", ""), "text": str(p.get("text", ""))[:200]})
        else:
            rows.append({"rank": i, "text": str(p)[:200]})
    return render_value(rows) if rows else None


def serve_ui(host: str = "127.0.0.1", port: int = 8766) -> None:
    """Run the UI with uvicorn until stopped; refuses a non-loopback bind without a token."""
    import sys

    import uvicorn

    token = check_http_binding(host, get_settings().http_token)
    app = build_ui_app(host=host, token=token)
    where = f"[{host}]" if ":" in host else host
    sys.stderr.write(f"vltools ui: http://{where}:{port}/" + (" (token required: open /login?token=...)"
                                                              if token else "") + "\n")
    uvicorn.run(app, host=host, port=port, log_level="warning")

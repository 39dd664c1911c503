"""The HTTP API and the web page: FastAPI over the job store, with the worker in a thread.

    POST   /v1/jobs                 queue a job (JSON, or multipart with its input-file uploads)
    GET    /v1/jobs                 newest first, paged, filtered by status, model, text
    GET    /v1/jobs/{id}            status, progress, record, error
    POST   /v1/jobs/{id}/cancel     cancel a queued job, or stop a running one at its next step
    DELETE /v1/jobs/{id}            forget a finished or queued job and remove its files
    GET    /v1/jobs/{id}/events     server-sent events: progress, then the final job
    GET    /v1/jobs/{id}/video      the video, with HTTP range requests (browsers seek with them);
                                    ?number=K: the K-th of a job's `num_videos_per_prompt`
    GET    /v1/jobs/{id}/control    the control images of a job with `control`, served the same way
    GET    /v1/models               the built-in models
    GET    /v1/health               liveness, queue length, the running job
    GET    /                        the web page (static files, no build step)

Every error is JSON `{"detail": "one line"}` with its status: 400 unreadable body, 401 token,
403 foreign origin, 404 no such job, 409 wrong state, 413 upload too large, 422 invalid request,
429 queue full. A job row is committed before its id is returned.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import re
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BeforeValidator, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import OutputError, PromptreelError
from ..jobs.files import (
    clean_partial_files,
    job_files,
    new_upload_path,
    outputs_dir,
    remove_files,
    uploads_dir,
)
from ..jobs.history import rerun_request
from ..jobs.lock import hold_service_lock, release_service_lock
from ..jobs.store import Job, JobStore
from ..jobs.worker import QueueWorker, Worker
from ..request import INPUT_FILES, MAX_VIDEOS_PER_PROMPT, GenerationRequest, one_line
from .errors import ApiError
from .job_body import JobCreate, check_job
from .uploads import MAX_UPLOAD_BYTES, save_upload

STATIC = Path(__file__).parent / "static"
MAX_JSON_BYTES = 2**20


def _canonical_id(value: object) -> object:
    """An id is written one way: `12`, not `12.0`, `012`, `+12` or in full-width digits (which
    int() would take)."""
    if isinstance(value, str) and not re.fullmatch(r"[1-9][0-9]{0,18}", value, re.ASCII):
        raise ValueError("a job id is a whole number written with digits only, such as 12")
    return value


JobId = Annotated[int, BeforeValidator(_canonical_id), PathParam(ge=1, le=2**63 - 1)]
SSE_LIFETIME = 600.0  # seconds; then the browser's EventSource reconnects by itself
SSE_KEEPALIVE = 15.0
MAX_STREAMS = 32  # open event streams; each holds a connection and polls the store
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
VERSION = importlib.metadata.version("promptreel")
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
MEDIA_TYPES = {"mp4": "video/mp4", "webm": "video/webm", "gif": "image/gif"}
# What a job's outputs are, in the order the worker writes them: its videos, then the control
# images of a job with `control` (served at /v1/jobs/{id}/video and /control)
Output = Literal["video", "control"]
VideoNumber = Annotated[int, Query(ge=1, le=MAX_VIDEOS_PER_PROMPT)]
_RANGE_PART = re.compile(r"\s*(?:([0-9]+)\s*-\s*([0-9]*)|-\s*([0-9]+))\s*", re.ASCII)
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


JOB_SCHEMA = JobCreate.model_json_schema()  # inlined in the OpenAPI of the JSON/multipart body
# the multipart body's file parts: one for each input file of the request
UPLOAD_SCHEMA = {
    name: {
        "type": "string",
        "format": "binary",
        "description": GenerationRequest.model_fields[name].description,
    }
    for name in INPUT_FILES
}


def create_app(
    store: JobStore | None = None,
    *,
    token: str | None = None,
    max_queued: int = 100,
    run_worker: bool = True,
    worker: QueueWorker | None = None,
) -> FastAPI:
    """The service. `token`: every /v1 route then needs it (Bearer header or ?token=).
    Without a token, only loopback Host names are served: a site whose DNS name is rebound to
    127.0.0.1 reaches the server under its own name, and is refused. `worker` runs the queue
    of `store` (default: a `Worker` in this process; a `RayWorker` runs it on Ray actors)."""
    store = store or JobStore()
    allowed_hosts = None if token is not None else LOOPBACK_HOSTS
    worker = worker or Worker(store)
    streams = [0]  # event streams open now

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hold_service_lock()  # before touching any job: another service may be running them
        try:
            clean_partial_files()
            store.recover()
            if run_worker:
                worker.start()
            yield
        finally:
            await asyncio.to_thread(worker.stop)
            release_service_lock()

    app = FastAPI(
        title="promptreel",
        version=VERSION,
        description="Local text-to-video generation: a durable job queue over HTTP.",
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.worker = worker

    # --- errors: one line of JSON each --------------------------------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        # a full queue or too many streams: a client may try again shortly
        headers = {"Retry-After": "5"} if exc.status == 429 else exc.headers
        return _error(exc.status, exc.detail, headers, argument=exc.argument)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = _invalid(exc.errors())
        return _error(error.status, error.detail, argument=error.argument)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        # outside the middleware that adds them: a crash's answer carries the headers too
        headers = _security_headers(request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); see the server's log", headers)

    # --- who may call: the token, and no other site's pages -----------------------------------

    @app.middleware("http")
    async def _guard(request: Request, call_next: Any) -> Response:
        host = request.headers.get("host", "")
        if allowed_hosts is not None and _host_name(host) not in allowed_hosts:
            # a page whose name was rebound to 127.0.0.1 arrives with its own name
            return _error(400, f"unknown host {host!r}; open the page by the address served")
        origin = request.headers.get("origin")
        if origin is not None and not _same_origin(origin, host):
            # a page on another site must not queue jobs here (CORS is closed, but a form
            # POST is sent before the browser asks)
            return _error(403, "requests from other sites are refused")
        return await call_next(request)

    @app.middleware("http")  # the outer one: its headers go on the guard's refusals too
    async def _headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers.update(_security_headers(request.url.path))
        return response

    def check_token(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        given = given.strip() if scheme.lower() == "bearer" else ""  # the scheme is any case
        given = given or request.query_params.get("token", "")
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise StarletteHTTPException(
                401,
                "a token is required: send `Authorization: Bearer TOKEN`",
                headers={"WWW-Authenticate": "Bearer"},
            )

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(check_token)])

    # --- jobs ---------------------------------------------------------------------------------

    @v1.post(
        "/jobs",
        status_code=201,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": JOB_SCHEMA},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "request": {
                                    "type": "string",
                                    "description": "the JobCreate fields as JSON",
                                },
                                **UPLOAD_SCHEMA,
                            },
                        }
                    },
                },
            }
        },
    )
    async def create_job(request: Request) -> JSONResponse:
        """Queue a job. Validated like the CLI before it is queued; the seed is fixed now, so
        a job run again after a crash makes the same video."""
        fields, uploads = await _read_job_request(request)
        try:
            body = JobCreate.model_validate(fields)
        except ValidationError as exc:
            raise _invalid(exc.errors()) from None
        saved: list[Path] = []
        try:
            for key, upload in uploads.items():
                saved.append(await save_upload(upload, key))
            fields = body.model_dump(exclude={"format"}, exclude_none=True)
            fields.update(zip(uploads, saved, strict=True))
            return await queue(fields, body.format)
        except BaseException:
            remove_files(saved)
            raise

    @v1.post("/jobs/{job_id}/rerun", status_code=201)
    async def rerun_job(job_id: JobId) -> JSONResponse:
        """Queue a job again with its seed and every value it settled on (`history rerun`):
        the same video, whatever the model's defaults have become."""
        job = await asyncio.to_thread(_get, store, job_id)
        try:
            request = await asyncio.to_thread(rerun_request, job)
        except PromptreelError as exc:
            raise ApiError.refusing(exc) from None
        fields = request.model_dump(mode="json")
        copies: list[Path] = []
        try:
            for name in INPUT_FILES:
                if fields[name] is None:
                    continue
                if not _served_file(Path(fields[name])):  # the command line's stays its own
                    raise ApiError(
                        409,
                        f"job {job_id}'s {name} is a file of this machine, not an upload; rerun "
                        f"it there with `promptreel history rerun {job_id}`",
                    )
                # a copy of its own: deleting either job removes only its own upload
                copies.append(new_upload_path(Path(fields[name]).suffix))
                await asyncio.to_thread(shutil.copyfile, fields[name], copies[-1])
                fields[name] = str(copies[-1])
            return await queue(fields, job.output_format or "mp4")
        except BaseException:
            remove_files(copies)
            raise

    async def queue(fields: dict[str, Any], file_format: str) -> JSONResponse:
        """Check a job and queue it (the row is committed before its id is returned)."""
        request_json = await asyncio.to_thread(check_job, fields, file_format)
        job_id = await asyncio.to_thread(
            store.add,
            request_json,
            source="service",
            output_format=file_format,
            max_queued=max_queued,
        )
        if job_id is None:
            raise ApiError(429, f"the queue is full ({max_queued} jobs); try again later")
        worker.wake()
        job = await asyncio.to_thread(_get, store, job_id)
        return JSONResponse(_job_json(job), status_code=201)

    @v1.get("/jobs")
    def list_jobs(
        status: Annotated[Status | None, Query()] = None,
        model: Annotated[str | None, Query(max_length=200)] = None,
        q: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ) -> dict[str, Any]:
        """Newest first."""
        jobs, total = store.list(text=q, model=model, status=status, limit=limit, offset=offset)
        return {
            "jobs": [_job_json(job) for job in jobs],
            "total": total,
            "limit": limit,
            "offset": offset,
        }

    @v1.get("/jobs/{job_id}")
    def get_job(job_id: JobId) -> dict[str, Any]:
        return _job_json(_get(store, job_id))

    @v1.post("/jobs/{job_id}/cancel")
    def cancel_job(job_id: JobId) -> dict[str, Any]:
        """A queued job is cancelled at once; a running one stops at its next step."""
        job = _get(store, job_id)
        if job.source != "service" and not job.finished:
            raise ApiError(409, f"job {job_id} runs in the {job.source} process; stop it there")
        job = store.cancel(job_id)
        if job is None:
            raise ApiError(404, f"there is no job {job_id}")
        if job.status == "running" and not job.cancel_requested:
            raise ApiError(409, f"job {job_id} is writing its video; it ends in a moment")
        if job.finished and job.status != "cancelled":
            raise ApiError(409, f"job {job_id} has already {job.status}; nothing to cancel")
        return _job_json(job)

    @v1.delete("/jobs/{job_id}", status_code=204)
    def delete_job(job_id: JobId) -> Response:
        """Forget a job that is not running, and remove its video and uploads."""
        job = _get(store, job_id)
        # what goes, known before anything does (all or nothing); only what the service itself
        # wrote: a CLI row's files stay where the user put them
        try:
            files = [f for f in job_files(job) if _served_file(f)]
        except OutputError as exc:
            raise ApiError(409, str(exc)) from None
        removed = store.remove(job_id)
        if removed is None:
            raise ApiError(404, f"there is no job {job_id}")
        if removed.status == "running":
            raise ApiError(409, f"job {job_id} is running; cancel it first")
        remove_files(files)
        return Response(status_code=204)

    @v1.get("/jobs/{job_id}/events")
    async def job_events(job_id: JobId, request: Request) -> StreamingResponse:
        """Server-sent events: `progress` (stage, step, total, eta) on each change, then one
        `done` with the whole job when it ends. A stopping server ends its streams at once."""
        await asyncio.to_thread(_get, store, job_id)
        if streams[0] >= MAX_STREAMS:
            raise ApiError(429, f"{MAX_STREAMS} event streams are open; close one or poll")
        streams[0] += 1  # taken now: requests that arrive together must not all pass
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return _EventStream(
            _events(job_id, request),
            release=_close_stream,
            media_type="text/event-stream",
            headers=headers,
        )

    def _close_stream() -> None:
        streams[0] -= 1

    async def _events(job_id: int, request: Request) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        started = sent = loop.time()
        last = None
        yield "retry: 2000\n\n"
        while not worker.stopping and not await request.is_disconnected():
            job = await asyncio.to_thread(store.get, job_id)
            if job is None:
                yield _sse("done", {"id": job_id, "status": "deleted"})
                return
            data = _job_json(job)
            if job.finished:
                yield _sse("done", data)
                return
            progress = {"status": job.status, **data["progress"], "eta": job.eta}
            now = loop.time()
            if progress != last:
                yield _sse("progress", progress)
                last, sent = progress, now
            elif now - sent > SSE_KEEPALIVE:
                yield ": keepalive\n\n"  # a comment line: proxies keep the stream open
                sent = now
            if now - started > SSE_LIFETIME:
                return  # the browser reconnects after `retry`; no stream lives forever
            await asyncio.sleep(0.2)

    @v1.head("/jobs/{job_id}/video", include_in_schema=False)  # GET's headers: one operation
    @v1.get("/jobs/{job_id}/video", response_model=None)
    def job_video(
        job_id: JobId, request: Request, download: bool = False, number: VideoNumber = 1
    ) -> FileResponse:
        """The finished video (`number`: which of the job's videos); range requests let a
        browser seek."""
        job = _get(store, job_id)
        return _serve_output(job, "video", request, download=download, number=number)

    @v1.head("/jobs/{job_id}/control", include_in_schema=False)
    @v1.get("/jobs/{job_id}/control", response_model=None)
    def job_control(job_id: JobId, request: Request, download: bool = False) -> FileResponse:
        """The control images a job with `control` was steered by (drawn from its `video`, or
        its `control_video` as used), as a video in the job's format; served as `/video` is."""
        return _serve_output(_get(store, job_id), "control", request, download=download)

    # --- the rest -----------------------------------------------------------------------------

    @v1.get("/models")
    async def models() -> list[dict[str, Any]]:
        from ..models.cards import CARDS
        from ..models.info import card_info

        return [_public_info(card_info(card)) for card in CARDS]

    @v1.get("/health")
    def health() -> dict[str, Any]:
        running, _ = store.list(status="running", limit=1)
        return {
            "status": "ok" if worker.alive or not run_worker else "worker stopped",
            "version": VERSION,
            "queued": store.count("queued"),
            "running": running[0].id if running else None,
            "loaded_model": worker.loaded_model,
        }

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.include_router(v1)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


class _EventStream(StreamingResponse):
    """An event stream that gives its slot back the moment it ends, however it ends: done, the
    client gone (the server cancels the response), or the server stopping. Its generator is
    closed then too, rather than whenever the garbage collector gets to it."""

    def __init__(self, content: AsyncIterator[str], *, release: Any, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._content = content
        self._release = release

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
            await self._content.aclose()  # type: ignore[attr-defined]


async def _read_job_request(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """The job's fields and its uploads, from a JSON body or a multipart form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return _fields(await _read_capped(request, MAX_JSON_BYTES), "the body"), {}
    if kind == "multipart/form-data":
        files = len(INPUT_FILES)  # one upload each, at most
        capped = Request(request.scope, receive=_capped_receive(request, files * MAX_UPLOAD_BYTES))
        try:
            form = await capped.form(max_files=files, max_fields=4)
        except ApiError:
            raise
        except Exception as exc:  # Starlette's MultiPartException and parser errors
            raise ApiError(400, f"the multipart body cannot be read: {exc}") from None
        unknown = set(form) - {"request", *INPUT_FILES}
        if unknown:
            raise ApiError(422, f"unknown form part(s): {', '.join(sorted(unknown))}")
        repeated = sorted(key for key in set(form) if len(form.getlist(key)) > 1)
        if repeated:
            raise ApiError(422, f"the form gives `{repeated[0]}` twice; give each part once")
        text = form.get("request", "{}")
        if not isinstance(text, str):
            raise ApiError(422, "the `request` part must be JSON text, not a file")
        if len(text) > MAX_JSON_BYTES:
            raise ApiError(413, f"the `request` part is larger than {MAX_JSON_BYTES} bytes")
        fields = _fields(text, "the `request` part")
        uploads = {}
        for key in INPUT_FILES:
            value = form.get(key)
            if value is None:
                continue
            if isinstance(value, str):
                raise ApiError(422, f"`{key}` must be an uploaded file, not text", argument=key)
            uploads[key] = value
        return fields, uploads
    raise ApiError(415 if kind else 400, "send JSON (application/json) or multipart/form-data")


def _fields(raw: bytes | str, what: str) -> dict[str, Any]:
    try:
        fields = json.loads(raw, object_pairs_hook=_no_repeats)
    except _RepeatedKey as exc:
        raise ApiError(422, f"{what} gives `{exc}` twice; give each field once") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, f"{what} is not valid JSON") from None
    if not isinstance(fields, dict):
        raise ApiError(422, f"{what} must be a JSON object of job fields")
    return fields


class _RepeatedKey(Exception):
    pass


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused when it names a key twice (JSON would keep the last silently)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _RepeatedKey(key)
        found[key] = value
    return found


async def _read_capped(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes `limit`, with or without Content-Length."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _capped_receive(request: Request, limit: int) -> Any:
    """`receive` for a form parser that stops (413) once the body passes `limit` bytes."""
    size = 0

    async def receive() -> dict[str, Any]:
        nonlocal size
        message = await request.receive()
        size += len(message.get("body", b""))
        if size > limit:
            raise ApiError(413, f"the request is larger than {limit // 2**20} MiB")
        return message

    return receive


def _get(store: JobStore, job_id: JobId) -> Job:
    job = store.get(job_id)
    if job is None:
        raise ApiError(404, f"there is no job {job_id}")
    return job


def _job_json(job: Job) -> dict[str, Any]:
    """A job as the API shows it: no server paths (`outputs` becomes `video_urls`, the first
    of them `video_url`, and `control_url`)."""
    data = job.to_dict()
    data.pop("outputs")
    data["request"] = {k: v for k, v in data["request"].items() if k not in INPUT_FILES}
    data["inputs"] = [k for k in INPUT_FILES if job.request.get(k)]

    def served(what: Output, number: int = 1) -> bool:
        path = _output_of(job, what, number)
        return job.status == "succeeded" and path is not None and _served_file(path)

    data["video_urls"] = [
        f"/v1/jobs/{job.id}/video" + ("" if number == 1 else f"?number={number}")
        for number in range(1, _video_count(job) + 1)
        if served("video", number)
    ]
    data["video_url"] = data["video_urls"][0] if served("video") else None
    data["control_url"] = f"/v1/jobs/{job.id}/control" if served("control") else None
    if job.source != "service":  # its files are where the user put them, not served
        data["note"] = f"made by the {'CLI' if job.source == 'cli' else 'Python API'}"
    if data["record"]:
        data["record"] = {k: v for k, v in data["record"].items() if k != "inputs"}
    return data


def _video_count(job: Job) -> int:
    count = job.request.get("num_videos_per_prompt")
    return count if isinstance(count, int) and count > 0 else 1


def _output_of(job: Job, what: Output, number: int = 1) -> Path | None:
    """The file of a job's video `number` or control images: the worker writes the videos
    first and the control images (a job with `control`) after them. A CLI or Python row lists
    whatever its user saved, in any order: only its first, the first video, is a known file."""
    count = _video_count(job)
    if what == "control" and (job.source != "service" or not job.request.get("control")):
        return None
    if what == "video" and (number > count or (number > 1 and job.source != "service")):
        return None
    index = count if what == "control" else number - 1
    return Path(job.outputs[index]) if len(job.outputs) > index else None


def _serve_output(
    job: Job, what: Output, request: Request, *, download: bool, number: int = 1
) -> FileResponse:
    """A finished job's video or control images, with range requests (browsers seek with them):
    409 until the job has succeeded, 404 when it has no such file or it is gone."""
    noun = "video" if what == "video" else "control video"
    if job.status != "succeeded":
        raise ApiError(409, f"job {job.id} is {job.status}; its {noun} is not ready")
    if what == "video" and number > _video_count(job):
        count = _video_count(job)
        raise ApiError(
            404, f"job {job.id} made {count} video{'s' if count > 1 else ''}, not {number}"
        )
    path = _output_of(job, what, number)
    if path is None and what == "control":
        raise ApiError(404, f"job {job.id} has no control video; it was made without `control`")
    if path is None or not path.is_file() or not _served_file(path):
        raise ApiError(404, f"the {noun} of job {job.id} is no longer on disk")
    kind = path.suffix.lstrip(".")
    name = f"promptreel-{job.id}" if what == "video" else f"promptreel-{job.id}-control"
    if what == "video" and number > 1:
        name += f"-{number}"
    response = FileResponse(
        path,
        media_type=MEDIA_TYPES.get(kind, "application/octet-stream"),
        filename=f"{name}.{kind}",
        content_disposition_type="attachment" if download else "inline",
        stat_result=path.stat(),
    )
    wanted = request.headers.get("range")
    validator = request.headers.get("if-range")
    # an If-Range naming another version of the file asks for all of it: Range is moot
    current = (response.headers.get("etag"), response.headers.get("last-modified"))
    if wanted is not None and (validator is None or validator in current):
        _check_range(wanted, path.stat().st_size)
    return response


def _public_info(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k not in ("path",)}


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _security_headers(path: str) -> dict[str, str]:
    """Sent with every response. No other site may frame the page (a framed page sends requests
    with this page's origin: clicks on Generate or Cancel could be stolen), sniff a type, or
    learn a URL (tokens ride in video URLs). The page needs nothing but its own files; the API
    explorer at /docs loads Swagger UI from a CDN with an inline script, so it gets only the
    framing rule."""
    explorer = path in ("/docs", "/redoc", "/docs/oauth2-redirect")
    return {
        "Content-Security-Policy": "frame-ancestors 'none'" if explorer else PAGE_POLICY,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }


def _error(
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    argument: str | None = None,
) -> JSONResponse:
    """`{"detail": "one line"}`, and `"argument"`: the request field at fault, when known."""
    # a lone surrogate from the request, echoed back, must not break the JSON encoder
    safe = detail.encode("utf-8", "backslashreplace").decode("utf-8")
    body = {"detail": safe} if argument is None else {"detail": safe, "argument": argument}
    return JSONResponse(body, status_code=status, headers=headers)


def _same_origin(origin: str, host: str) -> bool:
    return origin.split("://", 1)[-1].rstrip("/").lower() == host.lower()


def _host_name(host: str) -> str:
    """The name in a Host header, without the port (`[::1]:8000` -> `[::1]`)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    name = host.rsplit(":", 1)[0] if ":" in host else host
    return name.lower()  # host names are case-insensitive (LOCALHOST)


def _check_range(header: str, size: int) -> None:
    """Refuse, in JSON like every other error, a Range the video cannot answer: 400 for one
    that is not `bytes=` and parts `START-END`, `START-` or `-LENGTH` in plain digits, 416 for
    one that starts past the end. Stricter than Starlette's parser on purpose: what passes here
    it serves, so its own plain-text refusals never reach a client."""
    unit, equals, spec = header.partition("=")
    parts = [_RANGE_PART.fullmatch(part) for part in spec.split(",")]
    if unit.strip().lower() != "bytes" or not equals or not all(parts):
        raise ApiError(400, "bad Range header; ask for bytes=START-END (digits only)")
    for part in parts:
        assert part is not None  # checked above
        start, end, suffix = part.groups()
        if start is not None and end and int(end) < int(start):
            raise ApiError(400, f"bad Range header: the range {start}-{end} ends before it starts")
        if (start is not None and int(start) >= size) or (suffix is not None and int(suffix) == 0):
            raise ApiError(
                416,
                f"the range is outside the video ({size} bytes)",
                {"Content-Range": f"bytes */{size}"},
            )


def _served_file(path: Path) -> bool:
    """Only files the service wrote itself are served or removed over HTTP."""
    resolved = path.resolve()
    return any(resolved.is_relative_to(d.resolve()) for d in (outputs_dir(), uploads_dir()))


def _invalid(errors: Any) -> ApiError:
    """Pydantic's list of errors as a 422 of one line naming the first field and what is wrong."""
    message, argument = one_line(errors, outside=("body", "query", "path"))
    return ApiError(422, message, argument=argument)

"""Fuzzing the HTTP API: whatever a client sends, the answer is never a 5xx, every error is one
line of JSON (`{"detail": "..."}`), and a refused request leaves no file behind.

Schemathesis generates requests from the service's own OpenAPI schema (the JSON and multipart
bodies of POST /v1/jobs, the path and query parameters of the other routes); hypothesis adds
what no schema describes: random bytes, random JSON, random multipart forms with small files,
random ids and query strings. The app runs without its worker: jobs stay queued, no model runs.
Then targeted tests: the token, foreign origins, model names that are paths, upload limits,
decompression bombs and the full queue.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
import schemathesis
from conftest import files_in, plain_video
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile
from starlette.applications import Starlette
from starlette.routing import Mount

from promptreel.jobs.files import uploads_dir
from promptreel.jobs.store import JobStore
from promptreel.server.app import create_app

VALID = {"prompt": "a cat", "model": "modelscope", "num_frames": 4, "height": 32, "width": 32}
MAX_INT64 = 2**63 - 1

FUZZ = settings(
    max_examples=50,
    deadline=None,
    database=None,  # no .hypothesis folder in the checkout
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one app per test is meant: examples share it
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def _app(**kwargs: Any):
    """The service over the test's own database (PROMPTREEL_HOME), with no worker."""
    return create_app(JobStore(), run_worker=False, **kwargs)


@pytest.fixture
def client(hub) -> Iterator[TestClient]:
    hub("modelscope")  # so that a valid job body passes validation and is queued
    with TestClient(_app(), base_url="http://localhost") as client:
        yield client


def _uploads() -> set[str]:
    folder = uploads_dir()
    return files_in(folder) if folder.exists() else set()


def assert_well_formed(status: int, headers: Any, content: bytes, what: str) -> None:
    """The property: no 5xx; an error is JSON whose `detail` is a string."""
    assert status < 500, f"{what} -> {status}: {content[:500]!r}"
    if status >= 400:
        assert headers.get("content-type", "").startswith("application/json"), (
            f"{what} -> {status} is not JSON: {headers.get('content-type')} {content[:200]!r}"
        )
        if what.startswith("HEAD ") and content == b"":
            return  # the headers of the GET's answer, without its body
        body = json.loads(content)
        assert isinstance(body, dict) and isinstance(body.get("detail"), str), (
            f"{what} -> {status}: {body!r}"
        )


def _check(response: Any, what: str) -> None:
    assert_well_formed(response.status_code, response.headers, response.content, what)


# --- images that are not what they claim ---------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A PNG of a few bytes whose header declares width x height RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def bomb_gif(width: int, height: int) -> bytes:
    """A GIF whose screen is width x height but whose one frame is a single pixel."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return screen + b"\x21\xf9\x04\x00\x0a\x00\x00\x00" + frame + b"\x3b"


def dds_of_unknown_pixels() -> bytes:
    """A DDS header whose pixel format has no flags: Pillow raises NotImplementedError."""
    header = struct.pack("<6I", 0, 64, 64, 0, 0, 0) + bytes(44) + struct.pack("<4I", 32, 0, 0, 0)
    return b"DDS " + struct.pack("<I", 124) + header.ljust(120, b"\0")


def png_with_bad_exif() -> bytes:
    """A PNG rotated by EXIF whose ImageLength tag is text: exif_transpose raises struct.error."""
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "cam"  # orientation, Make (text)
    raw = exif.tobytes().replace(b"\x01\x0f\x00\x02", b"\x01\x01\x00\x02")  # Make -> ImageLength
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(buffer, format="PNG", exif=raw)
    return buffer.getvalue()


def mp4_of_unknown_codec(folder: Path) -> bytes:
    """An MP4 whose codec tag is unknown: its stream has no codec context (None)."""
    plain_video(folder / "plain.mp4", frames=2, side=32)
    return (folder / "plain.mp4").read_bytes().replace(b"avc1", b"zzzz")


def real_png(side: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((side, side, 3), 120, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- schemathesis: every operation of the OpenAPI schema ------------------------------------------


def _dangling_refs(spec: dict) -> list[str]:
    """The `$ref`s of an OpenAPI document that name no component."""
    text = json.dumps(spec)
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text))
    return sorted(refs - set(spec.get("components", {}).get("schemas", {})))


@pytest.fixture
def api_schema(hub):
    hub("modelscope")
    app = _app()
    config = schemathesis.Config.from_dict(
        {"generation": {"max-examples": 50, "database": "none"}, "max-stream-events": 5}
    )
    return schemathesis.openapi.from_asgi("/openapi.json", _as_localhost(app), config=config)


def _as_localhost(app):
    """Schemathesis' ASGI client always says `Host: testserver`; without a token the service
    answers only to loopback names, so the requests arrive as the browser's would."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            headers = [(k, b"localhost" if k == b"host" else v) for k, v in scope["headers"]]
            scope = {**scope, "headers": headers}
        await app(scope, receive, send)

    return wrapped


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@FUZZ
def test_schema_fuzz(case) -> None:
    """Each operation, with the JSON and the multipart body of POST /v1/jobs: schemathesis'
    coverage cases (boundaries, missing and wrong-typed fields) and random ones, valid or not."""
    before = _uploads()
    # an event stream of a queued job never ends (there is no worker): keep what comes in 2 s
    response = case.call(timeout=2)
    what = f"{case.method} {case.formatted_path} {case.media_type} {case.query} {case.body!r:.300}"
    headers = {name: values[-1] for name, values in response.headers.items()}
    assert_well_formed(response.status_code, headers, response.content, what)
    if response.status_code != 201:
        assert _uploads() == before, f"{what} -> {response.status_code} left a file"


# --- hypothesis: bodies the schema does not describe ----------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities too: Python's json reads them
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
# bodies close to a valid job: each field of VALID kept, dropped or replaced, plus strange ones
OTHER_FIELDS = ["negative_prompt", "fps", "seed", "scheduler", "params", "device", "dtype"]
OTHER_FIELDS += ["offload", "format", "num_inference_steps", "guidance_scale", "image", "video"]
job_fields = st.sampled_from([*VALID, *OTHER_FIELDS, "output"])
near_jobs = st.builds(
    lambda base, changes, dropped: {
        **{k: v for k, v in base.items() if k not in dropped},
        **changes,
    },
    st.just(VALID),
    st.dictionaries(job_fields, json_values, max_size=3),
    st.sets(st.sampled_from(list(VALID)), max_size=2),
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
    ]
)
small_files = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([real_png(), bomb_png(50000, 50000), bomb_gif(50000, 50000), bomb_gif(64, 64)]),
    st.binary(max_size=200).map(lambda tail: real_png()[:60] + tail),  # a truncated PNG
)


@FUZZ
@given(body=st.binary(max_size=2000), content_type=content_types)
def test_random_bytes_to_post_jobs(client, body, content_type) -> None:
    before = _uploads()
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/v1/jobs", content=body, headers=headers)
    _check(response, f"POST {content_type!r} {body[:200]!r}")
    if response.status_code != 201:
        assert _uploads() == before


@FUZZ
@given(body=json_values | near_jobs)
def test_random_json_to_post_jobs(client, body) -> None:
    text = json.dumps(body)  # NaN and Infinity as Python writes them
    response = client.post(
        "/v1/jobs", content=text.encode(), headers={"content-type": "application/json"}
    )
    _check(response, f"POST {text[:300]}")
    if response.status_code == 201:
        assert response.json()["status"] == "queued"


# a part of a form: its name, and either text or a file (name, bytes, content type)
part_names = st.sampled_from(["request", "image", "video", "prompt", "image[]", ""])
text_parts = st.one_of(
    (json_values | near_jobs).map(json.dumps), st.text(max_size=100), st.just("{}")
).map(lambda text: (None, text))
file_parts = st.tuples(
    st.sampled_from(["in.png", "in.mp4", "../../etc/passwd", "", "x" * 300]),
    small_files,
    st.sampled_from(["image/png", "video/mp4", "application/octet-stream"]),
)


@FUZZ
@given(parts=st.lists(st.tuples(part_names, text_parts | file_parts), max_size=6))
def test_random_multipart_to_post_jobs(client, parts) -> None:
    before = _uploads()
    # an empty form would be sent as no body at all: then one valid `request` part
    files = parts or [("request", (None, json.dumps(VALID)))]
    response = client.post("/v1/jobs", files=files)
    _check(response, f"POST multipart {[(name, part[0]) for name, part in parts]}")
    if response.status_code != 201:
        assert _uploads() == before, "a refused upload left a file"


routes = st.sampled_from(
    [
        ("GET", "/v1/jobs/{}"),
        ("POST", "/v1/jobs/{}/cancel"),
        ("DELETE", "/v1/jobs/{}"),
        ("GET", "/v1/jobs/{}/events"),
        ("GET", "/v1/jobs/{}/video"),
        ("PUT", "/v1/jobs/{}"),
        ("GET", "/v1/jobs/{}/nothing"),
    ]
)
ids = st.one_of(
    st.integers(-MAX_INT64, MAX_INT64).map(str),
    st.integers(0, 3).map(str),
    st.text(max_size=30),
    st.sampled_from(["1.0", "1e3", " 1", "0x1", "1_0", "../1", "%00", "1/../../2"]),
)
query_keys = st.sampled_from(["status", "model", "q", "limit", "offset", "download", "token"])
queries = st.dictionaries(query_keys | st.text(max_size=8), st.text(max_size=60), max_size=4)


@pytest.fixture
def finished_jobs(client) -> TestClient:
    """Job 1 cancelled, job 2 deleted, none queued: an event stream always ends."""
    for job_id in (1, 2):
        assert client.post("/v1/jobs", json=VALID).json()["id"] == job_id
        assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    assert client.delete("/v1/jobs/2").status_code == 204
    return client


@FUZZ
@given(route=routes, job_id=ids, query=queries, listing=queries)
def test_random_ids_and_queries(finished_jobs, route, job_id, query, listing) -> None:
    """Random ids and query strings on every route that takes them, then on the list."""
    client = finished_jobs
    method, template = route
    path = template.format(quote(job_id, safe=""))
    response = client.request(method, path, params=query)
    _check(response, f"{method} {path} {query}")
    response = client.get("/v1/jobs", params=listing)
    _check(response, f"GET /v1/jobs {listing}")


# --- targeted: defects found by fuzzing, pinned --------------------------------------------------


def test_huge_job_ids_are_404(client) -> None:
    huge = str(2**64)
    for method, path in [
        ("GET", f"/v1/jobs/{huge}"),
        ("POST", f"/v1/jobs/{huge}/cancel"),
        ("DELETE", f"/v1/jobs/{huge}"),
        ("GET", f"/v1/jobs/{huge}/events"),
        ("GET", f"/v1/jobs/{huge}/video"),
    ]:
        response = client.request(method, path)
        _check(response, f"{method} {path}")
        assert response.status_code in (404, 422)


@pytest.mark.parametrize("multipart", [False, True], ids=["json", "multipart"])
def test_deeply_nested_json_is_refused(client, multipart) -> None:
    deep = "[" * 100_000
    if multipart:
        response = client.post(
            "/v1/jobs", files=[("request", (None, deep)), ("image", ("a.png", b"x", "image/png"))]
        )
    else:
        response = client.post(
            "/v1/jobs", content=deep.encode(), headers={"content-type": "application/json"}
        )
    _check(response, "deeply nested JSON")
    assert response.status_code in (400, 413, 422)


@pytest.mark.parametrize("model", ["~no-such-user-here", "~\x00"])
def test_model_names_starting_with_a_tilde_are_422(client, model) -> None:
    response = client.post("/v1/jobs", json={**VALID, "model": model})
    _check(response, f"model {model!r}")
    assert response.status_code == 422


def test_a_lone_surrogate_in_an_error_message_is_422(client) -> None:
    body = b'{"prompt": "x", "params": {"\\ud800": 1}}'
    response = client.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    _check(response, "surrogate param key")
    assert response.status_code == 422


def test_the_openapi_schema_defines_every_ref(client) -> None:
    assert _dangling_refs(client.get("/openapi.json").json()) == []


# --- targeted: the token and foreign pages --------------------------------------------------------


def _v1_routes(app) -> list[tuple[str, str]]:
    """Every /v1 route and method of the app, with job id 1 (which does not exist)."""
    # from the OpenAPI paths: FastAPI keeps an included router as one lazy entry of app.routes
    return sorted(
        (method.upper(), path.replace("{job_id}", "1"))
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    )


def test_a_token_is_needed_on_every_v1_route(hub) -> None:
    hub("modelscope")
    app = _app(token="s3cret")
    routes_seen = _v1_routes(app)
    assert len(routes_seen) >= 9
    with TestClient(app) as client:
        for method, path in routes_seen:
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": "Bearer s3cre"},
                {"Authorization": "Bearer s3cretX"},
                {"Authorization": "Basic czNjcmV0"},
            ):
                response = client.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                _check(response, f"{method} {path}")
                assert response.headers["www-authenticate"] == "Bearer"
            assert client.request(method, path + "?token=wrong").status_code == 401
            bearer = client.request(method, path, headers={"Authorization": "Bearer s3cret"})
            query = client.request(method, path + "?token=s3cret")
            for response in (bearer, query):
                assert response.status_code != 401, (method, path)
                _check(response, f"{method} {path} with the token")
        # a job queued with the token, then listed with it
        created = client.post("/v1/jobs?token=s3cret", json=VALID)
        assert created.status_code == 201
        listed = client.get("/v1/jobs", headers={"Authorization": "Bearer s3cret"}).json()
        assert listed["total"] == 1
        # the page and the schema are not /v1 routes
        assert client.get("/").status_code == 200


def test_the_token_holds_when_the_app_is_mounted_under_a_prefix(hub) -> None:
    hub("modelscope")
    outer = Starlette(routes=[Mount("/promptreel", app=_app(token="s3cret"))])
    with TestClient(outer) as client:
        assert client.get("/promptreel/v1/jobs?token=s3cret").status_code == 200
        assert client.get("/promptreel/v1/jobs").status_code == 401


def test_requests_from_other_sites_are_refused(client) -> None:
    for origin in ("http://evil.example", "null", "http://testserver.evil.example"):
        headers = {"Origin": origin}
        assert client.get("/v1/jobs", headers=headers).status_code == 403
        assert client.get("/v1/health", headers=headers).status_code == 403
        refused = client.post("/v1/jobs", json=VALID, headers=headers)
        assert refused.status_code == 403
        _check(refused, origin)
        form = client.post(
            "/v1/jobs",
            files={"request": (None, json.dumps(VALID)), "image": ("a.png", real_png())},
            headers=headers,
        )
        assert form.status_code == 403
    assert client.get("/v1/jobs").json()["total"] == 0
    assert _uploads() == set()
    # the page itself (same origin) may
    same = client.post("/v1/jobs", json=VALID, headers={"Origin": "http://localhost"})
    assert same.status_code == 201


def test_a_foreign_host_name_is_refused(client) -> None:
    headers = {"Host": "evil.example:8000", "Origin": "http://evil.example:8000"}
    response = client.post("/v1/jobs", json=VALID, headers=headers)
    assert 400 <= response.status_code < 500
    assert client.get("/v1/jobs", headers={"Host": "evil.example:8000"}).status_code >= 400
    assert client.get("/v1/jobs").json()["total"] == 0


# --- targeted: a model name never becomes a path -------------------------------------------------


@pytest.fixture
def touched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path Python code stats, opens or lists while the test runs."""
    seen: list[str] = []

    def spy(original):
        def call(path=".", *args, **kwargs):
            if isinstance(path, str | bytes | os.PathLike):
                seen.append(os.fsdecode(path))
            return original(path, *args, **kwargs)

        return call

    for module, name in [
        (os, "stat"),
        (os, "lstat"),
        (os, "listdir"),
        (os, "scandir"),
        (io, "open"),
        (builtins, "open"),
    ]:
        monkeypatch.setattr(module, name, spy(getattr(module, name)))
    original_stat = Path.stat  # pathlib calls os.stat through its accessor: by the method too

    def stat(self, *args, **kwargs):
        seen.append(str(self))
        return original_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    return seen


def test_a_model_name_is_never_a_path(hub, client, workdir, touched) -> None:
    snapshot = hub("modelscope")
    # a real model folder, by a relative name and by one that looks like a repo id
    for name in ("mymodel", "local/mymodel"):
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).symlink_to(snapshot, target_is_directory=True)
    touched.clear()
    for model in (
        "/etc",
        "/etc/passwd",
        "../../x",
        "..",
        "./mymodel",
        "mymodel",
        "mymodel/",
        "local/mymodel",
        "local/../mymodel",
        str(workdir / "mymodel"),
        "~",
        "~/",
        "file:///etc",
        "C:\\Windows",
    ):
        response = client.post("/v1/jobs", json={**VALID, "model": model})
        assert response.status_code == 422, (model, response.text)
        _check(response, model)
        form = client.post(
            "/v1/jobs", files={"request": (None, json.dumps({**VALID, "model": model}))}
        )
        assert form.status_code == 422, (model, form.text)
    assert client.get("/v1/jobs").json()["total"] == 0
    home = str(Path.home())
    bad = [
        p
        for p in touched
        if not Path(p).is_absolute()
        or p.startswith(("/etc", str(workdir)))
        or p.rstrip("/") == home
    ]
    assert bad == [], f"request fields reached the file system: {bad}"


@pytest.mark.parametrize("field", ["image", "video", "output", "outputs"])
def test_no_json_field_is_a_path(client, field) -> None:
    response = client.post("/v1/jobs", json={**VALID, field: "/etc/passwd"})
    assert response.status_code == 422 and field in response.json()["detail"]
    inside = client.post("/v1/jobs", json={**VALID, "params": {field: "/etc/passwd"}})
    assert inside.status_code == 422


# --- targeted: uploads ---------------------------------------------------------------------------


def test_an_upload_over_the_limit_is_413_and_leaves_nothing(client, monkeypatch) -> None:
    monkeypatch.setattr("promptreel.server.uploads.MAX_UPLOAD_BYTES", 1000)
    png = real_png(64) + b"\0" * 2000
    for key in ("image", "video"):
        response = client.post(
            "/v1/jobs",
            files={"request": (None, json.dumps(VALID)), key: ("big.png", png, "image/png")},
        )
        assert response.status_code == 413, response.text
        _check(response, key)
        assert _uploads() == set()
    assert client.get("/v1/jobs").json()["total"] == 0


def test_a_body_declared_too_large_is_413_before_it_is_read(client, monkeypatch) -> None:
    monkeypatch.setattr("promptreel.server.app.MAX_UPLOAD_BYTES", 1000)
    body = b" " * 1_100_000
    for kind in ("application/json", "multipart/form-data; boundary=x"):
        response = client.post("/v1/jobs", content=body, headers={"content-type": kind})
        assert response.status_code == 413, (kind, response.text)
        _check(response, kind)
    assert _uploads() == set()


def test_a_chunked_body_over_the_limit_is_413(client, monkeypatch) -> None:
    monkeypatch.setattr("promptreel.server.app.MAX_UPLOAD_BYTES", 1000)

    def chunks() -> Iterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(11):
            yield b"x" * 100_000
        yield b'"}'

    response = client.post(
        "/v1/jobs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        (bomb_png(50000, 50000), "image", "too large"),  # 2.5 billion pixels: Pillow's check
        (bomb_png(5000, 5000), "image", "larger than the limit"),  # over 4096x4096
        (bomb_png(20, 10**6), "image", "larger than the limit"),
        (bomb_gif(50000, 50000), "image", "too large"),
        (bomb_gif(5000, 5000), "video", "larger than the limit"),  # from the header, by FFmpeg
        (bomb_gif(50000, 50000), "video", ""),  # FFmpeg itself refuses to open it
    ],
    ids=["png-50000", "png-5000", "png-tall", "gif-image", "gif-video", "gif-video-50000"],
)
def test_a_decompression_bomb_is_422_without_decoding(
    client, monkeypatch, data, key, words
) -> None:
    decoded: list[object] = []
    original = ImageFile.ImageFile.load

    def load(self):
        decoded.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    response = client.post(
        "/v1/jobs",
        files={"request": (None, json.dumps(VALID)), key: ("bomb", data, "image/png")},
    )
    assert words in response.json()["detail"]
    assert response.status_code == 422, response.text
    _check(response, "bomb")
    assert decoded == []
    assert _uploads() == set()
    assert client.get("/v1/jobs").json()["total"] == 0


@pytest.mark.parametrize("kind", ["dds", "exif", "codec"])
def test_a_file_that_breaks_the_decoder_is_422(client, tmp_path, kind) -> None:
    key, data = {
        "dds": ("image", dds_of_unknown_pixels),
        "exif": ("image", png_with_bad_exif),
        "codec": ("video", lambda: mp4_of_unknown_codec(tmp_path)),
    }[kind]
    response = client.post(
        "/v1/jobs",
        files={"request": (None, json.dumps(VALID)), key: ("upload", data(), "image/png")},
    )
    assert _uploads() == set()
    _check(response, kind)
    assert response.status_code == 422


def test_a_real_image_refused_by_the_model_leaves_no_file(client) -> None:
    """The upload is saved and decoded, then refused (modelscope takes no image): removed."""
    response = client.post(
        "/v1/jobs",
        files={"request": (None, json.dumps(VALID)), "image": ("in.png", real_png(), "image/png")},
    )
    assert response.status_code == 422 and "image" in response.json()["detail"]
    assert _uploads() == set()


# --- targeted: the search is text, not SQL --------------------------------------------------------


def test_search_wildcards_and_quotes_are_literal(client) -> None:
    prompts = ["100% cat", "a_b", "abc", "it's", "back\\slash"]
    for prompt in prompts:
        assert client.post("/v1/jobs", json={**VALID, "prompt": prompt}).status_code == 201
    found = {
        q: sorted(job["prompt"] for job in client.get("/v1/jobs", params={"q": q}).json()["jobs"])
        for q in ("%", "_", "'", "\\", "' OR 1=1 --", "%' OR '1'='1", "\\%", "a%c", "A_B")
    }
    assert found == {
        "%": ["100% cat"],
        "_": ["a_b"],
        "'": ["it's"],
        "\\": ["back\\slash"],
        "' OR 1=1 --": [],
        "%' OR '1'='1": [],
        "\\%": [],
        "a%c": [],
        "A_B": ["a_b"],  # LIKE ignores ASCII case
    }
    assert client.get("/v1/jobs", params={"model": "' OR 1=1 --"}).json()["total"] == 0


# --- targeted: races ---------------------------------------------------------------------------


def test_delete_of_a_job_claimed_meanwhile_is_409(client, monkeypatch) -> None:
    store = client.app.state.store
    job_id = client.post("/v1/jobs", json=VALID).json()["id"]
    remove = store.remove

    def claimed_first(job_id: int):
        store.claim(None)  # the worker takes the job between the check and the removal
        return remove(job_id)

    monkeypatch.setattr(store, "remove", claimed_first)
    response = client.delete(f"/v1/jobs/{job_id}")
    job = client.get(f"/v1/jobs/{job_id}")
    assert (response.status_code, job.status_code) in ((409, 200), (204, 404)), (
        response.status_code,
        job.json(),
    )


# --- targeted: the queue -------------------------------------------------------------------------


def test_a_full_queue_is_429(hub) -> None:
    hub("modelscope")
    with TestClient(_app(max_queued=1), base_url="http://localhost") as client:
        assert client.post("/v1/jobs", json=VALID).status_code == 201
        full = client.post("/v1/jobs", json=VALID)
        assert full.status_code == 429
        _check(full, "full queue")
        assert "full" in full.json()["detail"]
        upload = client.post(
            "/v1/jobs",
            files={"request": (None, json.dumps(VALID)), "image": ("a.png", real_png())},
        )
        assert upload.status_code in (422, 429)
        assert _uploads() == set()
        assert client.get("/v1/jobs").json()["total"] == 1
        # a cancelled job frees its place
        client.post("/v1/jobs/1/cancel")
        assert client.post("/v1/jobs", json=VALID).status_code == 201

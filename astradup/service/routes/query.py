"""``POST /query`` (an uploaded video) and ``GET /query?path=`` (a file the server can read).

An upload streams into a temporary file in chunks while its bytes are counted: a declared or
actual size over the limit is refused with 413 as soon as it is known, a name or type that is not
a video with 415, an unreadable video with 422 and the reason. The temporary file is removed in a
``finally``, also when the client disconnects mid-upload.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from astradup.config import VIDEO_EXTENSIONS, AstradupConfig
from astradup.errors import AstradupError, MediaError
from astradup.service.deps import StateDep, http_error, num
from astradup.service.models import Match, QueryResult, Segment
from astradup.service.state import AppState

log = logging.getLogger(__name__)
router = APIRouter(tags=["query"])

MULTIPART_SLACK = 64 * 1024  # bytes of multipart headers and boundaries allowed over the file limit
OK_TYPES = ("application/octet-stream", "")


def _check_type(filename: str, ctype: str) -> str:
    """The upload's extension, or 415 when the name or content type is not a video's."""
    ext = PurePath(filename or "").suffix.lower()
    ctype = (ctype or "").split(";")[0].strip().lower()
    if ext not in VIDEO_EXTENSIONS:
        raise HTTPException(415, f"{filename or 'the upload'}: not a video file name (expected one of "
                                 f"{', '.join(VIDEO_EXTENSIONS)})")
    if not (ctype.startswith("video/") or ctype in OK_TYPES):
        raise HTTPException(415, f"{filename}: content type {ctype!r} is not a video type")
    return ext


class _Upload:
    """The temporary file an upload streams into, with its byte count and limit."""

    def __init__(self, limit: int):
        self.limit = limit
        self.file: Any = None
        self.name = ""
        self.size = 0
        self.error: HTTPException | None = None

    def begin(self, filename: str, ctype: str) -> None:
        ext = _check_type(filename, ctype)
        self.name = filename
        self.file = tempfile.NamedTemporaryFile(prefix="astradup-upload-", suffix=ext, delete=False)  # noqa: SIM115

    def write(self, data: bytes) -> None:
        if self.error is not None or self.file is None:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.error = HTTPException(413, f"{self.name}: upload is larger than the limit of {self.limit} bytes")
            return
        self.file.write(data)

    def remove(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            finally:
                try:
                    os.unlink(self.file.name)
                except FileNotFoundError:
                    pass


async def _receive_multipart(request: Request, up: _Upload, ctype: str) -> None:
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(ctype)
    boundary = params.get(b"boundary")
    if not boundary:
        raise HTTPException(400, "multipart upload without a boundary")
    part: dict[str, Any] = {}

    def on_part_begin():
        part.clear()
        part.update(headers={}, field=b"", value=b"", is_video=False)

    def on_header_field(data, start, end):
        part["field"] += data[start:end]

    def on_header_value(data, start, end):
        part["value"] += data[start:end]

    def on_header_end():
        part["headers"][part["field"].decode("latin-1").lower()] = part["value"].decode("utf-8", "replace")
        part["field"], part["value"] = b"", b""

    def on_headers_finished():
        _, disp = parse_options_header(part["headers"].get("content-disposition", ""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        if name == "video" and up.file is None and up.error is None:
            part["is_video"] = True
            try:
                up.begin(disp.get(b"filename", b"").decode("utf-8", "replace"), part["headers"].get("content-type", ""))
            except HTTPException as exc:
                up.error = exc

    def on_part_data(data, start, end):
        if part.get("is_video"):
            up.write(data[start:end])

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
    })
    async for chunk in request.stream():
        parser.write(chunk)
        if up.error is not None:
            raise up.error
    parser.finalize()
    if up.file is None:
        raise HTTPException(400, "the multipart upload has no 'video' field")


async def _receive_raw(request: Request, up: _Upload, ctype: str, filename: str | None) -> None:
    name = filename or "upload" + {"video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov",
                                   "video/x-matroska": ".mkv"}.get(ctype.split(";")[0].strip().lower(), "")
    up.begin(name, ctype)
    async for chunk in request.stream():
        up.write(chunk)
        if up.error is not None:
            raise up.error
    if up.size == 0:
        raise HTTPException(422, f"{up.name}: the upload is empty")


def _matches(df) -> list[Match]:
    out = []
    for r in df.to_dict("records"):
        seg = [Segment(a_start=num(r["a_start"]), a_end=num(r["a_end"]), b_start=num(r["b_start"]), b_end=num(r["b_end"]))]
        if seg[0].a_start is None:
            seg = []
        expl = r.get("explanation")
        out.append(Match(
            path=r["b"], score=float(r["score"]), label=r["label"], visual=num(r["visual"]), audio=num(r["audio"]),
            metadata=num(r["metadata"]), confidence=num(r["confidence"]), partial=bool(r["partial"]),
            segments=seg, explanation=json.loads(expl) if isinstance(expl, str) else (expl or {}),
        ))
    return out


def run_query_now(state: AppState, path: str, name: str, fast: bool, top: int | None,
                  min_score: float | None) -> QueryResult:
    """Extract ``path`` and match it against the loaded index (in a worker thread)."""
    from astradup.execution.query import extract_query, query_features

    qi = state.index
    if qi is None:
        raise HTTPException(503, state.status.reason or "the index is not loaded yet")
    cfg = state.config or AstradupConfig()
    if fast:
        cfg = cfg.replace(**{"sampling.keyframes_only": True})
    t0 = time.perf_counter()
    try:
        with state.query_slots:
            feats = extract_query(path, cfg)
            with state.access.open() as st:
                df = query_features(feats, qi, st, cfg, top or state.settings.top,
                                    state.settings.min_score if min_score is None else min_score, name=name)
    except MediaError as exc:
        raise HTTPException(422, f"{name}: {exc.reason}") from exc
    except AstradupError as exc:
        raise http_error(exc) from exc
    return QueryResult(query=name, fast=fast, seconds=round(time.perf_counter() - t0, 4), matches=_matches(df))


@router.post("/query", response_model=QueryResult,
             responses={413: {"description": "upload too large"}, 415: {"description": "not a video"},
                        422: {"description": "unreadable video"}, 503: {"description": "index not loaded"}})
async def query_upload(
    request: Request,
    state: StateDep,
    fast: bool = Query(False, description="decode only the query's keyframes"),
    top: int | None = Query(None, ge=1, le=1000),
    min_score: float | None = Query(None, ge=0, le=1),
    filename: str | None = Query(None, description="name of a raw (non-multipart) video body"),
):
    """Upload a video (multipart field ``video``, or a raw ``video/*`` body) and get its matches."""
    limit = state.settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_SLACK:
        raise HTTPException(413, f"upload of {declared} bytes is larger than the limit of {limit} bytes")
    ctype = request.headers.get("content-type", "")
    up = _Upload(limit)
    try:
        try:
            if ctype.lower().startswith("multipart/form-data"):
                await _receive_multipart(request, up, ctype)
            else:
                await _receive_raw(request, up, ctype, filename)
        except ClientDisconnect:
            log.info("client went away during an upload of %d bytes; temporary file removed", up.size)
            return Response(status_code=400)
        up.file.close()
        return await run_in_threadpool(run_query_now, state, up.file.name, up.name, fast, top, min_score)
    finally:
        up.remove()


@router.get("/query", response_model=QueryResult)
def query_path(
    state: StateDep,
    path: str = Query(..., description="a video file the server can read"),
    fast: bool = False,
    top: int | None = Query(None, ge=1, le=1000),
    min_score: float | None = Query(None, ge=0, le=1),
):
    """Look up a file on the server's disk (read-only; nothing is copied or written)."""
    return run_query_now(state, path, path, fast, top, min_score)

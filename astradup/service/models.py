"""Pydantic models of every response the service gives."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = "ok"
    version: str


class Ready(BaseModel):
    ready: bool
    reason: str = ""
    store: str
    index_mode: str | None = None
    index_vectors: int | None = None
    index_videos: int | None = None
    index_run: str | None = None
    stale: bool = False
    stale_reason: str = ""
    review_enabled: bool = False


class Segment(BaseModel):
    a_start: float | None = Field(None, description="start in the query (or video a), seconds")
    a_end: float | None = None
    b_start: float | None = Field(None, description="start in the library video (or video b), seconds")
    b_end: float | None = None


class _Scored(BaseModel):
    """The verdict on one pair, as the query and the pairs routes both give it."""

    score: float
    label: str
    visual: float | None = None
    audio: float | None = None
    metadata: float | None = None
    confidence: float | None = None
    partial: bool = False
    segments: list[Segment]


class Match(_Scored):
    path: str = Field(description="the library video, relative to the media folder")
    explanation: dict[str, Any]


class QueryResult(BaseModel):
    query: str
    fast: bool
    seconds: float = Field(description="extraction and search, seconds")
    matches: list[Match]


class Video(BaseModel):
    video_id: int
    path: str
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    has_audio: bool | None = None
    n_frames: int | None = None
    size: int | None = None


class VideoList(BaseModel):
    total: int
    videos: list[Video]


class Pair(_Scored):
    a_id: int
    b_id: int
    a: str
    b: str


class PairList(BaseModel):
    run_id: str | None
    total: int
    pairs: list[Pair]


class FramePair(BaseModel):
    t_a: float
    t_b: float
    similarity: float | None = None
    thumb_a: str
    thumb_b: str


class PairExplanation(BaseModel):
    a: str
    b: str
    a_id: int
    b_id: int
    score: float
    label: str
    scores: dict[str, Any]
    segments: Segment
    offset: float | None = Field(None, description="b_start - a_start, seconds")
    top_frames: list[FramePair]
    explanation: dict[str, Any]


class QueueItem(Pair):
    offset: float | None = None
    thumb_a: str
    thumb_b: str


class ReviewQueue(BaseModel):
    review_enabled: bool
    total: int
    pairs: list[QueueItem]


class DecisionIn(BaseModel):
    a: str
    b: str
    decision: str
    reviewer: str | None = None
    note: str | None = None


class DecisionOut(BaseModel):
    a: str
    b: str
    decision: str
    recorded: dict[str, Any]


class Moment(BaseModel):
    t: float
    score: float
    thumb: str


class SearchHit(BaseModel):
    rank: int
    path: str
    video_id: int
    score: float
    moments: list[Moment]


class SearchResult(BaseModel):
    query: str
    kind: str = Field(description="text or image")
    hits: list[SearchHit]

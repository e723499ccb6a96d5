"""Text and image search: a tiny random-init CLIP built from a config (nothing downloaded), the
`astradup search` command, ``/search``, and the clear message for stores without CLIP."""

from __future__ import annotations

import json

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from astradup.config import AstradupConfig
from astradup.service import ServiceSettings
from tests.conftest import HOSTILE_NAME, make_video
from tests.service_util import LiveServer

pytestmark = pytest.mark.slow


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def tiny_clip(d) -> str:
    """A random-init CLIP (16-d projections) and a byte-level tokenizer with no merges."""
    import torch
    import transformers

    torch.manual_seed(0)
    text = dict(vocab_size=600, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                max_position_embeddings=32, bos_token_id=512, eos_token_id=513, pad_token_id=513, projection_dim=16)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                  patch_size=8, projection_dim=16)
    transformers.CLIPModel(transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(d)
    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = 512, 513
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    transformers.CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt")).save_pretrained(d)
    return str(d)


@pytest.fixture(scope="module")
def clip_store(tmp_path_factory):
    from astradup.execution import run_index

    root = tmp_path_factory.mktemp("clip")
    model = tiny_clip(root / "model")
    media = root / "media"
    make_video(media / "fractal.mp4", "mandelbrot", seconds=3, seed=1, audio=False)
    make_video(media / "cells.mp4", "life", seconds=3, seed=4, audio=False)
    cfg = AstradupConfig().replace(**{"features.embedding": "clip", "features.model": model, "features.audio": False})
    run_index(media, root / "clip.duckdb", cfg, eager=True, progress=False)
    return root / "clip.duckdb"


def test_text_search_ranks_videos_and_moments(clip_store):
    from astradup.execution.search import search
    from astradup.features.text import encode_text
    from astradup.store import Store

    df = search(clip_store, text="a rabbit in a forest", top=5)
    assert sorted(df["path"]) == ["cells.mp4", "fractal.mp4"] and list(df["rank"]) == [1, 2]
    assert df["score"].is_monotonic_decreasing and all(1 <= len(m) <= 3 for m in df["moments"])
    # oracle: the best frame cosine of each video, by brute force over the stored embeddings
    with Store(clip_store, read_only=True) as st:
        from astradup.execution.query import store_config

        vec = encode_text(["a rabbit in a forest"], store_config(st))[0]
        best = {}
        for b in st.iter_embeddings():
            for vid, sim in zip(b.frame_video, b.embeddings @ vec):
                best[int(vid)] = max(best.get(int(vid), -1.0), float(sim))
    got = dict(zip(df["video_id"], df["score"]))
    assert got == pytest.approx(best, abs=1e-3)
    for r in df.itertuples():
        assert r.moments[0]["score"] == pytest.approx(r.score, abs=1e-3)


def test_search_command_and_route(clip_store):
    from astradup.cli import app

    res = CliRunner().invoke(app, ["search", "a rabbit", "--store", str(clip_store), "--json"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.output.strip().splitlines()]
    assert {x["path"] for x in lines} == {"cells.mp4", "fractal.mp4"}
    with LiveServer(ServiceSettings(store=clip_store)) as srv:
        r = httpx.get(srv.url + "/search", params={"q": "a rabbit", "top": 1}, timeout=120)
        assert r.status_code == 200, r.text
        hits = r.json()["hits"]
        assert len(hits) == 1 and hits[0]["path"] == lines[0]["path"] and hits[0]["moments"][0]["thumb"].startswith("/thumb?")


def test_text_search_needs_clip_and_image_search_works_with_any_model(service_store, tmp_path):
    from astradup.cli import app
    from astradup.media.decode import thumbnail

    res = CliRunner().invoke(app, ["search", "a rabbit", "--store", str(service_store)])
    assert res.exit_code == 2 and "text search needs a CLIP model" in res.output
    photo = tmp_path / "photo.png"
    Image.fromarray(thumbnail(service_store.parent / "media" / "other.mp4", 2.0, 96)).save(photo)
    res = CliRunner().invoke(app, ["search", "--image", str(photo), "--store", str(service_store), "--json"])
    assert res.exit_code == 0, res.output
    top = json.loads(res.output.splitlines()[0])
    assert top["path"] == "other.mp4" and top["score"] > 0.8
    assert abs(top["moments"][0]["t"] - 2.0) <= 1.0
    with LiveServer(ServiceSettings(store=service_store)) as srv:
        r = httpx.get(srv.url + "/search", params={"q": "a rabbit"})
        assert r.status_code == 400 and "CLIP" in r.json()["detail"]
        r = httpx.get(srv.url + "/search", params={"image": str(photo)}, timeout=120)
        assert r.status_code == 200 and r.json()["hits"][0]["path"] == "other.mp4"
        assert {h["path"] for h in r.json()["hits"]} <= {"other.mp4", "src.mp4", HOSTILE_NAME}

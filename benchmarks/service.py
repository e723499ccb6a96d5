"""Service load test: 200 concurrent ``/health`` and 20 concurrent ``/query`` against a real
uvicorn server on 127.0.0.1 (loopback only), bounded in requests and time; it stops by itself.

The server serves ``--store`` when given, else a small store this script builds in a temporary
folder (three 4 s lavfi videos, FFmpeg-generated, nothing downloaded). The 1M-video index of
``benchmarks/query.py`` is a synthetic FAISS index, not a store a server can open, so the query
latency here is measured through the server against the small store; the figure that scales with
the library (the index search) is in the "Query latency" section.

Usage:
    python benchmarks/service.py [--store S --query VIDEO] [--health 200] [--queries 20] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._results import md_table, stamp, write_section  # noqa: E402

DEADLINE_S = 900  # the whole run stops after this, whatever happens


def _video(path: Path, src: str, seconds: int = 4) -> Path:
    import imageio_ffmpeg

    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", src,
                    "-f", "lavfi", "-i", f"sine=f=330:d={seconds}", "-t", str(seconds), "-vf", "format=yuv420p",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(path)], check=True, capture_output=True)
    return path


def build_store(tmp: Path) -> tuple[Path, Path]:
    from astradup.execution import run_index, run_match

    media = tmp / "media"
    src = _video(media / "src.mp4", "mandelbrot=s=96x64:r=12")
    _video(media / "other.mp4", "life=s=96x64:r=12:seed=5:mold=10:ratio=0.5")
    _video(media / "third.mp4", "testsrc2=s=96x64:r=12")
    store = tmp / "bench.duckdb"
    run_index(media, store, eager=True, progress=False)
    run_match(store, min_score=0, progress=False)
    return store, src


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


async def burst(url: str, n: int, make, timeout: float) -> tuple[list[float], list[str]]:
    import httpx

    lat: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        async def one(i: int) -> None:
            t = time.perf_counter()
            try:
                r = await make(client, i)
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
            except Exception as exc:  # noqa: BLE001 - counted as an error
                errors.append(repr(exc))
            lat.append(time.perf_counter() - t)

        await asyncio.gather(*(one(i) for i in range(n)))
    return lat, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path)
    ap.add_argument("--query", type=Path, help="video to upload (default: a library video of the built store)")
    ap.add_argument("--health", type=int, default=200)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    t_start = time.monotonic()

    import httpx

    with tempfile.TemporaryDirectory(prefix="astradup-bench-") as tmp:
        if args.store:
            store, query = args.store, args.query
            which = f"store {args.store.name}"
        else:
            store, query = build_store(Path(tmp))
            which = "a 3-video store built by the script (three 4 s 96x64 clips)"
        if query is None:
            raise SystemExit("--query VIDEO is needed with --store")
        data = Path(query).read_bytes()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        workers = 2
        # the server in its own process, so the client does not share its interpreter
        proc = subprocess.Popen([sys.executable, "-m", "astradup.cli", "serve", "--store", str(store),
                                 "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                if time.monotonic() - t_start > DEADLINE_S or proc.poll() is not None:
                    raise SystemExit("the server did not become ready")
                try:
                    if httpx.get(url + "/ready", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            remaining = DEADLINE_S - (time.monotonic() - t_start)
            t = time.perf_counter()
            h_lat, h_err = asyncio.run(burst(url, args.health, lambda c, i: c.get("/health"), remaining))
            h_wall = time.perf_counter() - t

            async def q(c, i):
                return await c.post("/query", files={"video": (f"q{i}.mp4", data, "video/mp4")})

            # one query alone, warm (the first request loads the models)
            httpx.post(url + "/query", files={"video": ("warm.mp4", data, "video/mp4")}, timeout=remaining)
            t = time.perf_counter()
            r = httpx.post(url + "/query", files={"video": ("one.mp4", data, "video/mp4")}, timeout=remaining)
            one = time.perf_counter() - t
            one_server = r.json()["seconds"]
            remaining = DEADLINE_S - (time.monotonic() - t_start)
            t = time.perf_counter()
            q_lat, q_err = asyncio.run(burst(url, args.queries, q, remaining))
            q_wall = time.perf_counter() - t
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    rows = [
        [f"{args.health} concurrent GET /health", len(h_err), pct(h_lat, 0.5), pct(h_lat, 0.95), max(h_lat), h_wall],
        [f"{args.queries} concurrent POST /query", len(q_err), pct(q_lat, 0.5), pct(q_lat, 0.95), max(q_lat), q_wall],
    ]
    table = md_table(["burst", "errors", "p50 s", "p95 s", "max s", "wall s"], rows)
    body = f"""{stamp()}

`python benchmarks/service.py`: `astradup serve` (uvicorn, its own process) on 127.0.0.1, serving
{which}; httpx.AsyncClient sends each burst at once. Queries upload a {len(data) / 1024:.0f} KiB
video; the server extracts {workers} at a time (`--workers`), the others wait, so the query p95
is about (burst / workers) x one query.

{table}

One warm query through the server (upload, extraction, search, verification): {one:.3f} s on
the client, {one_server:.3f} s inside the server. The 1M-video index is not a store a
server can open (it is synthetic, see "Query latency"), so this query ran against the small store.
The client runs on the same cores as the server, so the /health figures include the client's
own connection set-up under load.
"""
    print(body)
    if h_err or q_err:
        print("errors:", (h_err + q_err)[:5], file=sys.stderr)
    if not args.no_write:
        write_section("Query service load", body)


if __name__ == "__main__":
    main()

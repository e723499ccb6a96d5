"""Run every benchmark and update benchmarks/RESULTS.md (``make bench``).

Each benchmark measures its reference in the same run and reports ratios; see the modules:
accuracy.py (real Debian clips, vs Meta's vpdq and a vPDQ-style baseline; the real-clip, held-out and blind sets), throughput.py (vs bare ffmpeg decode
and vPDQ-style hashing), short_clips.py (200 short real clips, vs ffmpeg and Meta's vpdq from the
``bench`` extra), embedding.py (embedding variants: speed and quality), store_match.py (a large
store through the Store API, then ``astradup match``; not in this list: its sizes take hours), scale.py (synthetic features, 10k-1M videos), query.py (one 60 s 720p
query against a 1M-video index). The 1M sizes take about half an hour each on 2 cores.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = [
    ["throughput.py"],
    ["short_clips.py"],
    ["embedding.py"],
    ["accuracy.py"],
    ["accuracy.py", "--media", "heldout", "--trials", "0"],
    ["accuracy.py", "--media", "blind", "--trials", "0"],
    ["scale.py", "--sizes", "10000,100000,1000000"],
    ["query.py"],
]


def main() -> int:
    quick = "--quick" in sys.argv
    steps = [["scale.py", "--quick"]] if quick else STEPS
    for step in steps:
        print(f"== {' '.join(step)}", flush=True)
        r = subprocess.run([sys.executable, str(HERE / step[0]), *step[1:]])
        if r.returncode != 0:
            print(f"{step[0]} failed with exit status {r.returncode}", file=sys.stderr)
            return r.returncode
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The DuckDB schema, versioned. Each entry of ``MIGRATIONS`` takes the store from version
``n - 1`` to ``n``; opening a store applies the missing steps in one transaction."""

from __future__ import annotations

SCHEMA_VERSION = 5

# Set on every connection that writes the store:
WRITER_SETTINGS = (
    # Text and blobs (above all the pairs' explanation JSON, ~1.4 KB a pair, written again by
    # every match run) are compressed with zstd when DuckDB writes them out: one run's pairs of
    # the real-clip set take 2.8x less than under its default dictionary/FSST, and read as fast.
    # Numbers keep DuckDB's own codecs (zstd does not apply to them). Older segments change only
    # when they are written again.
    "SET force_compression = 'zstd'",
    # DuckDB checkpoints when its write-ahead log passes 16 MB and rewrites the row groups appended
    # to since; an index run commits every few seconds, so each checkpoint wrote the frames
    # table's tail again and the freed blocks stayed in the file (up to ~45 % of a fresh store).
    # Checkpointing at 1 GB of log (and at close) writes the rows about once.
    "SET checkpoint_threshold = '1GB'",
)

MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
        """CREATE TABLE IF NOT EXISTS videos (
            video_id BIGINT PRIMARY KEY, path VARCHAR UNIQUE NOT NULL, rel_path VARCHAR,
            size BIGINT, mtime DOUBLE, content_hash VARCHAR, feature_key VARCHAR,
            duration DOUBLE, avg_fps DOUBLE, real_fps DOUBLE, variable_fps BOOLEAN,
            width INTEGER, height INTEGER, rotation INTEGER, display_aspect DOUBLE,
            video_codec VARCHAR, audio_codec VARCHAR, has_audio BOOLEAN, sample_rate INTEGER,
            channels INTEGER, bit_rate BIGINT, file_size BIGINT, container VARCHAR,
            frame_count BIGINT, n_frames INTEGER, decoder VARCHAR, timings JSON,
            run_id VARCHAR, indexed_at TIMESTAMP)""",
        """CREATE TABLE IF NOT EXISTS frames (
            video_id BIGINT, idx INTEGER, t DOUBLE, phash BLOB, phash_flip BLOB,
            embedding FLOAT[], PRIMARY KEY (video_id, idx))""",
        "CREATE TABLE IF NOT EXISTS descriptors (video_id BIGINT PRIMARY KEY, embedding FLOAT[])",
        """CREATE TABLE IF NOT EXISTS audio (
            video_id BIGINT PRIMARY KEY, status VARCHAR, fingerprint UINTEGER[],
            mfcc_mean FLOAT[], mfcc_std FLOAT[], rms DOUBLE)""",
        """CREATE TABLE IF NOT EXISTS failures (
            run_id VARCHAR, path VARCHAR, stage VARCHAR, error_class VARCHAR, message VARCHAR,
            time TIMESTAMP)""",
        """CREATE TABLE IF NOT EXISTS pairs (
            run_id VARCHAR, a_id BIGINT, b_id BIGINT, a VARCHAR, b VARCHAR, score DOUBLE,
            label VARCHAR, visual DOUBLE, audio DOUBLE, metadata DOUBLE, confidence DOUBLE,
            a_start DOUBLE, a_end DOUBLE, b_start DOUBLE, b_end DOUBLE, partial BOOLEAN,
            explanation JSON)""",
        """CREATE TABLE IF NOT EXISTS labels (
            a VARCHAR, b VARCHAR, relation VARCHAR, transform VARCHAR, a_start DOUBLE,
            a_end DOUBLE, b_start DOUBLE, b_end DOUBLE, "group" VARCHAR, source VARCHAR,
            reviewer VARCHAR, time TIMESTAMP)""",
        """CREATE TABLE IF NOT EXISTS runs (
            run_id VARCHAR PRIMARY KEY, kind VARCHAR, config JSON, versions JSON,
            started TIMESTAMP, ended TIMESTAMP, status VARCHAR, n_files INTEGER,
            n_indexed INTEGER, n_skipped INTEGER, n_failed INTEGER, seconds DOUBLE,
            videos_per_hour DOUBLE, media_root VARCHAR, scheduler VARCHAR)""",
    ],
    # 2: review (astradup.review): reviewers' decisions, the apply/undo audit log, tombstones
    2: [
        # append-only: a later row for the same (a, b) supersedes an earlier one; a and b are paths
        # relative to the media folder with a < b, and each file's size, mtime and content hash
        # as the store held them, so a decision stands only while both files are unchanged
        """CREATE TABLE IF NOT EXISTS decisions (
            seq BIGINT, a VARCHAR, b VARCHAR, decision VARCHAR, reviewer VARCHAR, note VARCHAR,
            time TIMESTAMP, a_path VARCHAR, b_path VARCHAR, a_size BIGINT, a_mtime DOUBLE,
            a_hash VARCHAR, b_size BIGINT, b_mtime DOUBLE, b_hash VARCHAR, run_id VARCHAR,
            score DOUBLE, label VARCHAR, partial BOOLEAN)""",
        # one row per apply: who ran which plan (the whole plan JSON and its config) and how
        """CREATE TABLE IF NOT EXISTS actions (
            action_id VARCHAR, who VARCHAR, time TIMESTAMP, mode VARCHAR, quarantine VARCHAR,
            plan_path VARCHAR, plan JSON, config JSON, host VARCHAR, pid INTEGER)""",
        # append-only journal: each file's intent is written before the file is touched, then
        # done / failed / refused; undo appends undo-intent and undone (see astradup.review.actions)
        """CREATE TABLE IF NOT EXISTS audit (
            seq BIGINT, action_id VARCHAR, item INTEGER, event VARCHAR, op VARCHAR, src VARCHAR,
            dst VARCHAR, keeper VARCHAR, size BIGINT, mtime_ns BIGINT, content_hash VARCHAR,
            message VARCHAR, who VARCHAR, time TIMESTAMP)""",
        # fingerprints of files moved out of the library, so a copy that comes back is flagged
        """CREATE TABLE IF NOT EXISTS tombstones (
            action_id VARCHAR, item INTEGER, path VARCHAR, rel_path VARCHAR, size BIGINT,
            content_hash VARCHAR, descriptor FLOAT[], keeper VARCHAR, time TIMESTAMP)""",
    ],
    # per-frame picture detail (astradup.features.quality); NULL for frames indexed before it existed
    3: ["ALTER TABLE frames ADD COLUMN IF NOT EXISTS quality FLOAT"],
    # the region of the frame the features describe (VideoFeatures.content_box: top, bottom, left,
    # right as fractions), so the geometric check cuts decoded frames without deciding it again;
    # NULL for videos indexed before it was kept (the check then decides it from the frames)
    4: ["ALTER TABLE videos ADD COLUMN IF NOT EXISTS content_box DOUBLE[]"],
    # hashes of the whole frame where the content box cuts part of it (VideoFeatures.phash_full);
    # NULL where it does not, and for frames indexed before they were kept
    5: ["ALTER TABLE frames ADD COLUMN IF NOT EXISTS phash_full BLOB",
        "ALTER TABLE frames ADD COLUMN IF NOT EXISTS phash_full_flip BLOB"],
}

TABLES = ("meta", "videos", "frames", "descriptors", "audio", "failures", "pairs", "labels", "runs",
          "decisions", "actions", "audit", "tombstones")

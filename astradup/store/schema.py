"""The DuckDB schema, versioned. Each entry of ``MIGRATIONS`` takes the store from version
``n - 1`` to ``n``; opening a store applies the missing steps in one transaction."""

from __future__ import annotations

SCHEMA_VERSION = 2

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
    # per-frame picture detail (astradup.features.quality); NULL for frames indexed before it existed
    2: ["ALTER TABLE frames ADD COLUMN IF NOT EXISTS quality FLOAT"],
}

TABLES = ("meta", "videos", "frames", "descriptors", "audio", "failures", "pairs", "labels", "runs")

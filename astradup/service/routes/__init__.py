"""One router per concern: health, metrics, query, library (videos, pairs, thumbnails), search, review."""

"""Media layer: find, check, probe and decode video files (read-only)."""

from astradup.media.audio import iter_audio, load_audio
from astradup.media.decode import DECODERS, FrameSample, make_decoder, sample_frames, thumbnail
from astradup.media.files import check_file, content_hash, discover
from astradup.media.probe import MediaInfo, probe

__all__ = [
    "DECODERS",
    "FrameSample",
    "MediaInfo",
    "check_file",
    "content_hash",
    "discover",
    "iter_audio",
    "load_audio",
    "make_decoder",
    "probe",
    "sample_frames",
    "thumbnail",
]

"""Extractors: one shared contract suite, plus oracles (imagehash) and the transformers path."""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

from astradup.errors import MediaError, UnknownBackendError
from astradup.features import (
    EXTRACTORS,
    AudioExtractor,
    Extractor,
    FrameExtractor,
    extractor_class,
    make_extractor,
)
from astradup.features.audio import Chromaprint, audio_features
from astradup.features.phash import PHash, hamming_matrix
from astradup.features.preprocess import border_box, trim_borders
from astradup.media import load_audio, probe, sample_frames

# The contract suite runs over every name in the registry, so a new extractor is checked as soon
# as it is registered. Extractors that need a model (a ``model`` parameter: CLIP, DINOv2) are built
# from the real one named in ASTRADUP_TEST_<NAME>_MODEL (a hub id or local directory) when set, else
# from a tiny random-init stand-in (tiny_hf_models): shape, dtype and determinism are checked
# either way; robustness only with real weights.
REGISTERED = sorted(EXTRACTORS)


def frames_of(path, size=64):
    return sample_frames(path, probe(path).duration, fps=1.0, size=size).frames


@pytest.fixture(scope="module")
def frames(media_dir):
    return {n: frames_of(media_dir / n) for n in ("src.mp4", "reencode.mkv", "mirror.mp4", "other.mp4")}


@pytest.fixture(scope="module")
def tiny_hf_models(tmp_path_factory):
    """Tiny random-init CLIP and DINOv2 vision models saved from configs (no download)."""
    import torch
    import transformers

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("hf")
    clip_cfg = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                             num_attention_heads=2, image_size=32, patch_size=8, projection_dim=16)
    transformers.CLIPVisionModelWithProjection(clip_cfg).save_pretrained(root / "clip")
    dino_cfg = transformers.Dinov2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, image_size=32, patch_size=8)
    transformers.Dinov2Model(dino_cfg).save_pretrained(root / "dinov2")
    return root


def _build(name: str, request) -> tuple[Extractor, bool]:
    """The registered extractor with its default parameters, and whether its weights are real."""
    if "model" not in inspect.signature(extractor_class(name)).parameters:
        return make_extractor(name), True
    env = f"ASTRADUP_TEST_{name.upper()}_MODEL"
    if os.environ.get(env):
        return make_extractor(name, model=os.environ[env], device="cpu"), True
    tiny = request.getfixturevalue("tiny_hf_models") / name
    if not tiny.is_dir():
        pytest.skip(f"{name} needs model weights: set {env} (no tiny stand-in is made for it here)")
    return make_extractor(name, model=str(tiny), device="cpu"), False


def _dist(x, y):
    """Mean distance of matching rows: normalised Hamming for packed bits, 1 - cosine for vectors,
    relative difference for one number per frame."""
    if x.dtype == np.uint8:
        return hamming_matrix(x, y).diagonal().mean() / (x.shape[1] * 8)
    if x.ndim == 1:
        return float(np.mean(np.abs(x - y) / np.maximum(np.abs(x) + np.abs(y), 1e-9)))
    cos = (x * y).sum(1) / np.maximum(np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1), 1e-9)
    return float(1.0 - cos.mean())


def _no_contract(ex: Extractor) -> str:
    return f"{ex.name}: no contract for a {type(ex).__mro__[1].__name__}; add one to TestExtractorContract"


@pytest.mark.parametrize("name", REGISTERED)
class TestExtractorContract:
    def test_registered_under_its_name_and_rebuilt_from_its_params(self, name):
        cls = extractor_class(name)
        ex = make_extractor(name)  # constructors store parameters and do no work
        assert type(ex) is cls and ex.name == name and isinstance(cls.version, int) and cls.version >= 1
        assert cls(**ex.get_params()).get_params() == ex.get_params()
        assert set(cls.execution_params) <= set(inspect.signature(cls.__init__).parameters) - {"self"}

    def test_deterministic_shape_dtype(self, name, frames, media_dir, request):
        ex, _ = _build(name, request)
        if isinstance(ex, FrameExtractor):
            x = frames["src.mp4"]
            a = ex.extract(x)
            assert np.array_equal(a, ex.extract(x)) and len(a) == len(x)
            if a.dtype == np.uint8:  # packed hash bits
                assert a.ndim == 2 and a.shape[1] * 8 == getattr(ex, "hash_size", 16) ** 2
            elif a.ndim == 2:  # embeddings: unit vectors of the declared size
                assert a.dtype == np.float32 and a.shape[1] == ex.dim  # type: ignore[attr-defined]
                assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
            else:  # one number per frame
                assert a.dtype == np.float32 and a.ndim == 1 and (a >= 0).all()
        elif isinstance(ex, AudioExtractor):
            audio = load_audio(media_dir / "src.mp4", 11025)
            a = ex.extract(audio, 11025)
            assert np.array_equal(a, ex.extract(audio, 11025)) and a.size > 0
            assert (a.dtype, a.ndim) in ((np.uint32, 1), (np.float32, 2)), (a.dtype, a.shape)
            if a.dtype == np.float32:
                assert a.shape == (2, ex.n_mfcc) and np.isfinite(a).all()  # type: ignore[attr-defined]
        else:
            assert hasattr(ex, "similarity"), _no_contract(ex)
            info = probe(media_dir / "src.mp4").to_dict()
            a = ex.extract(info)  # type: ignore[attr-defined]
            assert a == ex.extract(info) and all(np.isfinite(v) for v in a.values())  # type: ignore[attr-defined]
            assert ex.similarity(a, a) == pytest.approx(1.0)  # type: ignore[attr-defined]

    def test_robust_to_reencode_and_separates_other(self, name, frames, media_dir, request):
        ex, real = _build(name, request)
        if not real:
            pytest.skip(f"{name}: random-init stand-in weights; set ASTRADUP_TEST_{name.upper()}_MODEL "
                        "to check robustness with real ones")
        if isinstance(ex, FrameExtractor):
            src, re, other = (ex.extract(frames[k]) for k in ("src.mp4", "reencode.mkv", "other.mp4"))
            n = min(len(src), len(re), len(other))
            d_copy, d_other = _dist(src[:n], re[:n]), _dist(src[:n], other[:n])
            assert d_copy < d_other / 2, (d_copy, d_other)
        elif isinstance(ex, AudioExtractor):
            fa, fr = (ex.extract(load_audio(media_dir / k, 11025), 11025) for k in ("src.mp4", "reencode.mkv"))
            if fa.dtype == np.uint32:  # a fingerprint: bit error rate
                n = min(len(fa), len(fr))
                assert np.bitwise_count(fa[:n] ^ fr[:n]).sum() / (n * 32) < 0.15
            else:  # statistics: the re-encode's follow the source's
                assert np.corrcoef(fa[0], fr[0])[0, 1] > 0.95
        else:
            assert hasattr(ex, "similarity"), _no_contract(ex)
            src, re, clip = (ex.extract(probe(media_dir / k).to_dict())  # type: ignore[attr-defined]
                             for k in ("src.mp4", "reencode.mkv", "clip.mp4"))
            sim = ex.similarity  # type: ignore[attr-defined]
            assert sim(src, re) == sim(re, src) >= 0.9 > sim(src, clip)

    def test_empty_input(self, name, request):
        ex, _ = _build(name, request)
        if isinstance(ex, FrameExtractor):
            assert len(ex.extract(np.zeros((0, 64, 64, 3), np.uint8))) == 0
        elif isinstance(ex, AudioExtractor):
            out = ex.extract(np.zeros(0, np.float32), 11025)
            assert out.size == 0 or not out.any()
        else:
            assert hasattr(ex, "similarity"), _no_contract(ex)
            assert set(ex.extract({}).values()) == {0.0}  # type: ignore[attr-defined]


def test_corrupt_file_is_media_error_for_every_extraction_path(tmp_path):
    from astradup.config import AstradupConfig
    from astradup.execution import Failure, extract_video

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 500)
    with pytest.raises(MediaError):
        probe(bad)
    res = extract_video(str(bad), AstradupConfig())
    assert isinstance(res, Failure) and res.stage == "probe" and "bad.mp4" in res.message


def test_unknown_extractor_lists_valid():
    with pytest.raises(UnknownBackendError, match="mobilenetv2"):
        make_extractor("resnet9000")


def test_phash_bits_equal_imagehash(frames):
    import imagehash
    from PIL import Image

    f = np.concatenate([frames["src.mp4"], frames["other.mp4"]])
    ours = PHash(hash_size=16).extract(f)
    for i, img in enumerate(f):
        ref = imagehash.phash(Image.fromarray(img), hash_size=16).hash.flatten()
        assert np.array_equal(np.unpackbits(ours[i]), ref)


def test_mirror_hash_equals_hash_of_mirrored_frames(frames):
    f = frames["src.mp4"]
    _, mirrored = PHash().extract_with_flip(f)
    direct = PHash().extract(np.ascontiguousarray(f[:, :, ::-1]))
    assert np.array_equal(mirrored, direct)


def test_embedding_is_mirror_invariant(frames):
    ex = make_extractor("mobilenetv2")
    a = ex.extract(frames["src.mp4"])
    b = ex.extract(np.ascontiguousarray(frames["src.mp4"][:, :, ::-1]))
    assert (a * b).sum(axis=1).min() > 0.999


def test_symmetric_embedding_is_exactly_mirror_invariant_in_one_pass(frames):
    from astradup.features.embedding import MobileNetV2

    f = frames["src.mp4"]
    ex = MobileNetV2(mirror="symmetric", runtime="torch")
    a = ex.extract(f)
    b = ex.extract(np.ascontiguousarray(f[:, :, ::-1]))
    assert np.abs(a - b).max() < 1e-5  # exact up to float rounding, not merely close
    # the plain network is not mirror-invariant on these frames: the symmetrisation does the work
    plain = MobileNetV2(mirror="none", runtime="torch")
    pa, pb = plain.extract(f), plain.extract(np.ascontiguousarray(f[:, :, ::-1]))
    assert np.abs(pa - pb).max() > 1e-3


@pytest.mark.parametrize("mirror", ["symmetric", "two_pass", "none"])
def test_onnx_runtime_equals_eager_torch(frames, mirror):
    from astradup.features.embedding import MobileNetV2

    f = frames["src.mp4"]
    onnx = MobileNetV2(mirror=mirror, runtime="onnx", device="cpu").extract(f)
    eager = MobileNetV2(mirror=mirror, runtime="torch", device="cpu").extract(f)
    assert onnx.shape == eager.shape == (len(f), 1280) and onnx.dtype == np.float32
    assert np.abs(onnx - eager).max() < 1e-4


def test_onnx_export_is_cached_and_reused(frames, model_cache):
    from astradup.features import embedding

    path = embedding.export_onnx(symmetric=True)
    assert path.parent == model_cache and path.is_file()
    stamp = path.stat().st_mtime_ns
    assert embedding.export_onnx(symmetric=True) == path and path.stat().st_mtime_ns == stamp
    assert not list(model_cache.glob("*.tmp"))


def test_bad_mirror_or_runtime_is_config_error():
    from astradup.config import AstradupConfig
    from astradup.errors import ConfigError
    from astradup.features.embedding import MobileNetV2

    with pytest.raises(ConfigError, match="mirror"):
        MobileNetV2(mirror="sideways").extract(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(ConfigError, match="runtime"):
        AstradupConfig.from_dict({"features": {"runtime": "tensorrt"}})


def test_mirror_mode_is_part_of_the_feature_key():
    from astradup.config import AstradupConfig
    from astradup.execution.runner import feature_key

    cfg = AstradupConfig()
    keys = {feature_key(cfg.replace(**{"features.mirror": m})) for m in ("symmetric", "two_pass", "none")}
    assert len(keys) == 3
    assert feature_key(cfg.replace(**{"features.runtime": "torch"})) == feature_key(cfg)


def test_feature_key_follows_the_extractor_registry(monkeypatch):
    """The key hashes each extractor's registry name, class version and constructor parameters:
    a new version, a changed default or one more extractor changes it with no edit to the key."""
    from astradup.config import AstradupConfig
    from astradup.features import specs
    from astradup.features.quality import FrameQuality

    cfg = AstradupConfig()
    base = specs.feature_key(cfg)
    assert specs.feature_key(cfg.replace(**{"features.device": "cpu", "features.batch_size": 4})) == base
    with monkeypatch.context() as m:
        m.setattr(PHash, "version", PHash.version + 1)
        assert specs.feature_key(cfg) != base
    with monkeypatch.context() as m:
        m.setattr(FrameQuality.__init__, "__defaults__", (FrameQuality().side + 1,))
        assert specs.feature_key(cfg) != base
    with monkeypatch.context() as m:
        real = specs.extractor_specs
        m.setattr(specs, "extractor_specs", lambda c: {**real(c), "extra": specs.ExtractorSpec("metadata")})
        assert specs.feature_key(cfg) != base
    assert specs.feature_key(cfg) == base


@pytest.mark.parametrize("embedding", ["mobilenetv2", "clip", "dinov2"])
@pytest.mark.parametrize("mirror", ["two_pass", "none"])
def test_extraction_builds_the_extractors_the_key_describes(embedding, mirror):
    """extract_video builds its embedder and hasher with the parameters of extractor_specs
    (constructors do no work, so building a transformers embedder loads nothing)."""
    from astradup.config import AstradupConfig
    from astradup.execution.extract import _embedder
    from astradup.features.specs import extractor_specs

    cfg = AstradupConfig().replace(**{"features.embedding": embedding, "features.model": "some/model",
                                      "features.mirror": mirror, "features.hash_size": 8})
    spec = extractor_specs(cfg)
    built = _embedder(cfg)
    assert built.name == spec["embedding"].name and built.get_params() == spec["embedding"].build().get_params()
    assert spec["hash"].build().get_params() == make_extractor("phash", hash_size=8).get_params()


def test_compact_embeddings_keep_copies_apart_from_other_videos(frames):
    from astradup.config import MatchConfig
    from astradup.features.embedding import MobileNetV2, compact_basis

    _mean, comps = compact_basis()
    assert comps.shape == (128, 1280) and np.allclose(comps @ comps.T, np.eye(128), atol=5e-3)  # orthonormal
    src, copy, other = frames["src.mp4"], frames["reencode.mkv"], frames["other.mp4"]
    n = min(len(src), len(copy))
    full = MobileNetV2(compact_dim=0)
    small = MobileNetV2(compact_dim=96)
    a, b, c = small.extract(src[:n]), small.extract(copy[:n]), small.extract(other)
    assert a.shape == (n, 96) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    fa, fb = full.extract(src[:n]), full.extract(copy[:n])
    # a re-encode stays as close as in 1280 dimensions; no frame of another video comes near the
    # cosine a frame must reach to propose a candidate
    assert (a * b).sum(1).min() >= (fa * fb).sum(1).min() - 0.02
    assert (a @ c.T).max() < min(MatchConfig().min_candidate_sim, (a * b).sum(1).min())
    mirrored = small.extract(np.ascontiguousarray(src[:n, :, ::-1]))
    assert np.abs(a - mirrored).max() < 1e-4
    assert MobileNetV2(compact_dim=32).extract(src).shape == (len(src), 32)


def test_compact_dim_is_checked_and_keyed():
    from astradup.config import AstradupConfig
    from astradup.errors import ConfigError
    from astradup.execution.runner import feature_key

    with pytest.raises(ConfigError, match="compact_dim"):
        AstradupConfig.from_dict({"features": {"compact_dim": 512}})
    cfg = AstradupConfig()
    assert feature_key(cfg) != feature_key(cfg.replace(**{"features.compact_dim": 96}))


def test_embed_every_runs_the_model_on_every_stride_th_frame_and_interpolates_between():
    """Oracle: the model sees frames 0, k, 2k, ... and the last; those keep their own embedding
    and each frame between gets the normalised blend of its two embedded neighbours."""
    from astradup.features.embedding import embed_every, l2_normalise

    rng = np.random.default_rng(3)
    table = l2_normalise(rng.standard_normal((11, 16)))
    seen: list[list[int]] = []

    def model(fr):
        seen.append([int(x) for x in fr])
        return table[fr]

    out = embed_every(model, np.arange(11), 4)
    assert seen == [[0, 4, 8, 10]]
    assert np.allclose(out[[0, 4, 8, 10]], table[[0, 4, 8, 10]], atol=1e-6)
    for j, (lo, hi) in {1: (0, 4), 2: (0, 4), 6: (4, 8), 9: (8, 10)}.items():
        w = (j - lo) / (hi - lo)
        want = l2_normalise(((1 - w) * table[lo] + w * table[hi])[None])[0]
        assert np.allclose(out[j], want, atol=1e-6)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(embed_every(lambda fr: table[fr], np.arange(11), 1), table[np.arange(11)])
    assert np.array_equal(embed_every(lambda fr: table[fr], np.arange(2), 4), table[:2])


def test_embed_fps_thins_the_model_only_for_videos_sampled_faster(media_dir):
    """A short video sampled at 4 frames a second (``sampling.min_frames``) is embedded at 1;
    its hashes stay at 4; a video sampled at 1 frame a second is embedded whole; the setting is
    checked and keyed."""
    from astradup.config import AstradupConfig
    from astradup.errors import ConfigError
    from astradup.execution import extract_video
    from astradup.execution.extract import embed_stride
    from astradup.execution.runner import feature_key

    cfg = AstradupConfig().replace(**{"features.audio": False, "features.embed_fps": 1.0})
    assert embed_stride(cfg, 16, 4.0) == 4 and embed_stride(cfg, 18, 9.0) == 2 and embed_stride(cfg, 60, 60.0) == 1
    assert embed_stride(cfg, 6, 60.0) == 1  # keyframes only: every one embedded
    assert embed_stride(cfg.replace(**{"features.embed_fps": 0}), 16, 4.0) == 1
    dense = cfg.replace(**{"features.embed_fps": 0})
    thin, full = extract_video(str(media_dir / "src.mp4"), cfg), extract_video(str(media_dir / "src.mp4"), dense)
    k = embed_stride(cfg, thin.n_frames, thin.duration)
    assert k > 1 and np.array_equal(thin.phash, full.phash) and np.array_equal(thin.timestamps, full.timestamps)
    assert np.allclose(thin.embeddings[::k], full.embeddings[::k], atol=1e-5)
    assert (thin.embeddings * full.embeddings).sum(1).min() > 0.8  # between them, close to the real thing
    with pytest.raises(ConfigError, match="embed_fps"):
        AstradupConfig.from_dict({"features": {"embed_fps": -1}})
    assert len({feature_key(cfg), feature_key(dense), feature_key(cfg.replace(**{"features.embed_fps": 2.0}))}) == 3


def test_letterbox_is_trimmed():
    rng = np.random.default_rng(0)
    pic = (rng.random((3, 48, 64, 3)) * 200 + 40).astype(np.uint8)
    boxed = np.zeros((3, 64, 64, 3), np.uint8)
    boxed[:, 8:56] = pic
    assert border_box(boxed) == (8, 56, 0, 64)
    assert trim_borders(boxed).shape == boxed.shape
    dark_scene = np.zeros((3, 64, 64, 3), np.uint8)
    dark_scene[0] = 200  # one bright frame: nothing is a bar
    assert border_box(dark_scene) == (0, 64, 0, 64)


def test_silence_and_missing_audio_are_not_matches():
    silent = audio_features(np.zeros(11025 * 3, np.float32), 11025)
    missing = audio_features(None, 11025)
    assert silent.status == "silent" and len(silent.fingerprint) == 0
    assert missing.status == "missing"
    from astradup.scoring import audio_similarity

    assert audio_similarity(silent, silent) == (None, None)
    assert audio_similarity(missing, silent) == (None, None)


def test_chromaprint_library_and_ffmpeg_agree(media_dir):
    from astradup.features.audio import _library_available

    if not _library_available():
        pytest.skip("libchromaprint1 is not installed (make system-deps installs it)")
    a = load_audio(media_dir / "src.mp4", 11025)
    assert np.array_equal(Chromaprint("library").extract(a, 11025), Chromaprint("ffmpeg").extract(a, 11025))


@pytest.mark.parametrize("name,dim", [("clip", 16), ("dinov2", 32)])
def test_transformers_embedders_from_local_dir(name, dim, tiny_hf_models, frames):
    ex = make_extractor(name, model=str(tiny_hf_models / name), device="cpu")
    e = ex.extract(frames["src.mp4"])
    assert e.shape == (len(frames["src.mp4"]), dim) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(e, ex.extract(frames["src.mp4"]))
    assert ex.dim == dim


def test_transformers_missing_model_is_config_error(tmp_path):
    from astradup.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot load"):
        make_extractor("clip", model=str(tmp_path / "nope")).extract(np.zeros((1, 32, 32, 3), np.uint8))


@pytest.mark.gpu
def test_embeddings_on_gpu_match_cpu(frames):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    cpu = make_extractor("mobilenetv2", device="cpu").extract(frames["src.mp4"])
    gpu = make_extractor("mobilenetv2", device="cuda").extract(frames["src.mp4"])
    assert (cpu * gpu).sum(axis=1).min() > 0.999


def test_mfcc_chunked_equals_whole_track(media_dir):
    from astradup.features.audio import MFCC

    a = load_audio(media_dir / "src.mp4", 11025)
    whole = MFCC(chunk_seconds=100).extract(a, 11025)
    chunked = MFCC(chunk_seconds=3).extract(a, 11025)  # only chunk edges differ (STFT padding)
    assert np.allclose(whole[0], chunked[0], rtol=0.05, atol=3.0)
    assert np.allclose(whole[1], chunked[1], rtol=0.1, atol=2.0)


@pytest.mark.parametrize("backend", ["library", "ffmpeg"])
def test_streamed_audio_features_equal_one_shot(media_dir, backend):
    from astradup.features.audio import _library_available, stream_audio_features

    if backend == "library" and not _library_available():
        pytest.skip("libchromaprint1 is not installed (make system-deps installs it)")
    a = load_audio(media_dir / "src.mp4", 11025)
    whole = audio_features(a, 11025, Chromaprint(backend))
    streamed = stream_audio_features((a[i : i + 3000] for i in range(0, len(a), 3000)), 11025, Chromaprint(backend))
    assert streamed.status == whole.status == "ok"
    assert np.array_equal(streamed.fingerprint, whole.fingerprint)
    assert streamed.rms == pytest.approx(whole.rms)
    assert np.allclose(streamed.mfcc_mean, whole.mfcc_mean, atol=1e-3)

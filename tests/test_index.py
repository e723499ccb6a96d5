"""astradup.index against brute-force numpy oracles on small seeded data."""

from __future__ import annotations

import faiss
import numpy as np
import pandas as pd
import pytest

from astradup.errors import AstradupError, IndexError_, UnknownBackendError
from astradup.index import (
    CANDIDATE_COLUMNS,
    BinaryHashIndex,
    PCAReducer,
    VectorIndex,
    candidate_pairs,
    select_keyframes,
)

HAS_GPU = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
needs_gpu = [pytest.mark.gpu, pytest.mark.skipif(not HAS_GPU, reason="faiss sees no GPU")]


# -- data and oracles ----------------------------------------------------------------------------
def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, d: int, seed: int, n_clusters: int = 50, spread: float = 0.5) -> np.ndarray:
    """Unit vectors around random centres: like embeddings, unlike isotropic noise."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((n_clusters, d)))
    x = centres[rng.integers(0, n_clusters, n)] + spread * rng.standard_normal((n, d)) / np.sqrt(d)
    return unit(x)


def exact_knn(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    s = unit(queries).astype(np.float64) @ unit(base).astype(np.float64).T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, axis=1), order


def recall_at_k(
    found: np.ndarray, sims_true: np.ndarray, sims_found_true: np.ndarray, k: int
) -> float:
    """Fraction of true top-k similarities reached; a tie at the k-th value counts as found."""
    kth = sims_true[:, k - 1 : k] - 1e-6
    hits = (sims_found_true >= kth) & (found >= 0)
    return float(hits.sum() / (found.shape[0] * k))


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x = np.bitwise_xor(a[:, None, :], b[None, :, :])
    return np.unpackbits(x, axis=2).sum(axis=2)


def near_codes(n: int, nbytes: int, seed: int, n_sources: int = 40, flips: int = 20) -> np.ndarray:
    """Codes that are noisy copies of a few sources (like pHashes of re-encoded frames)."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 256, (n_sources, nbytes), dtype=np.uint8)
    bits = np.unpackbits(src[rng.integers(0, n_sources, n)], axis=1)
    for row in bits:
        row[rng.choice(bits.shape[1], rng.integers(0, flips), replace=False)] ^= 1
    return np.packbits(bits, axis=1)


# -- VectorIndex ---------------------------------------------------------------------------------
def test_flat_search_matches_numpy():
    x = clustered(3000, 24, seed=1)
    q = clustered(50, 24, seed=2)
    ids = np.arange(3000, dtype=np.int64) * 7 + 3  # ids are not positions
    idx = VectorIndex(24, kind="flat")
    idx.add(x, ids)
    sims, found = idx.search(q, 10)
    true_s, true_pos = exact_knn(x, q, 10)
    assert found.dtype == np.int64 and sims.dtype == np.float32 and sims.shape == (50, 10)
    np.testing.assert_allclose(sims, true_s, atol=1e-5)
    np.testing.assert_array_equal(found, ids[true_pos])


def test_auto_is_flat_when_small_and_exact():
    x = clustered(500, 16, seed=3)
    idx = VectorIndex(16)
    idx.add(x, np.arange(500))
    idx.search(x[:2], 1)
    assert idx.built_kind == "flat"


@pytest.mark.parametrize(
    "kind,params,min_recall",
    [
        ("hnsw", {}, 0.95),
        ("ivf", {"nprobe": 16}, 0.90),
    ],
)
def test_approximate_recall_at_10(kind, params, min_recall):
    x = clustered(4000, 32, seed=4)
    q = clustered(200, 32, seed=5)
    idx = VectorIndex(32, kind=kind, **params)
    idx.add(x, np.arange(4000, dtype=np.int64))
    sims, found = idx.search(q, 10)
    assert idx.built_kind == kind
    true_s, _ = exact_knn(x, q, 10)
    s_true_of_found = np.where(
        found >= 0, (unit(q) @ x.T)[np.arange(200)[:, None], np.maximum(found, 0)], -9
    )
    r = recall_at_k(found, true_s, s_true_of_found, 10)
    assert r >= min_recall, f"{kind} recall@10 = {r:.3f}"
    # similarities are real cosines of the returned ids
    ok = found >= 0
    np.testing.assert_allclose(sims[ok], s_true_of_found[ok], atol=1e-5)


def test_ivf_probing_every_list_is_exact():
    x = clustered(3000, 16, seed=6)
    idx = VectorIndex(16, kind="ivf", nlist=20, nprobe=20)
    idx.add(x, np.arange(3000))
    sims, found = idx.search(x[:40], 5)
    true_s, true_pos = exact_knn(x, x[:40], 5)
    np.testing.assert_allclose(sims, true_s, atol=1e-5)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_planted_near_duplicates_are_retrieved(kind):
    rng = np.random.default_rng(7)
    base = clustered(5000, 32, seed=8)
    dup = unit(
        base[:300] + 0.05 * rng.standard_normal((300, 32)).astype(np.float32) / np.sqrt(32) * 4
    )
    idx = VectorIndex(32, kind=kind, nprobe=4)
    idx.add(base, np.arange(5000))
    _, found = idx.search(dup, 1)
    assert (found[:, 0] == np.arange(300)).mean() >= 0.98


def test_range_search_flat_matches_numpy_and_is_inclusive():
    x = clustered(2000, 16, seed=9)
    q = unit(
        x[:30] + 0.3 * np.random.default_rng(10).standard_normal((30, 16)).astype(np.float32) / 4
    )
    idx = VectorIndex(16, kind="flat")
    idx.add(x, np.arange(2000) + 1000)
    lims, sims, ids = idx.range_search(q, 0.8)
    s = unit(q) @ x.T
    assert lims.shape == (31,) and lims[0] == 0 and lims[-1] == ids.shape[0]
    for i in range(30):
        got = set(ids[lims[i] : lims[i + 1]].tolist())
        clear_in = set((np.flatnonzero(s[i] >= 0.8 + 1e-5) + 1000).tolist())
        maybe = set((np.flatnonzero(s[i] >= 0.8 - 1e-5) + 1000).tolist())
        assert clear_in <= got <= maybe
    assert (sims >= 0.8).all() and ids.size > 100
    # inclusive: a threshold equal to a returned similarity keeps that result
    j = int(np.argmin(sims))
    lims2, sims2, ids2 = idx.range_search(q, float(sims[j]))
    assert ids[j] in set(ids2.tolist())


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_range_search_approximate_recall(kind):
    x = clustered(4000, 16, seed=11)
    q = x[:100]
    idx = VectorIndex(16, kind=kind, nprobe=16)
    idx.add(x, np.arange(4000))
    lims, sims, ids = idx.range_search(q, 0.85)
    s = q @ x.T
    truth = sum(int((s[i] >= 0.85 + 1e-5).sum()) for i in range(100))
    found = sum(
        len(
            set(ids[lims[i] : lims[i + 1]].tolist())
            & set(np.flatnonzero(s[i] >= 0.85 + 1e-5).tolist())
        )
        for i in range(100)
    )
    assert truth > 100
    assert found / truth >= 0.9, f"{kind} range recall {found / truth:.3f}"
    assert (sims >= 0.85).all()


def test_search_pads_missing_with_minus_one():
    idx = VectorIndex(8, kind="flat")
    idx.add(unit(np.random.default_rng(0).standard_normal((3, 8))), np.array([5, 6, 7]))
    sims, found = idx.search(unit(np.ones((2, 8))), 5)
    assert (found[:, 3:] == -1).all() and np.isneginf(sims[:, 3:]).all()
    assert set(found[0, :3].tolist()) == {5, 6, 7}
    empty = VectorIndex(8)
    s, f = empty.search(unit(np.ones((1, 8))), 2)
    assert (f == -1).all()


def test_incremental_add_equals_single_add():
    x = clustered(3000, 16, seed=12)
    one = VectorIndex(16, kind="flat")
    one.add(x, np.arange(3000))
    parts = VectorIndex(16, kind="flat")
    parts.add(x[:1000], np.arange(1000))
    parts.search(x[:1], 1)  # builds
    parts.add(x[1000:2500], np.arange(1000, 2500))
    parts.add(x[2500:], np.arange(2500, 3000))
    assert parts.ntotal == 3000
    np.testing.assert_array_equal(one.search(x[:20], 5)[1], parts.search(x[:20], 5)[1])


def test_auto_grows_from_flat_to_ivf():
    x = clustered(3000, 16, seed=13)
    idx = VectorIndex(16, flat_max=1000, nprobe=8)
    idx.add(x[:800], np.arange(800))
    idx.search(x[:1], 1)
    assert idx.built_kind == "flat"
    idx.add(x[800:], np.arange(800, 3000))
    _, found = idx.search(x[::10], 1)
    assert idx.built_kind == "ivf" and idx.ntotal == 3000
    assert (found[:, 0] == np.arange(0, 3000, 10)).mean() >= 0.98


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_save_load_round_trip(tmp_path, kind):
    x = clustered(2000, 16, seed=14)
    idx = VectorIndex(16, kind=kind, nprobe=4, ef_search=64)
    idx.add(x, np.arange(2000) * 3)
    before = idx.search(x[:30], 5)
    path = tmp_path / "frames.faiss"
    idx.save(path)
    back = VectorIndex.load(path)
    assert (
        back.ntotal == 2000
        and back.built_kind == kind
        and back.nprobe == 4
        and back.ef_search == 64
    )
    np.testing.assert_array_equal(back.ids, idx.ids)
    after = back.search(x[:30], 5)
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_allclose(before[0], after[0], atol=1e-6)
    # extend after load (the execution layer's incremental path)
    extra = clustered(10, 16, seed=15)
    back.add(extra, np.arange(10) + 100_000)
    _, f = back.search(extra, 1)
    assert (f[:, 0] == np.arange(10) + 100_000).all()


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_saved_without_vectors_loads_back_the_same_index(tmp_path, kind):
    x = clustered(3000, 16, seed=16)
    idx = VectorIndex(16, kind=kind, nlist=24 if kind == "ivf" else None, nprobe=4)
    idx.add(x[:2000], np.arange(2000) * 3)
    idx.build()
    idx.add(x[2000:], np.arange(2000, 3000) * 3)  # extended after the build, as a growing library is
    inside, outside = tmp_path / "in.faiss", tmp_path / "out.faiss"
    idx.save(inside)
    idx.save(outside, vectors=False)
    assert not VectorIndex.saved_without_vectors(inside) and VectorIndex.saved_without_vectors(outside)
    assert outside.stat().st_size < inside.stat().st_size / 20  # the structure only
    a, b = VectorIndex.load(inside), VectorIndex.load(outside, vectors=x)
    assert b.vectors_outside and not a.vectors_outside and b.built_kind == kind and b.ntotal == 3000
    np.testing.assert_array_equal(a.ids, b.ids)
    assert a.n_lists == b.n_lists
    for i in range(a.n_lists):  # every list holds the same rows, in the same order, bit for bit
        (ia, va), (ib, vb) = a.list_members(i), b.list_members(i)
        np.testing.assert_array_equal(ia, ib)
        assert va.tobytes() == vb.tobytes()
    for got, want in zip(b.search(x[:40], 7), a.search(x[:40], 7)):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(IndexError_, match="keeps its vectors outside"):
        VectorIndex.load(outside)
    with pytest.raises(IndexError_, match="do not belong together"):
        VectorIndex.load(outside, vectors=x[:2999])
    with pytest.raises(IndexError_, match=r"shape \(n, 16\)"):
        VectorIndex.load(outside, vectors=x[:, :8])


def test_load_errors(tmp_path):
    with pytest.raises(IndexError_, match="does not exist"):
        VectorIndex.load(tmp_path / "missing.faiss")
    a = VectorIndex(8, kind="flat")
    a.add(unit(np.random.default_rng(1).standard_normal((5, 8))), np.arange(5))
    a.save(tmp_path / "a.faiss")
    b = VectorIndex(8, kind="flat")
    b.add(unit(np.random.default_rng(2).standard_normal((6, 8))), np.arange(6))
    b.save(tmp_path / "b.faiss")
    (tmp_path / "a.faiss.meta.npz").replace(tmp_path / "keep.npz")
    (tmp_path / "b.faiss.meta.npz").replace(tmp_path / "a.faiss.meta.npz")
    with pytest.raises(IndexError_, match="do not belong together"):
        VectorIndex.load(tmp_path / "a.faiss")
    c = VectorIndex(8, kind="flat")
    c.add(unit(np.random.default_rng(3).standard_normal((4, 8))), np.arange(4))
    c.save(tmp_path / "c.faiss")
    with pytest.raises(IndexError_, match="not a BinaryHashIndex"):
        BinaryHashIndex.load(tmp_path / "c.faiss")
    (tmp_path / "c.faiss").write_bytes(b"not an index")
    with pytest.raises(IndexError_, match="cannot read FAISS index"):
        VectorIndex.load(tmp_path / "c.faiss")


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.ones((3, 7), np.float32), r"shape \(n, 8\)"),
        (np.ones((3, 8), np.int64), "float dtype"),
        (np.ones(8, np.float32), r"shape \(n, 8\)"),
        ([[1.0] * 8], "numpy array"),
        (np.where(np.eye(3, 8) > 0, np.nan, 1.0).astype(np.float32), "row 0 contains NaN"),
        (np.zeros((2, 8), np.float32), "all zeros"),
    ],
)
def test_bad_vectors_raise(bad, match):
    idx = VectorIndex(8)
    with pytest.raises(IndexError_, match=match):
        idx.add(bad, np.arange(len(bad)))
    good = VectorIndex(8)
    good.add(np.ones((2, 8), np.float32), np.arange(2))
    with pytest.raises(IndexError_, match=match):
        good.search(bad, 1)


def test_bad_ids_and_params_raise():
    x = np.ones((3, 4), np.float32)
    idx = VectorIndex(4)
    with pytest.raises(IndexError_, match="one id per vector"):
        idx.add(x, np.arange(2))
    with pytest.raises(IndexError_, match="integer dtype"):
        idx.add(x, np.arange(3.0))
    with pytest.raises(IndexError_, match=">= 0"):
        idx.add(x, np.array([0, -1, 2]))
    with pytest.raises(IndexError_, match="duplicate"):
        idx.add(x, np.array([1, 1, 2]))
    idx.add(x, np.arange(3))
    with pytest.raises(IndexError_, match="already in the index"):
        idx.add(x[:1], np.array([2]))
    with pytest.raises(IndexError_, match="k must be"):
        idx.search(x, 0)
    with pytest.raises(UnknownBackendError, match="choose one of"):
        VectorIndex(4, kind="annoy")
    with pytest.raises(AstradupError, match="use_gpu"):
        VectorIndex(4, use_gpu="maybe")
    with pytest.raises(IndexError_, match="needs at least"):
        small = VectorIndex(4, kind="ivf", nlist=50)
        small.add(x, np.arange(3))
        small.search(x, 1)


def test_range_via_knn_fallback_equals_range_search():
    """The GPU range-search fallback (k-NN with growing k), run here on a CPU index."""
    from astradup.index._common import range_via_knn

    x = clustered(3000, 16, seed=17, n_clusters=5)
    q = x[:40]
    flat = faiss.IndexFlatIP(16)
    flat.add(x)
    lims, d, lab = range_via_knn(flat.search, q, flat.ntotal, lambda s: s >= 0.7, k0=4)
    s = q @ x.T
    for i in range(40):
        got = set(lab[lims[i] : lims[i + 1]].tolist())
        assert (
            set(np.flatnonzero(s[i] >= 0.7 + 1e-5))
            <= got
            <= set(np.flatnonzero(s[i] >= 0.7 - 1e-5))
        )
    assert np.diff(lims).max() > 64  # k had to grow several times
    capped = range_via_knn(flat.search, q, flat.ntotal, lambda s: s >= 0.7, k0=4, k_max=16)
    assert np.diff(capped[0]).max() == 16


@pytest.mark.skipif(HAS_GPU, reason="a GPU is present")
def test_gpu_required_without_gpu_raises():
    idx = VectorIndex(4, kind="flat", use_gpu="gpu")
    idx.add(np.ones((2, 4), np.float32), np.arange(2))
    with pytest.raises(IndexError_, match="GPU"):
        idx.search(np.ones((1, 4), np.float32), 1)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="faiss sees no GPU")
def test_gpu_vector_index_matches_cpu(kind, tmp_path):
    x = clustered(5000, 32, seed=16)
    cpu = VectorIndex(32, kind=kind, use_gpu="cpu", nlist=64, nprobe=64)
    gpu = VectorIndex(32, kind=kind, use_gpu="gpu", nlist=64, nprobe=64)
    for idx in (cpu, gpu):
        idx.add(x, np.arange(5000))
    sc, fc = cpu.search(x[:50], 10)
    sg, fg = gpu.search(x[:50], 10)
    assert gpu.on_gpu
    np.testing.assert_allclose(sc, sg, atol=1e-4)
    lims, sims, ids = gpu.range_search(x[:50], 0.9)
    lc, scpu, icpu = cpu.range_search(x[:50], 0.9)
    assert abs(ids.size - icpu.size) <= 2
    gpu.save(tmp_path / "g.faiss")
    assert VectorIndex.load(tmp_path / "g.faiss", use_gpu="cpu").ntotal == 5000


# -- BinaryHashIndex -----------------------------------------------------------------------------
@pytest.mark.parametrize("radius", [0, 10, 20, 48, 100])
def test_binary_flat_range_equals_hamming_oracle(radius):
    both = near_codes(625, 32, seed=20)
    codes, q = both[:600], both[600:]
    idx = BinaryHashIndex(256, kind="flat")
    idx.add(codes, np.arange(600) + 50)
    lims, dist, ids = idx.range_search(q, radius)
    h = hamming(q, codes)
    total = 0
    for i in range(25):
        got = dict(
            zip(
                ids[lims[i] : lims[i + 1]].tolist(),
                dist[lims[i] : lims[i + 1]].tolist(),
                strict=True,
            )
        )
        want = {int(j) + 50: int(h[i, j]) for j in np.flatnonzero(h[i] <= radius)}
        assert got == want
        total += len(want)
    if radius >= 20:
        assert total > 0  # the oracle comparison is not vacuous


def test_binary_flat_knn_distances_equal_oracle():
    both = near_codes(520, 32, seed=22)
    codes, q = both[:500], both[500:]
    idx = BinaryHashIndex(256, kind="flat")
    idx.add(codes, np.arange(500))
    dist, found = idx.search(q, 8)
    h = hamming(q, codes)
    np.testing.assert_array_equal(dist, np.sort(h, axis=1)[:, :8])  # ties: compare distances
    np.testing.assert_array_equal(h[np.arange(20)[:, None], found], dist)


@pytest.mark.parametrize("radius", [12, 30, 48])
def test_binary_multihash_range_is_exact(radius):
    codes = near_codes(3000, 32, seed=24, flips=30)
    q = codes[:60]
    idx = BinaryHashIndex(256, kind="multihash")
    idx.add(codes, np.arange(3000))
    lims, dist, ids = idx.range_search(q, radius)
    h = hamming(q, codes)
    for i in range(60):
        assert set(ids[lims[i] : lims[i + 1]].tolist()) == set(
            np.flatnonzero(h[i] <= radius).tolist()
        )
    assert lims[-1] > 60


@pytest.mark.parametrize("radius", [16, 47, 48])
def test_binary_multihash_range_finds_evenly_spread_differences(radius):
    """The pigeonhole worst case: every 16-bit substring differs in radius // 16 bits."""
    rng = np.random.default_rng(29)
    base = rng.integers(0, 256, (200, 32), dtype=np.uint8)
    bits = np.unpackbits(base[:1], axis=1)
    per = radius // 16
    for h in range(16):
        bits[0, h * 16 + rng.choice(16, per, replace=False)] ^= 1
    target = np.packbits(bits, axis=1)
    assert hamming(base[:1], target)[0, 0] == 16 * per <= radius
    idx = BinaryHashIndex(256, kind="multihash")
    idx.add(np.concatenate([base[1:], target]), np.arange(200))
    _, dist, ids = idx.range_search(base[:1], radius)
    assert 199 in set(ids.tolist())


def test_binary_hash_knn_recall():
    both = near_codes(3100, 32, seed=25, flips=12)
    codes, q = both[:3000], both[3000:]
    h = hamming(q, codes)
    kth = np.sort(h, axis=1)[:, 4:5]
    for kind, nflip in (("multihash", 2), ("hash", 3)):
        idx = BinaryHashIndex(256, kind=kind, nflip=nflip)
        idx.add(codes, np.arange(3000))
        dist, found = idx.search(q, 5)
        hit = (found >= 0) & (h[np.arange(100)[:, None], np.maximum(found, 0)] <= kth)
        assert hit.mean() >= 0.9, f"{kind} recall@5 {hit.mean():.3f}"


@pytest.mark.parametrize("kind", ["flat", "multihash"])
def test_binary_save_load(tmp_path, kind):
    codes = near_codes(800, 32, seed=26)
    idx = BinaryHashIndex(256, kind=kind)
    idx.add(codes, np.arange(800) + 9)
    before = idx.range_search(codes[:10], 30)
    idx.save(tmp_path / "hash.faissb")
    back = BinaryHashIndex.load(tmp_path / "hash.faissb")
    after = back.range_search(codes[:10], 30)
    assert back.built_kind == kind
    np.testing.assert_array_equal(back.ids, idx.ids)
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(b, a)
    back.add(codes[:1], np.array([10_000]))
    assert 10_000 in set(back.range_search(codes[:1], 0)[2].tolist())


def test_binary_auto_grows_to_multihash():
    codes = near_codes(1500, 32, seed=27)
    idx = BinaryHashIndex(256, flat_max=1000)
    idx.add(codes[:900], np.arange(900))
    idx.search(codes[:1], 1)
    assert idx.built_kind == "flat"
    idx.add(codes[900:], np.arange(900, 1500))
    lims, _, ids = idx.range_search(codes[:5], 20)
    assert idx.built_kind == "multihash"
    h = hamming(codes[:5], codes)
    for i in range(5):
        assert set(ids[lims[i] : lims[i + 1]].tolist()) == set(np.flatnonzero(h[i] <= 20).tolist())


def test_binary_bad_input_raises():
    idx = BinaryHashIndex(256)
    with pytest.raises(IndexError_, match="uint8"):
        idx.add(np.zeros((2, 32), np.int8), np.arange(2))
    with pytest.raises(IndexError_, match=r"shape \(n, 32\)"):
        idx.add(np.zeros((2, 8), np.uint8), np.arange(2))
    idx.add(np.zeros((2, 32), np.uint8), np.arange(2))
    with pytest.raises(IndexError_, match="radius"):
        idx.range_search(np.zeros((1, 32), np.uint8), -1)
    with pytest.raises(AstradupError, match="multiple of 8"):
        BinaryHashIndex(100)
    with pytest.raises(UnknownBackendError):
        BinaryHashIndex(256, kind="lsh")


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="faiss sees no GPU")
def test_gpu_binary_flat_matches_oracle():
    codes = near_codes(2000, 32, seed=28)
    idx = BinaryHashIndex(256, kind="flat", use_gpu="gpu")
    idx.add(codes, np.arange(2000))
    lims, dist, ids = idx.range_search(codes[:20], 30)
    h = hamming(codes[:20], codes)
    for i in range(20):
        assert set(ids[lims[i] : lims[i + 1]].tolist()) == set(np.flatnonzero(h[i] <= 30).tolist())


# -- candidate_pairs -----------------------------------------------------------------------------
def synthetic_library(seed: int = 30, n_videos: int = 24, frames: int = 8, d: int = 32):
    """Videos of a few near-static shots, with planted copies.

    Video 1 copies video 0 (all frames, small noise); video 3 holds frames 2..5 of video 2 at its
    start (partial copy); video 5 copies video 4 with its frames reversed. Ids are not 0..n-1.
    """
    rng = np.random.default_rng(seed)
    vecs, vid = [], []
    content = {}
    for v in range(n_videos):
        shot = unit(rng.standard_normal((3, d)))[np.sort(rng.integers(0, 3, frames))]
        f = unit(shot + 0.08 * rng.standard_normal((frames, d)) / np.sqrt(d) * 4)
        if v == 1:
            f = unit(content[0] + 0.1 * rng.standard_normal((frames, d)) / np.sqrt(d) * 4)
        if v == 3:
            f[:4] = unit(content[2][2:6] + 0.1 * rng.standard_normal((4, d)) / np.sqrt(d) * 4)
        if v == 5:
            f = unit(content[4][::-1] + 0.1 * rng.standard_normal((frames, d)) / np.sqrt(d) * 4)
        content[v] = f
        vecs.append(f)
        vid.append(np.full(frames, 1000 + 10 * v, np.int64))
    return np.concatenate(vecs), np.concatenate(vid)


def oracle_frame_votes(
    x: np.ndarray, vid: np.ndarray, k: int, min_sim: float, queries: set | None = None
) -> dict:
    s = unit(x).astype(np.float64) @ unit(x).astype(np.float64).T
    out: dict[tuple[int, int], list] = {}
    for i in range(x.shape[0]):
        if queries is not None and int(vid[i]) not in queries:
            continue
        other = np.flatnonzero(vid != vid[i])
        top = other[np.argsort(-s[i, other], kind="stable")[:k]]
        for j in top[s[i, top] >= min_sim]:
            key = (int(min(vid[i], vid[j])), int(max(vid[i], vid[j])))
            votes, best = out.get(key, [0, -1.0])
            out[key] = [votes + 1, max(best, s[i, j])]
    return out


def check_pair_frame(df: pd.DataFrame) -> None:
    assert list(df.columns) == list(CANDIDATE_COLUMNS)
    assert df["a"].dtype == np.int64 and df["b"].dtype == np.int64
    assert (df["a"] < df["b"]).all()  # unordered, no self pairs
    assert not df.duplicated(["a", "b"]).any()
    assert df.equals(df.sort_values(["a", "b"]).reset_index(drop=True))


@pytest.mark.parametrize("k,batch_size", [(2, 8192), (2, 7), (5, 13)])
def test_candidate_pairs_frames_match_oracle(k, batch_size):
    x, vid = synthetic_library()
    df = candidate_pairs(x, vid, k=k, min_sim=0.7, batch_size=batch_size)
    check_pair_frame(df)
    want = oracle_frame_votes(x, vid, k, 0.7)
    got = {(int(r.a), int(r.b)): [int(r.votes), float(r.max_sim)] for r in df.itertuples()}
    assert set(got) == set(want)
    for key, (votes, best) in want.items():
        assert got[key][0] == votes
        assert got[key][1] == pytest.approx(best, abs=1e-5)
    # the planted copies are found, full and partial
    assert {(1000, 1010), (1020, 1030), (1040, 1050)} <= set(got)
    assert df["video_sim"].isna().all() and (df["hash_hits"] == 0).all()


def test_candidate_pairs_with_video_and_hash_match_oracle():
    x, vid = synthetic_library(seed=31)
    videos = np.unique(vid)
    desc = unit(np.stack([x[vid == v].mean(axis=0) for v in videos]))
    rng = np.random.default_rng(32)
    codes = rng.integers(0, 256, (x.shape[0], 32), dtype=np.uint8)
    # the copy's frame hashes are a few bits off the source's
    src_rows, copy_rows = np.flatnonzero(vid == 1000), np.flatnonzero(vid == 1010)
    bits = np.unpackbits(codes[src_rows], axis=1)
    bits[:, :6] ^= 1
    codes[copy_rows] = np.packbits(bits, axis=1)
    df = candidate_pairs(
        x,
        vid,
        k=3,
        min_sim=0.95,
        video_vecs=desc,
        video_ids=videos,
        video_k=3,
        video_min_sim=0.6,
        hash_codes=codes,
        hash_video=vid,
        hash_radius=10,
    )
    check_pair_frame(df)
    # video oracle: retrieved = in someone's top-3; candidate when >= 0.6
    s = desc.astype(np.float64) @ desc.T.astype(np.float64)
    np.fill_diagonal(s, -np.inf)
    retrieved = {}
    for i in range(len(videos)):
        for j in np.argsort(-s[i])[:3]:
            retrieved[(int(min(videos[i], videos[j])), int(max(videos[i], videos[j])))] = s[i, j]
    # hash oracle: every cross-video code pair within 10 bits, counted in both directions
    h = hamming(codes, codes)
    hash_want: dict[tuple[int, int], int] = {}
    for i, j in zip(*np.nonzero(h <= 10), strict=True):
        if vid[i] != vid[j]:
            key = (int(min(vid[i], vid[j])), int(max(vid[i], vid[j])))
            hash_want[key] = hash_want.get(key, 0) + 1
    frame_want = oracle_frame_votes(x, vid, 3, 0.95)
    want_keys = set(frame_want) | {p for p, v in retrieved.items() if v >= 0.6} | set(hash_want)
    got = {(int(r.a), int(r.b)): r for r in df.itertuples()}
    assert set(got) == want_keys
    assert hash_want and (1000, 1010) in hash_want
    for key, row in got.items():
        assert row.hash_hits == hash_want.get(key, 0)
        assert row.votes == frame_want.get(key, [0])[0]
        if key in retrieved:
            assert row.video_sim == pytest.approx(retrieved[key], abs=1e-5)
        else:
            assert np.isnan(row.video_sim)
        assert np.isnan(row.max_sim) == (row.votes == 0)


def test_candidate_pairs_with_prebuilt_ivf_index_finds_copies(tmp_path):
    x, vid = synthetic_library(seed=33, n_videos=200)
    idx = VectorIndex(x.shape[1], kind="ivf", nprobe=8)
    idx.add(x, np.arange(x.shape[0], dtype=np.int64))
    idx.save(tmp_path / "frames.faiss")
    df = candidate_pairs(
        x, vid, k=5, min_sim=0.7, index=VectorIndex.load(tmp_path / "frames.faiss")
    )
    check_pair_frame(df)
    exact = candidate_pairs(x, vid, k=5, min_sim=0.7)
    assert {(1000, 1010), (1020, 1030), (1040, 1050)} <= set(zip(df.a, df.b, strict=True))
    common = set(zip(df.a, df.b, strict=True)) & set(zip(exact.a, exact.b, strict=True))
    assert len(common) >= 0.9 * len(exact)


def test_candidate_pairs_query_videos_is_new_versus_all():
    x, vid = synthetic_library(seed=38)
    new = np.array([1010, 1030, 1100])
    df = candidate_pairs(x, vid, k=3, min_sim=0.7, query_videos=new)
    check_pair_frame(df)
    want = oracle_frame_votes(x, vid, 3, 0.7, queries=set(new.tolist()))
    got = {(int(r.a), int(r.b)): int(r.votes) for r in df.itertuples()}
    assert got == {key: v[0] for key, v in want.items()}
    assert {(1000, 1010), (1020, 1030)} <= set(got)
    assert all(a in new or b in new for a, b in got)


def test_candidate_pairs_invariant_to_row_order():
    x, vid = synthetic_library(seed=34)
    perm = np.random.default_rng(35).permutation(x.shape[0])
    a = candidate_pairs(x, vid, k=3, min_sim=0.7)
    b = candidate_pairs(x[perm], vid[perm], k=3, min_sim=0.7)
    pd.testing.assert_frame_equal(a[["a", "b", "votes"]], b[["a", "b", "votes"]])


def test_candidate_pairs_without_frames_uses_hashes_and_descriptors():
    rng = np.random.default_rng(39)
    codes = rng.integers(0, 256, (6, 32), dtype=np.uint8)
    codes[3] = codes[0]
    hv = np.array([7, 7, 8, 8, 9, 9])
    df = candidate_pairs(None, None, hash_codes=codes, hash_video=hv, hash_radius=0)
    check_pair_frame(df)
    assert df[["a", "b", "votes", "hash_hits"]].values.tolist() == [[7, 8, 0, 2]]
    desc = unit(rng.standard_normal((3, 8)))
    desc[2] = desc[0]
    df = candidate_pairs(None, None, video_vecs=desc, video_ids=np.array([7, 8, 9]), video_k=1)
    assert df[["a", "b"]].values.tolist() == [[7, 9]] and df.video_sim.iloc[0] == pytest.approx(1)
    with pytest.raises(IndexError_, match="together"):
        candidate_pairs(None, hv)


def test_candidate_pairs_empty_and_single_video():
    df = candidate_pairs(np.ones((4, 8), np.float32), np.zeros(4, np.int64))
    assert df.empty and list(df.columns) == list(CANDIDATE_COLUMNS)
    df = candidate_pairs(np.empty((0, 8), np.float32), np.empty(0, np.int64))
    assert df.empty


def test_candidate_pairs_bad_input():
    x, vid = synthetic_library()
    with pytest.raises(IndexError_, match="one video id per row"):
        candidate_pairs(x, vid[:-1])
    with pytest.raises(IndexError_, match="float dtype"):
        candidate_pairs(x.astype(np.int32), vid)
    bad = x.copy()
    bad[3, 0] = np.nan
    with pytest.raises(IndexError_, match="row 3"):
        candidate_pairs(bad, vid)
    with pytest.raises(IndexError_, match="together"):
        candidate_pairs(x, vid, video_vecs=x[:3])
    with pytest.raises(IndexError_, match="index holds"):
        other = VectorIndex(x.shape[1])
        other.add(x[:5], np.arange(5))
        candidate_pairs(x, vid, index=other)


# -- select_keyframes and PCAReducer -------------------------------------------------------------
def test_select_keyframes_matches_loop_oracle():
    x, vid = synthetic_library(seed=36)
    perm = np.random.default_rng(37).permutation(x.shape[0])
    # interleave videos but keep each video's frames in time order
    order = np.sort(perm.reshape(-1, 1), axis=0).ravel()
    keep = select_keyframes(x[order], vid[order], max_sim=0.9)
    xs, vs = unit(x[order]), vid[order]
    want, last = [], {}
    for i in range(xs.shape[0]):
        v = int(vs[i])
        if v not in last or float(xs[i] @ last[v]) < 0.9:
            want.append(i)
            last[v] = xs[i]
    np.testing.assert_array_equal(keep, want)
    assert 24 <= keep.size < x.shape[0]


def test_pca_reducer_preserves_low_rank_cosines(tmp_path):
    rng = np.random.default_rng(40)
    latent = rng.standard_normal((3000, 16))
    x = (latent @ rng.standard_normal((16, 200)) + 0.01 * rng.standard_normal((3000, 200))).astype(
        np.float32
    )
    pca = PCAReducer(24).fit(x)
    y = pca.transform(x)
    assert y.shape == (3000, 24) and y.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-5)
    assert pca.explained_variance_ratio_ > 0.99
    # neighbours survive the projection
    _, before = exact_knn(x, x[:50], 5)
    _, after = exact_knn(y, y[:50], 5)
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(before, after, strict=True)]) >= 0.9
    pca.save(tmp_path / "pca.npz")
    np.testing.assert_allclose(
        PCAReducer.load(tmp_path / "pca.npz").transform(x[:10]), y[:10], atol=1e-6
    )
    with pytest.raises(IndexError_, match="before fit"):
        PCAReducer(4).transform(x)


# -- the scale benchmark (smoke) -----------------------------------------------------------------
def _scale_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "scale.py"
    spec = importlib.util.spec_from_file_location("astradup_bench_scale", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_scale_results_section_is_replaced(tmp_path):
    scale = _scale_module()
    md = tmp_path / "RESULTS.md"
    md.write_text("# Benchmark results\n\n## Speed\nfast\n\n## Scale\nold numbers\n\n## Other\nx\n")
    scale.write_results("## Scale\n\nnew numbers\n", md)
    text = md.read_text()
    assert "old numbers" not in text and "new numbers" in text
    assert text.index("## Speed") < text.index("## Scale") < text.index("## Other")
    scale.write_results("## Scale\n\nnewer\n", tmp_path / "fresh.md")
    assert (tmp_path / "fresh.md").read_text().startswith("# Benchmark results\n\n## Scale")
    assert scale.slope([10, 100, 1000], [1, 10, 100]) == pytest.approx(1.0)
    row = {"videos": 1_000_000, "pipeline_s": 1500.0, "pipeline_cpu_s": 2900.0, "peak_rss_gb": 9.0}
    assert "**met**" in scale.goal_line([row])
    assert "**not met**" in scale.goal_line([{**row, "pipeline_s": 1900.0}])
    assert "**not met**" in scale.goal_line([{**row, "peak_rss_gb": 17.0}])
    assert "**not met**" in scale.goal_line([{**row, "query_sample": 0.1}])
    assert "**not measured**" in scale.goal_line([{**row, "videos": 100_000}])


@pytest.mark.slow
def test_scale_benchmark_smoke(tmp_path, capsys):
    scale = _scale_module()
    out = tmp_path / "rows.json"
    md = tmp_path / "RESULTS.md"
    rc = scale.main(
        [
            "--sizes",
            "1500",
            "--threads",
            "1",
            "--results",
            str(md),
            "--json",
            str(out),
            "--work-dir",
            str(tmp_path / "work"),
        ]
    )
    assert rc == 0
    import json

    (row,) = json.loads(out.read_text())
    assert row["videos"] == 1500 and row["frames"] == 1500 * 60
    assert 0 < row["keyframes"] < row["frames"]
    assert row["recall_full"] >= 0.99 and row["recall_partial"] >= 0.95
    assert row["candidates"] >= row["copy_pairs"] * 0.9
    # every candidate verified; copies score >= near, unrelated families do not
    assert row["verified"] == row["candidates"]
    assert row["verified_recall_full"] >= 0.95 and row["false_near"] <= 0.01 * row["verified"]
    assert not any((tmp_path / "work").iterdir())  # the frame file is removed
    assert "## Scale" in md.read_text() and "| 1,500 |" in capsys.readouterr().out


@pytest.mark.parametrize("queries", ["all", "some"])
def test_ivf_list_join_equals_per_query_search(queries):
    """The list-wise join used for CPU IVF indexes gives the votes an IVF search per query gives."""
    from astradup.index.candidates import _frame_votes, _join_votes

    x, vid = synthetic_library(seed=41, n_videos=300)
    idx = VectorIndex(x.shape[1], kind="ivf", nlist=40, nprobe=5)
    idx.add(x, np.arange(x.shape[0], dtype=np.int64))
    assert idx.has_cpu_lists and idx.n_lists == 40
    dense = np.searchsorted(np.unique(vid), vid).astype(np.int64)
    n_videos = int(dense.max()) + 1
    rows = np.arange(x.shape[0], dtype=np.int64)
    if queries == "some":
        rows = rows[np.isin(dense, [1, 3, 50, 299])]
    # chunk=97 forces several chunks with lists probed from more than one of them
    # a low threshold gives most frames more than k hits, so the top-k cut is exercised
    got = _join_votes(x, dense, n_videos, 3, 0.3, idx, rows, chunk=97)
    want = _frame_votes(x, dense, n_videos, 3, 0.3, idx, 64, rows)
    assert got[0].size > (10 if queries == "some" else 300)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[2], want[2], atol=1e-5)


def test_ivf_list_members_cover_the_index_once():
    x, _ = synthetic_library(seed=42, n_videos=100)
    idx = VectorIndex(x.shape[1], kind="ivf", nlist=16)
    ids = np.arange(x.shape[0], dtype=np.int64) + 500
    idx.add(x, ids)
    seen = []
    for i in range(idx.n_lists):
        members, vecs = idx.list_members(i)
        assert not vecs.flags.writeable
        np.testing.assert_allclose(vecs, unit(x[members - 500]), atol=1e-6)
        seen.append(members)
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), ids)
    flat = VectorIndex(x.shape[1], kind="flat")
    flat.add(x, ids)
    assert flat.has_cpu_lists and flat.n_lists == 1  # a flat index is one list holding everything
    np.testing.assert_array_equal(flat.probe_lists(unit(x[:2])), [[0], [0]])
    members, vecs = flat.list_members(0)
    np.testing.assert_array_equal(members, ids)
    np.testing.assert_allclose(vecs, unit(x), atol=1e-6)
    with pytest.raises(IndexError_, match="one list"):
        flat.list_members(1)


def tied_library(seed: int = 7, n_videos: int = 12, frames: int = 4, d: int = 32):
    """Videos whose frames are drawn from six shared pictures: every frame has exact copies in
    several other videos, so the k-th neighbour is a tie between videos."""
    rng = np.random.default_rng(seed)
    pictures = unit(rng.standard_normal((6, d)))
    x = pictures[rng.integers(0, 6, n_videos * frames)]
    vid = np.repeat(np.arange(n_videos, dtype=np.int64) * 3 + 100, frames)
    return x, vid


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_candidates_do_not_depend_on_float32_rounding(kind):
    """BLAS sums in an order that depends on its thread count, so float32 similarities move in
    their last bits from one machine setting to another. Here the index holds a copy of the
    frames moved by a few ulps (as another summation order would): the candidates, their votes
    and their descriptor cosines stay the same, ties going to the lower row, as a float64 oracle
    with a stable sort gives."""
    x, vid = tied_library()
    rng = np.random.default_rng(3)
    moved = (x * (1 + rng.uniform(-6e-7, 6e-7, x.shape))).astype(np.float32)
    desc = unit(np.stack([x[vid == v].mean(axis=0) for v in np.unique(vid)]))
    desc_moved = (desc * (1 + rng.uniform(-6e-7, 6e-7, desc.shape))).astype(np.float32)
    kw = {"kind": kind, "nlist": 4, "nprobe": 4} if kind == "ivf" else {"kind": kind}  # every list probed

    def run(frames, descriptors):
        index = VectorIndex(x.shape[1], **kw)
        index.add(frames, np.arange(len(x), dtype=np.int64))
        video_index = VectorIndex(desc.shape[1], kind="flat")
        video_index.add(descriptors, np.arange(len(desc), dtype=np.int64))
        return candidate_pairs(x, vid, k=2, min_sim=0.5, video_vecs=desc, video_ids=np.unique(vid), video_k=2,
                               video_min_sim=0.99, index=index, video_index=video_index)

    plain, rounded = run(x, desc), run(moved, desc_moved)
    cols = ["a", "b", "votes", "hash_hits"]
    pd.testing.assert_frame_equal(plain[cols], rounded[cols])
    np.testing.assert_array_equal(plain["video_sim"].isna(), rounded["video_sim"].isna())
    want = oracle_frame_votes(x, vid, 2, 0.5)
    got = {(int(r.a), int(r.b)): int(r.votes) for r in plain.itertuples() if r.votes}
    assert got == {key: v for key, (v, _) in want.items()}


def test_flat_join_in_small_blocks_matches_oracle(monkeypatch):
    """A flat index is scanned in row blocks of at most JOIN_BLOCK similarities, each cut to its
    queries' k best at once: tiny blocks give the oracle's votes too."""
    import astradup.index.candidates as cand

    x, vid = synthetic_library(seed=5)
    monkeypatch.setattr(cand, "JOIN_BLOCK", 3 * x.shape[0])  # three query rows a block
    df = candidate_pairs(x, vid, k=3, min_sim=0.3)
    want = oracle_frame_votes(x, vid, 3, 0.3)
    got = {(int(r.a), int(r.b)): [int(r.votes), float(r.max_sim)] for r in df.itertuples() if r.votes}
    assert set(got) == set(want) and len(want) > 20
    for key, (votes, best) in want.items():
        assert got[key][0] == votes
        assert got[key][1] == pytest.approx(best, abs=1e-5)


def test_settle_top_orders_near_ties_exactly_and_by_id():
    from astradup.index._common import settle_top

    # float32 results where rows 0 and 1 hold the same two exact values in another rounding
    sims = np.array([[0.9, 0.8000001, 0.8, 0.1], [0.9, 0.8, 0.8000001, 0.1]], np.float32)
    ids = np.array([[5, 7, 3, 9], [5, 3, 7, 9]], np.int64)
    exact = {3: 0.8, 5: 0.9, 7: 0.8, 9: 0.1}  # ids 3 and 7 tie exactly: the lower id goes first
    asked = []

    def recompute(r, c):
        asked.extend(ids[r, c].tolist())
        return np.array([exact[int(i)] for i in ids[r, c]])

    vals, top = settle_top(sims, ids, 2, 1e-6, recompute)
    np.testing.assert_array_equal(top, [[5, 3], [5, 3]])
    np.testing.assert_allclose(vals, [[0.9, 0.8], [0.9, 0.8]], atol=1e-7)
    assert sorted(set(asked)) == [3, 7]  # only the results near the cut were recomputed
    _, top = settle_top(sims, ids, 1, 1e-6, recompute, thresholds=(0.1,))
    np.testing.assert_array_equal(top, [[5], [5]])
    assert 9 in asked  # near a threshold the caller applies later


@pytest.mark.slow
def test_query_benchmark_smoke(tmp_path):
    """benchmarks/query.py end to end on a tiny index and short clips: the source is found first."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "query.py"
    spec = importlib.util.spec_from_file_location("astradup_bench_query", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "q.json"
    argv = ["--videos", "1500", "--library", "2", "--seconds", "4", "--size", "160x96"]
    argv += ["--repeats", "1", "--no-write", "--json", str(out), "--cache", str(tmp_path)]
    assert mod.main(argv) == 0
    row = json.loads(out.read_text())
    assert row["videos"] == 1502 and row["index_rows"] > 1500
    for mode in row["modes"].values():
        assert mode["source_rank"] == 0 and mode["source_score"] >= 0.85
        assert 0 < mode["extract_s"] <= mode["total_s"]

"""`hnswc bench`: its JSON schema, its recall against NumPy, and the ground
truth: computed exactly, cached, read back from the cache, recomputed when the
cache is damaged, and taken from an ann-benchmarks file when it applies.
"""
import json
import os
import struct

import numpy as np
import pytest

from vecfiles import brute_force, recall, write_hdf5, write_idx

N, D, NQ = 600, 8, 60


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(11)
    base = rng.standard_normal((N, D)).astype(np.float32)
    queries = rng.standard_normal((NQ, D)).astype(np.float32)
    np.save(tmp_path / "base.npy", base)
    np.save(tmp_path / "q.npy", queries)
    return base, queries


def check_schema(j):
    """The documented hnswc-bench/1 layout (bench/compare.py relies on it)."""
    assert j["schema"] == "hnswc-bench/1"
    assert set(j) >= {"schema", "hnswc_version", "simd", "dataset", "params", "build",
                      "ground_truth", "results"}
    assert set(j["dataset"]) >= {"base", "base_dataset", "queries", "queries_dataset", "n",
                                 "nq", "dim", "source_type", "metric"}
    assert set(j["params"]) >= {"M", "ef_construction", "k", "threads", "seed"}
    assert set(j["build"]) >= {"seconds", "vectors_per_second", "memory_bytes"}
    assert set(j["ground_truth"]) >= {"source", "seconds", "cache_file"}
    assert j["ground_truth"]["source"] in ("computed", "cache", "hdf5")
    assert j["build"]["seconds"] > 0 and j["build"]["memory_bytes"] > 0
    assert j["params"]["threads"] >= 1
    for row in j["results"]:
        assert set(row) >= {"ef", "recall", "recall_ties", "qps_1thread", "qps_all_threads",
                            "latency_p50_us", "latency_p99_us"}
        assert 0 <= row["recall"] <= 1
        if j["ground_truth"]["source"] == "hdf5":
            assert row["recall_ties"] is None
        else:
            assert row["recall"] <= row["recall_ties"] <= 1
        assert row["qps_1thread"] > 0 and row["qps_all_threads"] > 0
        assert 0 < row["latency_p50_us"] <= row["latency_p99_us"]


def read_gt_cache(path):
    """Parses a cache file as documented in cli/gt.h, checksum included."""
    raw = open(path, "rb").read()
    h = 14695981039346656037
    for b in raw[:-8]:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    assert struct.unpack("<Q", raw[-8:])[0] == h, "checksum"
    magic, version, metric, key, nq, k = struct.unpack("<8sIIQQQ", raw[:40])
    assert (magic, version) == (b"HNSWCGT1", 1)
    labels = np.frombuffer(raw, "<u8", nq * k, 40).reshape(nq, k)
    dists = np.frombuffer(raw, "<f4", nq * k, 40 + 8 * nq * k).reshape(nq, k)
    return metric, labels, dists


def bench(run, *args):
    return run.json("bench", *args, "--json", "-", "-q")


def test_bench_recall_json_and_ground_truth_cache(run, tmp_path, data):
    base, queries = data
    k = 5
    args = ["base.npy", "q.npy", "-k", k, "--ef", "5,40,600", "--gt-cache", "gt"]
    p = run("bench", *args, "--json", "r1.json", "--save", "ix")
    assert "recall@5" in p.stdout  # the table
    j = json.load(open(tmp_path / "r1.json"))
    check_schema(j)
    assert j["dataset"] == {"base": "base.npy", "base_dataset": None, "queries": "q.npy",
                            "queries_dataset": None, "n": N, "nq": NQ, "dim": D,
                            "source_type": "float32", "metric": "l2"}
    assert (j["params"]["k"], j["params"]["M"], j["params"]["ef_construction"]) == (k, 16, 200)
    assert [r["ef"] for r in j["results"]] == [5, 40, 600]

    # The cached ground truth is NumPy's exact answer.
    gt = j["ground_truth"]
    assert gt["source"] == "computed"
    cache = gt["cache_file"]
    assert os.path.dirname(cache) == "gt" and os.path.isfile(tmp_path / cache)
    metric, labels, dists = read_gt_cache(tmp_path / cache)
    exact_labels, exact_dists = brute_force("l2", queries, base, k)
    assert metric == 0
    assert np.array_equal(labels, exact_labels)
    np.testing.assert_allclose(dists, exact_dists, rtol=1e-5, atol=1e-6)

    # Each reported recall is the recall of that index at that ef.
    for row in j["results"]:
        res = run.json("search", "ix", "q.npy", "-k", k, "--ef", row["ef"], "--format", "json")
        got = recall([r["labels"] for r in res["results"]], exact_labels)
        assert row["recall"] == pytest.approx(got, abs=1e-5)
    assert j["results"][-1]["recall"] >= 0.98  # ef >= n: exhaustive

    # A second run reads the cache and leaves it alone.
    mtime = os.stat(tmp_path / cache).st_mtime_ns
    j2 = bench(run, *args)
    assert j2["ground_truth"]["source"] == "cache" and j2["ground_truth"]["cache_file"] == cache
    assert os.stat(tmp_path / cache).st_mtime_ns == mtime

    # Other queries or another k: another key, another file.
    j3 = bench(run, *args[:2], "-k", 3, "--nq", 30, "--ef", 50, "--gt-cache", "gt")
    assert j3["ground_truth"]["source"] == "computed"
    assert j3["ground_truth"]["cache_file"] != cache and j3["dataset"]["nq"] == 30
    assert read_gt_cache(tmp_path / j3["ground_truth"]["cache_file"])[1].shape == (30, 3)


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_damaged_cache_is_recomputed(run, tmp_path, data, damage):
    args = ["base.npy", "q.npy", "--ef", "50", "--gt-cache", "gt"]
    cache = tmp_path / bench(run, *args)["ground_truth"]["cache_file"]
    good = cache.read_bytes()
    if damage == "flip":
        bad = bytearray(good)
        bad[len(bad) // 2] ^= 0x01
    elif damage == "truncate":
        bad = good[:-5]
    else:
        bad = b"\0" * len(good)
    cache.write_bytes(bytes(bad))

    p = run("bench", *args, "--json", "-")
    j = json.loads(p.stdout)
    assert j["ground_truth"]["source"] == "computed"
    assert "warning: ignoring a damaged ground-truth cache file" in p.stderr
    assert cache.read_bytes() == good  # rewritten, whole again
    assert bench(run, *args)["ground_truth"]["source"] == "cache"


def test_no_cache(run, tmp_path, data):
    j = bench(run, "base.npy", "q.npy", "--ef", "20", "--no-gt-cache",
              "--gt-cache", "unused")
    assert j["ground_truth"]["source"] == "computed"
    assert j["ground_truth"]["cache_file"] is None
    assert not (tmp_path / "unused").exists()


def test_hdf5_neighbors_are_the_ground_truth_when_they_apply(run, tmp_path, data):
    base, queries = data
    exact, _ = brute_force("l2", queries, base, 10)
    write_hdf5(tmp_path / "good.hdf5", base, queries, "euclidean", neighbors=exact)
    j = bench(run, "good.hdf5", "--ef", "600", "--no-gt-cache")
    check_schema(j)
    assert j["ground_truth"]["source"] == "hdf5"
    assert j["dataset"]["base_dataset"] == "train" and j["dataset"]["queries_dataset"] == "test"
    assert j["results"][0]["recall"] >= 0.98
    assert j["results"][0]["recall_ties"] is None  # the file's neighbours have no distances

    # Wrong neighbours in the file show up in the recall: they are used.
    write_hdf5(tmp_path / "wrong.hdf5", base, queries, "euclidean",
               neighbors=(exact + N // 2) % N)
    j = bench(run, "wrong.hdf5", "--ef", "600", "--no-gt-cache")
    assert j["ground_truth"]["source"] == "hdf5" and j["results"][0]["recall"] < 0.2

    # ... but not for part of the base, another metric, or a larger k.
    for extra in (["--nb", 300], ["--metric", "ip"], ["-k", 11]):
        j = bench(run, "wrong.hdf5", "--ef", "600", "--no-gt-cache", *extra)
        assert j["ground_truth"]["source"] == "computed"
        assert j["results"][0]["recall"] >= 0.9


def test_bench_on_idx_files(run, tmp_path):
    rng = np.random.default_rng(4)
    base = rng.integers(0, 256, (500, 4, 4), dtype=np.uint8)
    queries = rng.integers(0, 256, (40, 4, 4), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", base)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", queries)
    j = bench(run, "--base", "train-images-idx3-ubyte.gz", "--queries",
              "t10k-images-idx3-ubyte.gz", "--ef", "10,500", "--no-gt-cache", "--threads", 2)
    check_schema(j)
    assert (j["dataset"]["n"], j["dataset"]["dim"], j["dataset"]["source_type"]) == (
        500, 16, "uint8")
    assert j["params"]["threads"] == 2
    assert j["results"][1]["recall"] >= 0.98


def test_recall_with_ties(run, tmp_path):
    """Every base vector twice (labels i and i + 300), components in 0..3, so
    equal distances abound: for recall_ties any of the equidistant vectors is
    right, for recall only those the exact ground truth kept (smaller labels
    first). Both are checked against Python on the same saved index."""
    rng = np.random.default_rng(21)
    half = rng.integers(0, 4, (300, 6)).astype(np.float32)
    base = np.concatenate([half, half])
    queries = rng.integers(0, 4, (50, 6)).astype(np.float32)
    np.save(tmp_path / "dup.npy", base)
    np.save(tmp_path / "q.npy", queries)
    k = 4
    j = bench(run, "dup.npy", "q.npy", "-k", k, "--ef", "4,600", "--threads", 1,
              "--no-gt-cache", "--save", "ix")
    check_schema(j)
    exact_labels, exact_dists = brute_force("l2", queries, base, k)
    for row in j["results"]:
        res = run.json("search", "ix", "q.npy", "-k", k, "--ef", row["ef"], "--format", "json")
        labels = [r["labels"] for r in res["results"]]
        assert row["recall"] == pytest.approx(recall(labels, exact_labels), abs=1e-5)
        hits = sum(np.sum(np.array(r["distances"]) <= exact_dists[i, -1] + 1e-6)
                   for i, r in enumerate(res["results"]))
        assert row["recall_ties"] == pytest.approx(hits / (len(queries) * k), abs=1e-5)
    assert j["results"][1]["recall_ties"] == 1.0  # ef >= n: exhaustive
    assert j["results"][1]["recall"] < 1.0  # ties resolved differently than the brute force

"""hnswc.BFIndex over the library's flat index: what moved into libhnswc
keeps working from Python (files of hnswc 0.1's BFIndex, its pickles, the
element limit across save/load, the kinds kept apart)."""
import pickle
import struct
import zlib

import numpy as np
import pytest

import hnswc
from conftest import exact_knn

DIM = 6


def legacy_bf_file(path, space, vectors, labels, max_elements):
    """A file as hnswc 0.1's BFIndex.save_index wrote it (little-endian):
    "HNSWCBF1", u32 version 1, metric, dim, 0, u64 count, max_elements,
    next label, f32 vectors, u64 labels, u32 CRC-32 of all before."""
    metric = {"l2": 0, "ip": 1, "cosine": 2}[space]
    vectors = np.asarray(vectors, dtype="<f4")
    body = (b"HNSWCBF1" + struct.pack("<4I", 1, metric, vectors.shape[1], 0)
            + struct.pack("<3Q", len(vectors), max_elements, len(vectors) + 5)
            + vectors.tobytes() + np.asarray(labels, dtype="<u8").tobytes())
    path.write_bytes(body + struct.pack("<I", zlib.crc32(body)))


def test_hnswc_0_1_files_load(tmp_path, rng):
    data = rng.standard_normal((50, DIM)).astype(np.float32)
    legacy_bf_file(tmp_path / "old.bf", "l2", data, np.arange(50) * 3, 80)
    b = hnswc.BFIndex("l2", DIM)
    b.load_index(str(tmp_path / "old.bf"))
    assert b.get_current_count() == 50 and b.get_max_elements() == 80
    labels, dists = b.knn_query(data[:5], k=4)
    tl, td = exact_knn("l2", data, np.arange(50) * 3, data[:5], 4)
    np.testing.assert_array_equal(labels, tl)
    np.testing.assert_allclose(dists, td, rtol=1e-5, atol=1e-5)
    # saved again, it is in today's format, and loads the same
    b.save_index(str(tmp_path / "new.bf"))
    assert (tmp_path / "new.bf").read_bytes()[:6] == b"\x89HNSWC"
    c = hnswc.BFIndex("l2", DIM)
    c.load_index(str(tmp_path / "new.bf"))
    np.testing.assert_array_equal(c.knn_query(data[:5], k=4)[0], labels)
    # damaged, it is refused
    raw = bytearray((tmp_path / "old.bf").read_bytes())
    raw[100] ^= 1
    (tmp_path / "bad.bf").write_bytes(bytes(raw))
    with pytest.raises(RuntimeError, match="checksum"):
        hnswc.BFIndex("l2", DIM).load_index(str(tmp_path / "bad.bf"))


def test_hnswc_0_1_pickles_load(rng):
    data = rng.standard_normal((20, DIM)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)  # 0.1 kept cosine rows normalised
    state = {"ser_version": 1, "inited": True, "max_elements": 30, "cur_element_label": 20,
             "num_threads": 2, "vectors": data.tobytes(),
             "labels": np.arange(20, dtype=np.uint64).tobytes()}
    b = hnswc.BFIndex("cosine", DIM)
    b.__setstate__(state)
    assert b.get_current_count() == 20 and b.get_max_elements() == 30 and b.num_threads == 2
    tl, _ = exact_knn("cosine", data, np.arange(20), data[:3], 3)
    np.testing.assert_array_equal(b.knn_query(data[:3], k=3)[0], tl)
    b.add_items(data[0])  # the label counter went on from 20
    assert sorted(b.get_ids_list())[-1] == 20


def test_limit_survives_save_load_and_pickle(tmp_path, rng):
    data = rng.standard_normal((10, DIM)).astype(np.float32)
    b = hnswc.BFIndex("ip", DIM)
    b.init_index(12)
    b.add_items(data)
    b.save_index(str(tmp_path / "b"))
    c = hnswc.BFIndex("ip", DIM)
    c.load_index(str(tmp_path / "b"))
    assert c.get_max_elements() == 12
    c.add_items(data[:2], [100, 101])
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        c.add_items(data[:1], [102])
    c.add_items(data[:2], [100, 101])  # updates need no room
    d = pickle.loads(pickle.dumps(c))
    assert d.get_max_elements() == 12 and d.get_current_count() == 12


def test_kinds_are_kept_apart(tmp_path, rng):
    data = rng.standard_normal((30, DIM)).astype(np.float32)
    b = hnswc.BFIndex("l2", DIM)
    b.init_index(30)
    b.add_items(data)
    b.save_index(str(tmp_path / "flat"))
    i = hnswc.Index("l2", DIM)
    i.init_index(30)
    i.add_items(data)
    i.save_index(str(tmp_path / "hnsw"))
    with pytest.raises(RuntimeError, match="exact"):
        hnswc.Index("l2", DIM).load_index(str(tmp_path / "flat"))
    with pytest.raises(RuntimeError, match="HNSW"):
        hnswc.BFIndex("l2", DIM).load_index(str(tmp_path / "hnsw"))


def test_failed_calls_change_nothing(rng):
    data = rng.standard_normal((8, DIM)).astype(np.float32)
    b = hnswc.BFIndex("l2", DIM)
    b.init_index(8)
    b.add_items(data)
    before = b.knn_query(data, k=3)
    bad = data[:2].copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError):
        b.add_items(bad, [0, 1])
    with pytest.raises(RuntimeError, match="limit"):
        b.add_items(data[:2], [50, 51])
    with pytest.raises(RuntimeError, match="Label not found"):
        b.get_items([0, 99])
    after = b.knn_query(data, k=3)
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)
    assert b.get_current_count() == 8

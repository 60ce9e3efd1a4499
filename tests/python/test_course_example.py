"""The course example, verbatim except for the import line."""
import numpy as np


def test_course_example_runs_unchanged():
    import hnswc as hnswlib

    dim = 128
    num_elements = 1000

    # Generating sample data
    data = np.float32(np.random.random((num_elements, dim)))
    ids = np.arange(num_elements)

    # Declaring index
    p = hnswlib.Index(space='l2', dim=dim)  # possible options are l2, cosine or ip

    # Initializing index - the maximum number of elements should be known beforehand
    p.init_index(max_elements=num_elements, ef_construction=200, M=16)

    # Element insertion (can be called several times):
    p.add_items(data, ids)

    # Controlling the recall by setting ef:
    p.set_ef(50)  # ef should always be > k

    # Query dataset, k - number of closest elements (returns 2 numpy arrays)
    labels, distances = p.knn_query(data, k=5)

    # --- checks (not part of the example) ---
    assert labels.shape == (num_elements, 5) and labels.dtype == np.uint64
    assert distances.shape == (num_elements, 5) and distances.dtype == np.float32
    # every vector finds itself first, at distance 0
    assert (labels[:, 0] == ids).mean() >= 0.99
    assert np.allclose(distances[labels[:, 0] == ids, 0], 0.0, atol=1e-4)
    # closest first
    assert (np.diff(distances, axis=1) >= 0).all()
    # the distances are the true squared L2 distances of the labels returned
    true = ((data[labels] - data[:, None, :]).astype(np.float64) ** 2).sum(-1)
    assert np.allclose(distances, true, rtol=1e-4, atol=1e-3)

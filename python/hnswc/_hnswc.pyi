"""Type stubs of the hnswc C extension (re-exported by the hnswc package)."""
import os
from typing import Any, Callable, Dict, Iterable, List, Literal, Optional, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

_Space = Literal["l2", "ip", "cosine"]
_Path = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
#: A filter: a callable taking a label (hnswlib's form, called with the GIL),
#: an array of allowed labels, or a boolean mask indexed by label (both
#: evaluated in C without the GIL).
_Filter = Union[Callable[[int], Any], npt.ArrayLike, Iterable[int], None]

def simd_name() -> str:
    """The distance kernels in use: 'avx512', 'avx2', 'sse2', 'neon' or 'scalar'."""

def library_version() -> str:
    """The version of libhnswc compiled into the module."""

def distance(space: _Space, a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """The distance between two vectors, exactly as the indexes compute it."""

class Index:
    """An HNSW index; a drop-in replacement for hnswlib.Index.

    Distances: 'l2' squared Euclidean, 'ip' 1 - dot(a, b), 'cosine'
    1 - cos(a, b) (vectors are normalised when added and queried).
    """

    @overload
    def __init__(self, space: _Space, dim: int) -> None: ...
    @overload
    def __init__(self, index: "Index") -> None: ...
    @overload
    def __init__(self, params: Dict[str, Any]) -> None: ...
    def init_index(
        self,
        max_elements: int,
        M: int = 16,
        ef_construction: int = 200,
        random_seed: int = 100,
        allow_replace_deleted: bool = False,
        storage: Literal["f32", "sq8", "sq8-only"] = "f32",
        relayout: Literal["auto", "manual"] = "auto",
    ) -> None:
        """Creates the empty index (RuntimeError if already initialised).
        storage='sq8' walks on one-byte codes and re-ranks exactly (faster).
        storage='sq8-only' keeps the codes only (smallest memory): its
        distances and get_items are APPROXIMATE (decoded vectors).
        relayout='auto' renumbers nodes in locality order when add_items
        has doubled the index; 'manual' only on relayout()."""
    def add_items(
        self,
        data: npt.ArrayLike,
        ids: Optional[npt.ArrayLike] = None,
        num_threads: int = -1,
        replace_deleted: bool = False,
    ) -> None:
        """Adds (or updates) vectors; releases the GIL while inserting."""
    def knn_query(
        self,
        data: npt.ArrayLike,
        k: int = 1,
        num_threads: int = -1,
        filter: _Filter = None,
    ) -> Tuple[npt.NDArray[np.uint64], npt.NDArray[np.float32]]:
        """(labels, distances) of shape (n, k), closest first."""
    def mark_deleted(self, label: int) -> None: ...
    def unmark_deleted(self, label: int) -> None: ...
    def set_ef(self, ef: int) -> None: ...
    def set_num_threads(self, num_threads: int) -> None: ...
    def resize_index(self, new_size: int) -> None: ...
    def save_index(self, path_to_index: _Path) -> None: ...
    def load_index(
        self,
        path_to_index: _Path,
        max_elements: int = 0,
        allow_replace_deleted: bool = False,
        mmap: bool = False,
    ) -> None:
        """Loads an hnswc index file, or one saved by hnswlib 0.6 to 0.8;
        mmap=True opens an hnswc file in place (hnswc extension)."""
    @overload
    def get_items(
        self, ids: Optional[npt.ArrayLike] = None, return_type: Literal["numpy"] = "numpy"
    ) -> npt.NDArray[np.float32]: ...
    @overload
    def get_items(
        self, ids: Optional[npt.ArrayLike], return_type: Literal["list"]
    ) -> List[List[float]]: ...
    def get_ids_list(self) -> List[int]: ...
    def get_current_count(self) -> int: ...
    def get_max_elements(self) -> int: ...
    def index_file_size(self) -> int: ...
    def get_level(self, label: int) -> int:
        """hnswc extension: the top layer of an element."""
    def get_links(self, label: int, layer: int = 0) -> List[int]:
        """hnswc extension: the labels an element links to on a layer, in stored order."""
    def knn_query_trace(
        self, data: npt.ArrayLike, k: int = 1, ef: int = 0
    ) -> Tuple[npt.NDArray[np.uint64], npt.NDArray[np.float32], np.ndarray]:
        """hnswc extension: one query searched as knn_query does, with the
        search's events (structured array: kind, layer, node, source, dist,
        flags, count)."""
    def remove_items(self, labels: npt.ArrayLike, num_threads: int = -1) -> None:
        """hnswc extension: removes elements for good (see the docstring)."""
    def compact(self, num_threads: int = -1) -> int:
        """hnswc extension: removes every marked-deleted element; returns how many."""
    def relayout(self) -> None:
        """hnswc extension: renumbers the nodes in locality order (faster searches)."""
    def set_relayout(self, mode: str) -> None:
        """hnswc extension: 'auto' or 'manual' (see init_index's relayout)."""
    def range_query(
        self,
        data: npt.ArrayLike,
        radius: float,
        ef: int = 0,
        filter: _Filter = None,
    ) -> Tuple[List[npt.NDArray[np.uint64]], List[npt.NDArray[np.float32]]]:
        """hnswc extension: every element within radius of each query, closest first."""
    def get_info(self) -> Dict[str, Any]:
        """hnswc extension: counts, parameters, levels, memory, SIMD kernels."""
    def graph_stats(self) -> Dict[str, Any]:
        """hnswc extension: levels, degrees, unreachable nodes, one-way links."""
    def __getstate__(self) -> Dict[str, Any]: ...
    def __setstate__(self, state: Dict[str, Any]) -> None: ...
    def __reduce__(self) -> Tuple[Any, ...]: ...
    @property
    def space(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def M(self) -> int: ...
    @property
    def ef_construction(self) -> int: ...
    @property
    def max_elements(self) -> int: ...
    @property
    def element_count(self) -> int: ...
    @property
    def live_count(self) -> int:
        """hnswc extension: elements a search can return."""
    @property
    def deleted_count(self) -> int:
        """hnswc extension: elements marked deleted."""
    @property
    def allow_replace_deleted(self) -> bool: ...
    ef: int
    num_threads: int

class BFIndex:
    """An exact (brute-force) index; a drop-in replacement for hnswlib.BFIndex."""

    def __init__(self, space: _Space, dim: int) -> None: ...
    def init_index(self, max_elements: int) -> None: ...
    def add_items(self, data: npt.ArrayLike, ids: Optional[npt.ArrayLike] = None) -> None: ...
    def delete_vector(self, label: int) -> None: ...
    def knn_query(
        self,
        data: npt.ArrayLike,
        k: int = 1,
        num_threads: int = -1,
        filter: _Filter = None,
    ) -> Tuple[npt.NDArray[np.uint64], npt.NDArray[np.float32]]: ...
    def save_index(self, path_to_index: _Path) -> None: ...
    def load_index(self, path_to_index: _Path, max_elements: int = 0) -> None: ...
    def get_items(
        self, ids: Optional[npt.ArrayLike] = None, return_type: Literal["numpy", "list"] = "numpy"
    ) -> Any: ...
    def get_ids_list(self) -> List[int]: ...
    def get_max_elements(self) -> int: ...
    def get_current_count(self) -> int: ...
    def set_num_threads(self, num_threads: int) -> None: ...
    def __getstate__(self) -> Dict[str, Any]: ...
    def __setstate__(self, state: Dict[str, Any]) -> None: ...
    def __reduce__(self) -> Tuple[Any, ...]: ...
    @property
    def space(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def max_elements(self) -> int: ...
    @property
    def element_count(self) -> int: ...
    num_threads: int

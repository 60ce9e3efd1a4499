/*
 * module.c -- the hnswc._hnswc extension module: registers Index and
 * BFIndex and a few module-level helpers. The Python package hnswc
 * re-exports everything (python/hnswc/__init__.py).
 */
#include "common.h"

PyDoc_STRVAR(simd_name_doc,
"simd_name()\n--\n\n"
"The distance kernels chosen for this CPU: 'avx512', 'avx2', 'sse2', 'neon'\n"
"or 'scalar' (the environment variable HNSWC_SIMD can lower the choice).");

static PyObject *mod_simd_name(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    return PyUnicode_FromString(hnswc_simd_name());
}

PyDoc_STRVAR(library_version_doc,
"library_version()\n--\n\n"
"The version of libhnswc compiled into this module.");

static PyObject *mod_library_version(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    return PyUnicode_FromString(hnswc_version());
}

PyDoc_STRVAR(distance_doc,
"distance(space, a, b)\n--\n\n"
"The distance between two vectors in `space` ('l2', 'ip', 'cosine'),\n"
"computed exactly as the indexes compute it.");

static PyObject *mod_distance(PyObject *m, PyObject *args, PyObject *kwds)
{
    (void)m;
    static char *kwlist[] = {"space", "a", "b", NULL};
    PyObject *space, *a_obj, *b_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO:distance", kwlist, &space, &a_obj, &b_obj))
        return NULL;
    hnswc_metric metric;
    if (hpy_parse_space(space, &metric) < 0)
        return NULL;
    PyArrayObject *a = (PyArrayObject *)PyArray_FROMANY(a_obj, NPY_FLOAT32, 1, 1,
                                                        NPY_ARRAY_CARRAY | NPY_ARRAY_FORCECAST);
    if (a == NULL)
        return NULL;
    PyArrayObject *b = (PyArrayObject *)PyArray_FROMANY(b_obj, NPY_FLOAT32, 1, 1,
                                                        NPY_ARRAY_CARRAY | NPY_ARRAY_FORCECAST);
    if (b == NULL) {
        Py_DECREF(a);
        return NULL;
    }
    PyObject *res = NULL;
    if (PyArray_DIM(a, 0) != PyArray_DIM(b, 0) || PyArray_DIM(a, 0) == 0) {
        PyErr_SetString(PyExc_ValueError, "distance: a and b must be non-empty and of equal length");
    } else {
        float d = 0;
        hnswc_status st = hnswc_distance(metric, PyArray_DATA(a), PyArray_DATA(b),
                                         (size_t)PyArray_DIM(a, 0), &d);
        res = st == HNSWC_OK ? PyFloat_FromDouble(d) : hpy_raise_status(st, "distance");
    }
    Py_DECREF(a);
    Py_DECREF(b);
    return res;
}

static PyMethodDef module_methods[] = {
    {"simd_name", mod_simd_name, METH_NOARGS, simd_name_doc},
    {"library_version", mod_library_version, METH_NOARGS, library_version_doc},
    {"distance", (PyCFunction)(void (*)(void))mod_distance, METH_VARARGS | METH_KEYWORDS,
     distance_doc},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef hnswc_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "hnswc._hnswc",
    .m_doc = "C extension of hnswc: HNSW nearest neighbour search over libhnswc.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__hnswc(void)
{
    import_array();
    if (PyType_Ready(&HnswcIndex_Type) < 0 || PyType_Ready(&HnswcBFIndex_Type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&hnswc_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Index", (PyObject *)&HnswcIndex_Type) < 0 ||
        PyModule_AddObjectRef(m, "BFIndex", (PyObject *)&HnswcBFIndex_Type) < 0 ||
        PyModule_AddStringConstant(m, "__version__", HNSWC_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

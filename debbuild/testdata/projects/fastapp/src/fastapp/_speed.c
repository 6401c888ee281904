#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <zlib.h>
static PyObject *crc(PyObject *self, PyObject *args) {
    const char *s; Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "s#", &s, &n)) return NULL;
    return PyLong_FromUnsignedLong(crc32(0L, (const Bytef *)s, (uInt)n));
}
static PyMethodDef M[] = {{"crc", crc, METH_VARARGS, "crc32"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_speed", NULL, -1, M};
PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&mod); }

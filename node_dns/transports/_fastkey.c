/* The cache key of a query (node_dns.answer.responder.cache_key in C) and the splice of a cached
 * answer into the send slot: see _fastkey.h, and _fastudp.c for the batch that calls them. */
#include "_fastkey.h"

#include <string.h>

/* --- the normalised query ------------------------------------------------------------------ */

int fastkey_normalise(const unsigned char *d, Py_ssize_t size, unsigned char *key, Key *out)
{
    static const unsigned char one_question[6] = {0, 1, 0, 0, 0, 0};
    Py_ssize_t i = 12, qend, end;

    if (size < 17 || size > QUERY_MAX || memcmp(d + 4, one_question, 6) != 0)
        return 0;
    for (;;) {
        if (i >= size)
            return 0;
        if (d[i] == 0)
            break;
        if (d[i] > 63)
            return 0;
        i += d[i] + 1;
    }
    qend = i + 5;
    if (d[10] || d[11] > 1) /* ARCOUNT: none, or the OPT record */
        return 0;
    if (!d[11]) {
        if (qend != size)
            return 0;
        end = size;
    } else {
        Py_ssize_t rdlength, offset;
        if (size < qend + 11 || d[qend] != 0 || d[qend + 1] != 0 || d[qend + 2] != 41)
            return 0;
        rdlength = d[qend + 9] << 8 | d[qend + 10];
        if (qend + 11 + rdlength != size)
            return 0;
        for (offset = qend + 11; offset < size;) { /* options are ignored, but must be well-formed */
            if (offset + 4 > size)
                return 0;
            offset += 4 + (d[offset + 2] << 8 | d[offset + 3]);
        }
        if (offset != size)
            return 0;
        end = qend + 9; /* the OPT record up to its TTL: payload size, extended rcode, version, DO */
    }
    memcpy(key, d + 2, 10);
    for (Py_ssize_t j = 12; j < i; j++) {
        unsigned char c = d[j];
        key[j - 2] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
    }
    memcpy(key + i - 2, d + i, (size_t)(end - i));
    out->length = end - 2;
    out->qend = qend;
    out->qtype = d[i + 1] << 8 | d[i + 2];
    return 1;
}

/* --- a hit ------------------------------------------------------------------------------- */

int fastkey_splice_hit(PyObject *cache, const unsigned char *d, Py_ssize_t size, int gated,
                       unsigned char *out, Py_ssize_t room, Py_ssize_t *written)
{
    unsigned char buffer[QUERY_MAX];
    PyObject *key, *hit, *head, *tail, *cell, *count, *next;
    Py_ssize_t hlen, qlen, tlen;
    long long n;
    Key k;

    if (!fastkey_normalise(d, size, buffer, &k))
        return 0;
    if (gated && (k.qtype == TYPE_IXFR || k.qtype == TYPE_AXFR))
        return 0; /* what Transfers.claims takes from a query of this shape */
    key = PyBytes_FromStringAndSize((const char *)buffer, k.length);
    if (key == NULL)
        return -1;
    hit = PyDict_GetItemWithError(cache, key); /* borrowed; no Python code runs until it is used */
    Py_DECREF(key);
    if (hit == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (!PyTuple_CheckExact(hit) || PyTuple_GET_SIZE(hit) != 4)
        return 0;
    head = PyTuple_GET_ITEM(hit, 0);
    tail = PyTuple_GET_ITEM(hit, 1);
    cell = PyTuple_GET_ITEM(hit, 2);
    if (PyTuple_GET_ITEM(hit, 3) != Py_False) /* truncated: Python counts it */
        return 0;
    if (!PyBytes_CheckExact(head) || !PyBytes_CheckExact(tail) || !PyList_CheckExact(cell) ||
        PyList_GET_SIZE(cell) < 1)
        return 0;
    hlen = PyBytes_GET_SIZE(head);
    qlen = k.qend - 12;
    tlen = PyBytes_GET_SIZE(tail);
    if (2 + hlen + qlen + tlen > room)
        return 0;
    count = PyList_GET_ITEM(cell, 0);
    if (!PyLong_CheckExact(count))
        return 0;
    n = PyLong_AsLongLong(count);
    if (n == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    next = PyLong_FromLongLong(n + 1);
    if (next == NULL)
        return -1;
    PyList_SET_ITEM(cell, 0, next);
    Py_DECREF(count);
    out[0] = d[0];
    out[1] = d[1];
    memcpy(out + 2, PyBytes_AS_STRING(head), (size_t)hlen);
    memcpy(out + 2 + hlen, d + 12, (size_t)qlen);
    memcpy(out + 2 + hlen + qlen, PyBytes_AS_STRING(tail), (size_t)tlen);
    *written = 2 + hlen + qlen + tlen;
    return 1;
}

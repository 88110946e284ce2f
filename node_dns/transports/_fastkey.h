/* The cache key of a query and the splice of a cached answer: the compiled batch's per-datagram work.
 *
 * Kept apart from the batch (_fastudp.c: recvmmsg, the loop, sendmmsg, the histograms) so each
 * part stays readable; both are built into the one extension (setup.py).
 */
#ifndef NODE_DNS_FASTKEY_H
#define NODE_DNS_FASTKEY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define QUERY_MAX 512 /* cache_key refuses longer queries; a key is shorter than its query */
#define TYPE_IXFR 251
#define TYPE_AXFR 252

typedef struct {
    Py_ssize_t length; /* of the key */
    Py_ssize_t qend;   /* end of the question in the query */
    int qtype;
} Key;

/* responder.cache_key, byte for byte: 1 and the key in ``key``, or 0 (not the common shape). */
int fastkey_normalise(const unsigned char *d, Py_ssize_t size, unsigned char *key, Key *out);

/* The cached answer to ``d`` spliced into ``out``: 1 (written, counted), 0 (not answerable here:
 * the caller hands the datagram to Python) or -1 (a Python error is set). */
int fastkey_splice_hit(PyObject *cache, const unsigned char *d, Py_ssize_t size, int gated,
                       unsigned char *out, Py_ssize_t room, Py_ssize_t *written);

#endif

/* The batched UDP listener's hot path in C: recvmmsg, answer cache hits, sendmmsg.
 *
 * Why C: under dnsperf node-dns spent about 42% of its CPU in the interpreter for answers that
 * are a dictionary lookup and a byte splice. Compiling the responder (mypyc) cut the batch by a
 * quarter only: the per-datagram glue (slicing, struct packing, the loop itself) stayed Python.
 * This module runs the whole batch without a Python frame for a hit:
 *
 *   recvmmsg -> normalise the query exactly like node_dns.answer.responder.cache_key
 *   -> look the key up in the responder's UDP cache (a dict) -> client ID + cached header +
 *   client's question + cached rest into the send slot -> count the hit's counter cell and the
 *   duration bucket -> sendmmsg.
 *
 * Each batch also says how long its oldest datagram waited in the socket: the kernel stamps every
 * datagram as it arrives (SO_TIMESTAMPNS, set by the Python side), the queue is first in first
 * out, so the first datagram's stamp against CLOCK_REALTIME right after recvmmsg is the longest
 * wait of the batch. Only the first message gets a control buffer (the kernel flags the others
 * MSG_CTRUNC and drops their stamps, which nobody reads): one clock read and one bucket per batch.
 *
 * Every other datagram (a miss, a rotation under max_answers, a truncated answer, a transfer or
 * signed query when a gate is set, anything malformed) goes to the Python callable ``miss`` with
 * its slot, which answers it through the full path (node_dns.transports.batch.BatchedUdp._miss).
 * So the bytes sent are the full path's bytes: tests/unit/test_fast_path_property.py runs the
 * property tests through ``answer`` below, and the transport tests through ``Batch``.
 *
 * The contract with the Python side is FASTUDP_ABI (checked by node_dns.transports.accel): the
 * cache key's layout, the hit tuple (head: bytes, tail: bytes, cell: [int], truncated: bool),
 * the histograms' ``bounds``/``counts``/``total`` (the durations, and the receive waits), and
 * ``miss(data, slot) -> bytes | None | False``.
 * Bump it on both sides when any of them changes.
 */
#include "_fastkey.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

#ifndef SCM_TIMESTAMPNS
#define SCM_TIMESTAMPNS (-1) /* no receive stamps here: no wait is recorded */
#endif

#define FASTUDP_ABI 2
#ifndef FASTUDP_SOURCE_DIGEST
#define FASTUDP_SOURCE_DIGEST ""
#endif

#define BATCH 64
#define RECV_SLOT 65536 /* room for any UDP datagram */
#define SEND_SLOT 4096  /* UDP replies never exceed the EDNS size node-dns advertises */
#define MAX_BOUNDS 64

static PyObject *str_udp, *str_counts, *str_total, *str_full, *str_failed;

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* what time.perf_counter reads on Linux */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* --- the batch ----------------------------------------------------------------------------- */

/* A Python histogram (answer.stats.Histogram) and its bounds, read once. */
typedef struct {
    PyObject *histogram;
    Py_ssize_t n;
    double bounds[MAX_BOUNDS];
} Buckets;

typedef struct {
    PyObject_HEAD
    int fd;
    int received;
    int gated;
    int closed;
    PyObject *responder; /* its ``_udp`` is read per batch: publications replace the dict */
    PyObject *miss;
    PyObject *drop;
    Buckets durations;
    Buckets waits;
    union {
        char buffer[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } control; /* the first message's: its receive stamp */
    unsigned char *rbuf; /* BATCH * RECV_SLOT, anonymous mmap: untouched pages cost nothing */
    unsigned char *sbuf; /* BATCH * SEND_SLOT */
    struct sockaddr_storage names[BATCH];
    struct iovec riov[BATCH];
    struct iovec siov[BATCH];
    struct mmsghdr rvec[BATCH];
    struct mmsghdr svec[BATCH];
} Batch;

static int Batch_traverse(Batch *self, visitproc visit, void *arg)
{
    Py_VISIT(self->responder);
    Py_VISIT(self->durations.histogram);
    Py_VISIT(self->waits.histogram);
    Py_VISIT(self->miss);
    Py_VISIT(self->drop);
    return 0;
}

static int Batch_clear(Batch *self)
{
    Py_CLEAR(self->responder);
    Py_CLEAR(self->durations.histogram);
    Py_CLEAR(self->waits.histogram);
    Py_CLEAR(self->miss);
    Py_CLEAR(self->drop);
    return 0;
}

static void Batch_dealloc(Batch *self)
{
    PyObject_GC_UnTrack(self);
    Batch_clear(self);
    if (self->rbuf != NULL)
        munmap(self->rbuf, (size_t)BATCH * RECV_SLOT);
    PyMem_Free(self->sbuf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Read a histogram's bounds into ``into`` (which takes a reference). */
static int load_bounds(Buckets *into, PyObject *histogram)
{
    PyObject *bounds = PyObject_GetAttrString(histogram, "bounds"), *fast;
    if (bounds == NULL)
        return -1;
    fast = PySequence_Fast(bounds, "histogram bounds must be a sequence");
    Py_DECREF(bounds);
    if (fast == NULL)
        return -1;
    into->n = PySequence_Fast_GET_SIZE(fast);
    if (into->n > MAX_BOUNDS) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "too many histogram bounds");
        return -1;
    }
    for (Py_ssize_t b = 0; b < into->n; b++) {
        into->bounds[b] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fast, b));
        if (into->bounds[b] == -1.0 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
    }
    Py_DECREF(fast);
    Py_INCREF(histogram);
    Py_XSETREF(into->histogram, histogram);
    return 0;
}

/* The bucket of ``value``: bisect_left over the bounds, as Histogram.observe picks it. */
static Py_ssize_t bucket(const Buckets *of, double value)
{
    Py_ssize_t b = 0;
    while (b < of->n && of->bounds[b] < value)
        b++;
    return b;
}

static int Batch_init(Batch *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"fd", "responder", "histogram", "miss", "drop", "gated", "waits", NULL};
    PyObject *responder, *histogram, *miss, *drop, *waits;
    int fd, gated;

    if (self->rbuf != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Batch is already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iOOOOpO", keywords, &fd, &responder, &histogram,
                                     &miss, &drop, &gated, &waits))
        return -1;
    if (!PyCallable_Check(miss) || !PyCallable_Check(drop)) {
        PyErr_SetString(PyExc_TypeError, "miss and drop must be callable");
        return -1;
    }
    if (load_bounds(&self->durations, histogram) < 0 || load_bounds(&self->waits, waits) < 0)
        return -1;

    self->rbuf = mmap(NULL, (size_t)BATCH * RECV_SLOT, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (self->rbuf == MAP_FAILED) {
        self->rbuf = NULL;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->sbuf = PyMem_Malloc((size_t)BATCH * SEND_SLOT);
    if (self->sbuf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(self->rvec, 0, sizeof self->rvec);
    memset(self->svec, 0, sizeof self->svec);
    for (int i = 0; i < BATCH; i++) {
        self->riov[i].iov_base = self->rbuf + (size_t)i * RECV_SLOT;
        self->riov[i].iov_len = RECV_SLOT;
        self->siov[i].iov_base = self->sbuf + (size_t)i * SEND_SLOT;
        self->rvec[i].msg_hdr.msg_name = &self->names[i];
        self->rvec[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        self->rvec[i].msg_hdr.msg_iov = &self->riov[i];
        self->rvec[i].msg_hdr.msg_iovlen = 1;
        self->svec[i].msg_hdr.msg_iov = &self->siov[i];
        self->svec[i].msg_hdr.msg_iovlen = 1;
    }
    self->rvec[0].msg_hdr.msg_control = self->control.buffer;
    self->fd = fd;
    self->gated = gated;
    self->received = 0;
    Py_INCREF(responder);
    self->responder = responder;
    Py_INCREF(miss);
    self->miss = miss;
    Py_INCREF(drop);
    self->drop = drop;
    return 0;
}

/* sendmmsg what is ready; a reply the kernel refuses is skipped and counted, as NSD and Knot do. */
static void flush(Batch *self, int ready)
{
    int sent = 0;
    while (sent < ready) {
        int done = sendmmsg(self->fd, self->svec + sent, (unsigned int)(ready - sent), 0);
        if (done <= 0) {
            int code = errno;
            PyObject *result;
            if (done < 0 && code == EINTR)
                continue;
            result = PyObject_CallOneArg(self->drop, code == EAGAIN ? str_full : str_failed);
            if (result == NULL)
                PyErr_WriteUnraisable(self->drop);
            Py_XDECREF(result);
            sent += 1; /* skip the datagram the kernel refused; try the rest */
            continue;
        }
        sent += done;
    }
}

/* Add the batch's bucket counts and time to a histogram (Histogram.observe, once per batch). */
static int record(const Buckets *into, const long long *buckets, double spent)
{
    PyObject *counts = PyObject_GetAttr(into->histogram, str_counts), *total, *sum;
    int ok = 0;
    if (counts == NULL)
        return -1;
    if (!PyList_CheckExact(counts) || PyList_GET_SIZE(counts) != into->n + 1) {
        PyErr_SetString(PyExc_TypeError, "histogram counts must be a list of len(bounds) + 1");
        Py_DECREF(counts);
        return -1;
    }
    for (Py_ssize_t b = 0; b <= into->n && ok == 0; b++) {
        PyObject *add, *now;
        if (!buckets[b])
            continue;
        add = PyLong_FromLongLong(buckets[b]);
        now = add ? PyNumber_Add(PyList_GET_ITEM(counts, b), add) : NULL;
        Py_XDECREF(add);
        if (now == NULL || PyList_SetItem(counts, b, now) < 0)
            ok = -1;
    }
    Py_DECREF(counts);
    if (ok < 0)
        return -1;
    total = PyObject_GetAttr(into->histogram, str_total);
    if (total == NULL)
        return -1;
    sum = PyFloat_FromDouble(PyFloat_AsDouble(total) + spent);
    Py_DECREF(total);
    if (sum == NULL || PyErr_Occurred()) {
        Py_XDECREF(sum);
        return -1;
    }
    ok = PyObject_SetAttr(into->histogram, str_total, sum);
    Py_DECREF(sum);
    return ok;
}

/* The UDP cache of the responder: a dict, or NULL with no error when it is something else. */
static PyObject *current_cache(Batch *self)
{
    PyObject *cache = PyObject_GetAttr(self->responder, str_udp);
    if (cache != NULL && !PyDict_CheckExact(cache))
        Py_CLEAR(cache);
    return cache;
}

/* Hand one datagram to Python: 1 (a reply of *written bytes in out), 0 (none), 2 (an error it
 * reported: not timed, like the Python loop), -1 (an exception escaped). */
static int hand_back(Batch *self, int slot, Py_ssize_t size, unsigned char *out, Py_ssize_t *written)
{
    PyObject *data, *index, *reply, *args[2];
    int outcome = 0;
    data = PyBytes_FromStringAndSize((const char *)self->rbuf + (size_t)slot * RECV_SLOT, size);
    index = data ? PyLong_FromLong(slot) : NULL;
    if (index == NULL) {
        Py_XDECREF(data);
        return -1;
    }
    args[0] = data;
    args[1] = index;
    reply = PyObject_Vectorcall(self->miss, args, 2, NULL);
    Py_DECREF(data);
    Py_DECREF(index);
    if (reply == NULL)
        return -1;
    if (reply == Py_False) {
        outcome = 2;
    } else if (PyBytes_Check(reply) && PyBytes_GET_SIZE(reply) <= SEND_SLOT) {
        *written = PyBytes_GET_SIZE(reply);
        memcpy(out, PyBytes_AS_STRING(reply), (size_t)*written);
        outcome = 1;
    } /* None: no reply (the handler sent an oversize one itself, or drops the datagram) */
    Py_DECREF(reply);
    return outcome;
}

/* Seconds between the kernel's receive stamp and now (both CLOCK_REALTIME, in ns); 0 when the
 * clock was stepped back in between, rather than a wait of years. */
static double queue_wait(long long now, long long stamp)
{
    return now > stamp ? (double)(now - stamp) * 1e-9 : 0.0;
}

/* The first message's receive stamp, in ns; 0 when there is none (timestamps off, or lost). */
static long long receive_stamp(struct msghdr *header)
{
    struct timespec ts;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(header); c != NULL; c = CMSG_NXTHDR(header, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
            c->cmsg_len >= CMSG_LEN(sizeof ts)) {
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
        }
    }
    return 0;
}

/* One observation of the batch's longest queue wait, when its first datagram was stamped. */
static int record_wait(Batch *self, long long now)
{
    long long buckets[MAX_BOUNDS + 1] = {0}, stamp = receive_stamp(&self->rvec[0].msg_hdr);
    double wait;
    if (stamp == 0)
        return 0;
    wait = queue_wait(now, stamp);
    buckets[bucket(&self->waits, wait)] = 1;
    return record(&self->waits, buckets, wait);
}

static PyObject *Batch_readable(Batch *self, PyObject *Py_UNUSED(ignored))
{
    long long buckets[MAX_BOUNDS + 1] = {0};
    PyObject *cache, *error_type = NULL, *error_value = NULL, *error_tb = NULL;
    double spent = 0.0, started;
    struct timespec read_at;
    int count, ready = 0, failed = 0;

    if (self->closed || self->rbuf == NULL)
        Py_RETURN_NONE;
    for (int i = 0; i < self->received; i++) /* the kernel wrote address lengths into these */
        self->rvec[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
    self->rvec[0].msg_hdr.msg_controllen = sizeof self->control.buffer;
    count = recvmmsg(self->fd, self->rvec, BATCH, MSG_DONTWAIT, NULL);
    if (count <= 0) {
        self->received = 0;
        Py_RETURN_NONE; /* EAGAIN (another reader was first), or an error to retry on the next wake-up */
    }
    clock_gettime(CLOCK_REALTIME, &read_at); /* the receive stamps' clock */
    self->received = count;
    cache = current_cache(self);
    if (cache == NULL && PyErr_Occurred())
        return NULL;
    started = monotonic(); /* one clock read per datagram: each one's time ends where the next starts */
    for (int i = 0; i < count; i++) {
        const unsigned char *d = self->rbuf + (size_t)i * RECV_SLOT;
        Py_ssize_t size = self->rvec[i].msg_len, written = 0;
        unsigned char *out = self->sbuf + (size_t)ready * SEND_SLOT;
        double now;
        int outcome = cache ? fastkey_splice_hit(cache, d, size, self->gated, out, SEND_SLOT, &written) : 0;
        if (outcome == 0) {
            outcome = hand_back(self, i, size, out, &written);
            if (outcome >= 0) {
                Py_XSETREF(cache, current_cache(self)); /* the full path may have replaced the dict */
                if (cache == NULL && PyErr_Occurred())
                    outcome = -1;
            }
        }
        if (outcome < 0) {
            failed = 1;
            break;
        }
        if (outcome == 2) {
            started = monotonic();
            continue;
        }
        if (outcome == 1) {
            self->siov[ready].iov_len = (size_t)written;
            self->svec[ready].msg_hdr.msg_name = &self->names[i];
            self->svec[ready].msg_hdr.msg_namelen = self->rvec[i].msg_hdr.msg_namelen;
            ready++;
        }
        now = monotonic();
        buckets[bucket(&self->durations, now - started)]++;
        spent += now - started;
        started = now;
    }
    Py_XDECREF(cache);
    if (failed)
        PyErr_Fetch(&error_type, &error_value, &error_tb);
    if (ready)
        flush(self, ready);
    if (record(&self->durations, buckets, spent) < 0 ||
        record_wait(self, (long long)read_at.tv_sec * 1000000000LL + read_at.tv_nsec) < 0) {
        if (!failed)
            return NULL;
        PyErr_WriteUnraisable(self->durations.histogram);
    }
    if (failed) {
        PyErr_Restore(error_type, error_value, error_tb);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Batch_sender(Batch *self, PyObject *arg)
{
    long slot = PyLong_AsLong(arg);
    if (slot == -1 && PyErr_Occurred())
        return NULL;
    if (slot < 0 || slot >= self->received) {
        PyErr_SetString(PyExc_IndexError, "no datagram in that slot");
        return NULL;
    }
    return PyBytes_FromStringAndSize((const char *)&self->names[slot],
                                     self->rvec[slot].msg_hdr.msg_namelen);
}

static PyObject *Batch_close(Batch *self, PyObject *Py_UNUSED(ignored))
{
    self->closed = 1;
    Batch_clear(self); /* the miss handler refers back to the transport: break the cycle */
    Py_RETURN_NONE;
}

static PyMethodDef Batch_methods[] = {
    {"readable", (PyCFunction)Batch_readable, METH_NOARGS,
     "Read a batch with recvmmsg, answer it, send the replies with sendmmsg."},
    {"sender", (PyCFunction)Batch_sender, METH_O,
     "The raw socket address (struct sockaddr) of the datagram in a slot of the current batch."},
    {"close", (PyCFunction)Batch_close, METH_NOARGS, "Answer nothing more; drop the references."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject BatchType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "node_dns.transports._fastudp.Batch",
    .tp_doc = PyDoc_STR("The receive/answer/send loop of one UDP socket."),
    .tp_basicsize = sizeof(Batch),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Batch_init,
    .tp_dealloc = (destructor)Batch_dealloc,
    .tp_traverse = (traverseproc)Batch_traverse,
    .tp_clear = (inquiry)Batch_clear,
    .tp_methods = Batch_methods,
};

/* --- module functions: the same code, one datagram at a time (for the property tests) --------- */

static PyObject *fastudp_cache_key(PyObject *module, PyObject *arg)
{
    unsigned char buffer[QUERY_MAX];
    Py_buffer view;
    PyObject *result = NULL;
    Key k;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (fastkey_normalise(view.buf, view.len, buffer, &k))
        result = Py_BuildValue("(y#n)", (const char *)buffer, k.length, k.qend);
    else
        result = Py_NewRef(Py_None);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *fastudp_answer(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned char out[SEND_SLOT];
    Py_ssize_t written = 0;
    int outcome, gated;
    if (nargs != 3 || !PyDict_CheckExact(args[0]) || !PyBytes_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "answer(cache: dict, data: bytes, gated: bool)");
        return NULL;
    }
    gated = PyObject_IsTrue(args[2]);
    if (gated < 0)
        return NULL;
    outcome = fastkey_splice_hit(args[0], (const unsigned char *)PyBytes_AS_STRING(args[1]),
                         PyBytes_GET_SIZE(args[1]), gated, out, SEND_SLOT, &written);
    if (outcome < 0)
        return NULL;
    if (outcome == 0)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)out, written);
}

static PyObject *fastudp_queue_wait(PyObject *module, PyObject *args)
{
    long long now, stamp;
    if (!PyArg_ParseTuple(args, "LL:queue_wait", &now, &stamp))
        return NULL;
    return PyFloat_FromDouble(queue_wait(now, stamp));
}

static PyMethodDef fastudp_methods[] = {
    {"cache_key", (PyCFunction)fastudp_cache_key, METH_O,
     "responder.cache_key computed in C: (key, question end) or None."},
    {"answer", (PyCFunction)(void (*)(void))fastudp_answer, METH_FASTCALL,
     "The spliced cache hit for one query (its cell counted), or None when Python must answer."},
    {"queue_wait", fastudp_queue_wait, METH_VARARGS,
     "Seconds from a receive stamp to now (both ns of CLOCK_REALTIME), 0 when the clock went back."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fastudp_module = {
    PyModuleDef_HEAD_INIT, "_fastudp", "The batched UDP listener's hot path (see _fastudp.c).", -1,
    fastudp_methods,
};

PyMODINIT_FUNC PyInit__fastudp(void)
{
    PyObject *module;
    str_udp = PyUnicode_InternFromString("_udp");
    str_counts = PyUnicode_InternFromString("counts");
    str_total = PyUnicode_InternFromString("total");
    str_full = PyUnicode_InternFromString("send_buffer_full");
    str_failed = PyUnicode_InternFromString("send_failed");
    if (!str_udp || !str_counts || !str_total || !str_full || !str_failed)
        return NULL;
    if (PyType_Ready(&BatchType) < 0)
        return NULL;
    module = PyModule_Create(&fastudp_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddIntConstant(module, "ABI", FASTUDP_ABI) < 0 ||
        PyModule_AddStringConstant(module, "SOURCE_DIGEST", FASTUDP_SOURCE_DIGEST) < 0 ||
        PyModule_AddIntConstant(module, "BATCH", BATCH) < 0 ||
        PyModule_AddIntConstant(module, "SEND_SLOT", SEND_SLOT) < 0 ||
        PyModule_AddObject(module, "TRANSFER_TYPES", Py_BuildValue("(ii)", TYPE_IXFR, TYPE_AXFR)) < 0 ||
        PyModule_AddObjectRef(module, "Batch", (PyObject *)&BatchType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}

/* skeleton.so: the smallest complete ferry transport, to copy when writing
 * your own. Its "broker" is a queue per destination inside the process, so
 * it runs the structural conformance cases with no server; replace the
 * sk_broker_* functions with calls to your client library.
 * Build: make (needs nothing but pkg-config and an installed ferry). */
#define _POSIX_C_SOURCE 200809L
#include <ferry/transport.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- configuration: one struct, filled by the core from the table ---- */

struct sk_cfg {
    int64_t max_message_size; /* bytes */
    int64_t capacity;         /* messages queued per destination */
};

static const struct ferry_option sk_options[] = {
    {.name = "max_message_size", .type = FERRY_OPT_SIZE, .def = "4MiB", .min = 1,
     .max = 1073741824, .offset = offsetof(struct sk_cfg, max_message_size),
     .help = "Largest body accepted; larger ones are refused with FERRY_E_TOOBIG."},
    {.name = "capacity", .type = FERRY_OPT_INT, .def = "10000", .min = 1, .max = 100000000,
     .offset = offsetof(struct sk_cfg, capacity),
     .help = "Messages a destination holds before publish says FERRY_E_AGAIN."},
    {0}};

/* ---- the stand-in broker: shared by every connection of the process ---- */

struct sk_msg {
    struct ferry_msg m;           /* what receive() lends; points into the fields below */
    char *dest;                   /* owned */
    void *key, *body;             /* owned */
    struct ferry_header *headers; /* owned, with every name and value */
    struct sk_msg *next;          /* in its queue, or in the borrower's list of loans */
    struct sk_msg **prevp;        /* where the loan list points at it */
};

struct sk_queue {
    char *dest;                   /* owned; lives until the process ends */
    struct sk_msg *head, *tail;
    size_t len;
    struct sk_queue *next;
};

static pthread_mutex_t sk_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sk_arrived = PTHREAD_COND_INITIALIZER;
static struct sk_queue *sk_queues;

static void sk_msg_free(struct sk_msg *x)
{
    for (size_t i = 0; x->headers && i < x->m.n_headers; i++) {
        free((char *)x->headers[i].name);
        free((void *)x->headers[i].value);
    }
    free(x->headers);
    free(x->dest);
    free(x->key);
    free(x->body);
    free(x);
}

static void *sk_dup(const void *p, size_t n)
{
    void *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

/* publish() borrows m: copy everything that outlives the call. */
static struct sk_msg *sk_msg_copy(const struct ferry_msg *m)
{
    struct sk_msg *x = calloc(1, sizeof *x); /* freed by sk_msg_free() */
    if (!x)
        return NULL;
    x->dest = strdup(m->dest);
    x->key = m->key ? sk_dup(m->key, m->key_len) : NULL;
    x->body = sk_dup(m->body, m->body_len);
    x->headers = calloc(m->n_headers ? m->n_headers : 1, sizeof *x->headers);
    bool ok = x->dest && x->body && x->headers && (x->key || !m->key);
    for (size_t i = 0; ok && i < m->n_headers; i++) {
        x->headers[i].name = strdup(m->headers[i].name);
        x->headers[i].value = sk_dup(m->headers[i].value, m->headers[i].value_len);
        x->headers[i].value_len = m->headers[i].value_len;
        x->m.n_headers = i + 1; /* so sk_msg_free frees what exists */
        ok = x->headers[i].name && x->headers[i].value;
    }
    if (!ok) {
        sk_msg_free(x);
        return NULL;
    }
    x->m = (struct ferry_msg){.dest = x->dest, .key = x->key, .key_len = m->key_len,
                              .headers = x->headers, .n_headers = m->n_headers,
                              .body = x->body, .body_len = m->body_len};
    return x;
}

/* The queue of dest, created on first use. Caller locks. */
static struct sk_queue *sk_queue(const char *dest)
{
    for (struct sk_queue *q = sk_queues; q; q = q->next)
        if (!strcmp(q->dest, dest))
            return q;
    struct sk_queue *q = calloc(1, sizeof *q); /* lives until the process ends */
    if (!q || !(q->dest = strdup(dest))) {
        free(q);
        return NULL;
    }
    q->next = sk_queues;
    sk_queues = q;
    return q;
}

/* ---- per connection ---- */

struct sk_conn {
    const struct sk_cfg *cfg;
    char *sub;                    /* subscribed destination; owned */
    struct sk_msg *loans;         /* lent by receive(), not yet settled */
    uint64_t *unreported;         /* tags accepted, report not yet made; owned */
    size_t n_unreported, cap;
    struct ferry_health h;
};

static int sk_open(struct ferry_conn *c)
{
    struct sk_conn *s = calloc(1, sizeof *s); /* freed in sk_close() */
    if (!s)
        return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
    s->cfg = c->cfg;
    c->priv = s;
    ferry_log_info(c, "opened max_message_size=%lld capacity=%lld",
                   (long long)s->cfg->max_message_size, (long long)s->cfg->capacity);
    return FERRY_OK;
}

static void sk_close(struct ferry_conn *c)
{
    struct sk_conn *s = c->priv;
    /* loans still open end here; without FERRY_CAP_ACK nothing comes back */
    while (s->loans) {
        struct sk_msg *x = s->loans;
        s->loans = x->next;
        sk_msg_free(x);
    }
    free(s->unreported);
    free(s->sub);
    free(s);
    c->priv = NULL;
}

/* Delivery reports come from inside publish() and flush(), in the caller's
 * thread: never from a thread of ours. */
static void sk_report(struct ferry_conn *c)
{
    struct sk_conn *s = c->priv;
    size_t n = s->n_unreported;
    s->n_unreported = 0;
    for (size_t i = 0; i < n; i++) {
        s->h.confirmed++;
        ferry_conn_delivered(c, s->unreported[i], FERRY_OK, NULL);
    }
}

static int sk_publish(struct ferry_conn *c, const struct ferry_msg *m)
{
    struct sk_conn *s = c->priv;
    sk_report(c);
    if (!m->dest || !*m->dest)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "publish without a destination");
    /* refuse before sending anything, so the connection stays up */
    if ((int64_t)m->body_len > s->cfg->max_message_size)
        return ferry_conn_fail(c, FERRY_E_TOOBIG, "body of %zu bytes exceeds max_message_size %lld",
                               m->body_len, (long long)s->cfg->max_message_size);
    if (s->n_unreported == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        uint64_t *u = realloc(s->unreported, cap * sizeof *u);
        if (!u)
            return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
        s->unreported = u;
        s->cap = cap;
    }
    struct sk_msg *x = sk_msg_copy(m);
    if (!x)
        return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
    pthread_mutex_lock(&sk_lock);
    struct sk_queue *q = sk_queue(m->dest);
    int st = !q ? FERRY_E_AGAIN : (int64_t)q->len >= s->cfg->capacity ? FERRY_E_AGAIN : FERRY_OK;
    if (st == FERRY_OK) {
        if (q->tail)
            q->tail->next = x;
        else
            q->head = x;
        q->tail = x;
        q->len++;
        pthread_cond_broadcast(&sk_arrived);
    }
    pthread_mutex_unlock(&sk_lock);
    if (st != FERRY_OK) {
        sk_msg_free(x);
        /* an error return: not accepted, and no report will come */
        return ferry_conn_fail(c, st, "destination %s is full (capacity %lld)", m->dest,
                               (long long)s->cfg->capacity);
    }
    s->unreported[s->n_unreported++] = m->tag;
    s->h.published++;
    return FERRY_OK;
}

static int sk_flush(struct ferry_conn *c, int timeout_ms)
{
    (void)timeout_ms; /* everything accepted is already "at the broker" */
    sk_report(c);
    return FERRY_OK;
}

static int sk_subscribe(struct ferry_conn *c, const char *dest, const char *group)
{
    struct sk_conn *s = c->priv;
    (void)group; /* no FERRY_CAP_GROUPS: subscribers of a destination share it */
    if (s->sub)
        return ferry_conn_fail(c, FERRY_E_NOTSUP, "already subscribed to %s", s->sub);
    if (!(s->sub = strdup(dest)))
        return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
    return FERRY_OK;
}

static int sk_receive(struct ferry_conn *c, struct ferry_msg **out, size_t max, size_t *n,
                      int timeout_ms)
{
    struct sk_conn *s = c->priv;
    *n = 0;
    if (!s->sub)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "receive before subscribe");
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&sk_lock);
    struct sk_queue *q = sk_queue(s->sub);
    while (q && !q->head && timeout_ms != 0) {
        if (timeout_ms < 0)
            pthread_cond_wait(&sk_arrived, &sk_lock);
        else if (pthread_cond_timedwait(&sk_arrived, &sk_lock, &until))
            break; /* timed out */
    }
    while (q && q->head && *n < max) {
        struct sk_msg *x = q->head;
        q->head = x->next;
        if (!q->head)
            q->tail = NULL;
        q->len--;
        /* lend it: it stays ours until ack, nack or release */
        x->next = s->loans;
        if (s->loans)
            s->loans->prevp = &x->next;
        x->prevp = &s->loans;
        s->loans = x;
        out[(*n)++] = &x->m;
    }
    pthread_mutex_unlock(&sk_lock);
    s->h.received += *n;
    return *n ? FERRY_OK : FERRY_E_TIMEOUT;
}

/* End a loan. Without FERRY_CAP_ACK, ack, nack and release all just do this. */
static void sk_settle(struct ferry_msg *m)
{
    struct sk_msg *x = (struct sk_msg *)(void *)m; /* m is the first member */
    *x->prevp = x->next;
    if (x->next)
        x->next->prevp = x->prevp;
    sk_msg_free(x);
}

static int sk_ack(struct ferry_conn *c, struct ferry_msg *m)
{
    (void)c;
    sk_settle(m);
    return FERRY_OK;
}

static int sk_nack(struct ferry_conn *c, struct ferry_msg *m, bool requeue, const char *reason)
{
    (void)c, (void)requeue, (void)reason;
    sk_settle(m); /* no redelivery, no dead-letter: both are outside our caps */
    return FERRY_OK;
}

static void sk_release(struct ferry_conn *c, struct ferry_msg *m)
{
    (void)c;
    sk_settle(m);
}

static int sk_health(struct ferry_conn *c, struct ferry_health *out)
{
    struct sk_conn *s = c->priv;
    *out = s->h;
    out->state = FERRY_HEALTH_CONNECTED;
    out->inflight = s->n_unreported;
    return FERRY_OK;
}

static const char *sk_lib_version(void)
{
    return "skeleton 1";
}

static const struct ferry_transport_ops sk_ops = {
    .size = sizeof(struct ferry_transport_ops), /* the table grows: the loader reads this */
    .open = sk_open, .close = sk_close, .publish = sk_publish, .flush = sk_flush,
    .subscribe = sk_subscribe, .receive = sk_receive, .ack = sk_ack, .nack = sk_nack,
    .release = sk_release, .health = sk_health};

/* The one exported symbol. NAME_LTX_ lets a static build preload the
 * plugin; the loader also finds a plain ferry_descriptor. */
#define ferry_descriptor skeleton_LTX_ferry_descriptor
const struct ferry_transport ferry_descriptor = {
    .abi = FERRY_TRANSPORT_ABI,
    .size = sizeof(struct ferry_transport),
    .name = "skeleton", /* must match the file: skeleton.so */
    .summary = "In-process example transport (copy it to write your own)",
    .lib_version = sk_lib_version,
    /* claim only what the conformance suite can prove: one FIFO per
     * destination keeps the order of every key */
    .caps = FERRY_CAP_KEY_ORDER,
    .options = sk_options,
    .cfg_size = sizeof(struct sk_cfg),
    .ops = &sk_ops,
};

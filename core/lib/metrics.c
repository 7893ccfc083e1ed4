/* The metrics registry: atomic counters and fixed-bucket histograms that
 * any thread updates without locks, a mutex-protected transport snapshot,
 * and the Prometheus text rendering (exposition format 0.0.4). */
#include "config.h"
#include "internal.h"

#include <ferry/metrics.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds in seconds, from 0.5 ms to 30 s; +Inf is implicit. */
static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                   0.25,   0.5,   1,      2.5,   5,    10,    30};
#define NBUCKETS (sizeof bucket_le / sizeof bucket_le[0])

struct hist {
    _Atomic uint64_t bucket[NBUCKETS + 1]; /* per bucket, not cumulative; last is +Inf */
    _Atomic uint64_t sum_ns;
};

struct ferry_metrics_dest {
    char *name; /* owned */
    _Atomic uint64_t ctr[FERRY_CTR_COUNT];
    struct hist processing;
    struct ferry_metrics_dest *next;
};

struct ferry_metrics {
    char *transport; /* owned */
    int64_t start_ms;
    pthread_mutex_t lock; /* guards dests (list shape) and the snapshot */
    struct ferry_metrics_dest *dests, *tail;
    size_t ndests;
    struct hist http[FERRY_HTTP_HANDLERS];
    struct ferry_metrics_state snap;
    uint64_t dropped_seen; /* the transport's drop total last added */
    struct metrics_lag {   /* per partition, under lock */
        char dest[128];
        int32_t partition;
        int64_t lag;
    } lags[FERRY_METRICS_MAX_LAGS];
    size_t n_lags;
    _Atomic uint64_t http_class[5]; /* answers by status class 1xx..5xx */
};

static const char *const counter_name[FERRY_CTR_COUNT] = {
    "messages_produced",         "messages_consumed", "messages_rejected",
    "message_processing_errors", "messages_dropped",  "messages_dead_lettered"};
static const char *const counter_help[FERRY_CTR_COUNT] = {
    "Messages the transport confirmed (or accepted, without publisher confirms).",
    "Messages received and handled.",
    "Messages refused as invalid (sent to the reject destination or answered 400).",
    "Messages whose handling failed (they are retried or redelivered).",
    "Messages dropped by a configured drop policy (amqp unroutable = drop-and-count).",
    "Messages sent to the dead-letter destination after failing max_retries + 1 times."};
static const char *const handler_name[FERRY_HTTP_HANDLERS] = {"produce", "batch-produce", "health",
                                                              "metrics", "other"};

struct ferry_metrics *ferry_metrics_new(const char *transport)
{
    struct ferry_metrics *m = calloc(1, sizeof *m); /* freed in ferry_metrics_free() */
    if (!m)
        return NULL;
    m->transport = strdup(transport ? transport : ""); /* freed in ferry_metrics_free() */
    if (!m->transport || pthread_mutex_init(&m->lock, NULL)) {
        free(m->transport);
        free(m);
        return NULL;
    }
    m->start_ms = ferry_mono_ms();
    m->snap.state = FERRY_HEALTH_CONNECTING;
    m->snap.dest_messages = m->snap.consumer_lag = -1;
    ferry_fmt(m->snap.reason, sizeof m->snap.reason, "starting");
    ferry_fmt(m->snap.transport, sizeof m->snap.transport, "%s", m->transport);
    return m;
}

void ferry_metrics_free(struct ferry_metrics *m)
{
    if (!m)
        return;
    for (struct ferry_metrics_dest *d = m->dests, *n; d; d = n) {
        n = d->next;
        free(d->name);
        free(d);
    }
    pthread_mutex_destroy(&m->lock);
    free(m->transport);
    free(m);
}

struct ferry_metrics_dest *ferry_metrics_dest(struct ferry_metrics *m, const char *destination)
{
    if (!m)
        return NULL;
    if (!destination)
        destination = "";
    pthread_mutex_lock(&m->lock);
    struct ferry_metrics_dest *d, *other = NULL;
    for (d = m->dests; d; d = d->next) {
        if (!strcmp(d->name, destination))
            break;
        if (!strcmp(d->name, "_other"))
            other = d;
    }
    if (!d && m->ndests >= FERRY_METRICS_MAX_DESTS && other)
        d = other;
    if (!d) {
        const char *name = m->ndests + 1 >= FERRY_METRICS_MAX_DESTS ? "_other" : destination;
        d = calloc(1, sizeof *d);             /* freed in ferry_metrics_free() */
        if (d && !(d->name = strdup(name))) { /* freed in ferry_metrics_free() */
            free(d);
            d = NULL;
        }
        if (d) {
            if (m->tail)
                m->tail->next = d;
            else
                m->dests = d;
            m->tail = d;
            m->ndests++;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return d;
}

void ferry_metrics_count(struct ferry_metrics_dest *d, enum ferry_counter k, uint64_t n)
{
    if (d && (unsigned)k < FERRY_CTR_COUNT)
        atomic_fetch_add_explicit(&d->ctr[k], n, memory_order_relaxed);
}

/* n observations of s seconds each */
static void hist_observe(struct hist *h, double s, uint64_t n)
{
    if (!(s >= 0)) /* also NaN */
        s = 0;
    size_t i = 0;
    while (i < NBUCKETS && s > bucket_le[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], n, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, n * (uint64_t)(s * 1e9), memory_order_relaxed);
}

void ferry_metrics_observe(struct ferry_metrics_dest *d, double seconds)
{
    if (d)
        hist_observe(&d->processing, seconds, 1);
}

void ferry_metrics_observe_n(struct ferry_metrics_dest *d, double seconds, uint64_t n)
{
    if (d && n)
        hist_observe(&d->processing, seconds, n);
}

void ferry_metrics_count_http(struct ferry_metrics *m, unsigned status)
{
    if (m && status >= 100 && status < 600)
        atomic_fetch_add_explicit(&m->http_class[status / 100 - 1], 1, memory_order_relaxed);
}

void ferry_metrics_observe_http(struct ferry_metrics *m, enum ferry_http_handler h, double seconds)
{
    if (m && (unsigned)h < FERRY_HTTP_HANDLERS)
        hist_observe(&m->http[h], seconds, 1);
}

const char *ferry_health_state_name(enum ferry_health_state s)
{
    switch (s) {
    case FERRY_HEALTH_CONNECTED: return "connected";
    case FERRY_HEALTH_CONNECTING: return "reconnecting";
    case FERRY_HEALTH_BLOCKED: return "blocked";
    default: return "failed";
    }
}

void ferry_metrics_set_state(struct ferry_metrics *m, const struct ferry_health *h,
                             const char *reason, uint64_t reconnects, uint64_t inflight, bool ready)
{
    pthread_mutex_lock(&m->lock);
    m->snap.state = h ? h->state : FERRY_HEALTH_CONNECTING;
    const char *why = reason && *reason ? reason : h ? h->reason : "";
    ferry_fmt(m->snap.reason, sizeof m->snap.reason, "%s", why);
    if (h && h->reconnects > reconnects)
        reconnects = h->reconnects;
    if (reconnects > m->snap.reconnects) /* a counter never goes back */
        m->snap.reconnects = reconnects;
    m->snap.inflight = inflight;
    m->snap.ready = ready;
    pthread_mutex_unlock(&m->lock);
}

void ferry_metrics_set_backlog(struct ferry_metrics *m, const char *dest, int64_t dest_messages,
                               int64_t consumer_lag, const struct ferry_lag *lags, size_t n_lags,
                               uint64_t dropped)
{
    if (!m)
        return;
    struct ferry_metrics_dest *d = dest ? ferry_metrics_dest(m, dest) : NULL;
    pthread_mutex_lock(&m->lock);
    if (!d)
        d = m->dests;
    m->snap.dest_messages = dest_messages;
    m->snap.consumer_lag = consumer_lag;
    m->n_lags = 0;
    for (size_t i = 0; i < n_lags && m->n_lags < FERRY_METRICS_MAX_LAGS; i++) {
        struct metrics_lag *l = &m->lags[m->n_lags++];
        ferry_fmt(l->dest, sizeof l->dest, "%s", lags[i].dest ? lags[i].dest : "");
        l->partition = lags[i].partition;
        l->lag = lags[i].lag;
    }
    ferry_fmt(m->snap.backlog_dest, sizeof m->snap.backlog_dest, "%s", d ? d->name : "");
    uint64_t grew = dropped > m->dropped_seen ? dropped - m->dropped_seen : 0;
    if (dropped > m->dropped_seen)
        m->dropped_seen = dropped;
    pthread_mutex_unlock(&m->lock);
    if (grew)
        ferry_metrics_count(d, FERRY_CTR_DROPPED, grew);
}

void ferry_metrics_get_state(struct ferry_metrics *m, struct ferry_metrics_state *out)
{
    pthread_mutex_lock(&m->lock);
    *out = m->snap;
    pthread_mutex_unlock(&m->lock);
    out->uptime_ms = ferry_mono_ms() - m->start_ms;
}

/* A growing text buffer; on ENOMEM it stops growing and reports failure at the end. */
struct out {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct out *o, const char *fmt, ...) FERRY_PRINTF(2, 3);
static void put(struct out *o, const char *fmt, ...)
{
    if (o->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap + (size_t)n + 1) * 2;
        char *np = realloc(o->p, cap); /* owned by the caller of ferry_metrics_render() */
        if (!np) {
            o->oom = true;
            return;
        }
        o->p = np;
        o->cap = cap;
    }
}

/* Label values escape backslash, double quote and newline (format 0.0.4). */
static void put_label(struct out *o, const char *s)
{
    char buf[512];
    size_t n = 0;
    for (; *s && n + 2 < sizeof buf; s++) {
        if (*s == '\\' || *s == '"') {
            buf[n++] = '\\';
            buf[n++] = *s;
        } else if (*s == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
        } else {
            buf[n++] = *s;
        }
    }
    buf[n] = '\0';
    put(o, "%s", buf);
}

static void put_hist(struct out *o, const char *name, const struct hist *h, const char *tr,
                     const char *lname, const char *lval)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= NBUCKETS; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        put(o, "%s_bucket{transport=\"", name);
        put_label(o, tr);
        put(o, "\",%s=\"", lname);
        put_label(o, lval);
        if (i < NBUCKETS)
            put(o, "\",le=\"%g\"} %llu\n", bucket_le[i], (unsigned long long)cum);
        else
            put(o, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    put(o, "%s_sum{transport=\"", name);
    put_label(o, tr);
    put(o, "\",%s=\"", lname);
    put_label(o, lval);
    put(o, "\"} %.9f\n", (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
    put(o, "%s_count{transport=\"", name);
    put_label(o, tr);
    put(o, "\",%s=\"", lname);
    put_label(o, lval);
    put(o, "\"} %llu\n", (unsigned long long)cum);
}

/* One series of its own family, labelled with the transport only. %.15g
 * prints counts below 10^15 exactly and milliseconds in seconds without
 * binary noise. */
static void put_series(struct out *o, const char *name, const char *type, const char *help,
                       const char *tr, double v)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n%s{transport=\"", name, help, name, type, name);
    put_label(o, tr);
    put(o, "\"} %.15g\n", v);
}

char *ferry_metrics_render(struct ferry_metrics *m, size_t *len)
{
    struct out o = {.cap = 16384};
    o.p = malloc(o.cap); /* returned to the caller, who frees it */
    if (!o.p)
        return NULL;
    struct ferry_metrics_state st;
    ferry_metrics_get_state(m, &st);
    const char *tr = m->transport;
    /* The list only grows and its nodes live until ferry_metrics_free(), so
     * the lock is needed only to read its shape, not while formatting. */
    pthread_mutex_lock(&m->lock);
    struct ferry_metrics_dest *first = m->dests, *last = m->tail;
    pthread_mutex_unlock(&m->lock);

    for (int k = 0; k < FERRY_CTR_COUNT; k++) {
        put(&o, "# HELP ferry_%s_total %s\n# TYPE ferry_%s_total counter\n", counter_name[k],
            counter_help[k], counter_name[k]);
        for (struct ferry_metrics_dest *d = first; d; d = d == last ? NULL : d->next) {
            put(&o, "ferry_%s_total{transport=\"", counter_name[k]);
            put_label(&o, tr);
            put(&o, "\",destination=\"");
            put_label(&o, d->name);
            put(&o, "\"} %llu\n",
                (unsigned long long)atomic_load_explicit(&d->ctr[k], memory_order_relaxed));
        }
    }
    put(&o, "# HELP ferry_message_processing_duration_seconds Time to handle one message "
            "(producer: publish to confirm; consumers: receive to done).\n"
            "# TYPE ferry_message_processing_duration_seconds histogram\n");
    for (struct ferry_metrics_dest *d = first; d; d = d == last ? NULL : d->next)
        put_hist(&o, "ferry_message_processing_duration_seconds", &d->processing, tr, "destination",
                 d->name);

    put_series(&o, "ferry_transport_reconnects_total", "counter",
               "Times the transport connection came back after a loss.", tr, (double)st.reconnects);
    put_series(&o, "ferry_transport_connected", "gauge",
               "1 when the transport is connected, else 0.", tr,
               st.state == FERRY_HEALTH_CONNECTED);
    put_series(&o, "ferry_inflight_messages", "gauge", "Messages published and not yet confirmed.",
               tr, (double)st.inflight);
    if (st.dest_messages >= 0) {
        put(&o, "# HELP ferry_destination_messages Messages waiting in the consumed destination "
                "(amqp: the queue's message count, polled at most once a second).\n"
                "# TYPE ferry_destination_messages gauge\nferry_destination_messages{transport=\"");
        put_label(&o, tr);
        put(&o, "\",destination=\"");
        put_label(&o, st.backlog_dest);
        put(&o, "\"} %lld\n", (long long)st.dest_messages);
    }
    pthread_mutex_lock(&m->lock);
    size_t nl = m->n_lags;
    struct metrics_lag *lags = nl ? malloc(nl * sizeof *lags) : NULL; /* freed below */
    if (lags)
        memcpy(lags, m->lags, nl * sizeof *lags);
    pthread_mutex_unlock(&m->lock);
    if (nl && !lags)
        o.oom = true;
    if (lags) {
        put(&o, "# HELP ferry_consumer_lag Messages of a partition not yet consumed by this "
                "group (kafka: high watermark minus committed offset), per partition assigned "
                "here.\n# TYPE ferry_consumer_lag gauge\n");
        for (size_t i = 0; i < nl; i++) {
            put(&o, "ferry_consumer_lag{transport=\"");
            put_label(&o, tr);
            put(&o, "\",destination=\"");
            put_label(&o, lags[i].dest);
            put(&o, "\",partition=\"%d\"} %lld\n", (int)lags[i].partition, (long long)lags[i].lag);
        }
        free(lags);
    }
    put_series(&o, "ferry_up", "gauge",
               "1 when the program can do its job (what /health reports as 200).", tr, st.ready);
    put_series(&o, "ferry_uptime_seconds", "gauge", "Seconds since the program started.", tr,
               (double)st.uptime_ms / 1000.0);

    put(&o,
        "# HELP ferry_http_request_duration_seconds Time to answer an HTTP request, by handler.\n"
        "# TYPE ferry_http_request_duration_seconds histogram\n");
    for (int h = 0; h < FERRY_HTTP_HANDLERS; h++)
        put_hist(&o, "ferry_http_request_duration_seconds", &m->http[h], tr, "handler",
                 handler_name[h]);
    put(&o, "# HELP ferry_http_responses_total HTTP answers by status class.\n"
            "# TYPE ferry_http_responses_total counter\n");
    for (int k = 0; k < 5; k++) {
        put(&o, "ferry_http_responses_total{transport=\"");
        put_label(&o, tr);
        put(&o, "\",code=\"%dxx\"} %llu\n", k + 1,
            (unsigned long long)atomic_load_explicit(&m->http_class[k], memory_order_relaxed));
    }
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    *len = o.len;
    return o.p;
}

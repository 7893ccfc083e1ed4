/* The application logger: ferry_log() copies the message into a lock-free
 * bounded ring; one background thread per logger encodes envelopes, keeps
 * them in the on-disk spool when one is configured, and publishes them
 * through the reliable publisher, reconnecting with backoff and jitter. */
#include "config.h"
#include "internal.h"
#include "spool.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Static_assert(FERRY_SPOOL_FSYNC_ALWAYS == (int)FERRY_SPOOL_SYNC_ALWAYS &&
                   FERRY_SPOOL_FSYNC_BATCH == (int)FERRY_SPOOL_SYNC_BATCH &&
                   FERRY_SPOOL_FSYNC_NEVER == (int)FERRY_SPOOL_SYNC_NEVER,
               "the spool's fsync modes follow enum ferry_spool_fsync");

#define L(f) offsetof(struct ferry_logger_cfg, f)
const struct ferry_option ferry_logger_options[] = {
    {.name = "service",
     .type = FERRY_OPT_STR,
     .def = "app",
     .offset = L(service),
     .help = "Service name put in each envelope and its routing key (service.level)."},
    {.name = "level",
     .type = FERRY_OPT_ENUM,
     .def = "INFO",
     .offset = L(level),
     .choices = "DEBUG|INFO|WARNING|ERROR|CRITICAL",
     .help = "Minimum level sent; lower levels are discarded in the calling thread."},
    {.name = "destination",
     .type = FERRY_OPT_STR,
     .def = "logs",
     .offset = L(destination),
     .help = "Queue or topic the log envelopes are published to."},
    {.name = "queue_size",
     .type = FERRY_OPT_INT,
     .def = "65536",
     .min = 16,
     .max = 16777216,
     .offset = L(queue_size),
     .help = "Messages held in memory between the callers and the sending thread (rounded up to a "
             "power of two)."},
    {.name = "full_policy",
     .type = FERRY_OPT_ENUM,
     .def = "drop_newest",
     .choices = "block|drop_newest|spill",
     .offset = L(full_policy),
     .help = "When the queue is full: wait up to block_timeout, drop the new message, or write it "
             "to the spool (needs spool_dir)."},
    {.name = "block_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "100ms",
     .min = 0,
     .max = 3600000,
     .offset = L(block_timeout),
     .help = "Longest wait of a caller for queue space with full_policy = block; then the message "
             "is dropped."},
    {.name = "spool_dir",
     .type = FERRY_OPT_STR,
     .offset = L(spool_dir),
     .help = "Directory of the on-disk spool every message passes through; unset keeps messages in "
             "memory only."},
    {.name = "spool_max",
     .type = FERRY_OPT_SIZE,
     .def = "256MiB",
     .min = 1048576,
     .max = INT64_C(1099511627776),
     .offset = L(spool_max),
     .help = "Most disk space the spool takes; messages beyond it are dropped and counted."},
    {.name = "spool_fsync",
     .type = FERRY_OPT_ENUM,
     .def = "batch",
     .choices = "always|batch|never",
     .offset = L(spool_fsync),
     .help = "When spooled messages are forced to disk: after each write, every "
             "spool_fsync_interval, or never (the kernel decides)."},
    {.name = "spool_fsync_interval",
     .type = FERRY_OPT_DURATION,
     .def = "1s",
     .min = 1,
     .max = 3600000,
     .offset = L(spool_fsync_interval),
     .help = "With spool_fsync = batch, the longest a spooled message waits for fsync."},
    {.name = "flush_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "10s",
     .min = 0,
     .max = 86400000,
     .offset = L(flush_timeout),
     .help = "How long closing the logger keeps trying to deliver what is pending."},
    {.name = "backoff_min",
     .type = FERRY_OPT_DURATION,
     .def = "100ms",
     .min = 1,
     .max = 3600000,
     .offset = L(backoff_min),
     .help =
         "First delay between connection attempts; it doubles, with jitter, up to backoff_max."},
    {.name = "backoff_max",
     .type = FERRY_OPT_DURATION,
     .def = "30s",
     .min = 1,
     .max = 3600000,
     .offset = L(backoff_max),
     .help = "Longest delay between connection attempts."},
    {.name = "max_inflight",
     .type = FERRY_OPT_INT,
     .def = "10000",
     .min = 1,
     .max = 1000000,
     .offset = L(max_inflight),
     .help = "Messages handed to the transport and not yet confirmed before the sender waits."},
    {0}};
#undef L

/* One logged message on its way from a caller to the sending thread. */
struct rec {
    int64_t time_ms;
    int level;
    uint32_t msg_len;
    uint32_t info_len; /* 0: no information */
    bool pooled;       /* REC_POOL_SIZE bytes: goes back to the pool (rec_free()) */
    char data[];       /* message NUL information NUL */
};

/* Records of up to REC_POOL_SIZE bytes are recycled through a pool of at
 * most REC_POOL_MAX (1 MiB) instead of going back to malloc: the sender
 * frees what callers allocated, and glibc then makes a caller's malloc
 * wait for the arena lock the sender's free holds. That wait (a futex,
 * microseconds) was the slowest 2 % of ferry_log() calls from 8 threads
 * (bench/findings.md). */
#define REC_POOL_SIZE 256
#define REC_POOL_MAX 4096

/* A cell of the bounded MPMC ring (D. Vyukov's algorithm): seq tells whose
 * turn it is; producers claim a position with one CAS on tail. */
struct cell {
    _Atomic size_t seq;
    struct rec *rec;
};

/* A bounded MPMC queue of cells (ring and pool, see below). */
struct mpmc {
    struct cell *cells; /* mask + 1 of them; freed in free_logger() */
    size_t mask;
    alignas(64) _Atomic size_t tail; /* next position producers claim */
    alignas(64) _Atomic size_t head; /* next position consumers claim */
};

/* A message handed to the publisher while the spool holds it. */
struct inflight {
    struct ferry_spool_pos pos;
    bool done;
};

#define N_LEVELS 5
#define BATCH 512

struct ferry_logger {
    /* read-only after open */
    struct ferry_logger_cfg cfg;       /* bound from [logger]; freed with ferry_options_free() */
    struct ferry_config *own_config;   /* loaded from a path; freed in ferry_logger_close() */
    const struct ferry_config *config; /* used to (re)open the connection */
    char *service;                     /* owned */
    char host[256];
    char keys[N_LEVELS][300]; /* routing key per level */
    char id_prefix[25];       /* random part of the message ids */
    int min_level;
    pthread_t thread;

    /* records from callers to the sender (queue_size cells): one consumer
     * at a time takes from it, the sender or whoever holds spool_mu */
    struct mpmc ring;
    _Atomic int sleeping; /* the sender waits on wake */
    _Atomic int blocked;  /* callers waiting on space */
    _Atomic int flushers; /* callers waiting on progress */
    _Atomic bool closing;
    _Atomic int64_t close_deadline;  /* monotonic ms */
    _Atomic uint64_t spilled_direct; /* accepted by callers straight into the spool */
    _Atomic uint64_t dropped_callers, dropped_bg, delivered, failed, spooled, recovered, reconnects,
        id_seq;
    struct mpmc pool; /* ended records of REC_POOL_SIZE bytes, for callers to reuse */

    pthread_mutex_t mu;
    pthread_cond_t wake, space, progress;

    pthread_mutex_t spool_mu;  /* the spool, and head while a spool exists */
    struct ferry_spool *spool; /* owned; NULL: memory only */

    /* sender thread only */
    struct ferry_conn *conn; /* closed in teardown() */
    struct ferry_pub *pub;   /* freed in teardown() */
    struct ferry_backoff backoff;
    int64_t next_connect_ms;
    int connect_failures;
    bool ever_connected;
    struct inflight *infl; /* ring of max_inflight (power of two); owned */
    size_t infl_mask;
    uint64_t infl_head, infl_sent;
    uint64_t warned_drops, warned_fails;
    int64_t last_drop_warn_ms, last_fail_warn_ms;
    char *batch_buf; /* copies of spooled records to send; owned */
    size_t batch_cap;
};

static void lg_log(const struct ferry_logger *lg, enum ferry_log_level lvl, const char *fmt, ...)
    FERRY_PRINTF(3, 4);
static void lg_log(const struct ferry_logger *lg, enum ferry_log_level lvl, const char *fmt, ...)
{
    if ((int)lvl > ferry_env_log_level())
        return;
    va_list ap;
    va_start(ap, fmt);
    ferry_stderr_vlog((void *)lg->service, lvl, "logger", fmt, ap);
    va_end(ap);
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

static int level_index(enum ferry_level l)
{
    int i = (int)l / 10 - 1;
    return i < 0 ? 0 : i >= N_LEVELS ? N_LEVELS - 1 : i;
}

/* ---------------------------------------------------------------------- */
/* The ring (callers to the sender) and the record pool */

/* Vyukov's queue with a CAS at both ends: any thread may put or take. */
static bool mpmc_put(struct mpmc *q, struct rec *r)
{
    size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    struct cell *c;
    for (;;) {
        c = &q->cells[pos & q->mask];
        intptr_t dif =
            (intptr_t)atomic_load_explicit(&c->seq, memory_order_acquire) - (intptr_t)pos;
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (dif < 0) {
            return false; /* full */
        } else {
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
        }
    }
    c->rec = r;
    atomic_store_explicit(&c->seq, pos + 1, memory_order_seq_cst); /* see ring_push() */
    return true;
}

static struct rec *mpmc_take(struct mpmc *q)
{
    size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    struct cell *c;
    for (;;) {
        c = &q->cells[pos & q->mask];
        intptr_t dif =
            (intptr_t)atomic_load_explicit(&c->seq, memory_order_acquire) - (intptr_t)(pos + 1);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (dif < 0) {
            return NULL; /* empty */
        } else {
            pos = atomic_load_explicit(&q->head, memory_order_relaxed);
        }
    }
    struct rec *r = c->rec;
    atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
    return r;
}

static bool ring_push(struct ferry_logger *lg, struct rec *r)
{
    if (!mpmc_put(&lg->ring, r))
        return false;
    /* mpmc_put()'s seq_cst store pairs with the sender's store to
     * sleeping: one of the two threads sees the other's write, so no
     * wake-up is lost */
    if (atomic_load_explicit(&lg->sleeping, memory_order_seq_cst)) {
        pthread_mutex_lock(&lg->mu);
        pthread_cond_signal(&lg->wake);
        pthread_mutex_unlock(&lg->mu);
    }
    return true;
}

/* May read a stale head while a spilling caller consumes: the answer is
 * then only a hint, which is all the sender uses it for. */
static bool ring_ready(struct ferry_logger *lg)
{
    size_t h = atomic_load_explicit(&lg->ring.head, memory_order_relaxed);
    struct cell *c = &lg->ring.cells[h & lg->ring.mask];
    return atomic_load_explicit(&c->seq, memory_order_seq_cst) == h + 1;
}

/* Take one record; the caller is the only consumer at this moment. */
static struct rec *ring_pop(struct ferry_logger *lg)
{
    return mpmc_take(&lg->ring);
}

/* The end of a record: back to the pool when it came from there and the
 * pool has room, else to malloc. Any thread. */
static void rec_free(struct ferry_logger *lg, struct rec *r)
{
    if (r && r->pooled && lg->pool.cells && mpmc_put(&lg->pool, r))
        return;
    free(r);
}

static void wake_blocked(struct ferry_logger *lg)
{
    if (atomic_load(&lg->blocked)) {
        pthread_mutex_lock(&lg->mu);
        pthread_cond_broadcast(&lg->space);
        pthread_mutex_unlock(&lg->mu);
    }
}

/* ---------------------------------------------------------------------- */
/* Encoding (sender thread, or a spilling caller holding spool_mu) */

static char *encode(struct ferry_logger *lg, const struct rec *r, size_t *len)
{
    char id[40], err[128];
    uint64_t n = atomic_fetch_add_explicit(&lg->id_seq, 1, memory_order_relaxed);
    snprintf(id, sizeof id, "%s%012" PRIx64, lg->id_prefix, n & 0xffffffffffffu);
    const char *msg = r->data;
    const char *info = r->info_len ? r->data + r->msg_len + 1 : NULL;
    struct ferry_envelope e = {.id = id,
                               .service = lg->service,
                               .level = (enum ferry_level)r->level,
                               .message = msg,
                               .information = info,
                               .time_ms = r->time_ms,
                               .host = lg->host};
    char *body = ferry_envelope_encode(&e, err, sizeof err); /* freed by the caller */
    if (!body && info) {
        /* keep the message: the text that is not an object goes alongside */
        cJSON *x = cJSON_CreateObject(); /* freed below */
        char *extra = NULL;              /* freed below */
        if (x && cJSON_AddStringToObject(x, "information_text", info))
            extra = cJSON_PrintUnformatted(x);
        cJSON_Delete(x);
        e.information = NULL;
        e.extra = extra;
        body = ferry_envelope_encode(&e, err, sizeof err);
        cJSON_free(extra);
    }
    if (body)
        *len = strlen(body);
    return body;
}

/* ---------------------------------------------------------------------- */
/* Spool side (spool_mu held) */

/* Move what the ring holds into the spool, in order. Returns how many.
 * upto > head: also wait for positions below upto that a caller has
 * claimed but not yet filled (it is between two instructions). */
static size_t ring_to_spool(struct ferry_logger *lg, size_t max, size_t upto)
{
    size_t n = 0;
    struct rec *r;
    char err[256];
    while (n < max) {
        if (!(r = ring_pop(lg))) {
            if ((intptr_t)(upto - atomic_load_explicit(&lg->ring.head, memory_order_relaxed)) <= 0)
                break;
            sched_yield();
            continue;
        }
        n++;
        size_t len = 0;
        char *body = encode(lg, r, &len);
        int rc = body ? ferry_spool_append(lg->spool, lg->keys[level_index(r->level)],
                                           strlen(lg->keys[level_index(r->level)]), body, len, err,
                                           sizeof err)
                      : -1;
        if (rc == 0)
            atomic_fetch_add(&lg->spooled, 1);
        else
            atomic_fetch_add(&lg->dropped_bg, 1);
        if (rc < 0 && body)
            lg_log(lg, FERRY_LOG_ERROR, "spool write failed error=\"%s\"", err);
        free(body);
        rec_free(lg, r);
    }
    return n;
}

/* ---------------------------------------------------------------------- */
/* The caller's side */

static struct rec *rec_new(struct ferry_logger *lg, enum ferry_level level, const char *message,
                           size_t mlen, const char *information)
{
    size_t ilen = information ? strlen(information) : 0;
    if (mlen > UINT32_MAX || ilen > UINT32_MAX)
        return NULL;
    size_t size = sizeof(struct rec) + mlen + 1 + ilen + 1;
    bool pooled = size <= REC_POOL_SIZE;
    /* ended with rec_free() by the sender after encoding (ring_to_spool,
     * ring_to_pub), by a spilling caller, or in ferry_logger_close() */
    struct rec *r = pooled ? mpmc_take(&lg->pool) : NULL;
    if (!r)
        r = malloc(pooled ? REC_POOL_SIZE : size);
    if (!r)
        return NULL;
    r->pooled = pooled;
    r->time_ms = ferry_time_ms();
    r->level = level;
    r->msg_len = (uint32_t)mlen;
    r->info_len = (uint32_t)ilen;
    memcpy(r->data, message, mlen);
    r->data[mlen] = '\0';
    if (ilen)
        memcpy(r->data + mlen + 1, information, ilen);
    r->data[mlen + 1 + ilen] = '\0';
    return r;
}

/* full_policy = spill: drain the ring into the spool first (so a thread's
 * messages stay in order), then append this one. */
static bool spill(struct ferry_logger *lg, struct rec *r)
{
    /* every message this thread logged before is below the current tail */
    size_t upto = atomic_load(&lg->ring.tail);
    pthread_mutex_lock(&lg->spool_mu);
    ring_to_spool(lg, SIZE_MAX, upto);
    size_t len = 0;
    char err[256];
    char *body = encode(lg, r, &len); /* freed below */
    const char *key = lg->keys[level_index(r->level)];
    int rc =
        body ? ferry_spool_append(lg->spool, key, strlen(key), body, len, err, sizeof err) : -1;
    if (rc == 0)
        rc = ferry_spool_sync(lg->spool, false, err, sizeof err);
    pthread_mutex_unlock(&lg->spool_mu);
    free(body);
    rec_free(lg, r);
    wake_blocked(lg);
    if (rc == 0) {
        atomic_fetch_add(&lg->spooled, 1);
        atomic_fetch_add(&lg->spilled_direct, 1);
        if (atomic_load_explicit(&lg->sleeping, memory_order_seq_cst)) {
            pthread_mutex_lock(&lg->mu);
            pthread_cond_signal(&lg->wake);
            pthread_mutex_unlock(&lg->mu);
        }
        return true;
    }
    return false;
}

static int log_len(struct ferry_logger *lg, enum ferry_level level, const char *message,
                   size_t mlen, const char *information)
{
    if ((int)level < lg->min_level)
        return FERRY_OK;
    if (atomic_load_explicit(&lg->closing, memory_order_relaxed))
        return FERRY_E_FATAL;
    struct rec *r = rec_new(lg, level, message, mlen, information);
    if (!r) {
        atomic_fetch_add(&lg->dropped_callers, 1);
        return FERRY_E_AGAIN;
    }
    if (ring_push(lg, r))
        return FERRY_OK;
    if (lg->cfg.full_policy == FERRY_FULL_SPILL) {
        if (spill(lg, r))
            return FERRY_OK;
    } else if (lg->cfg.full_policy == FERRY_FULL_BLOCK && lg->cfg.block_timeout > 0) {
        int64_t end = ferry_mono_ms() + lg->cfg.block_timeout;
        for (;;) {
            int64_t left = end - ferry_mono_ms();
            if (left <= 0)
                break;
            pthread_mutex_lock(&lg->mu);
            atomic_fetch_add(&lg->blocked, 1);
            struct timespec ts;
            /* short slices: a wake-up raced away costs at most one slice */
            ferry_mono_deadline(&ts, left < 5 ? left : 5);
            pthread_cond_timedwait(&lg->space, &lg->mu, &ts);
            atomic_fetch_sub(&lg->blocked, 1);
            pthread_mutex_unlock(&lg->mu);
            if (ring_push(lg, r))
                return FERRY_OK;
        }
        rec_free(lg, r);
    } else {
        rec_free(lg, r);
    }
    atomic_fetch_add(&lg->dropped_callers, 1);
    return FERRY_E_AGAIN;
}

int ferry_log(struct ferry_logger *lg, enum ferry_level level, const char *message,
              const char *information)
{
    if (!message)
        message = "";
    return log_len(lg, level, message, strlen(message), information);
}

int ferry_vlogf(struct ferry_logger *lg, enum ferry_level level, const char *fmt, va_list ap)
{
    if ((int)level < lg->min_level)
        return FERRY_OK;
    char buf[512];
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(buf, sizeof buf, fmt, aq);
    va_end(aq);
    if (n < 0)
        return log_len(lg, level, "", 0, NULL);
    if ((size_t)n < sizeof buf)
        return log_len(lg, level, buf, (size_t)n, NULL);
    char *big = malloc((size_t)n + 1); /* freed below */
    if (!big) {
        atomic_fetch_add(&lg->dropped_callers, 1);
        return FERRY_E_AGAIN;
    }
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    int rc = log_len(lg, level, big, (size_t)n, NULL);
    free(big);
    return rc;
}

int ferry_logf(struct ferry_logger *lg, enum ferry_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ferry_vlogf(lg, level, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Statistics and flush */

void ferry_logger_stats(const struct ferry_logger *lg, struct ferry_logger_stats *out)
{
    struct ferry_logger *m = (struct ferry_logger *)lg; /* atomics need non-const access */
    memset(out, 0, sizeof *out);
    out->logged = atomic_load(&m->ring.tail) + atomic_load(&m->spilled_direct);
    out->delivered = atomic_load(&m->delivered);
    out->failed = atomic_load(&m->failed);
    uint64_t dbg = atomic_load(&m->dropped_bg);
    out->dropped = atomic_load(&m->dropped_callers) + dbg;
    out->spooled = atomic_load(&m->spooled);
    out->recovered = atomic_load(&m->recovered);
    out->reconnects = atomic_load(&m->reconnects);
    uint64_t in = out->logged + out->recovered, settled = out->delivered + out->failed + dbg;
    out->pending = in > settled ? in - settled : 0;
}

static uint64_t settled(struct ferry_logger *lg)
{
    return atomic_load(&lg->delivered) + atomic_load(&lg->failed) + atomic_load(&lg->dropped_bg);
}

int ferry_logger_flush(struct ferry_logger *lg, int timeout_ms)
{
    uint64_t target = atomic_load(&lg->ring.tail) + atomic_load(&lg->spilled_direct) +
                      atomic_load(&lg->recovered);
    int64_t end = timeout_ms < 0 ? INT64_MAX : ferry_mono_ms() + timeout_ms;
    while (settled(lg) < target) {
        int64_t left = end - ferry_mono_ms();
        if (left <= 0)
            return FERRY_E_TIMEOUT;
        pthread_mutex_lock(&lg->mu);
        atomic_fetch_add(&lg->flushers, 1);
        struct timespec ts;
        ferry_mono_deadline(&ts, left < 20 ? left : 20);
        pthread_cond_timedwait(&lg->progress, &lg->mu, &ts);
        atomic_fetch_sub(&lg->flushers, 1);
        pthread_mutex_unlock(&lg->mu);
    }
    return FERRY_OK;
}

/* ---------------------------------------------------------------------- */
/* The sender thread */

static void on_done(void *ctx, uint64_t tag, int status, const char *reason)
{
    struct ferry_logger *lg = ctx;
    if (status == FERRY_OK)
        atomic_fetch_add(&lg->delivered, 1);
    else {
        atomic_fetch_add(&lg->failed, 1);
        int64_t now = ferry_mono_ms();
        if (!lg->last_fail_warn_ms || now - lg->last_fail_warn_ms >= 10000) {
            lg->last_fail_warn_ms = now;
            lg_log(lg, FERRY_LOG_ERROR,
                   "message refused by the broker error=\"%s\" failed=%" PRIu64,
                   reason ? reason : ferry_strerror(status), atomic_load(&lg->failed));
        }
    }
    if (lg->spool)
        lg->infl[tag & lg->infl_mask].done = true;
}

static void teardown(struct ferry_logger *lg)
{
    if (!lg->conn)
        return;
    struct ferry_pub_stats ps = {0};
    ferry_pub_stats(lg->pub, &ps);
    if (!lg->spool && ps.pending) /* memory only: what the transport held is gone */
        atomic_fetch_add(&lg->dropped_bg, ps.pending);
    ferry_pub_free(lg->pub);
    ferry_close(lg->conn);
    lg->pub = NULL;
    lg->conn = NULL;
    if (lg->spool) { /* unconfirmed records are sent again from the spool */
        pthread_mutex_lock(&lg->spool_mu);
        ferry_spool_rewind(lg->spool);
        pthread_mutex_unlock(&lg->spool_mu);
        lg->infl_head = lg->infl_sent = 0;
    }
}

static void try_connect(struct ferry_logger *lg)
{
    int64_t now = ferry_mono_ms();
    if (lg->conn || now < lg->next_connect_ms)
        return;
    int st;
    char err[512], cid[300];
    snprintf(cid, sizeof cid, "%s@%s:%ld", lg->service, lg->host, (long)getpid());
    struct ferry_conn *c =
        ferry_open(lg->config, cid, &st, err, sizeof err); /* closed in teardown() */
    if (!c) {
        int64_t delay = ferry_backoff_next(&lg->backoff);
        lg->next_connect_ms = ferry_mono_ms() + delay;
        if (lg->connect_failures++ == 0 || lg->connect_failures % 20 == 0)
            lg_log(lg, FERRY_LOG_WARN,
                   "broker unreachable, retrying attempts=%d retry_in=%" PRId64 "ms error=\"%s\"",
                   lg->connect_failures, delay, err);
        return;
    }
    ferry_conn_set_log(c, lg->service, ferry_env_log_level());
    struct ferry_pub_opts po = {.max_inflight = (size_t)lg->cfg.max_inflight,
                                .backoff_min_ms = lg->cfg.backoff_min,
                                .backoff_max_ms = lg->cfg.backoff_max};
    lg->pub = ferry_pub_new(c, &po, on_done, lg); /* freed in teardown() */
    if (!lg->pub) {
        ferry_close(c);
        lg->next_connect_ms = ferry_mono_ms() + ferry_backoff_next(&lg->backoff);
        return;
    }
    lg->conn = c;
    if (lg->ever_connected)
        atomic_fetch_add(&lg->reconnects, 1);
    if (lg->connect_failures || lg->ever_connected)
        lg_log(lg, FERRY_LOG_INFO, "connected transport=%s after_attempts=%d", c->transport->name,
               lg->connect_failures + 1);
    lg->ever_connected = true;
    lg->connect_failures = 0;
    ferry_backoff_reset(&lg->backoff);
}

/* Publish one body; a status that says the handle is dead tears it down. */
static void publish(struct ferry_logger *lg, uint64_t tag, const char *key, size_t klen,
                    const char *body, size_t blen, bool *dead)
{
    struct ferry_msg m = {.dest = lg->cfg.destination,
                          .key = key,
                          .key_len = klen,
                          .body = body,
                          .body_len = blen,
                          .tag = tag};
    int rc = ferry_pub_send(lg->pub, &m, 0);
    if (rc == FERRY_OK)
        return;
    if (rc == FERRY_E_FATAL) {
        *dead = true;
        if (!lg->spool)
            atomic_fetch_add(&lg->dropped_bg, 1);
        return;
    }
    /* refused for good (too big, bad destination): counted, never retried */
    on_done(lg, tag, rc, ferry_pub_error(lg->pub));
}

/* Memory only: encode and publish what the ring holds while the window allows. */
static size_t ring_to_pub(struct ferry_logger *lg, bool *dead)
{
    struct ferry_pub_stats ps;
    ferry_pub_stats(lg->pub, &ps);
    size_t room = ps.pending >= (uint64_t)lg->cfg.max_inflight
                      ? 0
                      : (size_t)((uint64_t)lg->cfg.max_inflight - ps.pending);
    size_t n = 0;
    struct rec *r;
    while (n < room && n < BATCH && !*dead && (r = ring_pop(lg))) {
        n++;
        size_t len = 0;
        char *body = encode(lg, r, &len); /* freed below */
        const char *key = lg->keys[level_index(r->level)];
        if (body)
            publish(lg, 0, key, strlen(key), body, len, dead);
        else
            atomic_fetch_add(&lg->dropped_bg, 1);
        free(body);
        rec_free(lg, r);
    }
    return n;
}

/* Spool: publish unread records while the in-flight window allows. */
static size_t spool_to_pub(struct ferry_logger *lg, bool *dead)
{
    size_t cap = (size_t)lg->cfg.max_inflight, sent = 0; /* the publisher's window too */
    char err[256];
    while (!*dead && lg->infl_sent - lg->infl_head < cap) {
        /* copy a batch out under the lock, publish without it */
        size_t want = cap - (size_t)(lg->infl_sent - lg->infl_head);
        if (want > BATCH)
            want = BATCH;
        size_t used = 0, got = 0;
        struct {
            size_t koff, klen, boff, blen;
            struct ferry_spool_pos pos;
        } item[BATCH];
        pthread_mutex_lock(&lg->spool_mu);
        while (got < want) {
            const char *k, *b;
            size_t kl, bl;
            struct ferry_spool_pos pos;
            int rc = ferry_spool_next(lg->spool, &k, &kl, &b, &bl, &pos, err, sizeof err);
            if (rc < 0)
                lg_log(lg, FERRY_LOG_ERROR, "spool read failed error=\"%s\"", err);
            if (rc <= 0)
                break;
            if (used + kl + bl > lg->batch_cap) {
                size_t nc = lg->batch_cap ? lg->batch_cap : 256 * 1024;
                while (nc < used + kl + bl)
                    nc *= 2;
                char *nb = realloc(lg->batch_buf, nc); /* freed in ferry_logger_close() */
                if (!nb) {
                    ferry_spool_rewind(lg->spool); /* read it again later */
                    lg->infl_head = lg->infl_sent;
                    break;
                }
                lg->batch_buf = nb;
                lg->batch_cap = nc;
            }
            memcpy(lg->batch_buf + used, k, kl);
            memcpy(lg->batch_buf + used + kl, b, bl);
            item[got].koff = used;
            item[got].klen = kl;
            item[got].boff = used + kl;
            item[got].blen = bl;
            item[got].pos = pos;
            used += kl + bl;
            got++;
        }
        pthread_mutex_unlock(&lg->spool_mu);
        for (size_t i = 0; i < got && !*dead; i++) {
            uint64_t tag = lg->infl_sent++;
            lg->infl[tag & lg->infl_mask] = (struct inflight){item[i].pos, false};
            publish(lg, tag, lg->batch_buf + item[i].koff, item[i].klen,
                    lg->batch_buf + item[i].boff, item[i].blen, dead);
            sent++;
        }
        if (got < want)
            break;
    }
    return sent;
}

/* Confirmed records at the head of the window let the spool move on. */
static void advance_commit(struct ferry_logger *lg, bool force)
{
    uint64_t n = 0;
    struct ferry_spool_pos pos = {0, 0};
    while (lg->infl_head < lg->infl_sent && lg->infl[lg->infl_head & lg->infl_mask].done) {
        pos = lg->infl[lg->infl_head & lg->infl_mask].pos;
        lg->infl_head++;
        n++;
    }
    if (n || force) {
        pthread_mutex_lock(&lg->spool_mu);
        if (n)
            ferry_spool_confirm(lg->spool, pos, n, force);
        pthread_mutex_unlock(&lg->spool_mu);
    }
}

static void warn_drops(struct ferry_logger *lg, int64_t now)
{
    uint64_t d = atomic_load(&lg->dropped_callers) + atomic_load(&lg->dropped_bg);
    if (d == lg->warned_drops || (lg->last_drop_warn_ms && now - lg->last_drop_warn_ms < 10000))
        return;
    static const char *const policy[] = {"block", "drop_newest", "spill"};
    lg_log(lg, FERRY_LOG_WARN,
           "messages dropped count=%" PRIu64 " total=%" PRIu64 " full_policy=%s queue_size=%zu%s",
           d - lg->warned_drops, d, policy[lg->cfg.full_policy], lg->ring.mask + 1,
           lg->spool ? " (or the spool reached spool_max)" : "");
    lg->warned_drops = d;
    lg->last_drop_warn_ms = now;
}

/* Nothing left to deliver: the ring is empty and nothing waits in the
 * spool or the publisher. */
static bool drained(struct ferry_logger *lg)
{
    if (ring_ready(lg))
        return false;
    if (lg->pub) {
        struct ferry_pub_stats ps;
        ferry_pub_stats(lg->pub, &ps);
        if (ps.pending)
            return false;
    }
    if (lg->spool) {
        pthread_mutex_lock(&lg->spool_mu);
        uint64_t left = ferry_spool_records(lg->spool);
        pthread_mutex_unlock(&lg->spool_mu);
        return left == 0;
    }
    return true;
}

/* Wait up to ms for callers. With wake_me, callers that push a record wake
 * the sender (sleeping); without, it only naps: a steady stream of
 * ferry_log() calls then costs them no futex call (a wake-up costs a system
 * call and often a context switch: microseconds). */
static void idle_wait(struct ferry_logger *lg, int64_t ms, bool wake_me)
{
    pthread_mutex_lock(&lg->mu);
    if (wake_me)
        atomic_store_explicit(&lg->sleeping, 1, memory_order_seq_cst);
    if (!ring_ready(lg) && !atomic_load(&lg->closing)) {
        struct timespec ts;
        ferry_mono_deadline(&ts, ms);
        pthread_cond_timedwait(&lg->wake, &lg->mu, &ts);
    }
    if (wake_me)
        atomic_store_explicit(&lg->sleeping, 0, memory_order_relaxed);
    pthread_mutex_unlock(&lg->mu);
}

/* After work, the sender naps (LOGGER_NAP_MS at a time, records wait that
 * long at most) for LOGGER_NAP_WINDOW_MS before it sleeps until a caller
 * wakes it: a logger that is used often never makes callers signal, an
 * idle one costs no wake-ups. */
#define LOGGER_NAP_MS 1
#define LOGGER_NAP_WINDOW_MS 200

static void *sender(void *arg)
{
    struct ferry_logger *lg = arg;
    char err[256];
    int64_t last_work_ms = 0;
    for (;;) {
        int64_t now = ferry_mono_ms();
        bool closing = atomic_load(&lg->closing);
        if (closing && (now >= atomic_load(&lg->close_deadline) || drained(lg)))
            break;
        try_connect(lg);
        size_t work = 0;
        bool dead = false;
        if (lg->spool) {
            pthread_mutex_lock(&lg->spool_mu);
            work += ring_to_spool(lg, 4 * BATCH, 0);
            if (ferry_spool_sync(lg->spool, false, err, sizeof err))
                lg_log(lg, FERRY_LOG_ERROR, "spool write failed error=\"%s\"", err);
            pthread_mutex_unlock(&lg->spool_mu);
            if (work)
                wake_blocked(lg);
            if (lg->pub)
                work += spool_to_pub(lg, &dead);
        } else if (lg->pub) {
            work += ring_to_pub(lg, &dead);
            if (work)
                wake_blocked(lg);
        }
        if (lg->pub && !dead) {
            struct ferry_health h;
            ferry_pub_poll(lg->pub);
            if (ferry_health(lg->conn, &h) == FERRY_OK && h.state == FERRY_HEALTH_FAILED)
                dead = true;
        }
        if (dead) {
            lg_log(lg, FERRY_LOG_WARN, "connection failed, reopening error=\"%s\"",
                   ferry_conn_error(lg->conn));
            if (lg->spool)
                advance_commit(lg, false);
            teardown(lg);
            lg->next_connect_ms = ferry_mono_ms() + ferry_backoff_next(&lg->backoff);
        }
        if (lg->spool)
            advance_commit(lg, false);
        now = ferry_mono_ms();
        warn_drops(lg, now);
        if (atomic_load(&lg->flushers)) {
            pthread_mutex_lock(&lg->mu);
            pthread_cond_broadcast(&lg->progress);
            pthread_mutex_unlock(&lg->mu);
        }
        if (work) {
            last_work_ms = now;
            continue;
        }
        /* wait for callers, confirms or the next connection attempt */
        struct ferry_pub_stats ps = {0};
        if (lg->pub)
            ferry_pub_stats(lg->pub, &ps);
        int64_t wait = ps.pending ? 1 : lg->pub ? 100 : lg->next_connect_ms - now;
        if (closing) {
            int64_t left = atomic_load(&lg->close_deadline) - now;
            if (wait > left)
                wait = left;
            if (wait > 5)
                wait = 5;
        }
        if (wait > 0 && !closing && now - last_work_ms < LOGGER_NAP_WINDOW_MS)
            idle_wait(lg, LOGGER_NAP_MS, false);
        else if (wait > 0)
            idle_wait(lg, wait > 100 ? 100 : wait, true);
    }
    /* closing: what is still pending stays in the spool, or is lost */
    if (lg->spool) {
        advance_commit(lg, true);
        pthread_mutex_lock(&lg->spool_mu);
        ring_to_spool(lg, SIZE_MAX, 0);
        pthread_mutex_unlock(&lg->spool_mu);
    } else {
        struct rec *r;
        while ((r = ring_pop(lg))) {
            atomic_fetch_add(&lg->dropped_bg, 1);
            rec_free(lg, r);
        }
    }
    teardown(lg);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Open and close */

static void free_logger(struct ferry_logger *lg)
{
    if (!lg)
        return;
    if (lg->ring.cells) {
        struct rec *r;
        while ((r = ring_pop(lg)))
            free(r);
    }
    if (lg->pool.cells) {
        struct rec *r;
        while ((r = mpmc_take(&lg->pool)))
            free(r);
    }
    ferry_spool_close(lg->spool);
    ferry_options_free(ferry_logger_options, &lg->cfg);
    ferry_config_free(lg->own_config);
    free(lg->service);
    free(lg->ring.cells);
    free(lg->pool.cells);
    free(lg->infl);
    free(lg->batch_buf);
    pthread_mutex_destroy(&lg->mu);
    pthread_mutex_destroy(&lg->spool_mu);
    pthread_cond_destroy(&lg->wake);
    pthread_cond_destroy(&lg->space);
    pthread_cond_destroy(&lg->progress);
    free(lg);
}

static int open_fail(struct ferry_logger *lg, int *status, int st)
{
    free_logger(lg);
    if (status)
        *status = st;
    return st;
}

struct ferry_logger *ferry_logger_open_config(const char *service, const struct ferry_config *cfg,
                                              int *status, char *err, size_t errlen)
{
    struct ferry_logger *lg = calloc(1, sizeof *lg); /* freed in ferry_logger_close() */
    if (!lg) {
        ferry_fmt(err, errlen, "out of memory");
        if (status)
            *status = FERRY_E_FATAL;
        return NULL;
    }
    pthread_mutex_init(&lg->mu, NULL);
    pthread_mutex_init(&lg->spool_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&lg->wake, &ca);
    pthread_cond_init(&lg->space, &ca);
    pthread_cond_init(&lg->progress, &ca);
    pthread_condattr_destroy(&ca);
    lg->config = cfg;

    int st =
        ferry_config_bind(cfg, "logger", ferry_logger_options, &lg->cfg, NULL, NULL, err, errlen);
    if (st) {
        open_fail(lg, status, st);
        return NULL;
    }
    if (lg->cfg.full_policy == FERRY_FULL_SPILL && !lg->cfg.spool_dir) {
        ferry_fmt(err, errlen, "[logger] full_policy = spill needs spool_dir");
        open_fail(lg, status, FERRY_E_CONFIG);
        return NULL;
    }
    if (lg->cfg.backoff_max < lg->cfg.backoff_min) {
        ferry_fmt(err, errlen, "[logger] backoff_max is below backoff_min");
        open_fail(lg, status, FERRY_E_CONFIG);
        return NULL;
    }
    /* a missing plugin is a configuration error now, not a retry loop later */
    struct ferry_transport_cfg tc = {0};
    if ((st = ferry_config_bind(cfg, "transport", ferry_transport_options, &tc, NULL, NULL, err,
                                errlen))) {
        open_fail(lg, status, st);
        return NULL;
    }
    const struct ferry_transport *t =
        ferry_plugin_load(tc.plugin, tc.plugin_path, &st, err, errlen);
    ferry_options_free(ferry_transport_options, &tc);
    if (!t) {
        open_fail(lg, status, st);
        return NULL;
    }

    lg->service = strdup(service ? service : lg->cfg.service); /* freed in free_logger() */
    if (!lg->service) {
        ferry_fmt(err, errlen, "out of memory");
        open_fail(lg, status, FERRY_E_FATAL);
        return NULL;
    }
    lg->min_level = (lg->cfg.level + 1) * 10;
    if (gethostname(lg->host, sizeof lg->host))
        snprintf(lg->host, sizeof lg->host, "unknown");
    lg->host[sizeof lg->host - 1] = '\0';
    for (int i = 0; i < N_LEVELS; i++)
        ferry_envelope_key(lg->service, (enum ferry_level)((i + 1) * 10), lg->keys[i],
                           sizeof lg->keys[i]);
    /* ids: 24 random characters of a UUID v4, then a 12-digit counter */
    char uuid[37];
    ferry_make_id(uuid);
    memcpy(lg->id_prefix, uuid, 24);
    lg->id_prefix[24] = '\0';

    size_t qn = pow2_at_least((size_t)lg->cfg.queue_size);
    lg->ring.cells = calloc(qn, sizeof *lg->ring.cells); /* freed in free_logger() */
    size_t in = pow2_at_least((size_t)lg->cfg.max_inflight);
    lg->infl = calloc(in, sizeof *lg->infl);                       /* freed in free_logger() */
    lg->pool.cells = calloc(REC_POOL_MAX, sizeof *lg->pool.cells); /* freed in free_logger() */
    if (!lg->ring.cells || !lg->infl || !lg->pool.cells) {
        ferry_fmt(err, errlen, "out of memory");
        open_fail(lg, status, FERRY_E_FATAL);
        return NULL;
    }
    lg->ring.mask = qn - 1;
    lg->infl_mask = in - 1;
    for (size_t i = 0; i < qn; i++)
        atomic_init(&lg->ring.cells[i].seq, i);
    lg->pool.mask = REC_POOL_MAX - 1;
    for (size_t i = 0; i < REC_POOL_MAX; i++)
        atomic_init(&lg->pool.cells[i].seq, i);
    ferry_backoff_init(&lg->backoff, lg->cfg.backoff_min, lg->cfg.backoff_max);

    if (lg->cfg.spool_dir) {
        uint64_t rec = 0;
        lg->spool = ferry_spool_open(lg->cfg.spool_dir, lg->cfg.spool_max, lg->cfg.spool_fsync,
                                     lg->cfg.spool_fsync_interval, &rec, err, errlen);
        if (!lg->spool) {
            open_fail(lg, status, FERRY_E_FATAL);
            return NULL;
        }
        atomic_store(&lg->recovered, rec);
        atomic_store(&lg->spooled, rec);
        if (rec)
            lg_log(lg, FERRY_LOG_INFO, "spool recovered messages=%" PRIu64 " dir=%s", rec,
                   lg->cfg.spool_dir);
    }
    if ((st = pthread_create(&lg->thread, NULL, sender, lg))) {
        ferry_fmt(err, errlen, "cannot start the sending thread: %s", strerror(st));
        open_fail(lg, status, FERRY_E_FATAL);
        return NULL;
    }
    if (status)
        *status = FERRY_OK;
    return lg;
}

struct ferry_logger *ferry_logger_open(const char *service, const char *path, int *status,
                                       char *err, size_t errlen)
{
    struct ferry_config *c = ferry_config_new(); /* owned by the logger; freed in free_logger() */
    if (!c) {
        ferry_fmt(err, errlen, "out of memory");
        if (status)
            *status = FERRY_E_FATAL;
        return NULL;
    }
    int st = path ? ferry_config_load(c, path, err, errlen) : FERRY_OK;
    if (st) {
        ferry_config_free(c);
        if (status)
            *status = st;
        return NULL;
    }
    struct ferry_logger *lg = ferry_logger_open_config(service, c, status, err, errlen);
    if (!lg) {
        ferry_config_free(c);
        return NULL;
    }
    lg->own_config = c;
    return lg;
}

int ferry_logger_close(struct ferry_logger *lg, int timeout_ms, struct ferry_logger_stats *final)
{
    if (!lg) {
        if (final)
            memset(final, 0, sizeof *final);
        return FERRY_OK;
    }
    int64_t t = timeout_ms < 0 ? lg->cfg.flush_timeout : timeout_ms;
    atomic_store(&lg->close_deadline, ferry_mono_ms() + t);
    atomic_store(&lg->closing, true);
    pthread_mutex_lock(&lg->mu);
    pthread_cond_signal(&lg->wake);
    pthread_mutex_unlock(&lg->mu);
    pthread_join(lg->thread, NULL);
    struct ferry_logger_stats s;
    ferry_logger_stats(lg, &s);
    if (final)
        *final = s;
    free_logger(lg);
    if (s.pending || s.dropped)
        return FERRY_E_TIMEOUT;
    return s.failed ? FERRY_E_REJECTED : FERRY_OK;
}

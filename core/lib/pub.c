/* Reliable publishing: keep a copy of every message until the transport
 * settles it, re-publish after transient failures with backoff and jitter,
 * and report each message's final fate exactly once. Over a transport
 * without confirms nothing is re-sent once it has taken a message, so a
 * copy is made only when publish does not take it at once. */
#include "config.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

enum slot_state { SLOT_FREE = 0, SLOT_INFLIGHT, SLOT_RETRY };

struct slot {
    uint32_t gen; /* bumped on reuse so stale reports are ignored */
    enum slot_state state;
    uint32_t next; /* free list / retry queue link; UINT32_MAX = none */
    uint64_t user_tag;
    int64_t first_ms, due_ms;
    uint32_t attempts;
    size_t bytes;
    struct ferry_msg msg; /* points into blob */
    void *blob;           /* one allocation with everything, or NULL while the transport
                             has the message and no copy is kept; freed in slot_free() */
};

struct ferry_pub {
    struct ferry_conn *c; /* borrowed */
    struct ferry_pub_opts o;
    ferry_pub_done_fn done;
    void *done_ctx;
    struct slot *slots; /* owned; grown on demand up to max_inflight */
    uint32_t nslots, free_head, retry_head, retry_tail;
    size_t inflight, waiting, bytes;
    struct ferry_backoff backoff;
    bool down;    /* last publish attempt failed transiently */
    bool no_copy; /* the transport re-sends nothing it took (no FERRY_CAP_CONFIRMS) */
    struct ferry_pub_stats st;
    char err[512];
};

#define NONE UINT32_MAX

static void on_delivery(void *ctx, uint64_t tag, int status, const char *reason);

struct ferry_pub *ferry_pub_new(struct ferry_conn *c, const struct ferry_pub_opts *o,
                                ferry_pub_done_fn done, void *done_ctx)
{
    struct ferry_pub *p = calloc(1, sizeof *p); /* freed in ferry_pub_free() */
    if (!p)
        return NULL;
    p->c = c;
    if (o)
        p->o = *o;
    if (!p->o.max_inflight)
        p->o.max_inflight = 10000;
    if (!p->o.max_bytes)
        p->o.max_bytes = 256u << 20;
    if (!p->o.backoff_min_ms)
        p->o.backoff_min_ms = 100;
    if (!p->o.backoff_max_ms)
        p->o.backoff_max_ms = 30000;
    p->done = done;
    p->done_ctx = done_ctx;
    p->free_head = p->retry_head = p->retry_tail = NONE;
    /* Without confirms a message the transport took is settled as far as
     * anyone will know (its report is FERRY_OK, or a loss that cannot be
     * retried): the caller's buffer is published as is, and copied only
     * when it has to wait for a retry. */
    p->no_copy = !(c->caps & FERRY_CAP_CONFIRMS);
    ferry_backoff_init(&p->backoff, p->o.backoff_min_ms, p->o.backoff_max_ms);
    ferry_set_delivery(c, on_delivery, p);
    return p;
}

void ferry_pub_free(struct ferry_pub *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->nslots; i++)
        free(p->slots[i].blob);
    free(p->slots);
    if (p->c->delivery_ctx == p)
        ferry_set_delivery(p->c, NULL, NULL);
    free(p);
}

void ferry_pub_stats(const struct ferry_pub *p, struct ferry_pub_stats *out)
{
    *out = p->st;
    out->pending = p->inflight + p->waiting;
    out->waiting = p->waiting;
}

const char *ferry_pub_error(const struct ferry_pub *p)
{
    return p->err;
}

/* Pack m into one allocation owned by the slot. */
static int slot_fill(struct slot *s, const struct ferry_msg *m)
{
    size_t dl = strlen(m->dest ? m->dest : "") + 1;
    size_t total =
        dl + m->key_len + 1 + m->body_len + 1 + m->n_headers * sizeof(struct ferry_header);
    for (size_t i = 0; i < m->n_headers; i++)
        total += strlen(m->headers[i].name) + 1 + m->headers[i].value_len + 1;
    char *b = malloc(total); /* freed in slot_free() */
    if (!b)
        return -1;
    struct ferry_header *h = (struct ferry_header *)(void *)b;
    char *w = b + m->n_headers * sizeof *h;
    for (size_t i = 0; i < m->n_headers; i++) {
        size_t nl = strlen(m->headers[i].name) + 1;
        memcpy(w, m->headers[i].name, nl);
        h[i].name = w;
        w += nl;
        if (m->headers[i].value_len)
            memcpy(w, m->headers[i].value, m->headers[i].value_len);
        w[m->headers[i].value_len] = '\0';
        h[i].value = w;
        h[i].value_len = m->headers[i].value_len;
        w += m->headers[i].value_len + 1;
    }
    s->msg = (struct ferry_msg){.headers = m->n_headers ? h : NULL,
                                .n_headers = m->n_headers,
                                .key_len = m->key_len,
                                .body_len = m->body_len};
    memcpy(w, m->dest ? m->dest : "", dl);
    s->msg.dest = w;
    w += dl;
    if (m->key) {
        if (m->key_len)
            memcpy(w, m->key, m->key_len);
        w[m->key_len] = '\0';
        s->msg.key = w;
    }
    w += m->key_len + 1;
    if (m->body_len)
        memcpy(w, m->body, m->body_len);
    w[m->body_len] = '\0';
    s->msg.body = w;
    s->blob = b;
    s->bytes = total;
    return 0;
}

static int64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? INT64_MAX : ferry_mono_ms() + timeout_ms;
}

static struct slot *slot_get(struct ferry_pub *p, uint32_t *idx)
{
    if (p->free_head == NONE) {
        uint32_t n = p->nslots ? p->nslots * 2 : 256;
        struct slot *ns = realloc(p->slots, n * sizeof *ns); /* freed in ferry_pub_free() */
        if (!ns)
            return NULL;
        memset(ns + p->nslots, 0, (n - p->nslots) * sizeof *ns);
        for (uint32_t i = n; i-- > p->nslots;) {
            ns[i].next = p->free_head;
            p->free_head = i;
        }
        p->slots = ns;
        p->nslots = n;
    }
    *idx = p->free_head;
    struct slot *s = &p->slots[*idx];
    p->free_head = s->next;
    s->next = NONE;
    s->gen++;
    s->bytes = 0; /* until slot_fill() makes a copy */
    return s;
}

/* Return a slot that slot_get() gave and nothing else touched. */
static void slot_unget(struct ferry_pub *p, struct slot *s, uint32_t idx)
{
    s->bytes = 0;
    s->state = SLOT_FREE;
    s->next = p->free_head;
    p->free_head = idx;
}

static void slot_free(struct ferry_pub *p, uint32_t idx)
{
    struct slot *s = &p->slots[idx];
    if (s->state == SLOT_INFLIGHT)
        p->inflight--;
    p->bytes -= s->bytes;
    free(s->blob);
    s->blob = NULL;
    s->state = SLOT_FREE;
    s->next = p->free_head;
    p->free_head = idx;
}

static void finish(struct ferry_pub *p, uint32_t idx, int status, const char *reason)
{
    uint64_t user = p->slots[idx].user_tag;
    if (status == FERRY_OK)
        p->st.confirmed++;
    else
        p->st.failed++;
    slot_free(p, idx);
    if (p->done)
        p->done(p->done_ctx, user, status, reason);
}

static void retry_push(struct ferry_pub *p, uint32_t idx, int64_t due)
{
    struct slot *s = &p->slots[idx];
    if (s->state == SLOT_INFLIGHT)
        p->inflight--;
    s->state = SLOT_RETRY;
    s->due_ms = due;
    s->next = NONE;
    if (p->retry_tail == NONE)
        p->retry_head = idx;
    else
        p->slots[p->retry_tail].next = idx;
    p->retry_tail = idx;
    p->waiting++;
}

static void went_down(struct ferry_pub *p, int status, const char *reason)
{
    ferry_fmt(p->err, sizeof p->err, "%s", reason && *reason ? reason : ferry_strerror(status));
    p->down = true;
}

static void on_delivery(void *ctx, uint64_t tag, int status, const char *reason)
{
    struct ferry_pub *p = ctx;
    uint32_t idx = (uint32_t)tag, gen = (uint32_t)(tag >> 32);
    if (idx >= p->nslots || p->slots[idx].gen != gen || p->slots[idx].state != SLOT_INFLIGHT)
        return; /* stale or duplicate report */
    if (status == FERRY_OK) {
        finish(p, idx, FERRY_OK, NULL);
    } else if (ferry_status_retriable(status) && p->slots[idx].blob) {
        went_down(p, status, reason);
        /* requeue behind what is already waiting; the retry pass decides when */
        retry_push(p, idx, ferry_mono_ms());
    } else if (ferry_status_retriable(status)) {
        /* lost after the transport took it, and no copy was kept: a
         * transport without confirms promised no more than that */
        went_down(p, status, reason);
        finish(p, idx, status, reason ? reason : "lost after publish (no confirms, no copy kept)");
    } else {
        ferry_fmt(p->err, sizeof p->err, "%s", reason ? reason : ferry_strerror(status));
        finish(p, idx, status, reason);
    }
}

/* One publish attempt of slot idx: of its copy, or of borrowed (the
 * caller's message, no copy made) when that is not NULL. Returns the
 * transport status. The slot is in flight before the call because a plugin
 * may report the delivery from inside publish(); after FERRY_OK the slot
 * may already be settled and freed, so it is not touched again. On an
 * error no report comes and the slot is left for the caller as SLOT_RETRY
 * (not yet queued). */
static int attempt(struct ferry_pub *p, uint32_t idx, const struct ferry_msg *borrowed)
{
    struct slot *s = &p->slots[idx];
    struct ferry_msg m = borrowed ? *borrowed : s->msg;
    m.tag = ((uint64_t)s->gen << 32) | idx;
    s->attempts++;
    s->state = SLOT_INFLIGHT;
    p->inflight++;
    bool was_down = p->down;
    int rc = ferry_publish(p->c, &m);
    if (rc != FERRY_OK) {
        s->state = SLOT_RETRY;
        p->inflight--;
        return rc;
    }
    if (was_down) {
        p->down = false;
        p->st.reconnects++;
        ferry_backoff_reset(&p->backoff);
    }
    return FERRY_OK;
}

static bool gave_up(struct ferry_pub *p, uint32_t idx, int64_t now)
{
    struct slot *s = &p->slots[idx];
    if (!p->o.give_up_ms || now - s->first_ms < p->o.give_up_ms)
        return false;
    char why[640];
    ferry_fmt(why, sizeof why, "gave up after %u attempts in %lld ms: %s", s->attempts,
              (long long)(now - s->first_ms), p->err[0] ? p->err : "not confirmed");
    finish(p, idx, FERRY_E_NOCONN, why);
    return true;
}

/* Publish what is due in the retry queue, in order; stop at the first
 * transient failure (the broker is still away). */
static void retry_due(struct ferry_pub *p)
{
    int64_t now = ferry_mono_ms();
    while (p->retry_head != NONE) {
        uint32_t idx = p->retry_head;
        struct slot *s = &p->slots[idx];
        if (s->due_ms > now)
            return;
        p->retry_head = s->next;
        if (p->retry_head == NONE)
            p->retry_tail = NONE;
        p->waiting--;
        if (gave_up(p, idx, now))
            continue;
        if (s->attempts > 0)
            p->st.retries++;
        int rc = attempt(p, idx, NULL);
        if (rc == FERRY_OK)
            continue;
        if (ferry_status_retriable(rc)) {
            went_down(p, rc, ferry_conn_error(p->c));
            int64_t delay = ferry_backoff_next(&p->backoff);
            /* put it back at the head so order is kept */
            s->state = SLOT_RETRY;
            s->due_ms = now + delay;
            s->next = p->retry_head;
            p->retry_head = idx;
            if (p->retry_tail == NONE)
                p->retry_tail = idx;
            p->waiting++;
            return;
        }
        ferry_fmt(p->err, sizeof p->err, "%s", ferry_conn_error(p->c));
        finish(p, idx, rc, ferry_conn_error(p->c));
    }
}

/* Wait up to wait_ms for progress: confirms if anything is in flight,
 * otherwise until the next retry is due. */
static void pump(struct ferry_pub *p, int64_t wait_ms)
{
    retry_due(p);
    if (p->inflight) {
        int rc = ferry_flush(p->c, (int)(wait_ms > 100 ? 100 : wait_ms));
        if (rc != FERRY_OK && rc != FERRY_E_TIMEOUT)
            went_down(p, rc, ferry_conn_error(p->c));
    } else if (p->retry_head != NONE) {
        int64_t until = p->slots[p->retry_head].due_ms - ferry_mono_ms();
        ferry_sleep_ms(until < wait_ms ? until : wait_ms);
    }
    retry_due(p);
}

/* A full local send queue (FERRY_E_AGAIN while the connection is up) is
 * back-pressure, not an outage: wait for room in short doubling steps from
 * 50 us, as a blocking send would, and fall back to the outage backoff only
 * once a step would exceed backoff_min_ms. Busy waits are not retries. */
static int attempt_busy(struct ferry_pub *p, uint32_t idx, const struct ferry_msg *borrowed,
                        int64_t deadline)
{
    int rc;
    long step_us = 50;
    while ((rc = attempt(p, idx, borrowed)) == FERRY_E_AGAIN && !p->down &&
           step_us <= p->o.backoff_min_ms * 1000 && ferry_mono_ms() < deadline) {
        p->slots[idx].attempts--;
        ferry_flush(p->c, 0); /* reports settled messages, which may make room */
        struct timespec ts = {.tv_sec = 0, .tv_nsec = step_us * 1000};
        nanosleep(&ts, NULL);
        step_us *= 2;
    }
    return rc;
}

void ferry_pub_poll(struct ferry_pub *p)
{
    pump(p, 0);
}

int ferry_pub_send(struct ferry_pub *p, const struct ferry_msg *m, int timeout_ms)
{
    int64_t deadline = deadline_of(timeout_ms);
    while (p->inflight + p->waiting >= p->o.max_inflight ||
           (p->bytes >= p->o.max_bytes && p->inflight + p->waiting > 0)) {
        int64_t left = deadline - ferry_mono_ms();
        if (left <= 0) {
            ferry_fmt(p->err, sizeof p->err, "publish window full (%zu unsettled)",
                      p->inflight + p->waiting);
            return FERRY_E_TIMEOUT;
        }
        pump(p, left < 100 ? left : 100);
    }
    uint32_t idx;
    struct slot *s = slot_get(p, &idx);
    /* a copy unless the transport can take m now and never re-sends */
    bool borrow = p->no_copy && p->retry_head == NONE;
    if (!s || (!borrow && slot_fill(s, m))) {
        if (s)
            slot_unget(p, s, idx);
        ferry_fmt(p->err, sizeof p->err, "out of memory");
        return FERRY_E_AGAIN;
    }
    s->user_tag = m->tag;
    /* A borrowed message is never retried once taken (no copy): its
     * clock is read only if it must wait, which keeps a clock read off
     * the path of every message. */
    s->first_ms = borrow ? 0 : ferry_mono_ms();
    s->attempts = 0;
    p->bytes += s->bytes;
    p->st.sent++;
    if (p->retry_head != NONE) { /* keep order behind messages waiting to be retried */
        retry_push(p, idx, s->first_ms);
        retry_due(p);
        return FERRY_OK;
    }
    int rc = attempt_busy(p, idx, borrow ? m : NULL, deadline);
    if (rc == FERRY_OK)
        return FERRY_OK;
    if (ferry_status_retriable(rc) && borrow && slot_fill(s, m)) {
        /* no copy for the retry: as if the allocation had failed first */
        p->st.sent--;
        slot_unget(p, s, idx);
        ferry_fmt(p->err, sizeof p->err, "out of memory");
        return FERRY_E_AGAIN;
    }
    if (ferry_status_retriable(rc)) {
        if (borrow)
            s->first_ms = ferry_mono_ms();
        p->bytes += borrow ? s->bytes : 0;
        went_down(p, rc, ferry_conn_error(p->c));
        retry_push(p, idx, s->first_ms + ferry_backoff_next(&p->backoff));
        return FERRY_OK;
    }
    ferry_fmt(p->err, sizeof p->err, "%s", ferry_conn_error(p->c));
    p->st.sent--;
    slot_free(p, idx);
    return rc;
}

int ferry_pub_flush(struct ferry_pub *p, int timeout_ms)
{
    int64_t deadline = deadline_of(timeout_ms);
    for (;;) {
        retry_due(p);
        if (p->inflight) {
            int64_t left = deadline - ferry_mono_ms();
            int rc = ferry_flush(p->c, (int)(left < 0 ? 0 : left > 200 ? 200 : left));
            if (rc != FERRY_OK && rc != FERRY_E_TIMEOUT)
                went_down(p, rc, ferry_conn_error(p->c));
        }
        if (p->inflight + p->waiting == 0)
            return FERRY_OK;
        int64_t left = deadline - ferry_mono_ms();
        if (left <= 0)
            return FERRY_E_TIMEOUT;
        if (!p->inflight && p->retry_head != NONE) {
            int64_t until = p->slots[p->retry_head].due_ms - ferry_mono_ms();
            ferry_sleep_ms(until < left ? until : left);
        }
    }
}

/* Retry with backoff, then dead-letter: the attempt policy, header stamping,
 * and a retrier that makes failed messages wait on the broker (the plugin's
 * defer), on a retry destination it consumes itself, or in this process. */
#include "config.h"
#include "internal.h"

#include <ferry/retry.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint32_t ferry_retry_attempts(const struct ferry_msg *m)
{
    const struct ferry_header *h = ferry_msg_header(m, FERRY_HDR_ATTEMPTS);
    if (!h || !h->value_len || h->value_len > 9)
        return 0;
    uint32_t n = 0;
    for (size_t i = 0; i < h->value_len; i++) {
        char ch = ((const char *)h->value)[i];
        if (ch < '0' || ch > '9')
            return 0;
        n = n * 10 + (uint32_t)(ch - '0');
    }
    return n;
}

static int64_t policy_min(const struct ferry_retry_policy *p)
{
    return p->backoff_min_ms > 0 ? p->backoff_min_ms : 100;
}

static int64_t policy_max(const struct ferry_retry_policy *p)
{
    int64_t max = p->backoff_max_ms > 0 ? p->backoff_max_ms : 10000;
    return max < policy_min(p) ? policy_min(p) : max;
}

int64_t ferry_retry_delay(const struct ferry_retry_policy *p, uint32_t attempts)
{
    int64_t d = policy_min(p), max = policy_max(p);
    for (uint32_t i = 1; i < attempts && d < max; i++)
        d *= 2;
    return d < max ? d : max;
}

bool ferry_retry_exhausted(const struct ferry_retry_policy *p, uint32_t attempts)
{
    return p->max_retries >= 0 && (int64_t)attempts > p->max_retries;
}

static bool listed(const char *name, const char *const *list)
{
    for (; list && *list; list++)
        if (!strcmp(name, *list))
            return true;
    return false;
}

size_t ferry_retry_stamp(const struct ferry_msg *m, const struct ferry_header *set, size_t n_set,
                         const char *const *drop, struct ferry_header *out, size_t cap)
{
    size_t n = 0;
    bool *placed = NULL, placed_stack[16] = {false};
    if (n_set <= 16)
        placed = placed_stack;
    else if (!(placed = calloc(n_set, sizeof *placed))) /* freed below */
        return SIZE_MAX;
    for (size_t i = 0; i < m->n_headers; i++) {
        const struct ferry_header *h = &m->headers[i];
        if (listed(h->name, drop))
            continue;
        for (size_t k = 0; k < n_set; k++) {
            if (!strcmp(h->name, set[k].name)) {
                h = placed[k] ? NULL : &set[k];
                placed[k] = true;
                break;
            }
        }
        if (h && n++ < cap)
            out[n - 1] = *h;
    }
    for (size_t k = 0; k < n_set; k++)
        if (!placed[k] && n++ < cap)
            out[n - 1] = set[k];
    if (placed != placed_stack)
        free(placed);
    return n;
}

/* ---------------------------------------------------------------------- */
/* The retrier */

struct held {
    struct ferry_retry_item it;
    int64_t due; /* monotonic ms */
};

struct ferry_retry {
    struct ferry_retry_opts o;
    enum ferry_retry_mode mode;
    char *dest, *group, *dead_letter, *retry_dest, *retry_group; /* owned */
    struct ferry_conn *in;                                       /* borrowed */
    struct ferry_conn *aux; /* owned: dead letters, and DEST.retry in topic mode */
    struct held *held;      /* owned; unordered, scanned (it stays small) */
    size_t nheld, cap;
    struct ferry_backoff backoff;
    uint64_t tag, wait_tag; /* the publish being waited for */
    bool wait_done;
    int wait_status;
    char wait_reason[256];
    struct ferry_retry_stats st;
    char err[512];
};

const char *ferry_retry_mode_name(enum ferry_retry_mode m)
{
    switch (m) {
    case FERRY_RETRY_BROKER: return "broker";
    case FERRY_RETRY_TOPIC: return "topic";
    case FERRY_RETRY_LOCAL: return "local";
    default: return "auto";
    }
}

static void on_aux_delivery(void *ctx, uint64_t tag, int status, const char *reason)
{
    struct ferry_retry *r = ctx;
    if (tag != r->wait_tag || r->wait_done)
        return;
    r->wait_done = true;
    r->wait_status = status;
    ferry_fmt(r->wait_reason, sizeof r->wait_reason, "%s", reason ? reason : "");
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

struct ferry_retry *ferry_retry_new(const struct ferry_config *cfg, const char *client_id,
                                    struct ferry_conn *in, const struct ferry_retry_opts *o,
                                    int *status, char *err, size_t errlen)
{
    *status = FERRY_E_CONFIG;
    if (!o->dest || !*o->dest || !o->dead_letter || !*o->dead_letter) {
        ferry_fmt(err, errlen, "retry: a destination and a dead-letter destination are needed");
        return NULL;
    }
    enum ferry_retry_mode mode = o->mode;
    if (mode == FERRY_RETRY_AUTO)
        mode = ferry_can_defer(in) ? FERRY_RETRY_BROKER
               : (in->caps & (FERRY_CAP_ACK | FERRY_CAP_DURABLE)) ==
                       (FERRY_CAP_ACK | FERRY_CAP_DURABLE)
                   ? FERRY_RETRY_TOPIC
                   : FERRY_RETRY_LOCAL;
    if (mode == FERRY_RETRY_BROKER && !ferry_can_defer(in)) {
        ferry_fmt(err, errlen,
                  "retry mode broker: the %s transport cannot defer messages "
                  "(use topic or local)",
                  in->transport->name);
        return NULL;
    }
    struct ferry_retry *r = calloc(1, sizeof *r); /* freed in ferry_retry_free() */
    if (!r) {
        ferry_fmt(err, errlen, "out of memory");
        return NULL;
    }
    r->o = *o;
    r->mode = mode;
    r->in = in;
    if (!r->o.publish_timeout_ms)
        r->o.publish_timeout_ms = 30000;
    if (!r->o.max_held)
        r->o.max_held = 10000;
    size_t dl = strlen(o->dest);
    r->dest = strdup(o->dest);
    r->group = dup_or_empty(o->group);
    r->dead_letter = strdup(o->dead_letter);
    r->retry_dest = malloc(dl + sizeof ".retry"); /* freed in ferry_retry_free() */
    /* a private subscriber's retries are its own: name them after the process */
    r->retry_group = dup_or_empty(o->group && *o->group ? o->group : client_id);
    if (!r->dest || !r->group || !r->dead_letter || !r->retry_dest || !r->retry_group) {
        ferry_retry_free(r);
        ferry_fmt(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(r->retry_dest, o->dest, dl);
    memcpy(r->retry_dest + dl, ".retry", sizeof ".retry");
    r->o.dest = r->dest;
    r->o.group = r->group;
    r->o.dead_letter = r->dead_letter;
    ferry_backoff_init(&r->backoff, 50, 1000);
    r->aux = ferry_open(cfg, client_id, status, err, errlen);
    if (!r->aux) {
        ferry_retry_free(r);
        return NULL;
    }
    ferry_set_delivery(r->aux, on_aux_delivery, r);
    if (mode == FERRY_RETRY_TOPIC) {
        /* its own group, so joining it never rebalances the main consumers */
        char grp[512];
        ferry_fmt(grp, sizeof grp, "%s.retry", r->retry_group);
        *status = ferry_subscribe(r->aux, r->retry_dest, grp);
        if (*status != FERRY_OK) {
            ferry_fmt(err, errlen, "retry: subscribe to %s: %s", r->retry_dest,
                      ferry_conn_error(r->aux));
            ferry_retry_free(r);
            return NULL;
        }
    }
    *status = FERRY_OK;
    return r;
}

void ferry_retry_free(struct ferry_retry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nheld; i++)
        ferry_release(r->held[i].it.conn, r->held[i].it.msg);
    free(r->held);
    ferry_close(r->aux);
    free(r->dest);
    free(r->group);
    free(r->dead_letter);
    free(r->retry_dest);
    free(r->retry_group);
    free(r);
}

enum ferry_retry_mode ferry_retry_get_mode(const struct ferry_retry *r)
{
    return r->mode;
}

const char *ferry_retry_error(const struct ferry_retry *r)
{
    return r->err;
}

void ferry_retry_stats(const struct ferry_retry *r, struct ferry_retry_stats *out)
{
    *out = r->st;
    out->held = r->nheld;
}

static int hold(struct ferry_retry *r, const struct ferry_retry_item *it, int64_t due)
{
    if (r->nheld == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct held *nh = realloc(r->held, cap * sizeof *nh); /* freed in ferry_retry_free() */
        if (!nh)
            return -1;
        r->held = nh;
        r->cap = cap;
    }
    r->held[r->nheld++] = (struct held){*it, due};
    return 0;
}

/* Topic mode: take what has arrived on DEST.retry into the held list. */
static void fetch_retries(struct ferry_retry *r)
{
    struct ferry_msg *batch[64];
    while (r->nheld < r->o.max_held) {
        size_t want = r->o.max_held - r->nheld, n = 0;
        if (want > 64)
            want = 64;
        if (ferry_receive(r->aux, batch, want, &n, 0) != FERRY_OK || !n)
            return;
        int64_t wall = ferry_time_ms(), mono = ferry_mono_ms();
        for (size_t i = 0; i < n; i++) {
            struct ferry_msg *m = batch[i];
            const struct ferry_header *g = ferry_msg_header(m, FERRY_HDR_RETRY_GROUP);
            if (g && (g->value_len != strlen(r->retry_group) ||
                      memcmp(g->value, r->retry_group, g->value_len))) {
                ferry_ack(r->aux, m); /* another group's retry */
                continue;
            }
            const struct ferry_header *d = ferry_msg_header(m, FERRY_HDR_DUE);
            char num[24] = "0";
            if (d && d->value_len < sizeof num) {
                memcpy(num, d->value, d->value_len);
                num[d->value_len] = '\0';
            }
            int64_t due = strtoll(num, NULL, 10);
            struct ferry_retry_item it = {r->aux, m, ferry_retry_attempts(m)};
            if (hold(r, &it, mono + (due > wall ? due - wall : 0))) {
                ferry_release(r->aux, m);
                return;
            }
        }
    }
}

size_t ferry_retry_poll(struct ferry_retry *r, struct ferry_retry_item *out, size_t max)
{
    if (r->mode == FERRY_RETRY_TOPIC)
        fetch_retries(r);
    int64_t now = ferry_mono_ms();
    size_t n = 0, k = 0;
    for (size_t i = 0; i < r->nheld; i++) {
        if (n < max && r->held[i].due <= now)
            out[n++] = r->held[i].it;
        else
            r->held[k++] = r->held[i];
    }
    r->nheld = k;
    return n;
}

int64_t ferry_retry_next_due(const struct ferry_retry *r)
{
    if (!r->nheld)
        return -1;
    int64_t best = INT64_MAX, now = ferry_mono_ms();
    for (size_t i = 0; i < r->nheld; i++)
        if (r->held[i].due < best)
            best = r->held[i].due;
    return best > now ? best - now : 0;
}

/* Publish m on the retrier's own connection and wait until the transport
 * confirms it: transient failures are retried until publish_timeout. */
static int publish_confirmed(struct ferry_retry *r, struct ferry_msg *m)
{
    int64_t deadline = ferry_mono_ms() + r->o.publish_timeout_ms;
    ferry_backoff_reset(&r->backoff);
    for (;;) {
        m->tag = ++r->tag;
        r->wait_tag = m->tag;
        r->wait_done = false;
        int st = ferry_publish(r->aux, m);
        const char *why = ferry_conn_error(r->aux);
        while (st == FERRY_OK && !r->wait_done) {
            int64_t left = deadline - ferry_mono_ms();
            if (left <= 0)
                break;
            int fl = ferry_flush(r->aux, (int)(left > 200 ? 200 : left));
            if (fl != FERRY_OK && fl != FERRY_E_TIMEOUT && !r->wait_done) {
                st = fl;
                why = ferry_conn_error(r->aux);
            }
        }
        if (st == FERRY_OK && r->wait_done) {
            st = r->wait_status;
            why = r->wait_reason;
        } else if (st == FERRY_OK) {
            st = FERRY_E_TIMEOUT;
            why = "not confirmed in time";
        }
        if (st == FERRY_OK)
            return FERRY_OK;
        ferry_fmt(r->err, sizeof r->err, "publish to %s: %s", m->dest,
                  why && *why ? why : ferry_strerror(st));
        int64_t wait = ferry_backoff_next(&r->backoff);
        if (!ferry_status_retriable(st) || ferry_mono_ms() + wait >= deadline)
            return st;
        ferry_sleep_ms(wait);
    }
}

/* The message with stamped headers, published to dest and confirmed. */
static int copy_to(struct ferry_retry *r, const struct ferry_msg *m, const char *dest,
                   const struct ferry_header *set, size_t n_set, const char *const *drop)
{
    struct ferry_header stack[32], *hs = stack;
    size_t n = ferry_retry_stamp(m, set, n_set, drop, stack, 32);
    if (n > 32 && n != SIZE_MAX) {
        hs = malloc(n * sizeof *hs); /* freed below */
        if (hs)
            ferry_retry_stamp(m, set, n_set, drop, hs, n);
    }
    if (!hs || n == SIZE_MAX) {
        ferry_fmt(r->err, sizeof r->err, "out of memory");
        return FERRY_E_AGAIN;
    }
    struct ferry_msg c = {.dest = dest,
                          .key = m->key,
                          .key_len = m->key_len,
                          .headers = hs,
                          .n_headers = n,
                          .body = m->body,
                          .body_len = m->body_len};
    int st = publish_confirmed(r, &c);
    if (hs != stack)
        free(hs);
    return st;
}

/* The copy is safe: end the original loan. A failed ack only means the
 * broker may deliver the original again, so it is not an error here. */
static void ack_original(const struct ferry_retry_item *it)
{
    ferry_ack(it->conn, it->msg);
}

static const char *const retry_headers[] = {FERRY_HDR_DUE, FERRY_HDR_RETRY_GROUP, NULL};

int ferry_retry_fail(struct ferry_retry *r, const struct ferry_retry_item *it, const char *reason,
                     bool *dead_lettered)
{
    uint32_t attempts = it->attempts + 1;
    char num[16], due[24];
    snprintf(num, sizeof num, "%" PRIu32, attempts);
    const char *why = reason && *reason ? reason : "failed";
    *dead_lettered = ferry_retry_exhausted(&r->o.policy, attempts);
    int st;
    r->err[0] = '\0';
    if (*dead_lettered) {
        struct ferry_header set[] = {{FERRY_HDR_ERROR, why, strlen(why)},
                                     {FERRY_HDR_ATTEMPTS, num, strlen(num)},
                                     {FERRY_HDR_ORIGINAL_DEST, r->dest, strlen(r->dest)}};
        st = copy_to(r, it->msg, r->dead_letter, set, 3, retry_headers);
        if (st == FERRY_OK) {
            ack_original(it);
            r->st.dead_lettered++;
            return FERRY_OK;
        }
    } else {
        int64_t delay = ferry_retry_delay(&r->o.policy, attempts);
        struct ferry_header set[] = {
            {FERRY_HDR_ATTEMPTS, num, strlen(num)},
            {FERRY_HDR_ORIGINAL_DEST, r->dest, strlen(r->dest)},
            {FERRY_HDR_DUE, due, 0},
            {FERRY_HDR_RETRY_GROUP, r->retry_group, strlen(r->retry_group)}};
        switch (r->mode) {
        case FERRY_RETRY_BROKER:
            st = ferry_defer(it->conn, it->msg, delay, set, 1);
            if (st != FERRY_OK) {
                ferry_fmt(r->err, sizeof r->err, "defer: %s", ferry_conn_error(it->conn));
                r->st.errors++;
                return st; /* the plugin has released it */
            }
            break;
        case FERRY_RETRY_TOPIC:
            set[2].value_len =
                (size_t)snprintf(due, sizeof due, "%" PRId64, ferry_time_ms() + delay);
            st = copy_to(r, it->msg, r->retry_dest, set, 4, NULL);
            if (st != FERRY_OK)
                goto release;
            ack_original(it);
            break;
        default: {
            struct ferry_retry_item h = *it;
            h.attempts = attempts;
            if (r->nheld >= r->o.max_held || hold(r, &h, ferry_mono_ms() + delay)) {
                ferry_fmt(r->err, sizeof r->err, "%zu messages already wait for a retry", r->nheld);
                st = FERRY_E_AGAIN;
                goto release;
            }
        }
        }
        r->st.deferred++;
        return FERRY_OK;
    }
release:
    r->st.errors++;
    ferry_release(it->conn, it->msg);
    return st;
}

/* zmq reliable mode: the producer keeps each message, numbered, until the
 * consumer acks it, resends after ack_timeout or a lost peer, and writes
 * ahead to the shared spool (core/lib/spool.c) when spool_dir is set; the
 * consumer owes each producer acks and sends them in batches. */
#include "config.h"

#include "reliable.h"
#include "spool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define FZREL_ACK_MAX 1024 /* sequence numbers per ack frame */

/* One message kept until acked. blob holds dest (NUL-terminated), then
 * each frame as a 4-byte length and its bytes: the spool record's body. */
struct fzrel_ent {
    uint64_t tag;
    bool has_tag; /* published by this run (recovered ones are not reported) */
    bool acked;
    bool sent;   /* on a live connection, waiting for its ack */
    bool resend; /* sent before: the next copy carries FZREL_FLAG_RESENT */
    int64_t sent_ms;
    void *sock; /* NULL until first needed (recovered messages) */
    struct ferry_spool_pos pos;
    char *blob; /* owned; freed in fzrel_pop() */
    size_t blob_len, dest_len;
};

struct fzrel {
    struct fzrel_opts o;
    struct fzrel_hooks h;
    struct ferry_spool *spool;
    struct fzrel_ent *ents; /* ring indexed by sequence number; owned */
    size_t cap, head, count;
    uint64_t base_seq; /* sequence number of ents[head] */
    uint64_t unacked, dropped, resent;
    bool rescan;        /* something is unsent: look from scan_from on */
    size_t scan_from;   /* entries before it (from head) are sent or acked */
    int64_t next_check; /* when the oldest send times out */
    int64_t drained_ms; /* last look for acks from publish() */
    void **socks;       /* every DEALER socket seen (borrowed from zmq.c) */
    size_t n_socks;
    uint64_t *reports; /* tags settled, reported at the end of a pump */
    size_t n_reports, cap_reports;
};

/* Timeouts here are 10 ms and more: the coarse clock (a few ms of
 * resolution) does, and costs no clock read per message. */
static int64_t fzrel_now_ms(void)
{
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fzrel_put64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t fzrel_get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static struct fzrel_ent *fzrel_at(struct fzrel *r, size_t i)
{
    return &r->ents[(r->head + i) & (r->cap - 1)];
}

static int fzrel_grow(struct fzrel *r)
{
    size_t cap = r->cap ? r->cap * 2 : 1024;
    struct fzrel_ent *e = calloc(cap, sizeof *e); /* freed in fzrel_close() */
    if (!e)
        return -1;
    for (size_t i = 0; i < r->count; i++)
        e[i] = *fzrel_at(r, i);
    free(r->ents);
    r->ents = e;
    r->cap = cap;
    r->head = 0;
    return 0;
}

static int fzrel_add_sock(struct fzrel *r, void *sock)
{
    for (size_t i = 0; i < r->n_socks; i++)
        if (r->socks[i] == sock)
            return 0;
    void **s = realloc(r->socks, (r->n_socks + 1) * sizeof *s); /* freed in fzrel_close() */
    if (!s)
        return -1;
    r->socks = s;
    r->socks[r->n_socks++] = sock;
    return 0;
}

/* Append a new entry for blob (taken over) at the end of the ring. */
static struct fzrel_ent *fzrel_push(struct fzrel *r, char *blob, size_t len, size_t dest_len)
{
    if (r->count == r->cap && fzrel_grow(r))
        return NULL;
    struct fzrel_ent *e = fzrel_at(r, r->count++);
    *e = (struct fzrel_ent){.blob = blob, .blob_len = len, .dest_len = dest_len};
    r->unacked++;
    return e;
}

/* Drop acked entries from the head; the spool moves past them. */
static void fzrel_pop(struct fzrel *r)
{
    struct ferry_spool_pos pos = {0, 0};
    uint64_t n = 0;
    while (r->count && fzrel_at(r, 0)->acked) {
        struct fzrel_ent *e = fzrel_at(r, 0);
        pos = e->pos;
        n++;
        free(e->blob);
        e->blob = NULL;
        r->head = (r->head + 1) & (r->cap - 1);
        r->count--;
        r->base_seq++;
        if (r->scan_from)
            r->scan_from--;
    }
    if (n && r->spool)
        ferry_spool_confirm(r->spool, pos, n, false);
}

/* Send entry i with its header. Returns 0, or an errno value (EAGAIN: no
 * peer or send_hwm reached; the entry waits). */
static int fzrel_send(struct fzrel *r, size_t i, int64_t now)
{
    struct fzrel_ent *e = fzrel_at(r, i);
    unsigned char hdr[FZREL_HDR_LEN];
    hdr[0] = 'D';
    hdr[1] = e->resend ? FZREL_FLAG_RESENT : 0;
    fzrel_put64(hdr + 2, r->base_seq + i);
    if (zmq_send(e->sock, hdr, sizeof hdr, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0)
        return errno;
    /* libzmq takes the rest of a multipart message once it took the first frame */
    const char *p = e->blob + e->dest_len + 1, *end = e->blob + e->blob_len;
    while (p < end) {
        uint32_t len;
        memcpy(&len, p, 4);
        p += 4;
        if (zmq_send(e->sock, p, len, ZMQ_DONTWAIT | (p + len < end ? ZMQ_SNDMORE : 0)) < 0)
            return errno;
        p += len;
    }
    e->sent = true;
    e->resend = true;
    e->sent_ms = now;
    return 0;
}

static void fzrel_note_report(struct fzrel *r, uint64_t tag)
{
    if (r->n_reports == r->cap_reports) {
        size_t cap = r->cap_reports ? r->cap_reports * 2 : 256;
        uint64_t *t = realloc(r->reports, cap * sizeof *t); /* freed in fzrel_close() */
        if (!t)
            return; /* the report is lost, the message is not: flush times out */
        r->reports = t;
        r->cap_reports = cap;
    }
    r->reports[r->n_reports++] = tag;
}

static void fzrel_on_ack(struct fzrel *r, const unsigned char *p, size_t len)
{
    if (len < 2 || p[0] != 'A' || (len - 2) % 8 != 0)
        return; /* not an ack: ignored */
    for (size_t k = 2; k < len; k += 8) {
        uint64_t seq = fzrel_get64(p + k);
        if (seq < r->base_seq || seq - r->base_seq >= r->count)
            continue; /* acked before (a duplicate's ack) */
        struct fzrel_ent *e = fzrel_at(r, (size_t)(seq - r->base_seq));
        if (e->acked)
            continue;
        e->acked = true;
        r->unacked--;
        if (e->has_tag)
            fzrel_note_report(r, e->tag);
    }
}

static void fzrel_drain(struct fzrel *r)
{
    for (size_t i = 0; i < r->n_socks; i++) {
        for (;;) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, r->socks[i], ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                break;
            }
            fzrel_on_ack(r, zmq_msg_data(&m), zmq_msg_size(&m));
            zmq_msg_close(&m);
        }
    }
    fzrel_pop(r);
}

/* Send what was never sent, lost with a peer, or timed out. Only a
 * timeout makes it look at every entry; otherwise it starts at the first
 * one not sent and stops at the first the socket refuses, so a full send
 * queue costs nothing per call. */
static void fzrel_resend_due(struct ferry_conn *c, struct fzrel *r)
{
    int64_t now = fzrel_now_ms();
    bool timed_out = now >= r->next_check;
    if (!r->rescan && !timed_out)
        return;
    bool stuck = false;
    int64_t next = timed_out ? INT64_MAX : r->next_check;
    size_t i = timed_out ? 0 : r->scan_from;
    r->scan_from = r->count;
    for (; i < r->count && !(stuck && !timed_out); i++) {
        struct fzrel_ent *e = fzrel_at(r, i);
        if (e->acked)
            continue;
        if (e->sent && now - e->sent_ms < r->o.ack_timeout_ms) {
            if (e->sent_ms + r->o.ack_timeout_ms < next)
                next = e->sent_ms + r->o.ack_timeout_ms;
            continue;
        }
        if (stuck)
            continue;
        if (!e->sock) {
            void *s = NULL;
            if (r->h.sock_for(c, e->blob, &s) != FERRY_OK || fzrel_add_sock(r, s)) {
                stuck = true;
                r->scan_from = i;
                continue;
            }
            e->sock = s;
        }
        bool again = e->resend;
        e->sent = false;
        if (fzrel_send(r, i, now) != 0) {
            stuck = true; /* no peer or a full queue: wait for room */
            r->scan_from = i;
            continue;
        }
        if (again)
            r->resent++;
        if (e->sent_ms + r->o.ack_timeout_ms < next)
            next = e->sent_ms + r->o.ack_timeout_ms;
    }
    r->rescan = stuck;
    r->next_check = next;
}

static void fzrel_report(struct ferry_conn *c, struct fzrel *r)
{
    /* a report may publish again, which may report: pop before each call */
    while (r->n_reports) {
        uint64_t tag = r->reports[--r->n_reports];
        ferry_conn_delivered(c, tag, FERRY_OK, NULL);
    }
}

int fzrel_open(struct ferry_conn *c, const struct fzrel_opts *opts, const struct fzrel_hooks *hooks,
               struct fzrel **out)
{
    struct fzrel *r = calloc(1, sizeof *r); /* freed in fzrel_close() */
    if (!r)
        return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
    r->o = *opts;
    r->h = *hooks;
    r->base_seq = 1;
    if (opts->spool_dir) {
        char err[512];
        uint64_t recovered = 0;
        r->spool = ferry_spool_open(opts->spool_dir, opts->spool_max, opts->spool_fsync,
                                    opts->spool_fsync_interval_ms, &recovered, err, sizeof err);
        if (!r->spool) {
            free(r);
            return ferry_conn_fail(c, FERRY_E_CONFIG, "spool_dir: %s", err);
        }
        for (;;) {
            const char *k, *b;
            size_t kl, bl;
            struct ferry_spool_pos pos;
            int rc = ferry_spool_next(r->spool, &k, &kl, &b, &bl, &pos, err, sizeof err);
            if (rc == 0)
                break;
            char *blob = rc < 0 ? NULL : malloc(kl + 1 + bl); /* freed in fzrel_pop() */
            struct fzrel_ent *e = blob ? fzrel_push(r, blob, kl + 1 + bl, kl) : NULL;
            if (!e) {
                free(blob);
                fzrel_close(c, r, 0);
                return ferry_conn_fail(c, FERRY_E_FATAL, "spool_dir %s: %s", opts->spool_dir,
                                       rc < 0 ? err : "out of memory");
            }
            memcpy(blob, k, kl);
            blob[kl] = '\0';
            memcpy(blob + kl + 1, b, bl);
            e->pos = pos;
            e->resend = true; /* an earlier run may have sent it */
        }
        r->rescan = r->count > 0;
        r->scan_from = 0;
        if (r->count)
            ferry_log_info(c, "spool recovered unacked=%zu spool_dir=%s", r->count,
                           opts->spool_dir);
    }
    *out = r;
    return FERRY_OK;
}

void fzrel_close(struct ferry_conn *c, struct fzrel *r, int64_t linger_ms)
{
    if (!r)
        return;
    /* With nobody connected there is nobody to wait for: the spool (or
     * the warning below) takes over at once. */
    int64_t deadline = fzrel_now_ms() + linger_ms;
    if (r->unacked && linger_ms > 0) /* sends what waits, making sockets as needed */
        fzrel_pump(c, r, 0);
    while (r->unacked && r->n_socks + r->rescan > 0 && fzrel_now_ms() < deadline) {
        r->h.upkeep(c);
        if (r->h.peers(c) <= 0)
            break;
        fzrel_pump(c, r, 100);
    }
    if (r->unacked)
        ferry_log_warn(
            c, "closing with messages not acknowledged unacked=%" PRIu64 " %s", r->unacked,
            r->spool ? "kept=spool (sent again by the next run)" : "lost=yes (no spool_dir)");
    for (size_t i = 0; i < r->count; i++)
        free(fzrel_at(r, i)->blob);
    ferry_spool_close(r->spool);
    free(r->ents);
    free(r->socks);
    free(r->reports);
    free(r);
}

int fzrel_publish(struct ferry_conn *c, struct fzrel *r, const char *dest, uint64_t tag,
                  const struct fzrel_frame *f, size_t n)
{
    int64_t now = fzrel_now_ms();
    /* Each look for acks costs a system call per socket: once a
     * millisecond, or when the window is full. */
    if (now != r->drained_ms || r->unacked >= (uint64_t)r->o.max_unacked) {
        r->drained_ms = now;
        fzrel_drain(r);
        fzrel_resend_due(c, r);
        fzrel_report(c, r);
    } else if (r->rescan) { /* messages wait for room: one try per call */
        fzrel_resend_due(c, r);
    }
    if (r->unacked >= (uint64_t)r->o.max_unacked)
        return ferry_conn_fail(c, FERRY_E_AGAIN,
                               "%" PRIu64 " messages not acknowledged yet (max_unacked)",
                               r->unacked);
    void *sock = NULL;
    int st = r->h.sock_for(c, dest, &sock);
    if (st != FERRY_OK)
        return st;
    if (fzrel_add_sock(r, sock))
        return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");

    size_t dl = strlen(dest), len = dl + 1;
    for (size_t i = 0; i < n; i++)
        len += 4 + f[i].len;
    char *blob = malloc(len); /* freed in fzrel_pop() or fzrel_close() */
    if (!blob)
        return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
    memcpy(blob, dest, dl + 1);
    char *w = blob + dl + 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t fl = (uint32_t)f[i].len;
        memcpy(w, &fl, 4);
        if (fl)
            memcpy(w + 4, f[i].data, fl);
        w += 4 + fl;
    }

    struct ferry_spool_pos pos = {0, 0};
    if (r->spool) {
        char err[512];
        const char *k, *b;
        size_t kl, bl;
        /* written (not necessarily fsync'ed) before it goes out: a
         * SIGKILL after this loses nothing the caller was told is taken */
        int rc =
            ferry_spool_append(r->spool, dest, dl, blob + dl + 1, len - dl - 1, err, sizeof err);
        if (rc == 0)
            rc = ferry_spool_sync(r->spool, false, err, sizeof err);
        if (rc == 0)
            rc = ferry_spool_next(r->spool, &k, &kl, &b, &bl, &pos, err, sizeof err) == 1 ? 0 : -1;
        if (rc != 0) {
            free(blob);
            if (rc < 0)
                return ferry_conn_fail(c, FERRY_E_AGAIN, "spool write failed error=\"%s\"", err);
            if (r->o.spool_full == FZREL_FULL_BLOCK)
                return ferry_conn_fail(c, FERRY_E_AGAIN, "spool full (spool_max %" PRId64 " bytes)",
                                       r->o.spool_max);
            r->dropped++;
            return ferry_conn_fail(c, FERRY_E_REJECTED,
                                   "spool full (spool_max %" PRId64
                                   " bytes, spool_full = drop_newest) dropped=%" PRIu64,
                                   r->o.spool_max, r->dropped);
        }
    }
    struct fzrel_ent *e = fzrel_push(r, blob, len, dl);
    if (!e) {
        /* the spooled copy goes out with the next run; not this time */
        free(blob);
        return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
    }
    e->tag = tag;
    e->has_tag = true;
    e->sock = sock;
    e->pos = pos;
    /* Behind older messages that still wait, or with no peer now: kept
     * and sent by a later pump (the report comes with the ack). */
    if (r->rescan || fzrel_send(r, r->count - 1, now) != 0) {
        if (!r->rescan)
            r->scan_from = r->count - 1;
        r->rescan = true;
    } else if (r->count == 1 || e->sent_ms + r->o.ack_timeout_ms < r->next_check) {
        r->next_check = e->sent_ms + r->o.ack_timeout_ms;
    }
    return FERRY_OK;
}

int fzrel_pump(struct ferry_conn *c, struct fzrel *r, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : fzrel_now_ms() + timeout_ms;
    for (;;) {
        r->h.upkeep(c);
        fzrel_drain(r);
        fzrel_resend_due(c, r);
        bool settled = r->n_reports > 0;
        fzrel_report(c, r);
        if (!r->unacked)
            return FERRY_OK;
        /* Some settled: back to the caller, whose window has room now,
         * rather than waiting for the last ack while nothing is sent. */
        if (settled)
            return FERRY_E_TIMEOUT;
        int64_t now = fzrel_now_ms();
        if (deadline >= 0 && now >= deadline)
            return FERRY_E_TIMEOUT;
        int64_t wait = deadline < 0 ? 100 : deadline - now;
        if (wait > 100)
            wait = 100; /* monitors are read between polls */
        if (r->next_check - now < wait)
            wait = r->next_check > now ? r->next_check - now : 0;
        zmq_pollitem_t items[16];
        size_t ni = r->n_socks < 16 ? r->n_socks : 16;
        for (size_t i = 0; i < ni; i++)
            items[i] = (zmq_pollitem_t){r->socks[i], 0, ZMQ_POLLIN, 0};
        if (ni)
            zmq_poll(items, (int)ni, (long)wait);
        else {
            struct timespec ts = {wait / 1000, (wait % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
    }
}

void fzrel_peer_event(struct fzrel *r, void *sock, bool up)
{
    if (!r)
        return;
    r->rescan = true;
    r->scan_from = 0;
    if (up)
        return;
    /* libzmq drops what was queued to a peer that left, and a consumer
     * that died holds what it had not acked: all of it goes out again */
    for (size_t i = 0; i < r->count; i++) {
        struct fzrel_ent *e = fzrel_at(r, i);
        if (!e->acked && e->sock == sock)
            e->sent = false;
    }
}

uint64_t fzrel_unacked(const struct fzrel *r)
{
    return r ? r->unacked : 0;
}

uint64_t fzrel_dropped(const struct fzrel *r)
{
    return r ? r->dropped : 0;
}

/* ---------------------------------------------------------------------- */
/* Consumer side */

struct fzrel_peer {
    unsigned char id[256]; /* ROUTER routing id (at most 255 bytes) */
    size_t len;
    uint64_t lent; /* messages of this peer not yet acked or dropped */
    uint64_t *owed;
    size_t n_owed, cap_owed;
};

struct fzrel_in {
    struct fzrel_peer *peers; /* owned */
    size_t n_peers;
    uint32_t last;
    size_t owed;
};

struct fzrel_in *fzrel_in_new(void)
{
    return calloc(1, sizeof(struct fzrel_in)); /* freed in fzrel_in_free() */
}

static int fzrel_in_peer(struct fzrel_in *in, const void *id, size_t len, uint32_t *out)
{
    if (in->last < in->n_peers && in->peers[in->last].len == len &&
        !memcmp(in->peers[in->last].id, id, len)) {
        *out = in->last;
        return 0;
    }
    size_t free_slot = SIZE_MAX;
    for (size_t i = 0; i < in->n_peers; i++) {
        struct fzrel_peer *p = &in->peers[i];
        if (p->len == len && !memcmp(p->id, id, len)) {
            *out = in->last = (uint32_t)i;
            return 0;
        }
        if (free_slot == SIZE_MAX && !p->lent && !p->n_owed)
            free_slot = i; /* a producer that has gone: reuse its slot */
    }
    if (free_slot == SIZE_MAX) {
        struct fzrel_peer *t = realloc(in->peers, (in->n_peers + 1) * sizeof *t);
        if (!t)
            return -1;
        in->peers = t; /* freed in fzrel_in_free() */
        free_slot = in->n_peers++;
        t[free_slot] = (struct fzrel_peer){0};
    }
    struct fzrel_peer *p = &in->peers[free_slot];
    memcpy(p->id, id, len);
    p->len = len;
    *out = in->last = (uint32_t)free_slot;
    return 0;
}

size_t fzrel_in_strip(struct fzrel_in *in, const void *const *data, const size_t *len, size_t n,
                      uint32_t *peer, uint64_t *seq, bool *resent, const char **why)
{
    if (n < 3 || len[1] != FZREL_HDR_LEN || ((const unsigned char *)data[1])[0] != 'D') {
        *why = "not a reliable data message (expected routing id, a 10-byte 'D' header, "
               "then the data frames)";
        return 0;
    }
    if (len[0] == 0 || len[0] > 255 || fzrel_in_peer(in, data[0], len[0], peer)) {
        *why = "unusable routing id";
        return 0;
    }
    const unsigned char *h = data[1];
    *seq = fzrel_get64(h + 2);
    *resent = (h[1] & FZREL_FLAG_RESENT) != 0;
    in->peers[*peer].lent++;
    return 2;
}

int fzrel_in_ack(struct fzrel_in *in, uint32_t peer, uint64_t seq)
{
    struct fzrel_peer *p = &in->peers[peer];
    if (p->lent)
        p->lent--;
    if (p->n_owed == p->cap_owed) {
        size_t cap = p->cap_owed ? p->cap_owed * 2 : 256;
        uint64_t *t = realloc(p->owed, cap * sizeof *t); /* freed in fzrel_in_free() */
        if (!t)
            return FERRY_E_AGAIN;
        p->owed = t;
        p->cap_owed = cap;
    }
    p->owed[p->n_owed++] = seq;
    in->owed++;
    return FERRY_OK;
}

void fzrel_in_forget(struct fzrel_in *in, uint32_t peer)
{
    if (peer < in->n_peers && in->peers[peer].lent)
        in->peers[peer].lent--;
}

void fzrel_in_flush(struct fzrel_in *in, void *sock)
{
    unsigned char buf[2 + 8 * FZREL_ACK_MAX];
    for (size_t i = 0; i < in->n_peers && in->owed; i++) {
        struct fzrel_peer *p = &in->peers[i];
        size_t done = 0;
        while (done < p->n_owed) {
            size_t k = p->n_owed - done < FZREL_ACK_MAX ? p->n_owed - done : FZREL_ACK_MAX;
            buf[0] = 'A';
            buf[1] = 0;
            for (size_t j = 0; j < k; j++)
                fzrel_put64(buf + 2 + 8 * j, p->owed[done + j]);
            if (zmq_send(sock, p->id, p->len, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0) {
                if (errno == EAGAIN)
                    break;        /* try again at the next flush */
                done = p->n_owed; /* the producer has gone: it resends */
                break;
            }
            zmq_send(sock, buf, 2 + 8 * k, ZMQ_DONTWAIT);
            done += k;
        }
        if (done) {
            memmove(p->owed, p->owed + done, (p->n_owed - done) * sizeof *p->owed);
            p->n_owed -= done;
            in->owed -= done;
        }
    }
}

size_t fzrel_in_owed(const struct fzrel_in *in)
{
    return in ? in->owed : 0;
}

void fzrel_in_free(struct fzrel_in *in)
{
    if (!in)
        return;
    for (size_t i = 0; i < in->n_peers; i++)
        free(in->peers[i].owed);
    free(in->peers);
    free(in);
}

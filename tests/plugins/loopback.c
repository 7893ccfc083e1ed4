/* loopback.so: an in-process broker for tests (not installed). Queues per
 * destination and group, acks, requeue, dead-lettering, confirms reported
 * at flush, and knobs to inject failures. One process only.
 *
 * Built again with LB_LIE set, it becomes one of the lying plugins that
 * prove ferry-conformance catches false claims (never installed either):
 *   LB_LIE_DURABLE  lie_durable.so: claims durable, loses its queues when
 *                   the broker "restarts" (restart_file grows)
 *   LB_LIE_VOLUME   lie_volume.so: drops messages for a subscriber whose
 *                   queue holds 1,000 already, after confirming them
 *   LB_LIE_DOUBLES  lie_doubles.so: on a reconnect (cut_file grows) sends
 *                   its last 1,000 messages again, confirmed or not */
#define _GNU_SOURCE /* strdup, strndup, clock_gettime, nanosleep */
#include <ferry/transport.h>

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#define LB_LIE_DURABLE 1
#define LB_LIE_VOLUME 2
#define LB_LIE_DOUBLES 3
#ifndef LB_LIE
#define LB_LIE 0
#endif
#ifndef LB_NAME
#define LB_NAME loopback
#endif
#define LB_STR2(x) #x
#define LB_STR(x) LB_STR2(x)
#define LB_DESC2(x) x##_LTX_ferry_descriptor
#define LB_DESC(x) LB_DESC2(x)
enum { LB_LIE_LIMIT = 1000 };

struct lb_cfg {
    char *reject_destination;
    int64_t fail_publish; /* the first N publish calls of a connection fail (NOCONN) */
    int64_t fail_confirm; /* the first N delivery reports of a connection are NOCONN */
    int64_t busy_publish; /* then the next N publish calls find the send queue full (AGAIN) */
    int64_t max_message_size;
    char *down_file;         /* while this file exists, open and publish fail (NOCONN) */
    char *fail_destination;  /* publishes to this destination fail (NOCONN) */
    bool confirm_in_publish; /* report each delivery from inside publish() */
    char *restart_file;      /* each time it grows, the broker restarts (queues kept) */
    char *cut_file;          /* each time it grows, every connection is cut once */
    bool confirms;           /* false: claim no FERRY_CAP_CONFIRMS, like zmq */
};

struct lb_msg {
    struct ferry_msg m;      /* lent view; points into the fields below */
    char *dest, *key, *body; /* owned */
    struct ferry_header *h;  /* owned, names/values owned */
    size_t nh;
    struct lb_group *from; /* queue it came from while lent */
    struct lb_conn *owner; /* connection it is lent to */
    struct lb_msg *next;
    struct lb_msg *lent_prev, *lent_next; /* the owner's list of loans */
    bool stale;                           /* lent before a cut: a copy went back to the queue */
};

struct lb_group {
    char *dest, *name;          /* owned */
    struct lb_msg *head, *tail; /* queued */
    int members;
    struct lb_group *next;
};

struct lb_conn {
    struct ferry_conn *c;
    struct lb_group *sub;
    struct lb_msg *lent; /* messages lent out, back to the queue on close */
    struct lb_pending {
        uint64_t tag;
        bool fail;
    } * pending; /* not yet reported; owned */
    size_t npending, cap;
    int64_t publishes, reports;
    struct ferry_health h;
    long long cut_seen;                   /* size of cut_file when last looked at */
    struct lb_msg *history[LB_LIE_LIMIT]; /* lie_doubles: the last messages sent; owned */
    size_t hpos;
};

/* The simulated broker: shared by every connection in the process. */
static pthread_mutex_t lb_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lb_group *lb_groups;
static struct lb_msg *lb_backlog; /* published before any group existed, per dest */
static unsigned lb_private_seq;
static long long lb_restart_seen = -1;

/* Size of a file, 0 when it does not exist: the hooks append to it. */
static long long lb_file_gen(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

static void lb_free_msg(struct lb_msg *x)
{
    for (size_t i = 0; i < x->nh; i++) {
        free((char *)x->h[i].name);
        free((void *)x->h[i].value);
    }
    free(x->h);
    free(x->dest);
    free(x->key);
    free(x->body);
    free(x);
}

static struct lb_msg *lb_copy(const struct ferry_msg *m, const char *dest)
{
    struct lb_msg *x = calloc(1, sizeof *x); /* freed by lb_free_msg() */
    if (!x)
        return NULL;
    x->dest = strdup(dest ? dest : "");
    x->key = m->key ? strndup(m->key, m->key_len) : NULL;
    x->body = malloc(m->body_len + 1);
    x->h = calloc(m->n_headers + 2, sizeof *x->h);
    if (!x->dest || !x->body || !x->h || (m->key && !x->key)) {
        lb_free_msg(x);
        return NULL;
    }
    if (m->body_len)
        memcpy(x->body, m->body, m->body_len);
    x->body[m->body_len] = '\0';
    for (size_t i = 0; i < m->n_headers; i++) {
        char *v = malloc(m->headers[i].value_len + 1);
        if (v) {
            memcpy(v, m->headers[i].value, m->headers[i].value_len);
            v[m->headers[i].value_len] = '\0';
        }
        x->h[x->nh++] =
            (struct ferry_header){strdup(m->headers[i].name), v, m->headers[i].value_len};
    }
    x->m = (struct ferry_msg){.dest = x->dest,
                              .key = x->key,
                              .key_len = m->key_len,
                              .headers = x->h,
                              .n_headers = x->nh,
                              .body = x->body,
                              .body_len = m->body_len};
    return x;
}

static void lb_append(struct lb_group *g, struct lb_msg *x)
{
    x->next = NULL;
    if (g->tail)
        g->tail->next = x;
    else
        g->head = x;
    g->tail = x;
}

static void lb_push_front(struct lb_group *g, struct lb_msg *x)
{
    x->next = g->head;
    g->head = x;
    if (!g->tail)
        g->tail = x;
}

/* Route a copy of m to every group of dest (or the backlog). Caller locks. */
static int lb_route(const struct ferry_msg *m, const char *dest)
{
    bool any = false;
    for (struct lb_group *g = lb_groups; g; g = g->next) {
        if (strcmp(g->dest, dest))
            continue;
        any = true;
        if (LB_LIE == LB_LIE_VOLUME && g->members > 0) {
            size_t len = 0;
            for (struct lb_msg *q = g->head; q && len <= LB_LIE_LIMIT; q = q->next)
                len++;
            if (len >= LB_LIE_LIMIT)
                continue; /* the lie: confirmed, then dropped */
        }
        struct lb_msg *x = lb_copy(m, dest);
        if (!x)
            return FERRY_E_AGAIN;
        lb_append(g, x);
    }
    if (!any) {
        struct lb_msg *x = lb_copy(m, dest);
        if (!x)
            return FERRY_E_AGAIN;
        struct lb_msg **pp = &lb_backlog;
        while (*pp)
            pp = &(*pp)->next;
        *pp = x;
    }
    return FERRY_OK;
}

/* A broker outage on demand: tests create and remove the file. */
static bool lb_down(const struct lb_cfg *cfg)
{
    return cfg->down_file && access(cfg->down_file, F_OK) == 0;
}

/* A restart of the simulated broker, seen by whichever connection looks
 * first: queues are kept, as a durable broker keeps them (lie_durable loses
 * them). Caller locks. */
static void lb_check_restart(const struct lb_cfg *cfg)
{
    if (!cfg->restart_file)
        return;
    long long gen = lb_file_gen(cfg->restart_file);
    if (lb_restart_seen < 0 || gen == lb_restart_seen) {
        lb_restart_seen = gen;
        return;
    }
    lb_restart_seen = gen;
    if (LB_LIE != LB_LIE_DURABLE)
        return;
    for (struct lb_group *g = lb_groups; g; g = g->next) {
        while (g->head) {
            struct lb_msg *x = g->head;
            g->head = x->next;
            lb_free_msg(x);
        }
        g->tail = NULL;
    }
    while (lb_backlog) {
        struct lb_msg *x = lb_backlog;
        lb_backlog = x->next;
        lb_free_msg(x);
    }
}

/* The connection was cut (cut_file grew since it last looked): confirms in
 * flight are lost with it, reported failed although their messages reached
 * the broker (a duplicate when re-sent, as with a real broker), and what was
 * lent on it goes back to its queue, marked redelivered. */
static void lb_check_cut(struct ferry_conn *c)
{
    struct lb_conn *lc = c->priv;
    const struct lb_cfg *cfg = c->cfg;
    if (!cfg->cut_file)
        return;
    long long gen = lb_file_gen(cfg->cut_file);
    if (gen == lc->cut_seen)
        return;
    lc->cut_seen = gen;
    lc->h.reconnects++;
    size_t n = lc->npending;
    lc->npending = 0;
    for (size_t i = 0; i < n; i++) {
        lc->h.failed++;
        ferry_conn_delivered(c, lc->pending[i].tag, FERRY_E_NOCONN, "connection cut");
    }
    pthread_mutex_lock(&lb_lock);
    for (struct lb_msg *x = lc->lent; x; x = x->lent_next) {
        if (x->stale)
            continue;
        struct lb_msg *y = lb_copy(&x->m, x->dest);
        if (y) {
            y->m.redelivered = 1;
            lb_push_front(x->from, y);
        }
        x->stale = true;
    }
    if (LB_LIE == LB_LIE_DOUBLES) /* the lie: a resend buffer never trimmed by confirms */
        for (size_t i = 0; i < LB_LIE_LIMIT; i++)
            if (lc->history[i])
                lb_route(&lc->history[i]->m, lc->history[i]->dest);
    pthread_mutex_unlock(&lb_lock);
}

static int lb_open(struct ferry_conn *c)
{
    if (lb_down(c->cfg))
        return ferry_conn_fail(c, FERRY_E_NOCONN, "simulated broker outage (%s exists)",
                               ((const struct lb_cfg *)c->cfg)->down_file);
    struct lb_conn *lc = calloc(1, sizeof *lc); /* freed in lb_close() */
    if (!lc)
        return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
    lc->c = c;
    c->priv = lc;
    const struct lb_cfg *cfg = c->cfg;
    if (!cfg->reject_destination)
        c->caps &= ~(uint32_t)FERRY_CAP_DEADLETTER;
    /* "durable" means something only where the broker can restart */
    if (!cfg->restart_file)
        c->caps &= ~(uint32_t)FERRY_CAP_DURABLE;
    if (!cfg->confirms)
        c->caps &= ~(uint32_t)FERRY_CAP_CONFIRMS;
    lc->cut_seen = lb_file_gen(cfg->cut_file);
    pthread_mutex_lock(&lb_lock);
    lb_check_restart(cfg);
    pthread_mutex_unlock(&lb_lock);
    return FERRY_OK;
}

static void lb_requeue(struct lb_msg *x);
static struct lb_msg *lb_of(struct ferry_msg *m);

static void lb_close(struct ferry_conn *c)
{
    struct lb_conn *lc = c->priv;
    while (lc->lent) { /* unacked messages come back, like a broker's */
        struct lb_msg *x = lb_of(&lc->lent->m);
        if (x->stale)
            lb_free_msg(x); /* its copy went back at the cut */
        else
            lb_requeue(x);
    }
    for (size_t i = 0; i < LB_LIE_LIMIT; i++)
        if (lc->history[i])
            lb_free_msg(lc->history[i]);
    pthread_mutex_lock(&lb_lock);
    if (lc->sub)
        lc->sub->members--;
    pthread_mutex_unlock(&lb_lock);
    free(lc->pending);
    free(lc);
}

static int lb_publish(struct ferry_conn *c, const struct ferry_msg *m)
{
    struct lb_conn *lc = c->priv;
    const struct lb_cfg *cfg = c->cfg;
    lb_check_cut(c);
    if (lb_down(cfg))
        return ferry_conn_fail(c, FERRY_E_NOCONN, "simulated broker outage");
    if (cfg->fail_destination && m->dest && !strcmp(m->dest, cfg->fail_destination))
        return ferry_conn_fail(c, FERRY_E_NOCONN, "simulated outage of %s", m->dest);
    if (lc->publishes++ < cfg->fail_publish)
        return ferry_conn_fail(c, FERRY_E_NOCONN, "simulated connection loss (publish %lld)",
                               (long long)lc->publishes);
    if (lc->publishes <= cfg->fail_publish + cfg->busy_publish)
        return ferry_conn_fail(c, FERRY_E_AGAIN, "simulated full send queue (publish %lld)",
                               (long long)lc->publishes);
    if (cfg->max_message_size && (int64_t)m->body_len > cfg->max_message_size)
        return ferry_conn_fail(c, FERRY_E_TOOBIG, "body of %zu bytes exceeds %lld", m->body_len,
                               (long long)cfg->max_message_size);
    if (lc->npending == lc->cap) {
        size_t cap = lc->cap ? lc->cap * 2 : 64;
        struct lb_pending *np = realloc(lc->pending, cap * sizeof *np);
        if (!np)
            return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
        lc->pending = np;
        lc->cap = cap;
    }
    bool fail = lc->reports < cfg->fail_confirm;
    if (!fail) {
        pthread_mutex_lock(&lb_lock);
        lb_check_restart(cfg);
        int rc = lb_route(m, m->dest);
        pthread_mutex_unlock(&lb_lock);
        if (rc)
            return ferry_conn_fail(c, rc, "out of memory");
        if (LB_LIE == LB_LIE_DOUBLES) {
            struct lb_msg *x = lb_copy(m, m->dest); /* freed when pushed out or in lb_close() */
            size_t i = lc->hpos++ % LB_LIE_LIMIT;
            if (lc->history[i])
                lb_free_msg(lc->history[i]);
            lc->history[i] = x;
        }
    }
    lc->reports++;
    lc->h.published++;
    if (cfg->confirm_in_publish) {
        if (fail)
            lc->h.failed++;
        else
            lc->h.confirmed++;
        ferry_conn_delivered(c, m->tag, fail ? FERRY_E_NOCONN : FERRY_OK,
                             fail ? "simulated lost confirm" : NULL);
        return FERRY_OK;
    }
    lc->pending[lc->npending++] = (struct lb_pending){m->tag, fail};
    return FERRY_OK;
}

static int lb_flush(struct ferry_conn *c, int timeout_ms)
{
    (void)timeout_ms;
    struct lb_conn *lc = c->priv;
    lb_check_cut(c);
    size_t n = lc->npending;
    lc->npending = 0;
    for (size_t i = 0; i < n; i++) {
        if (lc->pending[i].fail) {
            lc->h.failed++;
            ferry_conn_delivered(c, lc->pending[i].tag, FERRY_E_NOCONN, "simulated lost confirm");
        } else {
            lc->h.confirmed++;
            ferry_conn_delivered(c, lc->pending[i].tag, FERRY_OK, NULL);
        }
    }
    return FERRY_OK;
}

static int lb_subscribe(struct ferry_conn *c, const char *dest, const char *group)
{
    struct lb_conn *lc = c->priv;
    char priv[64];
    if (!group || !*group) {
        pthread_mutex_lock(&lb_lock);
        snprintf(priv, sizeof priv, "private-%u", ++lb_private_seq);
        pthread_mutex_unlock(&lb_lock);
        group = priv;
    }
    pthread_mutex_lock(&lb_lock);
    lb_check_restart(c->cfg);
    struct lb_group *g = lb_groups;
    while (g && (strcmp(g->dest, dest) || strcmp(g->name, group)))
        g = g->next;
    if (!g) {
        g = calloc(1, sizeof *g); /* lives until the process ends */
        if (!g || !(g->dest = strdup(dest)) || !(g->name = strdup(group))) {
            if (g)
                free(g->dest);
            free(g);
            pthread_mutex_unlock(&lb_lock);
            return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
        }
        g->next = lb_groups;
        lb_groups = g;
        /* the first group of a destination takes what was published before */
        for (struct lb_msg **pp = &lb_backlog; *pp;) {
            struct lb_msg *x = *pp;
            if (!strcmp(x->dest, dest)) {
                *pp = x->next;
                lb_append(g, x);
            } else {
                pp = &x->next;
            }
        }
    }
    g->members++;
    lc->sub = g;
    pthread_mutex_unlock(&lb_lock);
    return FERRY_OK;
}

static int lb_receive(struct ferry_conn *c, struct ferry_msg **out, size_t max, size_t *n,
                      int timeout_ms)
{
    struct lb_conn *lc = c->priv;
    if (!lc->sub)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "receive before subscribe");
    lb_check_cut(c);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pthread_mutex_lock(&lb_lock);
        lb_check_restart(c->cfg);
        while (*n < max && lc->sub->head) {
            struct lb_msg *x = lc->sub->head;
            lc->sub->head = x->next;
            if (!lc->sub->head)
                lc->sub->tail = NULL;
            x->next = NULL;
            x->from = lc->sub;
            x->owner = lc;
            x->lent_prev = NULL;
            x->lent_next = lc->lent;
            if (lc->lent)
                lc->lent->lent_prev = x;
            lc->lent = x;
            out[(*n)++] = &x->m;
        }
        pthread_mutex_unlock(&lb_lock);
        if (*n) {
            lc->h.received += *n;
            return FERRY_OK;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long el = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (timeout_ms >= 0 && el >= timeout_ms)
            return FERRY_E_TIMEOUT;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

/* End the loan of m: unlink it from its owner's list. */
static struct lb_msg *lb_of(struct ferry_msg *m)
{
    struct lb_msg *x = (struct lb_msg *)(void *)((char *)m - offsetof(struct lb_msg, m));
    if (x->owner) {
        if (x->lent_prev)
            x->lent_prev->lent_next = x->lent_next;
        else
            x->owner->lent = x->lent_next;
        if (x->lent_next)
            x->lent_next->lent_prev = x->lent_prev;
        x->owner = NULL;
    }
    return x;
}

static int lb_ack(struct ferry_conn *c, struct ferry_msg *m)
{
    (void)c;
    lb_free_msg(lb_of(m));
    return FERRY_OK;
}

static void lb_requeue(struct lb_msg *x)
{
    x->m.redelivered = 1;
    pthread_mutex_lock(&lb_lock);
    lb_push_front(x->from, x);
    pthread_mutex_unlock(&lb_lock);
}

static int lb_nack(struct ferry_conn *c, struct ferry_msg *m, bool requeue, const char *reason)
{
    struct lb_msg *x = lb_of(m);
    const struct lb_cfg *cfg = c->cfg;
    if (x->stale) { /* lent before a cut: the broker has taken it back */
        lb_free_msg(x);
        return FERRY_OK;
    }
    if (requeue) {
        lb_requeue(x);
        return FERRY_OK;
    }
    if (cfg->reject_destination) {
        struct ferry_header hs[66];
        size_t nh = 0;
        for (size_t i = 0; i < x->nh && nh < 64; i++)
            hs[nh++] = x->h[i];
        const char *why = reason ? reason : "rejected";
        hs[nh++] = (struct ferry_header){"x-ferry-error", why, strlen(why)};
        hs[nh++] = (struct ferry_header){"x-ferry-source", x->dest, strlen(x->dest)};
        struct ferry_msg r = x->m;
        r.headers = hs;
        r.n_headers = nh;
        pthread_mutex_lock(&lb_lock);
        int rc = lb_route(&r, cfg->reject_destination);
        pthread_mutex_unlock(&lb_lock);
        if (rc) {
            lb_requeue(x);
            return ferry_conn_fail(c, rc, "cannot dead-letter");
        }
    }
    lb_free_msg(x);
    return FERRY_OK;
}

static void lb_release(struct ferry_conn *c, struct ferry_msg *m)
{
    (void)c;
    struct lb_msg *x = lb_of(m);
    if (x->stale)
        lb_free_msg(x);
    else
        lb_requeue(x);
}

static int lb_health(struct ferry_conn *c, struct ferry_health *out)
{
    struct lb_conn *lc = c->priv;
    *out = lc->h;
    out->state = FERRY_HEALTH_CONNECTED;
    out->inflight = lc->npending;
    return FERRY_OK;
}

static const char *lb_version(void)
{
    return "loopback 1";
}

static const struct ferry_option lb_options[] = {
    {.name = "reject_destination",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct lb_cfg, reject_destination),
     .help = "Where nack without requeue sends a message."},
    {.name = "fail_publish",
     .type = FERRY_OPT_INT,
     .def = "0",
     .min = 0,
     .max = 1000000,
     .offset = offsetof(struct lb_cfg, fail_publish),
     .help = "Number of first publish calls that fail as if the connection were lost."},
    {.name = "busy_publish",
     .type = FERRY_OPT_INT,
     .def = "0",
     .min = 0,
     .max = 1000000,
     .offset = offsetof(struct lb_cfg, busy_publish),
     .help = "After fail_publish, this many publish calls find the send queue full."},
    {.name = "fail_confirm",
     .type = FERRY_OPT_INT,
     .def = "0",
     .min = 0,
     .max = 1000000,
     .offset = offsetof(struct lb_cfg, fail_confirm),
     .help = "Number of first accepted messages whose confirm reports a lost connection."},
    {.name = "confirm_in_publish",
     .type = FERRY_OPT_BOOL,
     .def = "false",
     .offset = offsetof(struct lb_cfg, confirm_in_publish),
     .help = "Report each delivery from inside publish instead of at flush."},
    {.name = "max_message_size",
     .type = FERRY_OPT_SIZE,
     .def = "0",
     .offset = offsetof(struct lb_cfg, max_message_size),
     .help = "Largest body accepted in bytes (0 = no limit)."},
    {.name = "down_file",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct lb_cfg, down_file),
     .help = "While this file exists, opening and publishing fail as if the broker were down."},
    {.name = "fail_destination",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct lb_cfg, fail_destination),
     .help = "Publishing to this destination fails as if the connection were lost."},
    {.name = "restart_file",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct lb_cfg, restart_file),
     .help = "Each time this file grows the simulated broker restarts; makes the plugin durable."},
    {.name = "cut_file",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct lb_cfg, cut_file),
     .help = "Each time this file grows every connection is cut once."},
    {.name = "confirms",
     .type = FERRY_OPT_BOOL,
     .def = "true",
     .offset = offsetof(struct lb_cfg, confirms),
     .help = "Claim publisher confirms; false makes the connection one without, like zmq."},
    {0}};

static const struct ferry_transport_ops lb_ops = {.size = sizeof(struct ferry_transport_ops),
                                                  .open = lb_open,
                                                  .close = lb_close,
                                                  .publish = lb_publish,
                                                  .flush = lb_flush,
                                                  .subscribe = lb_subscribe,
                                                  .receive = lb_receive,
                                                  .ack = lb_ack,
                                                  .nack = lb_nack,
                                                  .release = lb_release,
                                                  .health = lb_health};

#define ferry_descriptor LB_DESC(LB_NAME)
const struct ferry_transport ferry_descriptor = {
    .abi = FERRY_TRANSPORT_ABI,
    .size = sizeof(struct ferry_transport),
    .name = LB_STR(LB_NAME),
    .summary = LB_LIE ? "A transport that lies about its capabilities (tests only)"
                      : "In-process test broker (tests only)",
    .lib_version = lb_version,
    .caps = FERRY_CAP_ACK | FERRY_CAP_GROUPS | FERRY_CAP_CONFIRMS | FERRY_CAP_KEY_ORDER |
            FERRY_CAP_DEADLETTER | FERRY_CAP_FANOUT | FERRY_CAP_DURABLE,
    .options = lb_options,
    .cfg_size = sizeof(struct lb_cfg),
    .ops = &lb_ops};

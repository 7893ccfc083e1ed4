/* ferry transport plugin for AMQP 0-9-1 brokers (RabbitMQ) on rabbitmq-c:
 * work queues or exchanges, publisher confirms read in batches, manual acks
 * coalesced into multiple-acks, dead-lettering and automatic reconnection. */
#include "config.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ferry/transport.h>

#include "amqp-util.h"

#define FAMQP_PUB_CH 1      /* publishing channel, in confirm mode */
#define FAMQP_SUB_CH 2      /* consuming channel, opened by subscribe */
#define FAMQP_STATS_CH 3    /* passive declares for the queue's message count */
#define FAMQP_POLL_EVERY 32 /* publishes between two looks at incoming confirms */
#define FAMQP_KEY_HEADER "x-ferry-key"
#define FAMQP_ERROR_HEADER "x-ferry-error"
#define FAMQP_BACKOFF_MIN_MS 100
#define FAMQP_BACKOFF_MAX_MS 30000
#define FAMQP_CONSUME_RETRIES 12 /* basic.consume on a quorum queue not started yet */

enum famqp_routing { FAMQP_ROUTE_QUEUE = 0, FAMQP_ROUTE_EXCHANGE };
static const char *const famqp_exchange_types[] = {"topic", "direct", "fanout", "headers"};
static const char *const famqp_overflows[] = {"drop-head", "reject-publish", "reject-publish-dlx"};
enum { FAMQP_QUEUE_CLASSIC, FAMQP_QUEUE_QUORUM, FAMQP_QUEUE_STREAM };
static const char *const famqp_queue_types[] = {"classic", "quorum", "stream"};
enum famqp_overflow { FAMQP_DROP_HEAD = 0, FAMQP_REJECT_PUBLISH, FAMQP_REJECT_PUBLISH_DLX };
enum famqp_unroutable { FAMQP_UNROUTABLE_FAIL = 0, FAMQP_UNROUTABLE_DROP, FAMQP_UNROUTABLE_DLX };

struct famqp_cfg {
    char *url;
    char *username;
    char *password;
    int routing;
    int exchange_type;
    char *binding_key;
    bool queue_durable;
    bool persistent;
    bool confirm;
    bool mandatory;
    int unroutable;
    int64_t prefetch;
    int64_t message_ttl;
    int64_t max_length;
    int overflow;
    int queue_type;
    char *dead_letter_exchange;
    char *reject_destination;
    int64_t heartbeat;
    int64_t connect_timeout;
    int64_t socket_timeout;
    int64_t frame_max;
    int64_t max_message_size;
    int64_t max_inflight;
    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    bool tls_verify_peer;
    bool tls_verify_hostname;
    int auth;
};

enum famqp_auth { FAMQP_AUTH_PLAIN = 0, FAMQP_AUTH_EXTERNAL };

static const struct ferry_option famqp_options[] = {
    {.name = "url",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .def = "amqp://guest:guest@127.0.0.1:5672",
     .offset = offsetof(struct famqp_cfg, url),
     .help = "Broker URL amqp://user:password@host:port/vhost, or a comma-separated list tried in "
             "turn for failover (no trailing slash: that names the empty vhost)."},
    {.name = "username",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .offset = offsetof(struct famqp_cfg, username),
     .help = "User name; overrides the one in the URL."},
    {.name = "password",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .offset = offsetof(struct famqp_cfg, password),
     .help = "Password; overrides the one in the URL (better set through the environment)."},
    {.name = "routing",
     .type = FERRY_OPT_ENUM,
     .def = "queue",
     .choices = "queue|exchange",
     .offset = offsetof(struct famqp_cfg, routing),
     .help = "queue: the destination is a work queue shared by all consumers; exchange: the "
             "destination is an exchange, each consumer group gets its own queue (fan-out)."},
    {.name = "exchange_type",
     .type = FERRY_OPT_ENUM,
     .def = "topic",
     .choices = "topic|direct|fanout|headers",
     .offset = offsetof(struct famqp_cfg, exchange_type),
     .help = "Type of the exchanges declared in exchange routing."},
    {.name = "binding_key",
     .type = FERRY_OPT_STR,
     .def = "#",
     .offset = offsetof(struct famqp_cfg, binding_key),
     .help = "Binding keys of a subscriber's queue in exchange routing, comma separated, e.g. "
             "\"billing.*\", \"*.error\" or \"auth.*, *.error\"; routing keys are service.level "
             "with the level in lower case (auth.error), and matching is case-sensitive."},
    {.name = "queue_durable",
     .type = FERRY_OPT_BOOL,
     .def = "true",
     .offset = offsetof(struct famqp_cfg, queue_durable),
     .help = "Declare queues durable so they survive a broker restart."},
    {.name = "persistent",
     .type = FERRY_OPT_BOOL,
     .def = "true",
     .offset = offsetof(struct famqp_cfg, persistent),
     .help = "Publish messages persistent (delivery mode 2) so they survive a broker restart."},
    {.name = "confirm",
     .type = FERRY_OPT_BOOL,
     .def = "true",
     .offset = offsetof(struct famqp_cfg, confirm),
     .help = "Use publisher confirms: a message counts as delivered only once the broker confirmed "
             "it."},
    {.name = "mandatory",
     .type = FERRY_OPT_BOOL,
     .def = "true",
     .offset = offsetof(struct famqp_cfg, mandatory),
     .help = "Publish with the mandatory flag: a message no queue takes is reported failed instead "
             "of dropped."},
    {.name = "unroutable",
     .type = FERRY_OPT_ENUM,
     .def = "fail",
     .choices = "fail|drop-and-count|dead-letter",
     .offset = offsetof(struct famqp_cfg, unroutable),
     .help = "A message no queue is bound for (exchange routing, with mandatory): fail it (the "
             "producer exits 69), drop it and count it in ferry_messages_dropped_total, or send it "
             "to reject_destination through an alternate exchange."},
    {.name = "prefetch",
     .type = FERRY_OPT_INT,
     .def = "100",
     .min = 0,
     .max = 65535,
     .offset = offsetof(struct famqp_cfg, prefetch),
     .help = "Unacknowledged messages the broker may send a consumer ahead (basic.qos); 1 gives "
             "fair dispatch, 0 no limit."},
    {.name = "message_ttl",
     .type = FERRY_OPT_DURATION,
     .def = "0",
     .min = 0,
     .max = INT32_MAX,
     .offset = offsetof(struct famqp_cfg, message_ttl),
     .help = "Time a message may wait in a declared queue before it is dropped or dead-lettered; 0 "
             "keeps it forever."},
    {.name = "max_length",
     .type = FERRY_OPT_INT,
     .def = "0",
     .min = 0,
     .max = INT32_MAX,
     .offset = offsetof(struct famqp_cfg, max_length),
     .help = "Most messages a declared queue holds (see overflow); 0 means no limit."},
    {.name = "overflow",
     .type = FERRY_OPT_ENUM,
     .def = "reject-publish",
     .choices = "drop-head|reject-publish|reject-publish-dlx",
     .offset = offsetof(struct famqp_cfg, overflow),
     .help = "What a queue at max_length does: refuse new messages (the producer sees them "
             "rejected), also dead-letter the refused ones (reject-publish-dlx), or drop its "
             "oldest (drop-head: dead-lettered to reject_destination when one is set, otherwise "
             "lost, with a warning at start-up)."},
    {.name = "queue_type",
     .type = FERRY_OPT_ENUM,
     .def = "classic",
     .choices = "classic|quorum|stream",
     .offset = offsetof(struct famqp_cfg, queue_type),
     .help = "Type of the queues ferry declares (x-queue-type): classic; quorum (replicated "
             "with Raft on a cluster, RabbitMQ's recommended durable queue: durable only, "
             "overflow drop-head or reject-publish, dead-lettering kept); stream (an "
             "append-only log: durable only, no message_ttl, max_length, overflow or "
             "dead-lettering). Private subscriber queues (exchange routing without a "
             "group) stay classic."},
    {.name = "dead_letter_exchange",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct famqp_cfg, dead_letter_exchange),
     .help = "Exchange that receives messages rejected without requeue or expired; default "
             "ferry.dlx when reject_destination is set."},
    {.name = "reject_destination",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct famqp_cfg, reject_destination),
     .help = "Queue that collects rejected messages, with the reason in the x-ferry-error header."},
    {.name = "heartbeat",
     .type = FERRY_OPT_DURATION,
     .def = "30s",
     .min = 0,
     .max = 3600000,
     .offset = offsetof(struct famqp_cfg, heartbeat),
     .help = "AMQP heartbeat interval, whole seconds; 0 disables heartbeats."},
    {.name = "connect_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "5s",
     .min = 1,
     .max = 600000,
     .offset = offsetof(struct famqp_cfg, connect_timeout),
     .help = "Time allowed to open the TCP connection and log in."},
    {.name = "socket_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "10s",
     .min = 1,
     .max = 600000,
     .offset = offsetof(struct famqp_cfg, socket_timeout),
     .help = "Time allowed for a broker reply to a declaration or another synchronous request."},
    {.name = "frame_max",
     .type = FERRY_OPT_SIZE,
     .def = "128KiB",
     .min = 4096,
     .max = 16777216,
     .offset = offsetof(struct famqp_cfg, frame_max),
     .help = "Largest AMQP frame proposed to the broker, in bytes."},
    {.name = "max_message_size",
     .type = FERRY_OPT_SIZE,
     .def = "128MiB",
     .min = 1,
     .max = 536870912,
     .offset = offsetof(struct famqp_cfg, max_message_size),
     .help = "Largest message body accepted by publish, in bytes; larger ones fail with a too-big "
             "error before sending."},
    {.name = "max_inflight",
     .type = FERRY_OPT_INT,
     .def = "10000",
     .min = 1,
     .max = 10000000,
     .offset = offsetof(struct famqp_cfg, max_inflight),
     .help = "Most published messages awaiting a broker confirm; publish waits for confirms beyond "
             "it."},
    {.name = "tls_ca",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct famqp_cfg, tls_ca),
     .help = "PEM file of the CA certificates that sign the broker's certificate, for amqps:// "
             "URLs; default: the system's CA store."},
    {.name = "tls_verify_peer",
     .type = FERRY_OPT_BOOL,
     .def = "true",
     .offset = offsetof(struct famqp_cfg, tls_verify_peer),
     .help = "Check the broker's certificate against tls_ca; turning this off lets anyone on the "
             "path read and change the traffic."},
    {.name = "tls_verify_hostname",
     .type = FERRY_OPT_BOOL,
     .def = "true",
     .offset = offsetof(struct famqp_cfg, tls_verify_hostname),
     .help = "Check that the broker's certificate names the host of the URL."},
    {.name = "tls_cert",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct famqp_cfg, tls_cert),
     .help = "PEM file of the client certificate presented to the broker (with tls_key); needed "
             "for auth = external."},
    {.name = "tls_key",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .offset = offsetof(struct famqp_cfg, tls_key),
     .help = "PEM file of the private key of tls_cert; keep it mode 0600."},
    {.name = "auth",
     .type = FERRY_OPT_ENUM,
     .def = "plain",
     .choices = "plain|external",
     .offset = offsetof(struct famqp_cfg, auth),
     .help = "SASL mechanism: plain (user and password) or external (the TLS client certificate is "
             "the login, as the user named by its common name; RabbitMQ needs the "
             "rabbitmq_auth_mechanism_ssl plugin)."},
    {0}};

/* A published message awaiting its confirm (publish sequence number = index). */
struct famqp_pending {
    uint64_t tag;
    int status;
    bool settled;
    bool internal;      /* a reject copy made by nack(): not reported */
    const char *reason; /* static text */
    size_t body_len;
};

/* A received message lent to the caller (or waiting to be). */
struct famqp_rmsg {
    struct ferry_msg m; /* first: the caller sees &m */
    uint64_t dtag;
    uint64_t gen; /* connection generation it came on */
    size_t body_got;
    struct ferry_header *hdrs;
    size_t n_hdrs;
    struct famqp_rmsg *next, *prev;
};

/* Delivery tags handed out, in order, to coalesce acks. */
enum famqp_tagstate { FAMQP_LENT = 0, FAMQP_ACKED, FAMQP_DONE };
struct famqp_tagrec {
    uint64_t dtag;
    int state;
};

struct famqp_declared {
    char *name;
    struct famqp_declared *next;
};

struct famqp {
    const struct famqp_cfg *cfg;
    struct famqp_url *urls;
    size_t n_urls, url_next;
    char *dlx;         /* effective dead-letter exchange or NULL */
    char instance[24]; /* prefix of message ids, to match returns */

    amqp_connection_state_t conn;
    bool up, blocked, sub_open;
    bool consume_unstarted; /* the last basic.consume met an unstarted quorum queue */
    uint64_t gen;
    int64_t next_attempt_ms;
    int64_t backoff_ms;
    int last_status;
    char down_reason[256];

    /* publishing */
    struct famqp_pending *pend;
    size_t pend_cap, pend_head, pend_len; /* ring buffer */
    uint64_t pend_first_seq;              /* sequence number of pend[pend_head] */
    size_t unsettled;                     /* entries of pend not yet settled */
    uint64_t next_seq;                    /* ours, across connections */
    uint64_t seq_offset;                  /* ours = broker's publish sequence + seq_offset */
    unsigned since_poll;
    struct famqp_declared *declared;
    uint64_t return_seq; /* sequence of the message being returned, 0 = none */
    uint64_t return_body_left;
    bool return_active;

    /* consuming */
    char *sub_dest, *sub_group, *sub_queue;
    struct famqp_rmsg *ready_head, *ready_tail; /* received, not yet lent */
    struct famqp_rmsg lent;                     /* sentinel of the lent list */
    struct famqp_rmsg *asm_msg;                 /* being assembled from frames */
    bool asm_have_header;
    struct famqp_tagrec *tags;
    size_t tags_cap, tags_head, tags_len;
    size_t acks_waiting;

    struct ferry_health h;

    /* ferry_stats */
    uint64_t unroutable_dropped; /* returned messages settled OK (drop-and-count) */
    bool stats_open;             /* FAMQP_STATS_CH is open on this connection */
    int64_t stats_at_ms;         /* when the queue was last counted */
    int64_t stats_messages;      /* its message count then, -1 unknown */
};

static int64_t famqp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval famqp_tv(int64_t ms)
{
    if (ms < 0)
        ms = 0;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* Copy as much of src as fits, always terminated. */
static void famqp_copy(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static const char *famqp_lib_version(void)
{
    return amqp_version();
}

static amqp_bytes_t famqp_bytes(const void *p, size_t n)
{
    amqp_bytes_t b = {.len = n, .bytes = (void *)(uintptr_t)p};
    return b;
}

/* ---------------------------------------------------------------------- */
/* Errors and connection loss */

/* Text and status for a failed synchronous call. */
static int famqp_reply_status(amqp_rpc_reply_t r, char *buf, size_t len)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL: snprintf(buf, len, "ok"); return FERRY_OK;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(buf, len, "%s", amqp_error_string2(r.library_error));
        return famqp_status(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            snprintf(buf, len, "broker closed the connection: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
            return famqp_status(m->reply_code);
        }
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            snprintf(buf, len, "broker closed the channel: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
            return famqp_status(m->reply_code);
        }
        snprintf(buf, len, "unexpected broker method 0x%08x", r.reply.id);
        return FERRY_E_NOCONN;
    default: snprintf(buf, len, "no reply from the broker"); return FERRY_E_NOCONN;
    }
}

static void famqp_pend_settle(struct famqp *p, uint64_t seq, int st, const char *reason);
static void famqp_rmsg_free(struct famqp_rmsg *r);

/* Tear the connection down after a failure: every unconfirmed message is
 * reported FERRY_E_NOCONN, received messages not yet lent are dropped (the
 * broker redelivers them) and the next operation reconnects after backoff. */
static void famqp_lost(struct ferry_conn *c, const char *why)
{
    struct famqp *p = c->priv;
    if (!p->up)
        return;
    p->up = false;
    p->blocked = false;
    p->sub_open = false;
    p->stats_open = false;
    p->gen++;
    famqp_copy(p->down_reason, sizeof p->down_reason, why);
    amqp_destroy_connection(p->conn);
    p->conn = NULL;
    for (size_t i = 0; i < p->pend_len; i++) {
        struct famqp_pending *e = &p->pend[(p->pend_head + i) % p->pend_cap];
        if (!e->settled) {
            e->settled = true;
            e->status = FERRY_E_NOCONN;
            e->reason = "connection lost before the broker confirmed";
        }
    }
    p->unsettled = 0;
    while (p->ready_head) {
        struct famqp_rmsg *r = p->ready_head;
        p->ready_head = r->next;
        famqp_rmsg_free(r);
    }
    p->ready_tail = NULL;
    if (p->asm_msg) {
        famqp_rmsg_free(p->asm_msg);
        p->asm_msg = NULL;
    }
    p->tags_head = p->tags_len = 0;
    p->acks_waiting = 0;
    p->return_active = false;
    while (p->declared) {
        struct famqp_declared *d = p->declared;
        p->declared = d->next;
        free(d->name);
        free(d);
    }
    if (p->backoff_ms < FAMQP_BACKOFF_MIN_MS)
        p->backoff_ms = FAMQP_BACKOFF_MIN_MS;
    /* first retry soon; famqp_connect() grows the backoff when it fails */
    p->next_attempt_ms = famqp_now_ms() + p->backoff_ms / 2 + rand() % (p->backoff_ms / 2 + 1);
    ferry_log_warn(c, "connection lost error=\"%s\" retry_in=%" PRId64 "ms", why,
                   p->next_attempt_ms - famqp_now_ms());
}

/* RabbitMQ closes the publishing channel with 406 PRECONDITION_FAILED
 * "message size N is larger than configured max size M" for a message
 * over its max_message_size. That message is refused for good: settle
 * every unconfirmed message larger than M as FERRY_E_TOOBIG, so the
 * reconnect that follows re-sends only the others instead of looping on
 * it. A 406 that names no size is left to the connection loss. */
static size_t famqp_refused_too_big(struct ferry_conn *c, const char *why)
{
    struct famqp *p = c->priv;
    const char *at = strstr(why, "max size ");
    if (!at)
        return 0;
    unsigned long long max = strtoull(at + 9, NULL, 10);
    if (!max)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < p->pend_len; i++) {
        struct famqp_pending *e = &p->pend[(p->pend_head + i) % p->pend_cap];
        if (!e->settled && e->body_len > max) {
            e->settled = true;
            e->status = FERRY_E_TOOBIG;
            e->reason = "refused by the broker: larger than its max_message_size "
                        "(406 PRECONDITION_FAILED)";
            if (p->unsettled)
                p->unsettled--;
            n++;
        }
    }
    if (n)
        ferry_log_warn(c, "broker refused messages for their size count=%zu max=%llu", n, max);
    return n;
}

/* After the broker closed the publishing channel for a message it refuses
 * for good (406, too big): answer close-ok and open the channel again on
 * the same connection, so the consumer channel and its unacknowledged
 * deliveries survive (a validator can still dead-letter the input message
 * whose copy was refused). Messages not yet confirmed on the closed
 * channel are reported lost, and the core publishes them again. On an
 * error the caller drops the connection. */
static int famqp_reopen_pub(struct ferry_conn *c, const char *why)
{
    struct famqp *p = c->priv;
    amqp_channel_close_ok_t ok;
    if (amqp_send_method(p->conn, FAMQP_PUB_CH, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) !=
        AMQP_STATUS_OK)
        return FERRY_E_NOCONN;
    for (size_t i = 0; i < p->pend_len; i++) {
        struct famqp_pending *e = &p->pend[(p->pend_head + i) % p->pend_cap];
        if (!e->settled) {
            e->settled = true;
            e->status = FERRY_E_NOCONN;
            e->reason = "publishing channel closed before the broker confirmed";
        }
    }
    p->unsettled = 0;
    p->return_active = false;
    amqp_channel_open(p->conn, FAMQP_PUB_CH);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(p->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL && p->cfg->confirm) {
        amqp_confirm_select(p->conn, FAMQP_PUB_CH);
        r = amqp_get_rpc_reply(p->conn);
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return FERRY_E_NOCONN;
    p->seq_offset = p->next_seq - 1; /* the new channel counts from 1 */
    ferry_log_warn(c, "publishing channel reopened error=\"%s\"", why);
    return FERRY_OK;
}

/* Record a failed library call: loses the connection unless it was only a
 * timeout. Returns the ferry status with c->err set. */
static int famqp_fail_rc(struct ferry_conn *c, int rc, const char *what)
{
    int st = famqp_status(rc);
    ferry_conn_fail(c, st, "%s: %s", what, amqp_error_string2(rc));
    if (st != FERRY_E_TIMEOUT && st != FERRY_OK)
        famqp_lost(c, c->err);
    return st == FERRY_E_TIMEOUT ? st : (st == FERRY_OK ? FERRY_OK : FERRY_E_NOCONN);
}

static int famqp_fail_reply(struct ferry_conn *c, amqp_rpc_reply_t r, const char *what)
{
    char buf[256];
    int st = famqp_reply_status(r, buf, sizeof buf);
    ferry_conn_fail(c, st, "%s: %s", what, buf);
    /* Any failed synchronous call leaves a closed channel or connection
     * behind: start over with a fresh connection. */
    famqp_lost(c, c->err);
    return st == FERRY_OK ? FERRY_E_NOCONN : st;
}

/* ---------------------------------------------------------------------- */
/* Publisher confirm bookkeeping (ring of pending entries by sequence) */

static int famqp_pend_push(struct famqp *p, uint64_t tag, bool internal, size_t body_len)
{
    if (p->pend_len == p->pend_cap) {
        size_t ncap = p->pend_cap ? p->pend_cap * 2 : 1024;
        struct famqp_pending *n = malloc(ncap * sizeof *n); /* freed in famqp_close() */
        if (!n)
            return -1;
        for (size_t i = 0; i < p->pend_len; i++)
            n[i] = p->pend[(p->pend_head + i) % p->pend_cap];
        free(p->pend);
        p->pend = n;
        p->pend_cap = ncap;
        p->pend_head = 0;
    }
    if (p->pend_len == 0)
        p->pend_first_seq = p->next_seq;
    struct famqp_pending *e = &p->pend[(p->pend_head + p->pend_len) % p->pend_cap];
    e->tag = tag;
    e->status = FERRY_OK;
    e->settled = false;
    e->internal = internal;
    e->reason = NULL;
    e->body_len = body_len;
    p->pend_len++;
    p->unsettled++;
    return 0;
}

static struct famqp_pending *famqp_pend_get(struct famqp *p, uint64_t seq)
{
    if (p->pend_len == 0 || seq < p->pend_first_seq || seq >= p->pend_first_seq + p->pend_len)
        return NULL;
    return &p->pend[(p->pend_head + (seq - p->pend_first_seq)) % p->pend_cap];
}

static void famqp_pend_settle(struct famqp *p, uint64_t seq, int st, const char *reason)
{
    struct famqp_pending *e = famqp_pend_get(p, seq);
    if (!e || e->settled)
        return;
    /* a return (unroutable) comes before the ack of the same message */
    if (e->status != FERRY_OK && st == FERRY_OK)
        st = e->status, reason = e->reason;
    e->settled = true;
    e->status = st;
    e->reason = reason;
    p->unsettled--;
}

/* Report settled messages to the core, in publish order. */
static void famqp_emit(struct ferry_conn *c)
{
    struct famqp *p = c->priv;
    while (p->pend_len > 0) {
        struct famqp_pending *e = &p->pend[p->pend_head];
        if (!e->settled)
            break;
        struct famqp_pending done = *e;
        p->pend_head = (p->pend_head + 1) % p->pend_cap;
        p->pend_len--;
        p->pend_first_seq++;
        if (done.internal)
            continue;
        if (done.status == FERRY_OK)
            p->h.confirmed++;
        else
            p->h.failed++;
        ferry_conn_delivered(c, done.tag, done.status, done.reason);
    }
}

static size_t famqp_unsettled(const struct famqp *p)
{
    return p->unsettled;
}

/* ---------------------------------------------------------------------- */
/* Received messages */

static void famqp_rmsg_free(struct famqp_rmsg *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_hdrs; i++) {
        free((void *)(uintptr_t)r->hdrs[i].name);
        free((void *)(uintptr_t)r->hdrs[i].value);
    }
    free(r->hdrs);
    free((void *)(uintptr_t)r->m.key);
    free((void *)(uintptr_t)r->m.body);
    free(r);
}

static void famqp_lent_unlink(struct famqp_rmsg *r)
{
    if (r->prev) {
        r->prev->next = r->next;
        r->next->prev = r->prev;
        r->prev = r->next = NULL;
    }
}

/* Copy an AMQP field value into text/bytes; tables and arrays are skipped. */
static bool famqp_field_text(const amqp_field_value_t *v, char **out, size_t *len)
{
    char num[64];
    const void *src = num;
    size_t n;
    switch (v->kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
        src = v->value.bytes.bytes;
        n = v->value.bytes.len;
        break;
    case AMQP_FIELD_KIND_BOOLEAN:
        n = (size_t)snprintf(num, sizeof num, "%s", v->value.boolean ? "true" : "false");
        break;
    case AMQP_FIELD_KIND_I8: n = (size_t)snprintf(num, sizeof num, "%d", v->value.i8); break;
    case AMQP_FIELD_KIND_U8: n = (size_t)snprintf(num, sizeof num, "%u", v->value.u8); break;
    case AMQP_FIELD_KIND_I16: n = (size_t)snprintf(num, sizeof num, "%d", v->value.i16); break;
    case AMQP_FIELD_KIND_U16: n = (size_t)snprintf(num, sizeof num, "%u", v->value.u16); break;
    case AMQP_FIELD_KIND_I32:
        n = (size_t)snprintf(num, sizeof num, "%" PRId32, v->value.i32);
        break;
    case AMQP_FIELD_KIND_U32:
        n = (size_t)snprintf(num, sizeof num, "%" PRIu32, v->value.u32);
        break;
    case AMQP_FIELD_KIND_I64:
        n = (size_t)snprintf(num, sizeof num, "%" PRId64, v->value.i64);
        break;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP:
        n = (size_t)snprintf(num, sizeof num, "%" PRIu64, v->value.u64);
        break;
    case AMQP_FIELD_KIND_F32:
        n = (size_t)snprintf(num, sizeof num, "%g", (double)v->value.f32);
        break;
    case AMQP_FIELD_KIND_F64: n = (size_t)snprintf(num, sizeof num, "%g", v->value.f64); break;
    default: return false;
    }
    char *buf = malloc(n + 1); /* freed in famqp_rmsg_free() */
    if (!buf)
        return false;
    if (n)
        memcpy(buf, src, n);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return true;
}

/* The content header of a delivery: headers and the body buffer. */
static int famqp_rmsg_header(struct famqp_rmsg *r, const amqp_frame_t *f)
{
    const amqp_basic_properties_t *pr = f->payload.properties.decoded;
    uint64_t size = f->payload.properties.body_size;
    void *body = malloc(size ? size : 1); /* freed in famqp_rmsg_free() */
    if (!body)
        return -1;
    r->m.body = body;
    r->m.body_len = size;
    if (pr && (pr->_flags & AMQP_BASIC_HEADERS_FLAG) && pr->headers.num_entries > 0) {
        r->hdrs = calloc((size_t)pr->headers.num_entries,
                         sizeof *r->hdrs); /* freed in famqp_rmsg_free() */
        if (!r->hdrs)
            return -1;
        for (int i = 0; i < pr->headers.num_entries; i++) {
            const amqp_table_entry_t *e = &pr->headers.entries[i];
            char *val;
            size_t vlen;
            if (!famqp_field_text(&e->value, &val, &vlen))
                continue;
            if (e->key.len == strlen(FAMQP_KEY_HEADER) &&
                memcmp(e->key.bytes, FAMQP_KEY_HEADER, e->key.len) == 0) {
                free((void *)(uintptr_t)r->m.key);
                r->m.key = val;
                r->m.key_len = vlen;
                continue;
            }
            char *name = strndup(e->key.bytes, e->key.len); /* freed in famqp_rmsg_free() */
            if (!name) {
                free(val);
                return -1;
            }
            r->hdrs[r->n_hdrs].name = name;
            r->hdrs[r->n_hdrs].value = val;
            r->hdrs[r->n_hdrs].value_len = vlen;
            r->n_hdrs++;
        }
    }
    r->m.headers = r->hdrs;
    r->m.n_headers = r->n_hdrs;
    return 0;
}

static void famqp_ready_push(struct famqp *p, struct famqp_rmsg *r)
{
    r->next = NULL;
    if (p->ready_tail)
        p->ready_tail->next = r;
    else
        p->ready_head = r;
    p->ready_tail = r;
}

/* ---------------------------------------------------------------------- */
/* Ack coalescing: delivery tags in order; a run of acked tags at the front
 * becomes one basic.ack(multiple); acks behind an unsettled tag go alone. */

static int famqp_tags_push(struct famqp *p, uint64_t dtag)
{
    if (p->tags_len == p->tags_cap) {
        size_t ncap = p->tags_cap ? p->tags_cap * 2 : 256;
        struct famqp_tagrec *n = malloc(ncap * sizeof *n); /* freed in famqp_close() */
        if (!n)
            return -1;
        for (size_t i = 0; i < p->tags_len; i++)
            n[i] = p->tags[(p->tags_head + i) % p->tags_cap];
        free(p->tags);
        p->tags = n;
        p->tags_cap = ncap;
        p->tags_head = 0;
    }
    struct famqp_tagrec *t = &p->tags[(p->tags_head + p->tags_len) % p->tags_cap];
    t->dtag = dtag;
    t->state = FAMQP_LENT;
    p->tags_len++;
    return 0;
}

static struct famqp_tagrec *famqp_tags_find(struct famqp *p, uint64_t dtag)
{
    if (p->tags_len == 0)
        return NULL;
    /* tags are consecutive per channel: index by offset, then verify */
    uint64_t first = p->tags[p->tags_head].dtag;
    if (dtag < first || dtag - first >= p->tags_len)
        return NULL;
    struct famqp_tagrec *t = &p->tags[(p->tags_head + (dtag - first)) % p->tags_cap];
    return t->dtag == dtag ? t : NULL;
}

static int famqp_acks_send(struct ferry_conn *c)
{
    struct famqp *p = c->priv;
    if (!p->up || p->acks_waiting == 0)
        return FERRY_OK;
    uint64_t last = 0;
    while (p->tags_len > 0) {
        struct famqp_tagrec *t = &p->tags[p->tags_head];
        if (t->state == FAMQP_LENT)
            break;
        if (t->state == FAMQP_ACKED)
            last = t->dtag;
        p->tags_head = (p->tags_head + 1) % p->tags_cap;
        p->tags_len--;
    }
    if (last) {
        int rc = amqp_basic_ack(p->conn, FAMQP_SUB_CH, last, 1);
        if (rc != AMQP_STATUS_OK)
            return famqp_fail_rc(c, rc, "ack");
    }
    for (size_t i = 0; i < p->tags_len; i++) {
        struct famqp_tagrec *t = &p->tags[(p->tags_head + i) % p->tags_cap];
        if (t->state != FAMQP_ACKED)
            continue;
        int rc = amqp_basic_ack(p->conn, FAMQP_SUB_CH, t->dtag, 0);
        if (rc != AMQP_STATUS_OK)
            return famqp_fail_rc(c, rc, "ack");
        t->state = FAMQP_DONE;
    }
    p->acks_waiting = 0;
    return FERRY_OK;
}

/* ---------------------------------------------------------------------- */
/* Frame pump: the only place that reads from the socket */

static void famqp_on_method(struct ferry_conn *c, const amqp_frame_t *f)
{
    struct famqp *p = c->priv;
    amqp_method_number_t id = f->payload.method.id;
    void *d = f->payload.method.decoded;
    char why[300];

    switch (id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = d;
        uint64_t seq = a->delivery_tag + p->seq_offset;
        if (a->multiple) {
            for (uint64_t s = p->pend_first_seq; s <= seq && famqp_pend_get(p, s); s++)
                famqp_pend_settle(p, s, FERRY_OK, NULL);
        } else {
            famqp_pend_settle(p, seq, FERRY_OK, NULL);
        }
        break;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *a = d;
        /* With max_length and a reject-publish overflow, a nack is the
         * queue being full: the message is refused. Otherwise it is the
         * broker unable to take the message: a queue process that died, or
         * a quorum queue that lost its leader (RabbitMQ 3.10 was seen to
         * nack every later publish on that channel even after a new leader
         * was elected, while a new connection published at once). Publish
         * those messages again, over a new connection. */
        bool full = p->cfg->max_length > 0 && p->cfg->overflow != FAMQP_DROP_HEAD;
        int nst = full ? FERRY_E_REJECTED : FERRY_E_AGAIN;
        const char *why_nack =
            full ? "broker refused the message (basic.nack: queue full or internal error)"
                 : "broker could not take the message (basic.nack without a queue limit: "
                   "queue unavailable)";
        uint64_t seq = a->delivery_tag + p->seq_offset;
        if (a->multiple) {
            for (uint64_t s = p->pend_first_seq; s <= seq && famqp_pend_get(p, s); s++)
                famqp_pend_settle(p, s, nst, why_nack);
        } else {
            famqp_pend_settle(p, seq, nst, why_nack);
        }
        if (!full)
            famqp_lost(c, "broker nacked a message without a queue limit (queue unavailable, e.g. "
                          "a quorum queue that lost its leader): reconnecting to publish it again");
        break;
    }
    case AMQP_BASIC_RETURN_METHOD:
        /* the message id we set names the sequence; it comes in the header */
        p->return_active = true;
        p->return_seq = 0;
        p->return_body_left = 0;
        break;
    case AMQP_BASIC_DELIVER_METHOD: {
        const amqp_basic_deliver_t *dv = d;
        famqp_rmsg_free(p->asm_msg);
        struct famqp_rmsg *r =
            calloc(1, sizeof *r); /* freed in famqp_ack()/nack()/release()/close() */
        p->asm_msg = r;
        p->asm_have_header = false;
        if (!r)
            break;
        r->dtag = dv->delivery_tag;
        r->gen = p->gen;
        r->m.dest = p->sub_dest;
        r->m.redelivered = dv->redelivered ? 1 : 0;
        r->m.tag = dv->delivery_tag;
        if (dv->routing_key.len) {
            char *k = strndup(dv->routing_key.bytes,
                              dv->routing_key.len); /* freed in famqp_rmsg_free() */
            r->m.key = k;
            r->m.key_len = k ? dv->routing_key.len : 0;
        }
        break;
    }
    case AMQP_CONNECTION_BLOCKED_METHOD: {
        const amqp_connection_blocked_t *b = d;
        p->blocked = true;
        snprintf(p->down_reason, sizeof p->down_reason, "broker blocked publishing: %.*s",
                 (int)b->reason.len, (const char *)b->reason.bytes);
        ferry_log_warn(c, "publishing blocked by the broker reason=\"%.*s\"", (int)b->reason.len,
                       (const char *)b->reason.bytes);
        break;
    }
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        p->blocked = false;
        p->down_reason[0] = '\0';
        ferry_log_info(c, "publishing unblocked by the broker");
        break;
    case AMQP_BASIC_CANCEL_METHOD:
        famqp_lost(c, "the broker cancelled the consumer (queue deleted?)");
        break;
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *m = d;
        snprintf(why, sizeof why, "broker closed channel %u: %u %.*s", f->channel, m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        p->last_status = famqp_status(m->reply_code);
        /* a message refused for its size costs the publishing channel
         * only; anything else starts over with a new connection */
        if (f->channel == FAMQP_PUB_CH && m->reply_code == AMQP_PRECONDITION_FAILED &&
            famqp_refused_too_big(c, why) > 0 && famqp_reopen_pub(c, why) == FERRY_OK)
            break;
        famqp_lost(c, why);
        break;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *m = d;
        snprintf(why, sizeof why, "broker closed the connection: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        p->last_status = famqp_status(m->reply_code);
        amqp_connection_close_ok_t ok;
        amqp_send_method(p->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        famqp_lost(c, why);
        break;
    }
    default: break;
    }
}

static void famqp_on_content(struct ferry_conn *c, const amqp_frame_t *f)
{
    struct famqp *p = c->priv;
    if (f->channel == FAMQP_PUB_CH && p->return_active) {
        if (f->frame_type == AMQP_FRAME_HEADER) {
            const amqp_basic_properties_t *pr = f->payload.properties.decoded;
            p->return_body_left = f->payload.properties.body_size;
            size_t il = strlen(p->instance);
            if (pr && (pr->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && pr->message_id.len > il &&
                memcmp(pr->message_id.bytes, p->instance, il) == 0) {
                char num[24];
                size_t nl = pr->message_id.len - il;
                if (nl < sizeof num) {
                    memcpy(num, (const char *)pr->message_id.bytes + il, nl);
                    num[nl] = '\0';
                    p->return_seq = strtoull(num, NULL, 10);
                }
            }
            struct famqp_pending *e = famqp_pend_get(p, p->return_seq);
            if (e && !e->settled && p->cfg->unroutable == FAMQP_UNROUTABLE_DROP) {
                /* settled OK by its confirm, and counted (ferry_stats) */
                p->unroutable_dropped++;
            } else if (e && !e->settled) {
                e->status = FERRY_E_REJECTED;
                e->reason = "unroutable: no queue is bound for this destination and routing key "
                            "(mandatory); start the consumer first or bind a queue whose "
                            "binding_key matches it, or set [amqp] unroutable = drop-and-count "
                            "or dead-letter (with reject_destination)";
            }
        } else {
            p->return_body_left -= f->payload.body_fragment.len < p->return_body_left
                                       ? f->payload.body_fragment.len
                                       : p->return_body_left;
        }
        if (p->return_body_left == 0)
            p->return_active = false;
        return;
    }
    struct famqp_rmsg *r = p->asm_msg;
    if (f->channel != FAMQP_SUB_CH || !r)
        return;
    if (f->frame_type == AMQP_FRAME_HEADER) {
        if (famqp_rmsg_header(r, f) != 0) {
            famqp_lost(c, "out of memory receiving a message");
            return;
        }
        p->asm_have_header = true;
    } else if (p->asm_have_header) {
        size_t n = f->payload.body_fragment.len;
        if (n > r->m.body_len - r->body_got)
            n = r->m.body_len - r->body_got;
        memcpy((char *)(uintptr_t)r->m.body + r->body_got, f->payload.body_fragment.bytes, n);
        r->body_got += n;
    }
    if (p->asm_have_header && r->body_got == r->m.body_len) {
        p->asm_msg = NULL;
        famqp_ready_push(p, r);
    }
}

enum famqp_until {
    FAMQP_UNTIL_POLL,
    FAMQP_UNTIL_MSG,
    FAMQP_UNTIL_SETTLED,
    FAMQP_UNTIL_SEQ,
    FAMQP_UNTIL_BELOW_WINDOW
};

static bool famqp_done(struct famqp *p, enum famqp_until until, uint64_t seq)
{
    switch (until) {
    case FAMQP_UNTIL_MSG: return p->ready_head != NULL;
    case FAMQP_UNTIL_SETTLED: return famqp_unsettled(p) == 0;
    case FAMQP_UNTIL_SEQ: {
        struct famqp_pending *e = famqp_pend_get(p, seq);
        return !e || e->settled;
    }
    case FAMQP_UNTIL_BELOW_WINDOW: return p->unsettled < (size_t)p->cfg->max_inflight;
    default: return false;
    }
}

/* Read frames until the condition holds (FERRY_OK), the deadline passes
 * (FERRY_E_TIMEOUT; for UNTIL_POLL once nothing more is buffered, FERRY_OK)
 * or the connection fails (FERRY_E_NOCONN). deadline < 0: no limit. */
static int famqp_pump(struct ferry_conn *c, int64_t deadline, enum famqp_until until, uint64_t seq)
{
    struct famqp *p = c->priv;
    unsigned frames = 0;
    for (;;) {
        if (!p->up)
            return ferry_conn_fail(c, FERRY_E_NOCONN, "%s", p->down_reason);
        if (famqp_done(p, until, seq))
            return FERRY_OK;
        if (until == FAMQP_UNTIL_POLL && frames >= 4096)
            return FERRY_OK;
        int64_t left = 0;
        if (until != FAMQP_UNTIL_POLL) {
            left = deadline < 0 ? 1000 : deadline - famqp_now_ms();
            if (left < 0)
                left = 0;
        }
        /* Frames that arrived during a synchronous call (the stats
         * channel's passive declare) wait in rabbitmq-c's list, and each
         * release walks that whole list: releasing before every frame while
         * a prefetch's worth is queued cost ~3,000^2/2 steps a second. The
         * pools are released once the list is drained. */
        if (!amqp_frames_enqueued(p->conn))
            amqp_maybe_release_buffers(p->conn);
        amqp_frame_t f;
        struct timeval tv = famqp_tv(left);
        int rc = amqp_simple_wait_frame_noblock(p->conn, &f, &tv);
        if (rc == AMQP_STATUS_TIMEOUT) {
            if (until == FAMQP_UNTIL_POLL)
                return FERRY_OK;
            if (deadline >= 0 && famqp_now_ms() >= deadline)
                return ferry_conn_fail(c, FERRY_E_TIMEOUT, "timed out");
            continue;
        }
        if (rc != AMQP_STATUS_OK)
            return famqp_fail_rc(c, rc, "read from broker");
        frames++;
        if (f.frame_type == AMQP_FRAME_METHOD)
            famqp_on_method(c, &f);
        else if (f.frame_type == AMQP_FRAME_HEADER || f.frame_type == AMQP_FRAME_BODY)
            famqp_on_content(c, &f);
    }
}

/* ---------------------------------------------------------------------- */
/* Topology */

static amqp_table_t famqp_queue_args(struct famqp *p, amqp_table_entry_t *e, bool for_main,
                                     bool typed)
{
    const struct famqp_cfg *cfg = p->cfg;
    int n = 0;
    if (typed && cfg->queue_type != FAMQP_QUEUE_CLASSIC) {
        e[n].key = amqp_cstring_bytes("x-queue-type");
        e[n].value.kind = AMQP_FIELD_KIND_UTF8;
        e[n++].value.value.bytes = amqp_cstring_bytes(famqp_queue_types[cfg->queue_type]);
    }
    /* The reject queue has no limits: what reaches it was already refused
     * once, and a limit there would drop it unseen. */
    if (!for_main) {
        amqp_table_t t = {.num_entries = n, .entries = e};
        return t;
    }
    if (cfg->message_ttl > 0) {
        e[n].key = amqp_cstring_bytes("x-message-ttl");
        e[n].value.kind = AMQP_FIELD_KIND_I64;
        e[n++].value.value.i64 = cfg->message_ttl;
    }
    if (cfg->max_length > 0) {
        e[n].key = amqp_cstring_bytes("x-max-length");
        e[n].value.kind = AMQP_FIELD_KIND_I64;
        e[n++].value.value.i64 = cfg->max_length;
        e[n].key = amqp_cstring_bytes("x-overflow");
        e[n].value.kind = AMQP_FIELD_KIND_UTF8;
        e[n++].value.value.bytes = amqp_cstring_bytes(famqp_overflows[cfg->overflow]);
    }
    if (for_main && p->dlx) {
        e[n].key = amqp_cstring_bytes("x-dead-letter-exchange");
        e[n].value.kind = AMQP_FIELD_KIND_UTF8;
        e[n++].value.value.bytes = amqp_cstring_bytes(p->dlx);
        if (cfg->reject_destination) {
            e[n].key = amqp_cstring_bytes("x-dead-letter-routing-key");
            e[n].value.kind = AMQP_FIELD_KIND_UTF8;
            e[n++].value.value.bytes = amqp_cstring_bytes(cfg->reject_destination);
        }
    }
    amqp_table_t t = {.num_entries = n, .entries = e};
    return t;
}

static bool famqp_is_declared(struct famqp *p, const char *name)
{
    for (struct famqp_declared *d = p->declared; d; d = d->next)
        if (strcmp(d->name, name) == 0)
            return true;
    return false;
}

static int famqp_mark_declared(struct ferry_conn *c, const char *name)
{
    struct famqp *p = c->priv;
    struct famqp_declared *d = malloc(sizeof *d); /* freed in famqp_lost()/famqp_close() */
    char *s = strdup(name);                       /* freed with d */
    if (!d || !s) {
        free(d);
        free(s);
        return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
    }
    d->name = s;
    d->next = p->declared;
    p->declared = d;
    return FERRY_OK;
}

/* Declare the dead-letter exchange and the reject queue (once per connection). */
static int famqp_declare_reject(struct ferry_conn *c)
{
    struct famqp *p = c->priv;
    const struct famqp_cfg *cfg = p->cfg;
    if (!p->dlx || famqp_is_declared(p, "\001dlx"))
        return FERRY_OK;
    amqp_exchange_declare(p->conn, FAMQP_PUB_CH, amqp_cstring_bytes(p->dlx),
                          amqp_cstring_bytes("direct"), 0, 1, 0, 0, amqp_empty_table);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(p->conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return famqp_fail_reply(c, r, "declare dead-letter exchange");
    if (cfg->reject_destination) {
        amqp_table_entry_t e[4];
        amqp_queue_declare(p->conn, FAMQP_PUB_CH, amqp_cstring_bytes(cfg->reject_destination), 0,
                           cfg->queue_durable, 0, 0, famqp_queue_args(p, e, false, true));
        r = amqp_get_rpc_reply(p->conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            return famqp_fail_reply(c, r, "declare reject queue");
        amqp_queue_bind(p->conn, FAMQP_PUB_CH, amqp_cstring_bytes(cfg->reject_destination),
                        amqp_cstring_bytes(p->dlx), amqp_cstring_bytes(cfg->reject_destination),
                        amqp_empty_table);
        r = amqp_get_rpc_reply(p->conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            return famqp_fail_reply(c, r, "bind reject queue");
        if (cfg->routing == FAMQP_ROUTE_EXCHANGE) {
            /* in exchange routing a consumer of the reject destination reads
             * the exchange of that name: bind it to the dead-letter exchange
             * too, so rejects reach it as well as the reject queue */
            amqp_exchange_declare(p->conn, FAMQP_PUB_CH,
                                  amqp_cstring_bytes(cfg->reject_destination),
                                  amqp_cstring_bytes(famqp_exchange_types[cfg->exchange_type]), 0,
                                  cfg->queue_durable, 0, 0, amqp_empty_table);
            r = amqp_get_rpc_reply(p->conn);
            if (r.reply_type != AMQP_RESPONSE_NORMAL)
                return famqp_fail_reply(c, r, "declare reject exchange");
            amqp_exchange_bind(p->conn, FAMQP_PUB_CH, amqp_cstring_bytes(cfg->reject_destination),
                               amqp_cstring_bytes(p->dlx),
                               amqp_cstring_bytes(cfg->reject_destination), amqp_empty_table);
            r = amqp_get_rpc_reply(p->conn);
            if (r.reply_type != AMQP_RESPONSE_NORMAL)
                return famqp_fail_reply(c, r, "bind reject exchange");
        }
    }
    return famqp_mark_declared(c, "\001dlx");
}

/* Queue mode: declare queue dest; exchange mode: declare exchange dest. */
static int famqp_declare_dest(struct ferry_conn *c, const char *dest)
{
    struct famqp *p = c->priv;
    const struct famqp_cfg *cfg = p->cfg;
    if (famqp_is_declared(p, dest))
        return FERRY_OK;
    int st = famqp_declare_reject(c);
    if (st != FERRY_OK)
        return st;
    amqp_rpc_reply_t r;
    if (cfg->routing == FAMQP_ROUTE_QUEUE) {
        /* the reject queue is declared without dead-lettering (into itself)
         * by famqp_declare_reject(); the same arguments again, or the
         * broker refuses the declaration (406 inequivalent arg) */
        bool is_reject = cfg->reject_destination && !strcmp(dest, cfg->reject_destination);
        amqp_table_entry_t e[6];
        amqp_queue_declare(p->conn, FAMQP_PUB_CH, amqp_cstring_bytes(dest), 0, cfg->queue_durable,
                           0, 0, famqp_queue_args(p, e, !is_reject, true));
    } else {
        amqp_table_entry_t ae[1];
        amqp_table_t args = amqp_empty_table;
        char alt[300];
        if (cfg->unroutable == FAMQP_UNROUTABLE_DLX) {
            /* unroutable messages go to DEST.unroutable, a fanout exchange
             * feeding reject_destination (RabbitMQ's alternate exchange) */
            snprintf(alt, sizeof alt, "%s.unroutable", dest);
            amqp_exchange_declare(p->conn, FAMQP_PUB_CH, amqp_cstring_bytes(alt),
                                  amqp_cstring_bytes("fanout"), 0, cfg->queue_durable, 0, 0,
                                  amqp_empty_table);
            r = amqp_get_rpc_reply(p->conn);
            if (r.reply_type != AMQP_RESPONSE_NORMAL)
                return famqp_fail_reply(c, r, "declare alternate exchange");
            amqp_queue_bind(p->conn, FAMQP_PUB_CH, amqp_cstring_bytes(cfg->reject_destination),
                            amqp_cstring_bytes(alt), amqp_empty_bytes, amqp_empty_table);
            r = amqp_get_rpc_reply(p->conn);
            if (r.reply_type != AMQP_RESPONSE_NORMAL)
                return famqp_fail_reply(c, r, "bind reject queue to the alternate exchange");
            ae[0].key = amqp_cstring_bytes("alternate-exchange");
            ae[0].value.kind = AMQP_FIELD_KIND_UTF8;
            ae[0].value.value.bytes = amqp_cstring_bytes(alt);
            args.num_entries = 1;
            args.entries = ae;
        }
        amqp_exchange_declare(p->conn, FAMQP_PUB_CH, amqp_cstring_bytes(dest),
                              amqp_cstring_bytes(famqp_exchange_types[cfg->exchange_type]), 0,
                              cfg->queue_durable, 0, 0, args);
    }
    r = amqp_get_rpc_reply(p->conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return famqp_fail_reply(
            c, r, cfg->routing == FAMQP_ROUTE_QUEUE ? "declare queue" : "declare exchange");
    return famqp_mark_declared(c, dest);
}

/* Consumer side: queue, bindings, qos and basic.consume on FAMQP_SUB_CH. */
static int famqp_setup_consumer(struct ferry_conn *c)
{
    struct famqp *p = c->priv;
    const struct famqp_cfg *cfg = p->cfg;
    amqp_rpc_reply_t r;
    int st = famqp_declare_dest(c, p->sub_dest);
    if (st != FERRY_OK)
        return st;
    amqp_channel_open(p->conn, FAMQP_SUB_CH);
    r = amqp_get_rpc_reply(p->conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return famqp_fail_reply(c, r, "open consumer channel");
    const char *queue = p->sub_dest;
    if (cfg->routing == FAMQP_ROUTE_EXCHANGE) {
        bool named = p->sub_group && *p->sub_group;
        amqp_table_entry_t e[6];
        amqp_queue_declare_ok_t *ok = amqp_queue_declare(
            p->conn, FAMQP_SUB_CH, named ? amqp_cstring_bytes(p->sub_queue) : amqp_empty_bytes, 0,
            named ? cfg->queue_durable : 0, named ? 0 : 1, named ? 0 : 1,
            famqp_queue_args(p, e, true, named));
        r = amqp_get_rpc_reply(p->conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL || !ok)
            return famqp_fail_reply(c, r, "declare subscriber queue");
        if (!named) {
            free(p->sub_queue);
            p->sub_queue = strndup(ok->queue.bytes, ok->queue.len); /* freed in famqp_close() */
            if (!p->sub_queue)
                return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
        }
        queue = p->sub_queue;
        /* binding_key is a comma-separated list: one binding each */
        const char *k = cfg->binding_key;
        bool first = true;
        for (;;) {
            while (*k == ' ' || *k == ',')
                k++;
            if (!*k && !first)
                break;
            first = false;
            size_t kl = strcspn(k, ",");
            while (kl && k[kl - 1] == ' ')
                kl--;
            amqp_queue_bind(p->conn, FAMQP_SUB_CH, amqp_cstring_bytes(queue),
                            amqp_cstring_bytes(p->sub_dest), famqp_bytes(k, kl), amqp_empty_table);
            r = amqp_get_rpc_reply(p->conn);
            if (r.reply_type != AMQP_RESPONSE_NORMAL)
                return famqp_fail_reply(c, r, "bind subscriber queue");
            ferry_log_debug(c, "bound queue=%s exchange=%s key=%.*s", queue, p->sub_dest, (int)kl,
                            k);
            k += strcspn(k, ",");
        }
    }
    if (cfg->prefetch > 0) {
        amqp_basic_qos(p->conn, FAMQP_SUB_CH, 0, (uint16_t)cfg->prefetch, 0);
        r = amqp_get_rpc_reply(p->conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            return famqp_fail_reply(c, r, "set prefetch");
    }
    amqp_basic_consume(p->conn, FAMQP_SUB_CH, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    r = amqp_get_rpc_reply(p->conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        /* RabbitMQ answers the declare of a quorum queue that another client
         * is declaring at the same moment as soon as the queue exists, before
         * its Raft server has started; a basic.consume in that window closes
         * the connection with 541 INTERNAL_ERROR ({error,noproc}).
         * famqp_subscribe() starts over when it sees this flag. */
        p->consume_unstarted =
            cfg->queue_type == FAMQP_QUEUE_QUORUM &&
            r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
            r.reply.id == AMQP_CONNECTION_CLOSE_METHOD &&
            ((const amqp_connection_close_t *)r.reply.decoded)->reply_code == AMQP_INTERNAL_ERROR;
        return famqp_fail_reply(c, r, "consume");
    }
    p->sub_open = true;
    ferry_log_debug(c, "consuming queue=%s", queue);
    return FERRY_OK;
}

/* ---------------------------------------------------------------------- */
/* Connecting */

/* Set up the TLS side of an amqps:// socket: CA, peer and host name
 * checks, client certificate. Messages name files, never key contents. */
static int famqp_tls_setup(struct ferry_conn *c, amqp_socket_t *sock)
{
    const struct famqp_cfg *cfg = ((struct famqp *)c->priv)->cfg;
    int rc;
    amqp_ssl_socket_set_verify_peer(sock, cfg->tls_verify_peer);
    amqp_ssl_socket_set_verify_hostname(sock, cfg->tls_verify_hostname);
    if (cfg->tls_ca && (rc = amqp_ssl_socket_set_cacert(sock, cfg->tls_ca)) != AMQP_STATUS_OK)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "tls_ca %s: cannot load CA certificates: %s",
                               cfg->tls_ca, amqp_error_string2(rc));
    if (cfg->tls_cert &&
        (rc = amqp_ssl_socket_set_key(sock, cfg->tls_cert, cfg->tls_key)) != AMQP_STATUS_OK)
        return ferry_conn_fail(c, FERRY_E_CONFIG,
                               "tls_cert %s: cannot load the client "
                               "certificate or its tls_key: %s",
                               cfg->tls_cert, amqp_error_string2(rc));
    return FERRY_OK;
}

/* Why a TLS handshake failed, in words an operator can act on. */
static const char *famqp_tls_hint(int rc)
{
    switch (rc) {
    case AMQP_STATUS_SSL_PEER_VERIFY_FAILED:
        return " (the broker's certificate is not signed by a CA in tls_ca)";
    case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
        return " (the broker's certificate does not name the host of the URL)";
    case AMQP_STATUS_SSL_CONNECTION_FAILED:
    case AMQP_STATUS_SSL_ERROR:
        return " (TLS handshake failed: is this a TLS port, and does the broker accept "
               "this client's certificate?)";
    default: return "";
    }
}

static int famqp_connect_one(struct ferry_conn *c, const struct famqp_url *u)
{
    struct famqp *p = c->priv;
    const struct famqp_cfg *cfg = p->cfg;
    amqp_connection_state_t conn =
        amqp_new_connection(); /* destroyed in famqp_lost()/famqp_close() */
    if (!conn)
        return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
    /* owned by conn */
    amqp_socket_t *sock = u->ssl ? amqp_ssl_socket_new(conn) : amqp_tcp_socket_new(conn);
    if (!sock) {
        amqp_destroy_connection(conn);
        return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
    }
    int tst;
    if (u->ssl && (tst = famqp_tls_setup(c, sock)) != FERRY_OK) {
        amqp_destroy_connection(conn);
        return tst;
    }
    struct timeval ctv = famqp_tv(cfg->connect_timeout);
    int rc = amqp_socket_open_noblock(sock, u->host, u->port, &ctv);
    if (rc != AMQP_STATUS_OK) {
        amqp_destroy_connection(conn);
        return ferry_conn_fail(
            c, famqp_status(rc) == FERRY_E_TIMEOUT ? FERRY_E_NOCONN : famqp_status(rc),
            "connect %s: %s%s", u->masked, amqp_error_string2(rc),
            u->ssl ? famqp_tls_hint(rc) : "");
    }
    amqp_set_handshake_timeout(conn, &ctv);
    struct timeval stv = famqp_tv(cfg->socket_timeout);
    amqp_set_rpc_timeout(conn, &stv);

    amqp_table_entry_t caps[5], props[2];
    const char *capnames[] = {"publisher_confirms", "basic.nack", "connection.blocked",
                              "consumer_cancel_notify", "authentication_failure_close"};
    for (int i = 0; i < 5; i++) {
        caps[i].key = amqp_cstring_bytes(capnames[i]);
        caps[i].value.kind = AMQP_FIELD_KIND_BOOLEAN;
        caps[i].value.value.boolean = 1;
    }
    props[0].key = amqp_cstring_bytes("capabilities");
    props[0].value.kind = AMQP_FIELD_KIND_TABLE;
    props[0].value.value.table.num_entries = 5;
    props[0].value.value.table.entries = caps;
    props[1].key = amqp_cstring_bytes("connection_name");
    props[1].value.kind = AMQP_FIELD_KIND_UTF8;
    props[1].value.value.bytes = amqp_cstring_bytes(c->client_id ? c->client_id : "ferry");
    amqp_table_t tprops = {.num_entries = 2, .entries = props};
    const char *user = cfg->username ? cfg->username : u->user;
    const char *pass = cfg->password ? cfg->password : u->password;
    int hb = (int)((cfg->heartbeat + 999) / 1000);
    /* EXTERNAL sends an authorization identity that RabbitMQ ignores (the
     * user is the certificate's name), but rabbitmq-c 0.11 fails with
     * "could not allocate memory" on an empty one: send the user name. */
    amqp_rpc_reply_t r =
        cfg->auth == FAMQP_AUTH_EXTERNAL
            ? amqp_login_with_properties(conn, u->vhost, 0, (int)cfg->frame_max, hb, &tprops,
                                         AMQP_SASL_METHOD_EXTERNAL, *user ? user : "-")
            : amqp_login_with_properties(conn, u->vhost, 0, (int)cfg->frame_max, hb, &tprops,
                                         AMQP_SASL_METHOD_PLAIN, user, pass);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        char buf[256];
        int st = famqp_reply_status(r, buf, sizeof buf);
        amqp_destroy_connection(conn);
        if (st == FERRY_E_TIMEOUT)
            st = FERRY_E_NOCONN;
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_CONNECTION_CLOSED)
            st = FERRY_E_CONFIG; /* RabbitMQ drops the socket on bad credentials */
        if (cfg->auth == FAMQP_AUTH_EXTERNAL)
            return ferry_conn_fail(
                c, st,
                "login %s vhost \"%s\" with the certificate of "
                "tls_cert %s (auth = external): %s%s",
                u->masked, u->vhost, cfg->tls_cert, buf,
                st == FERRY_E_CONFIG
                    ? " (does the broker offer EXTERNAL, and is there a user named "
                      "as the certificate's subject?)"
                    : "");
        /* the user name is a secret like the password: not shown */
        return ferry_conn_fail(c, st, "login %s vhost \"%s\": %s%s", u->masked, u->vhost, buf,
                               *u->vhost ? ""
                                         : " (the empty vhost comes from a trailing slash: write "
                                           "amqp://host:port or amqp://host:port/%2f)");
    }
    amqp_channel_open(conn, FAMQP_PUB_CH);
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL && cfg->confirm) {
        amqp_confirm_select(conn, FAMQP_PUB_CH);
        r = amqp_get_rpc_reply(conn);
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        char buf[256];
        int st = famqp_reply_status(r, buf, sizeof buf);
        amqp_destroy_connection(conn);
        return ferry_conn_fail(c, st == FERRY_OK ? FERRY_E_NOCONN : st, "open channel on %s: %s",
                               u->masked, buf);
    }
    p->conn = conn;
    p->up = true;
    p->blocked = false;
    p->seq_offset = p->next_seq - 1; /* the new channel counts from 1 */
    p->down_reason[0] = '\0';
    return FERRY_OK;
}

/* Try each URL once, starting after the last one used. */
static int famqp_connect(struct ferry_conn *c)
{
    struct famqp *p = c->priv;
    int st = FERRY_E_NOCONN;
    for (size_t i = 0; i < p->n_urls; i++) {
        size_t k = (p->url_next + i) % p->n_urls;
        st = famqp_connect_one(c, &p->urls[k]);
        if (st == FERRY_OK) {
            p->url_next = k;
            return FERRY_OK;
        }
        if (st == FERRY_E_CONFIG || st == FERRY_E_FATAL)
            break;
    }
    p->url_next = (p->url_next + 1) % p->n_urls;
    return st;
}

/* Make sure the connection is up: reconnect when the backoff allows it. */
static int famqp_ensure(struct ferry_conn *c)
{
    struct famqp *p = c->priv;
    if (p->up)
        return FERRY_OK;
    int64_t now = famqp_now_ms();
    if (now < p->next_attempt_ms)
        return ferry_conn_fail(c, FERRY_E_NOCONN,
                               "not connected (%s); reconnecting in %" PRId64 " ms", p->down_reason,
                               p->next_attempt_ms - now);
    int st = famqp_connect(c);
    if (st == FERRY_OK && p->sub_dest)
        st = famqp_setup_consumer(c);
    if (st != FERRY_OK) {
        if (p->up)
            return st; /* consumer setup failed and already lost the connection */
        p->backoff_ms = p->backoff_ms * 2;
        if (p->backoff_ms > FAMQP_BACKOFF_MAX_MS)
            p->backoff_ms = FAMQP_BACKOFF_MAX_MS;
        p->next_attempt_ms = famqp_now_ms() + p->backoff_ms / 2 + rand() % (p->backoff_ms / 2 + 1);
        famqp_copy(p->down_reason, sizeof p->down_reason, c->err);
        ferry_log_warn(c, "reconnect failed error=\"%s\" retry_in=%" PRId64 "ms", c->err,
                       p->next_attempt_ms - famqp_now_ms());
        return st == FERRY_E_CONFIG || st == FERRY_E_FATAL ? st : FERRY_E_NOCONN;
    }
    p->backoff_ms = FAMQP_BACKOFF_MIN_MS;
    p->h.reconnects++;
    ferry_log_info(c, "reconnected url=%s", p->urls[p->url_next].masked);
    return FERRY_OK;
}

/* ---------------------------------------------------------------------- */
/* Operations */

static void famqp_free(struct famqp *p)
{
    if (p->conn)
        amqp_destroy_connection(p->conn);
    while (p->declared) {
        struct famqp_declared *d = p->declared;
        p->declared = d->next;
        free(d->name);
        free(d);
    }
    while (p->ready_head) {
        struct famqp_rmsg *r = p->ready_head;
        p->ready_head = r->next;
        famqp_rmsg_free(r);
    }
    while (p->lent.next && p->lent.next != &p->lent) {
        struct famqp_rmsg *r = p->lent.next;
        famqp_lent_unlink(r);
        famqp_rmsg_free(r);
    }
    famqp_rmsg_free(p->asm_msg);
    famqp_urls_free(p->urls, p->n_urls);
    free(p->pend);
    free(p->tags);
    free(p->dlx);
    free(p->sub_dest);
    free(p->sub_group);
    free(p->sub_queue);
    free(p);
}

static int famqp_open(struct ferry_conn *c)
{
    const struct famqp_cfg *cfg = c->cfg;
    struct famqp *p = calloc(1, sizeof *p); /* freed in famqp_close() */
    if (!p)
        return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
    p->cfg = cfg;
    p->lent.next = p->lent.prev = &p->lent;
    p->backoff_ms = FAMQP_BACKOFF_MIN_MS;
    p->next_seq = 1;
    if (famqp_urls_parse(cfg->url, &p->urls, &p->n_urls, c->err, sizeof c->err) != 0) {
        famqp_free(p);
        return FERRY_E_CONFIG;
    }
    size_t n_tls = 0;
    for (size_t i = 0; i < p->n_urls; i++)
        n_tls += p->urls[i].ssl;
    const char *bad = NULL;
    if (!cfg->tls_cert != !cfg->tls_key)
        bad = "tls_cert and tls_key go together";
    else if (cfg->auth == FAMQP_AUTH_EXTERNAL && (!cfg->tls_cert || n_tls < p->n_urls))
        bad = "auth = external needs amqps:// URLs and a client certificate (tls_cert, tls_key)";
    else if (cfg->unroutable == FAMQP_UNROUTABLE_DLX && !cfg->reject_destination)
        bad = "unroutable = dead-letter needs reject_destination (the queue that collects them)";
    else if (cfg->overflow == FAMQP_REJECT_PUBLISH_DLX && cfg->max_length > 0 &&
             !cfg->reject_destination && !cfg->dead_letter_exchange)
        bad = "overflow = reject-publish-dlx needs reject_destination or dead_letter_exchange";
    else if (cfg->queue_type != FAMQP_QUEUE_CLASSIC && !cfg->queue_durable)
        bad = "queue_type = quorum or stream declares durable queues only: set queue_durable = "
              "true";
    else if (cfg->queue_type == FAMQP_QUEUE_QUORUM && cfg->max_length > 0 &&
             cfg->overflow == FAMQP_REJECT_PUBLISH_DLX)
        bad = "queue_type = quorum has no overflow = reject-publish-dlx: use reject-publish or "
              "drop-head";
    else if (cfg->queue_type == FAMQP_QUEUE_STREAM &&
             (cfg->message_ttl > 0 || cfg->max_length > 0 || cfg->reject_destination ||
              cfg->dead_letter_exchange))
        bad = "queue_type = stream has no message_ttl, max_length or dead-lettering "
              "(reject_destination, dead_letter_exchange)";
    if (bad) {
        famqp_free(p);
        return ferry_conn_fail(c, FERRY_E_CONFIG, "%s", bad);
    }
    if (cfg->reject_destination || cfg->dead_letter_exchange) {
        p->dlx = strdup(cfg->dead_letter_exchange ? cfg->dead_letter_exchange
                                                  : "ferry.dlx"); /* freed in famqp_close() */
        if (!p->dlx) {
            famqp_free(p);
            return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    srand((unsigned)(ts.tv_nsec ^ getpid()));
    snprintf(p->instance, sizeof p->instance, "%08lx%04x.", (unsigned long)(ts.tv_nsec ^ ts.tv_sec),
             (unsigned)getpid() & 0xffff);
    c->priv = p;

    if (cfg->routing == FAMQP_ROUTE_QUEUE)
        c->caps &= ~(uint32_t)FERRY_CAP_FANOUT;
    if (!cfg->confirm)
        c->caps &= ~(uint32_t)FERRY_CAP_CONFIRMS;
    if (!cfg->persistent || !cfg->queue_durable)
        c->caps &= ~(uint32_t)FERRY_CAP_DURABLE;
    if (!p->dlx)
        c->caps &= ~(uint32_t)FERRY_CAP_DEADLETTER;

    /* configurations that can lose messages, said once at start-up */
    if (cfg->max_length > 0 && cfg->overflow == FAMQP_DROP_HEAD && !p->dlx)
        ferry_log_warn(c,
                       "overflow = drop-head without reject_destination: a queue holding "
                       "max_length=%" PRId64 " messages drops its oldest, and nobody is told; set "
                       "overflow = reject-publish, or reject_destination to keep them",
                       cfg->max_length);
    if (cfg->message_ttl > 0 && !p->dlx)
        ferry_log_warn(c,
                       "message_ttl=%" PRId64 "ms without reject_destination: messages older "
                       "than that are dropped unread; set reject_destination to keep them",
                       cfg->message_ttl);
    if (cfg->routing == FAMQP_ROUTE_EXCHANGE && !(cfg->mandatory && cfg->confirm))
        ferry_log_warn(c, "exchange routing without mandatory and confirm: a message no queue is "
                          "bound for is dropped by the broker, and nobody is told");
    if (cfg->routing == FAMQP_ROUTE_EXCHANGE && cfg->unroutable == FAMQP_UNROUTABLE_DROP)
        ferry_log_info(c, "unroutable = drop-and-count: messages no queue is bound for are "
                          "dropped and counted in ferry_messages_dropped_total");

    if (n_tls && !cfg->tls_verify_peer)
        ferry_log_warn(c, "TLS without certificate verification: anyone on the path can "
                          "pose as the broker (tls_verify_peer = false)");
    else if (n_tls && !cfg->tls_verify_hostname)
        ferry_log_warn(c, "TLS without host name verification: any certificate from tls_ca "
                          "is accepted (tls_verify_hostname = false)");
    if (n_tls < p->n_urls && (cfg->tls_ca || cfg->tls_cert))
        ferry_log_warn(c,
                       "tls_* options apply only to amqps:// URLs; %zu of %zu URLs are "
                       "plain amqp://",
                       p->n_urls - n_tls, p->n_urls);

    int st = famqp_connect(c);
    if (st != FERRY_OK) {
        c->priv = NULL;
        famqp_free(p);
        return st;
    }
    ferry_log_info(c, "connected url=%s rabbitmq-c=%s routing=%s", p->urls[p->url_next].masked,
                   amqp_version(), cfg->routing == FAMQP_ROUTE_QUEUE ? "queue" : "exchange");
    return FERRY_OK;
}

static void famqp_close(struct ferry_conn *c)
{
    struct famqp *p = c->priv;
    if (!p)
        return;
    if (p->up) {
        famqp_acks_send(c);
        if (p->up) {
            amqp_channel_close(p->conn, FAMQP_PUB_CH, AMQP_REPLY_SUCCESS);
            amqp_connection_close(p->conn, AMQP_REPLY_SUCCESS);
        }
    }
    famqp_free(p);
    c->priv = NULL;
}

/* "INSTANCE" followed by seq in decimal, as snprintf("%s%" PRIu64) would
 * write it (cut at len), without its cost on every publish. */
static void famqp_msgid(char *buf, size_t len, const char *instance, uint64_t seq)
{
    char digits[20];
    size_t k = 0, il = strlen(instance);
    do {
        digits[k++] = (char)('0' + seq % 10);
        seq /= 10;
    } while (seq);
    size_t w = 0;
    for (size_t i = 0; i < il && w + 1 < len; i++)
        buf[w++] = instance[i];
    while (k && w + 1 < len)
        buf[w++] = digits[--k];
    buf[w] = '\0';
}

static int famqp_publish_raw(struct ferry_conn *c, const struct ferry_msg *m, const char *exchange,
                             const char *rkey, const char *extra_name, const char *extra_val,
                             bool internal)
{
    struct famqp *p = c->priv;
    const struct famqp_cfg *cfg = p->cfg;
    size_t nh = m->n_headers + 2;
    amqp_table_entry_t stack[16];
    amqp_table_entry_t *e = nh <= 16 ? stack : malloc(nh * sizeof *e); /* freed below */
    if (!e)
        return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
    int n = 0;
    for (size_t i = 0; i < m->n_headers; i++) {
        e[n].key = amqp_cstring_bytes(m->headers[i].name);
        e[n].value.kind = AMQP_FIELD_KIND_UTF8;
        e[n++].value.value.bytes = famqp_bytes(m->headers[i].value, m->headers[i].value_len);
    }
    if (cfg->routing == FAMQP_ROUTE_QUEUE && m->key && m->key_len) {
        e[n].key = amqp_cstring_bytes(FAMQP_KEY_HEADER);
        e[n].value.kind = AMQP_FIELD_KIND_UTF8;
        e[n++].value.value.bytes = famqp_bytes(m->key, m->key_len);
    }
    if (extra_name) {
        e[n].key = amqp_cstring_bytes(extra_name);
        e[n].value.kind = AMQP_FIELD_KIND_UTF8;
        e[n++].value.value.bytes = amqp_cstring_bytes(extra_val);
    }
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = cfg->persistent ? 2 : 1;
    if (n > 0) {
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
        props.headers.num_entries = n;
        props.headers.entries = e;
    }
    char msgid[48];
    bool mandatory = cfg->mandatory && cfg->confirm;
    if (mandatory) {
        famqp_msgid(msgid, sizeof msgid, p->instance, p->next_seq);
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = amqp_cstring_bytes(msgid);
    }
    int rc = amqp_basic_publish(p->conn, FAMQP_PUB_CH, amqp_cstring_bytes(exchange),
                                amqp_cstring_bytes(rkey), mandatory, 0, &props,
                                famqp_bytes(m->body, m->body_len));
    if (e != stack)
        free(e);
    if (rc != AMQP_STATUS_OK) {
        if (rc == AMQP_STATUS_TABLE_TOO_BIG)
            return ferry_conn_fail(c, FERRY_E_TOOBIG, "publish to %s: headers too big", m->dest);
        famqp_fail_rc(c, rc, "publish");
        return FERRY_E_NOCONN;
    }
    if (cfg->confirm) {
        if (famqp_pend_push(p, m->tag, internal, m->body_len) != 0) {
            famqp_lost(c, "out of memory tracking confirms");
            return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
        }
        p->next_seq++;
    }
    return FERRY_OK;
}

static int famqp_publish(struct ferry_conn *c, const struct ferry_msg *m)
{
    struct famqp *p = c->priv;
    const struct famqp_cfg *cfg = p->cfg;
    famqp_emit(c);
    if (!m->dest || !*m->dest)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "publish: no destination");
    if ((int64_t)m->body_len > cfg->max_message_size)
        return ferry_conn_fail(c, FERRY_E_TOOBIG,
                               "message of %zu bytes exceeds max_message_size %" PRId64,
                               m->body_len, cfg->max_message_size);
    int st = famqp_ensure(c);
    if (st != FERRY_OK)
        return st;
    if (p->blocked) {
        famqp_pump(c, 0, FAMQP_UNTIL_POLL, 0);
        famqp_emit(c);
        if (p->blocked)
            return ferry_conn_fail(c, FERRY_E_AGAIN, "%s", p->down_reason);
        if (!p->up)
            return FERRY_E_NOCONN;
    }
    if (cfg->confirm && p->unsettled >= (size_t)cfg->max_inflight) {
        st = famqp_pump(c, famqp_now_ms() + cfg->socket_timeout, FAMQP_UNTIL_BELOW_WINDOW, 0);
        famqp_emit(c);
        if (st == FERRY_E_TIMEOUT)
            return ferry_conn_fail(c, FERRY_E_AGAIN, "%zu messages await confirms (max_inflight)",
                                   p->unsettled);
        if (st != FERRY_OK)
            return st;
    }
    st = famqp_declare_dest(c, m->dest);
    if (st != FERRY_OK)
        return st;
    char keybuf[256];
    const char *exchange = "", *rkey = m->dest;
    if (cfg->routing == FAMQP_ROUTE_EXCHANGE) {
        exchange = m->dest;
        if (m->key && m->key_len) {
            if (m->key_len >= sizeof keybuf)
                return ferry_conn_fail(c, FERRY_E_CONFIG, "routing key longer than 255 bytes");
            memcpy(keybuf, m->key, m->key_len);
            keybuf[m->key_len] = '\0';
            rkey = keybuf;
        }
    }
    st = famqp_publish_raw(c, m, exchange, rkey, NULL, NULL, false);
    if (st != FERRY_OK)
        return st;
    p->h.published++;
    if (!cfg->confirm) {
        p->h.confirmed++;
        ferry_conn_delivered(c, m->tag, FERRY_OK, NULL);
    } else if (++p->since_poll >= FAMQP_POLL_EVERY || amqp_data_in_buffer(p->conn)) {
        p->since_poll = 0;
        famqp_pump(c, 0, FAMQP_UNTIL_POLL, 0);
        famqp_emit(c);
    }
    return FERRY_OK;
}

static int famqp_flush(struct ferry_conn *c, int timeout_ms)
{
    struct famqp *p = c->priv;
    int st = FERRY_OK;
    if (timeout_ms == 0 && famqp_unsettled(p) == 0) {
        /* An idle publisher (the HTTP server between requests) polls here:
         * read what the broker sent (connection.close when the node
         * stops, heartbeats; rabbitmq-c sends ours and notices missing
         * ones), so health turns unavailable without a failed request,
         * and reconnect when the backoff allows, so it turns back. */
        if (p->up)
            famqp_pump(c, 0, FAMQP_UNTIL_POLL, 0);
        else if (famqp_now_ms() >= p->next_attempt_ms)
            famqp_ensure(c);
    }
    if (p->up)
        famqp_acks_send(c);
    if (p->up && famqp_unsettled(p) > 0) {
        int64_t deadline = timeout_ms < 0 ? -1 : famqp_now_ms() + timeout_ms;
        st = famqp_pump(c, deadline, timeout_ms == 0 ? FAMQP_UNTIL_POLL : FAMQP_UNTIL_SETTLED, 0);
    }
    bool lost = famqp_unsettled(p) == 0 && !p->up && p->pend_len > 0;
    famqp_emit(c);
    if (famqp_unsettled(p) > 0)
        return ferry_conn_fail(c, st == FERRY_E_NOCONN ? st : FERRY_E_TIMEOUT,
                               "%zu messages not yet confirmed", famqp_unsettled(p));
    if (lost || st == FERRY_E_NOCONN)
        return ferry_conn_fail(c, FERRY_E_NOCONN, "connection lost: %s", p->down_reason);
    return FERRY_OK;
}

static int famqp_subscribe(struct ferry_conn *c, const char *dest, const char *group)
{
    struct famqp *p = c->priv;
    const struct famqp_cfg *cfg = p->cfg;
    if (!dest || !*dest)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "subscribe: no destination");
    if (p->sub_dest)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "subscribe: already subscribed to %s",
                               p->sub_dest);
    p->sub_dest = strdup(dest);                /* freed in famqp_close() */
    p->sub_group = strdup(group ? group : ""); /* freed in famqp_close() */
    if (cfg->routing == FAMQP_ROUTE_EXCHANGE && group && *group) {
        size_t n = strlen(dest) + strlen(group) + 2;
        p->sub_queue = malloc(n); /* freed in famqp_close() */
        if (p->sub_queue)
            snprintf(p->sub_queue, n, "%s.%s", dest, group);
    } else {
        p->sub_queue = strdup(dest); /* freed in famqp_close() */
    }
    if (!p->sub_dest || !p->sub_group || !p->sub_queue)
        return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
    int st = famqp_ensure(c);
    if (st == FERRY_OK && !p->sub_open)
        st = famqp_setup_consumer(c);
    /* A quorum queue declared by another client at the same moment (a
     * producer started with the aggregator) may not have started yet: its
     * Raft server is up within milliseconds, so connect again and retry,
     * waiting 50 ms, 100 ms, ... then 1 s each time (8.55 s in all), instead
     * of failing the subscription. */
    for (int i = 0; st != FERRY_OK && p->consume_unstarted && i < FAMQP_CONSUME_RETRIES; i++) {
        p->consume_unstarted = false;
        ferry_log_info(c, "quorum queue %s not started yet (541 on basic.consume); consuming again",
                       p->sub_queue);
        long ms = i < 5 ? 50L << i : 1000L;
        nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L}, NULL);
        st = famqp_connect(c);
        if (st == FERRY_OK)
            st = famqp_setup_consumer(c);
        if (st == FERRY_OK)
            p->backoff_ms = FAMQP_BACKOFF_MIN_MS;
    }
    p->consume_unstarted = false;
    return st;
}

static int famqp_receive(struct ferry_conn *c, struct ferry_msg **out, size_t max, size_t *n,
                         int timeout_ms)
{
    struct famqp *p = c->priv;
    *n = 0;
    if (!p->sub_dest)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "receive before subscribe");
    int64_t deadline = timeout_ms < 0 ? -1 : famqp_now_ms() + timeout_ms;
    famqp_emit(c);
    if (!p->up) {
        /* wait for the next reconnect attempt if it falls within our time */
        int64_t now = famqp_now_ms();
        if (p->next_attempt_ms > now && (deadline < 0 || p->next_attempt_ms <= deadline))
            usleep((useconds_t)(p->next_attempt_ms - now) * 1000);
        int st = famqp_ensure(c);
        if (st != FERRY_OK)
            return st;
    }
    int st = famqp_acks_send(c);
    if (st != FERRY_OK)
        return st;
    if (!p->ready_head) {
        st = famqp_pump(c, deadline, FAMQP_UNTIL_MSG, 0);
        famqp_emit(c);
        if (st != FERRY_OK)
            return st;
    }
    /* fill the batch with what is already buffered, without waiting */
    if (max > 1 && p->up)
        famqp_pump(c, 0, FAMQP_UNTIL_POLL, 0);
    if (!p->ready_head) /* the connection failed while polling */
        return ferry_conn_fail(c, FERRY_E_NOCONN, "%s", p->down_reason);
    while (*n < max && p->ready_head) {
        struct famqp_rmsg *r = p->ready_head;
        if (famqp_tags_push(p, r->dtag) != 0) {
            if (*n > 0)
                break;
            return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
        }
        p->ready_head = r->next;
        if (!p->ready_head)
            p->ready_tail = NULL;
        r->prev = &p->lent;
        r->next = p->lent.next;
        p->lent.next->prev = r;
        p->lent.next = r;
        out[(*n)++] = &r->m;
        p->h.received++;
    }
    return FERRY_OK;
}

static int famqp_ack(struct ferry_conn *c, struct ferry_msg *m)
{
    struct famqp *p = c->priv;
    struct famqp_rmsg *r = (struct famqp_rmsg *)m;
    bool stale = r->gen != p->gen || !p->up;
    uint64_t dtag = r->dtag;
    famqp_lent_unlink(r);
    famqp_rmsg_free(r);
    if (stale)
        return ferry_conn_fail(c, FERRY_E_NOCONN,
                               "ack after connection loss: the broker redelivers the message");
    struct famqp_tagrec *t = famqp_tags_find(p, dtag);
    if (t && t->state == FAMQP_LENT) {
        t->state = FAMQP_ACKED;
        p->acks_waiting++;
    }
    /* acks wait for the next receive/flush/close to go out coalesced; keep
     * the window bounded so the broker keeps sending with a large prefetch */
    if (p->acks_waiting >= 256 ||
        (p->cfg->prefetch > 0 && p->acks_waiting * 2 >= (size_t)p->cfg->prefetch))
        return famqp_acks_send(c);
    return FERRY_OK;
}

/* Settle dtag with a basic.nack/reject right away (not coalesced). */
static int famqp_settle_now(struct ferry_conn *c, uint64_t dtag, bool requeue)
{
    struct famqp *p = c->priv;
    int st = famqp_acks_send(c);
    if (st != FERRY_OK)
        return st;
    int rc = amqp_basic_nack(p->conn, FAMQP_SUB_CH, dtag, 0, requeue);
    if (rc != AMQP_STATUS_OK)
        return famqp_fail_rc(c, rc, "nack");
    struct famqp_tagrec *t = famqp_tags_find(p, dtag);
    if (t)
        t->state = FAMQP_DONE;
    return FERRY_OK;
}

/* Copy r to the reject destination with the reason attached and wait for
 * the broker to confirm the copy. */
static int famqp_reject_copy(struct ferry_conn *c, struct famqp_rmsg *r, const char *reason)
{
    struct famqp *p = c->priv;
    int st = famqp_declare_reject(c);
    if (st != FERRY_OK)
        return st;
    uint64_t seq = p->next_seq;
    struct ferry_msg copy = r->m;
    copy.tag = 0;
    /* exchange routing: through the dead-letter exchange, which feeds both
     * the reject queue and the reject exchange (famqp_declare_reject()) */
    const char *via = p->cfg->routing == FAMQP_ROUTE_EXCHANGE ? p->dlx : "";
    st = famqp_publish_raw(c, &copy, via, p->cfg->reject_destination, FAMQP_ERROR_HEADER, reason,
                           true);
    if (st != FERRY_OK || !p->cfg->confirm)
        return st;
    st = famqp_pump(c, famqp_now_ms() + p->cfg->socket_timeout, FAMQP_UNTIL_SEQ, seq);
    if (st != FERRY_OK)
        return st;
    struct famqp_pending *e = famqp_pend_get(p, seq);
    return e ? e->status : FERRY_OK;
}

static int famqp_nack(struct ferry_conn *c, struct ferry_msg *m, bool requeue, const char *reason)
{
    struct famqp *p = c->priv;
    struct famqp_rmsg *r = (struct famqp_rmsg *)m;
    famqp_lent_unlink(r);
    int st;
    if (r->gen != p->gen || !p->up) {
        st = ferry_conn_fail(c, FERRY_E_NOCONN,
                             "nack after connection loss: the broker redelivers the message");
    } else if (!requeue && reason && p->cfg->reject_destination &&
               famqp_reject_copy(c, r, reason) == FERRY_OK) {
        struct famqp_tagrec *t = famqp_tags_find(p, r->dtag);
        if (t && t->state == FAMQP_LENT) {
            t->state = FAMQP_ACKED;
            p->acks_waiting++;
        }
        st = famqp_acks_send(c);
    } else if (!p->up || r->gen != p->gen) {
        st = ferry_conn_fail(c, FERRY_E_NOCONN,
                             "connection lost during nack: the broker redelivers the message");
    } else {
        /* requeue, or let the broker dead-letter it (x-death reason "rejected") */
        st = famqp_settle_now(c, r->dtag, requeue);
    }
    famqp_rmsg_free(r);
    return st;
}

/* Declare QUEUE.retry.<delay>ms: its messages expire after delay and are
 * dead-lettered through the default exchange back to queue. One queue per
 * delay, because RabbitMQ expires messages only at the head of a queue: a
 * long delay in front would hold back shorter ones behind it. */
static int famqp_declare_delay(struct ferry_conn *c, const char *queue, int64_t delay, char *name,
                               size_t len)
{
    struct famqp *p = c->priv;
    snprintf(name, len, "%s.retry.%" PRId64 "ms", queue, delay);
    if (famqp_is_declared(p, name))
        return FERRY_OK;
    amqp_table_entry_t e[3];
    e[0].key = amqp_cstring_bytes("x-message-ttl");
    e[0].value.kind = AMQP_FIELD_KIND_I64;
    e[0].value.value.i64 = delay;
    e[1].key = amqp_cstring_bytes("x-dead-letter-exchange");
    e[1].value.kind = AMQP_FIELD_KIND_UTF8;
    e[1].value.value.bytes = amqp_cstring_bytes("");
    e[2].key = amqp_cstring_bytes("x-dead-letter-routing-key");
    e[2].value.kind = AMQP_FIELD_KIND_UTF8;
    e[2].value.value.bytes = amqp_cstring_bytes(queue);
    amqp_table_t args = {.num_entries = 3, .entries = e};
    amqp_queue_declare(p->conn, FAMQP_PUB_CH, amqp_cstring_bytes(name), 0, p->cfg->queue_durable, 0,
                       0, args);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(p->conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return famqp_fail_reply(c, r, "declare delay queue");
    return famqp_mark_declared(c, name);
}

static void famqp_release(struct ferry_conn *c, struct ferry_msg *m);

/* Copy m to the delay queue of its consumer queue with the headers in set,
 * wait for the broker's confirm, then ack the original. */
static int famqp_defer(struct ferry_conn *c, struct ferry_msg *m, int64_t delay_ms,
                       const struct ferry_header *set, size_t n_set)
{
    struct famqp *p = c->priv;
    struct famqp_rmsg *r = (struct famqp_rmsg *)m;
    if (r->gen != p->gen || !p->up) {
        famqp_lent_unlink(r);
        famqp_rmsg_free(r);
        return ferry_conn_fail(c, FERRY_E_NOCONN,
                               "defer after connection loss: the broker redelivers the message");
    }
    char name[1024];
    int st = famqp_declare_delay(c, p->sub_queue, delay_ms < 1 ? 1 : delay_ms, name, sizeof name);
    size_t cap = m->n_headers + n_set;
    struct ferry_header *hs = calloc(cap ? cap : 1, sizeof *hs); /* freed below */
    if (st == FERRY_OK && !hs)
        st = ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
    if (st == FERRY_OK) {
        size_t n = 0;
        for (size_t i = 0; i < m->n_headers; i++) {
            bool replaced = false;
            for (size_t k = 0; k < n_set && !replaced; k++)
                replaced = strcmp(m->headers[i].name, set[k].name) == 0;
            if (!replaced)
                hs[n++] = m->headers[i];
        }
        for (size_t k = 0; k < n_set; k++)
            hs[n++] = set[k];
        struct ferry_msg copy = r->m;
        copy.headers = hs;
        copy.n_headers = n;
        copy.tag = 0;
        uint64_t seq = p->next_seq;
        st = famqp_publish_raw(c, &copy, "", name, NULL, NULL, true);
        if (st == FERRY_OK && p->cfg->confirm) {
            st = famqp_pump(c, famqp_now_ms() + p->cfg->socket_timeout, FAMQP_UNTIL_SEQ, seq);
            struct famqp_pending *e = st == FERRY_OK ? famqp_pend_get(p, seq) : NULL;
            if (e && e->status != FERRY_OK)
                st = ferry_conn_fail(c, e->status, "defer to %s: %s", name,
                                     e->reason ? e->reason : "refused by the broker");
        }
    }
    free(hs);
    if (st != FERRY_OK || r->gen != p->gen || !p->up) {
        if (st == FERRY_OK)
            st = ferry_conn_fail(c, FERRY_E_NOCONN,
                                 "connection lost during defer: the broker redelivers the message");
        famqp_release(c, m);
        return st;
    }
    famqp_lent_unlink(r);
    struct famqp_tagrec *t = famqp_tags_find(p, r->dtag);
    if (t && t->state == FAMQP_LENT) {
        t->state = FAMQP_ACKED;
        p->acks_waiting++;
    }
    famqp_rmsg_free(r);
    return famqp_acks_send(c);
}

static void famqp_release(struct ferry_conn *c, struct ferry_msg *m)
{
    struct famqp *p = c->priv;
    struct famqp_rmsg *r = (struct famqp_rmsg *)m;
    famqp_lent_unlink(r);
    /* give it back now (basic.reject requeue) instead of holding it until
     * the channel closes: no ack run gets stuck behind it */
    if (r->gen == p->gen && p->up)
        famqp_settle_now(c, r->dtag, true);
    famqp_rmsg_free(r);
}

static int famqp_health(struct ferry_conn *c, struct ferry_health *out)
{
    struct famqp *p = c->priv;
    *out = p->h;
    out->inflight = p->unsettled;
    if (!p->up) {
        out->state = FERRY_HEALTH_CONNECTING;
        famqp_copy(out->reason, sizeof out->reason, p->down_reason);
    } else if (p->blocked) {
        out->state = FERRY_HEALTH_BLOCKED;
        famqp_copy(out->reason, sizeof out->reason, p->down_reason);
    } else {
        out->state = FERRY_HEALTH_CONNECTED;
        out->reason[0] = '\0';
    }
    return FERRY_OK;
}

/* The subscribed queue's message count from a passive queue.declare on a
 * channel of its own, at most once a second; a channel-level refusal
 * (the queue is gone) closes only that channel. */
static int famqp_stats(struct ferry_conn *c, struct ferry_stats *out)
{
    struct famqp *p = c->priv;
    out->dropped = p->unroutable_dropped;
    if (out->size >= offsetof(struct ferry_stats, lend_limit) + sizeof out->lend_limit)
        out->lend_limit = p->cfg->prefetch > 0 ? p->cfg->prefetch : -1;
    const char *queue = p->cfg->routing == FAMQP_ROUTE_EXCHANGE ? p->sub_queue : p->sub_dest;
    if (!p->up || !p->sub_open || !queue)
        return FERRY_OK;
    int64_t now = famqp_now_ms();
    if (p->stats_at_ms && now - p->stats_at_ms < 1000) {
        out->dest_messages = p->stats_messages;
        return FERRY_OK;
    }
    p->stats_at_ms = now;
    p->stats_messages = -1;
    amqp_rpc_reply_t r;
    if (!p->stats_open) {
        amqp_channel_open(p->conn, FAMQP_STATS_CH);
        r = amqp_get_rpc_reply(p->conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            return famqp_fail_reply(c, r, "open stats channel");
        p->stats_open = true;
    }
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(
        p->conn, FAMQP_STATS_CH, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    r = amqp_get_rpc_reply(p->conn);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_ok_t close_ok = {0};
        amqp_send_method(p->conn, FAMQP_STATS_CH, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
        p->stats_open = false;
        return ferry_conn_fail(c, FERRY_E_AGAIN, "count queue %s: the broker refused", queue);
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL || !ok)
        return famqp_fail_reply(c, r, "count queue");
    p->stats_messages = ok->message_count;
    out->dest_messages = p->stats_messages;
    return FERRY_OK;
}

static const struct ferry_transport_ops famqp_ops = {
    .size = sizeof(struct ferry_transport_ops),
    .open = famqp_open,
    .close = famqp_close,
    .publish = famqp_publish,
    .flush = famqp_flush,
    .subscribe = famqp_subscribe,
    .receive = famqp_receive,
    .ack = famqp_ack,
    .nack = famqp_nack,
    .release = famqp_release,
    .health = famqp_health,
    .defer = famqp_defer,
    .stats = famqp_stats,
};

#define ferry_descriptor amqp_LTX_ferry_descriptor
const struct ferry_transport ferry_descriptor = {
    .abi = FERRY_TRANSPORT_ABI,
    .size = sizeof(struct ferry_transport),
    .name = "amqp",
    .summary = "RabbitMQ and other AMQP 0-9-1 brokers through rabbitmq-c",
    .lib_version = famqp_lib_version,
    .caps = FERRY_CAP_ACK | FERRY_CAP_GROUPS | FERRY_CAP_DURABLE | FERRY_CAP_CONFIRMS |
            FERRY_CAP_DEADLETTER | FERRY_CAP_FANOUT,
    .options = famqp_options,
    .cfg_size = sizeof(struct famqp_cfg),
    .ops = &famqp_ops,
};

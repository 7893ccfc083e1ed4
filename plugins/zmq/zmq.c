/* ZeroMQ transport for ferry: brokerless PUSH/PULL ("pipeline") or XPUB/SUB
 * ("pubsub") through libzmq, one endpoint per destination. Wire format and
 * guarantees are described in plugins/zmq/README.md. */
#include "config.h"

#include <ferry/transport.h>

#include "reliable.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <threads.h>
#include <time.h>
#include <zmq.h>

#include "wire.h"

enum fzmq_pattern { FZMQ_PIPELINE = 0, FZMQ_PUBSUB };
enum fzmq_bind { FZMQ_BIND_AUTO = 0, FZMQ_BIND_CONSUMER, FZMQ_BIND_PRODUCER };

/* Filled by the core from fzmq_options before open(). */
struct fzmq_cfg {
    char *endpoint;
    int pattern;
    int bind;
    int64_t connect_timeout_ms;
    int64_t linger_ms;
    int64_t reconnect_min_ms;
    int64_t reconnect_max_ms;
    int64_t send_hwm;
    int64_t receive_hwm;
    int64_t max_message_size;
    char *curve_server_secret;
    char *curve_server_public;
    char *curve_client_secret;
    char *curve_client_public;
    char *curve_server_key;
    char *curve_allowed_clients;
    int64_t wire_version;
    bool reliable;
    int64_t ack_timeout_ms;
    int64_t max_unacked;
    char *spool_dir;
    int64_t spool_max;
    int spool_fsync;
    int64_t spool_fsync_interval_ms;
    int spool_full;
};

#define FZMQ_ENDPOINT_PREFIX "endpoint."
#define FZMQ_MAX_HEADERS FZMQ_WIRE_MAX_HEADERS
#define FZMQ_KEY_Z85 40 /* a CURVE key as Z85 text, without the NUL */
#define FZMQ_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define FZMQ_ZAP_DOMAIN "ferry"
/* How long a send waits for room when every peer's queue is full. libzmq
 * wakes it as soon as the peer has read enough, as a blocking send; the
 * caller's own backoff (sleeps) would leave the pipe idle meanwhile. As
 * long as the publisher's first backoff step (backoff_min, 100 ms), so a
 * peer that stalls that long is an outage either way. */
#define FZMQ_SEND_WAIT_MS 100

static const struct ferry_option fzmq_options[] = {
    {.name = "endpoint",
     .type = FERRY_OPT_STR,
     .def = "tcp://127.0.0.1:5555",
     .offset = offsetof(struct fzmq_cfg, endpoint),
     .help = "ZeroMQ endpoint of every destination without its own endpoint.NAME, "
             "e.g. tcp://127.0.0.1:5555 or ipc:///run/ferry/logs.sock."},
    {.name = FZMQ_ENDPOINT_PREFIX,
     .type = FERRY_OPT_PREFIX,
     .help = "endpoint.NAME = ENDPOINT gives destination NAME its own ZeroMQ endpoint."},
    {.name = "pattern",
     .type = FERRY_OPT_ENUM,
     .def = "pipeline",
     .choices = "pipeline|pubsub",
     .offset = offsetof(struct fzmq_cfg, pattern),
     .help = "pipeline (PUSH/PULL: each message goes to one consumer) or pubsub "
             "(XPUB/SUB: every connected subscriber gets every message)."},
    {.name = "bind",
     .type = FERRY_OPT_ENUM,
     .def = "auto",
     .choices = "auto|consumer|producer",
     .offset = offsetof(struct fzmq_cfg, bind),
     .help = "Which side binds the endpoint (the other connects); auto means the "
             "consumer for pipeline and the producer for pubsub."},
    {.name = "connect_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "1s",
     .min = 0,
     .max = 600000,
     .offset = offsetof(struct fzmq_cfg, connect_timeout_ms),
     .help = "How long the first publish to a destination waits for a peer, in milliseconds."},
    {.name = "linger",
     .type = FERRY_OPT_DURATION,
     .def = "5s",
     .min = 0,
     .max = 3600000,
     .offset = offsetof(struct fzmq_cfg, linger_ms),
     .help = "How long close waits to hand queued messages to peers, in milliseconds."},
    {.name = "reconnect_min",
     .type = FERRY_OPT_DURATION,
     .def = "100ms",
     .min = 1,
     .max = 600000,
     .offset = offsetof(struct fzmq_cfg, reconnect_min_ms),
     .help = "First reconnect delay after a lost connection, in milliseconds; "
             "it doubles up to reconnect_max."},
    {.name = "reconnect_max",
     .type = FERRY_OPT_DURATION,
     .def = "30s",
     .min = 1,
     .max = 3600000,
     .offset = offsetof(struct fzmq_cfg, reconnect_max_ms),
     .help = "Longest reconnect delay, in milliseconds."},
    {.name = "send_hwm",
     .type = FERRY_OPT_INT,
     .def = "1000",
     .min = 0,
     .max = 100000000,
     .offset = offsetof(struct fzmq_cfg, send_hwm),
     .help = "Messages queued per peer before publish returns 'again', 0 for no limit."},
    {.name = "receive_hwm",
     .type = FERRY_OPT_INT,
     .def = "1000",
     .min = 0,
     .max = 100000000,
     .offset = offsetof(struct fzmq_cfg, receive_hwm),
     .help = "Messages queued per peer on the receiving side, 0 for no limit."},
    {.name = "max_message_size",
     .type = FERRY_OPT_SIZE,
     .def = "16MiB",
     .min = 1,
     .max = INT64_C(1) << 40,
     .offset = offsetof(struct fzmq_cfg, max_message_size),
     .help = "Largest message in bytes: bigger ones are refused on publish, and a "
             "peer that sends one is disconnected."},
    {.name = "curve_server_secret",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .offset = offsetof(struct fzmq_cfg, curve_server_secret),
     .help = "CURVE secret key (Z85, 40 characters) of the side that binds; setting it "
             "makes every bound socket a CURVE server that encrypts all traffic."},
    {.name = "curve_server_public",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fzmq_cfg, curve_server_public),
     .help = "CURVE public key of the binding side (Z85); optional, checked against "
             "curve_server_secret when given."},
    {.name = "curve_client_secret",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .offset = offsetof(struct fzmq_cfg, curve_client_secret),
     .help = "CURVE secret key (Z85) of the side that connects; required with "
             "curve_server_key."},
    {.name = "curve_client_public",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fzmq_cfg, curve_client_public),
     .help = "CURVE public key of the connecting side (Z85); derived from "
             "curve_client_secret when not given."},
    {.name = "curve_server_key",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fzmq_cfg, curve_server_key),
     .help = "Public key (Z85) of the server this side connects to; setting it makes "
             "every connecting socket a CURVE client that trusts only this server."},
    {.name = "curve_allowed_clients",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fzmq_cfg, curve_allowed_clients),
     .help = "File of client public keys (Z85, one per line, # comments) that a CURVE "
             "server accepts; without it any client that knows the server key may connect."},
    {.name = "wire_version",
     .type = FERRY_OPT_INT,
     .def = "1",
     .min = 1,
     .max = 2,
     .offset = offsetof(struct fzmq_cfg, wire_version),
     .help = "Wire format of published messages: 1 sends each field as its own frame "
             "(every ferry and plain peer reads it), 2 packs a message into one frame "
             "(faster; read only by a ferry that has this option). Both are always read."},
    {.name = "reliable",
     .type = FERRY_OPT_BOOL,
     .def = "false",
     .offset = offsetof(struct fzmq_cfg, reliable),
     .help = "At-least-once delivery (pipeline only): the consumer acks each message back "
             "to the producer, which resends what is not acked; both sides must set it."},
    {.name = "ack_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "10s",
     .min = 10,
     .max = 3600000,
     .offset = offsetof(struct fzmq_cfg, ack_timeout_ms),
     .help = "With reliable, how long the producer waits for an ack before it resends, "
             "in milliseconds."},
    {.name = "max_unacked",
     .type = FERRY_OPT_INT,
     .def = "100000",
     .min = 1,
     .max = 100000000,
     .offset = offsetof(struct fzmq_cfg, max_unacked),
     .help = "With reliable, messages the producer keeps unacknowledged before publish "
             "returns 'again'."},
    {.name = "spool_dir",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fzmq_cfg, spool_dir),
     .help = "With reliable, directory where the producer writes each message before sending "
             "it and keeps it until acked; a restarted producer resends what it holds."},
    {.name = "spool_max",
     .type = FERRY_OPT_SIZE,
     .def = "256MiB",
     .min = 1048576,
     .max = INT64_C(1099511627776),
     .offset = offsetof(struct fzmq_cfg, spool_max),
     .help = "Most disk space the producer's spool takes; see spool_full."},
    {.name = "spool_fsync",
     .type = FERRY_OPT_ENUM,
     .def = "batch",
     .choices = "always|batch|never",
     .offset = offsetof(struct fzmq_cfg, spool_fsync),
     .help = "When spooled messages are forced to disk: after each write, every "
             "spool_fsync_interval, or never (the kernel decides)."},
    {.name = "spool_fsync_interval",
     .type = FERRY_OPT_DURATION,
     .def = "1s",
     .min = 1,
     .max = 3600000,
     .offset = offsetof(struct fzmq_cfg, spool_fsync_interval_ms),
     .help = "With spool_fsync = batch, the longest a spooled message waits for fsync."},
    {.name = "spool_full",
     .type = FERRY_OPT_ENUM,
     .def = "block",
     .choices = "block|drop_newest",
     .offset = offsetof(struct fzmq_cfg, spool_full),
     .help = "When the spool is full: publish says 'again' until acks make room (block), or "
             "refuses the new message, counted as dropped (drop_newest)."},
    {0}};

/* One subscribed topic prefix seen on an XPUB socket and how many
 * subscribers asked for it. */
struct fzmq_topic {
    char *topic;
    size_t len;
    long count;
};

/* One libzmq socket with the monitor that tracks its peers. */
struct fzmq_sock {
    struct fzmq_sock *next;
    char *endpoint;
    const char
        *ep_key; /* fzmq_endpoint_for()'s answer for it (the conn's, stable): compared first */
    void *sock;
    void *mon;
    bool bound;
    bool down_logged;  /* the current outage was logged once */
    bool curve;        /* CURVE server (bound) or client (connected) */
    uint64_t refusals; /* handshakes refused by the ZAP handler (AUTH) */
    uint64_t failures; /* other failed handshakes (mechanism, keys) */
    long peers;        /* completed handshakes minus disconnects */
    uint64_t handshakes;
    uint64_t subscriptions;    /* XPUB: subscribe messages seen */
    int64_t upkept_ms;         /* when monitor events were last read */
    struct fzmq_topic *topics; /* XPUB only */
    size_t n_topics;
};

/* A received message, lent to the caller. One allocation holds the struct,
 * the header array and every byte the ferry_msg points at. */
struct fzmq_rmsg {
    struct ferry_msg m;
    struct fzmq_rmsg *prev, *next; /* p->lent, or p->requeue (next only) */
    uint32_t rel_peer;             /* reliable: who sent it, and its number there */
    uint64_t rel_seq;
    size_t size; /* bytes allocated, this struct included */
};

/* Ended loans of FZMQ_SPARE_SIZE bytes are kept for the next receive (at
 * most FZMQ_SPARE_MAX of them): a message that fits (a 100-byte body with
 * a few headers does) costs no malloc, no free and no zeroing. */
#define FZMQ_SPARE_SIZE 640
#define FZMQ_SPARE_MAX 4096

struct fzmq {
    const struct fzmq_cfg *cfg;
    void *ctx;
    bool producer_binds;
    bool consumer_binds;
    unsigned mon_seq;
    struct fzmq_sock *out; /* publishing sockets, one per endpoint */
    struct fzmq_sock *in;  /* the subscription */
    char *sub_dest;
    size_t sub_dest_len;
    struct fzmq_rmsg *lent;                        /* handed out, loan not ended */
    struct fzmq_rmsg *requeue_head, *requeue_tail; /* nacked with requeue */
    struct fzmq_rmsg *spare;                       /* ended loans kept for reuse (next only) */
    size_t n_spare;                                /* at most FZMQ_SPARE_MAX */
    uint64_t *settled;                             /* tags accepted, report not yet made */
    size_t n_settled, settled_head, settled_cap;
    uint64_t reconnects, published, received;
    uint64_t dropped;                     /* malformed messages from peers */
    char client_public[FZMQ_KEY_Z85 + 1]; /* CURVE client key, given or derived */
    uint8_t (*allowed)[32];               /* curve_allowed_clients, decoded; NULL: any client */
    size_t n_allowed;
    bool zap_running; /* zap_thread answers on FZMQ_ZAP_ENDPOINT */
    thrd_t zap_thread;
    void *zap_sock;                         /* owned by zap_thread once it runs */
    mtx_t zap_mtx;                          /* guards the two fields below */
    char zap_refused_key[FZMQ_KEY_Z85 + 1]; /* last client refused by zap_thread */
    char zap_refused_peer[64];
    struct fzrel *rel;       /* reliable producer side, opened on first use */
    bool rel_tried;          /* fzrel_open() was called */
    struct fzrel_in *rel_in; /* reliable consumer side */
};

static int fzmq_rel_get(struct ferry_conn *c);

/* ---------------------------------------------------------------------- */

/* The one place that turns libzmq errno values into ferry statuses. */
static int fzmq_status(int err)
{
    switch (err) {
    case 0: return FERRY_OK;
    case EAGAIN:
    case EINTR:
    case ENOMEM:
    case EMTHREAD: return FERRY_E_AGAIN;
    case EADDRINUSE: /* a previous owner may still be exiting */
    case EHOSTUNREACH:
    case ECONNREFUSED:
    case ENETDOWN:
    case ENOTCONN: return FERRY_E_NOCONN;
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENOCOMPATPROTO:
    case EADDRNOTAVAIL:
    case ENODEV:
    case ENOENT:
    case EACCES: return FERRY_E_CONFIG;
    case EMSGSIZE: return FERRY_E_TOOBIG;
    case ENOTSUP:
    case EFSM: return FERRY_E_NOTSUP;
    default: /* ETERM, ENOTSOCK, EFAULT and the unknown */ return FERRY_E_FATAL;
    }
}

static char fzmq_version_buf[32];
static once_flag fzmq_version_once = ONCE_FLAG_INIT;

static void fzmq_lib_version_init(void)
{
    int major, minor, patch;
    zmq_version(&major, &minor, &patch);
    snprintf(fzmq_version_buf, sizeof fzmq_version_buf, "libzmq %d.%d.%d", major, minor, patch);
}

static const char *fzmq_lib_version(void)
{
    call_once(&fzmq_version_once, fzmq_lib_version_init);
    return fzmq_version_buf;
}

static int64_t fzmq_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A cheaper clock for rate limits: the coarse monotonic clock where
 * there is one (its step is the kernel's tick, 1 to 10 ms). */
static int64_t fzmq_tick_ms(void)
{
#ifdef CLOCK_MONOTONIC_COARSE
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0)
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#endif
    return fzmq_now_ms();
}

/* Milliseconds left before deadline (-1: none), as zmq_poll wants them. */
static long fzmq_left(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - fzmq_now_ms();
    return left > 0 ? (long)left : 0;
}

/* Endpoints are checked in open() so a typo is a configuration error, not
 * a reconnect loop. */
static bool fzmq_endpoint_ok(const char *ep)
{
    /* scheme, and what zmq_has() calls it (NULL: always built in) */
    static const char *const known[][2] = {
        {"tcp", NULL},    {"inproc", NULL}, {"ipc", "ipc"},   {"pgm", "pgm"}, {"epgm", "pgm"},
        {"tipc", "tipc"}, {"vmci", "vmci"}, {"norm", "norm"}, {"ws", "ws"},   {"wss", "wss"},
    };
    const char *sep = ep ? strstr(ep, "://") : NULL;
    if (!sep || sep == ep || sep[3] == '\0')
        return false;
    size_t len = (size_t)(sep - ep);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i][0]) == len && memcmp(known[i][0], ep, len) == 0)
            return !known[i][1] || zmq_has(known[i][1]);
    return false;
}

static const char *fzmq_endpoint_for(struct ferry_conn *c, const char *dest)
{
    struct fzmq *p = c->priv;
    size_t plen = strlen(FZMQ_ENDPOINT_PREFIX);
    for (size_t i = 0; i < c->n_passthru; i++) {
        const char *k = c->passthru[i].key;
        if (strncmp(k, FZMQ_ENDPOINT_PREFIX, plen) == 0 && strcmp(k + plen, dest) == 0)
            return c->passthru[i].value;
    }
    return p->cfg->endpoint;
}

static const char *fzmq_pattern_name(const struct fzmq *p)
{
    return p->cfg->pattern == FZMQ_PUBSUB ? "pubsub" : "pipeline";
}

static int fzmq_setopt(struct ferry_conn *c, void *sock, int opt, const char *name, const void *val,
                       size_t len)
{
    if (zmq_setsockopt(sock, opt, val, len) == 0)
        return FERRY_OK;
    int err = errno;
    return ferry_conn_fail(c, fzmq_status(err), "set socket option %s: %s", name,
                           zmq_strerror(err));
}

/* ---------------------------------------------------------------------- */
/* CURVE keys and the ZAP handler. Error texts name options, never keys. */

static bool fzmq_curve_on(const struct fzmq_cfg *cfg)
{
    return cfg->curve_server_secret || cfg->curve_server_key;
}

/* Whether text is a CURVE key written in Z85. */
static bool fzmq_key_ok(const char *z85)
{
    uint8_t raw[32];
    return z85 && strlen(z85) == FZMQ_KEY_Z85 && zmq_z85_decode(raw, z85) != NULL;
}

/* Check a secret key and, when given, that the public key belongs to it.
 * The public key derived from the secret goes to derived. */
static int fzmq_key_pair(struct ferry_conn *c, const char *secret, const char *public,
                         const char *sname, const char *pname, char derived[FZMQ_KEY_Z85 + 1])
{
    if (!fzmq_key_ok(secret))
        return ferry_conn_fail(c, FERRY_E_CONFIG,
                               "%s is not a CURVE secret key: expected "
                               "40 characters of Z85 (ferry-keygen makes a pair)",
                               sname);
    if (zmq_curve_public(derived, secret) != 0) {
        int err = errno;
        return ferry_conn_fail(c, FERRY_E_CONFIG, "%s: cannot derive its public key: %s", sname,
                               zmq_strerror(err));
    }
    if (public && strcmp(public, derived) != 0)
        return ferry_conn_fail(c, FERRY_E_CONFIG,
                               "%s does not belong to %s "
                               "(ferry-keygen --public-from shows the right one)",
                               pname, sname);
    return FERRY_OK;
}

/* Check that the CURVE options form a usable whole; the client's public key
 * (given or derived) goes to client_public. */
static int fzmq_curve_check(struct ferry_conn *c, const struct fzmq_cfg *cfg,
                            char client_public[FZMQ_KEY_Z85 + 1])
{
    char derived[FZMQ_KEY_Z85 + 1];
    int st;
    if (fzmq_curve_on(cfg) && !zmq_has("curve"))
        return ferry_conn_fail(c, FERRY_E_CONFIG,
                               "CURVE options are set but this libzmq "
                               "was built without CURVE (libsodium)");
    if (cfg->curve_server_public && !cfg->curve_server_secret)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "curve_server_public needs curve_server_secret");
    if (cfg->curve_allowed_clients && !cfg->curve_server_secret)
        return ferry_conn_fail(c, FERRY_E_CONFIG,
                               "curve_allowed_clients needs curve_server_secret");
    if ((cfg->curve_client_secret || cfg->curve_client_public) && !cfg->curve_server_key)
        return ferry_conn_fail(c, FERRY_E_CONFIG,
                               "curve_client_secret and "
                               "curve_client_public need curve_server_key");
    if (cfg->curve_server_secret &&
        (st = fzmq_key_pair(c, cfg->curve_server_secret, cfg->curve_server_public,
                            "curve_server_secret", "curve_server_public", derived)))
        return st;
    if (!cfg->curve_server_key)
        return FERRY_OK;
    if (!fzmq_key_ok(cfg->curve_server_key))
        return ferry_conn_fail(c, FERRY_E_CONFIG,
                               "curve_server_key is not a CURVE public key: "
                               "expected 40 characters of Z85");
    if (!cfg->curve_client_secret)
        return ferry_conn_fail(c, FERRY_E_CONFIG,
                               "curve_server_key needs curve_client_secret "
                               "(ferry-keygen makes a pair)");
    return fzmq_key_pair(c, cfg->curve_client_secret, cfg->curve_client_public,
                         "curve_client_secret", "curve_client_public", client_public);
}

/* Read curve_allowed_clients: one Z85 public key per line, first on the
 * line; whatever follows it is a comment. Blank lines and lines starting
 * with '#' that hold no key are ignored ('#' is also a Z85 digit). */
static int fzmq_load_allowed(struct ferry_conn *c, const char *path)
{
    struct fzmq *p = c->priv;
    FILE *f = fopen(path, "r");
    if (!f) {
        int err = errno;
        return ferry_conn_fail(c, FERRY_E_CONFIG, "curve_allowed_clients %s: %s", path,
                               strerror(err));
    }
    char line[512];
    int lineno = 0, st = FERRY_OK;
    while (st == FERRY_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *k = line + strspn(line, " \t");
        k[strcspn(k, " \t\r\n")] = '\0';
        if (!*k || (*k == '#' && !fzmq_key_ok(k)))
            continue;
        if (!fzmq_key_ok(k)) {
            st = ferry_conn_fail(c, FERRY_E_CONFIG,
                                 "%s:%d: not a CURVE public key "
                                 "(40 characters of Z85)",
                                 path, lineno);
            break;
        }
        uint8_t(*t)[32] = realloc(p->allowed, (p->n_allowed + 1) * sizeof *t);
        if (!t) {
            st = ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
            break;
        }
        p->allowed = t; /* freed in fzmq_close() */
        zmq_z85_decode(p->allowed[p->n_allowed++], k);
    }
    fclose(f);
    if (st == FERRY_OK && p->n_allowed == 0)
        st = ferry_conn_fail(c, FERRY_E_CONFIG,
                             "%s lists no client key: no client could "
                             "connect",
                             path);
    return st;
}

static bool fzmq_allowed(const struct fzmq *p, const void *key, size_t len)
{
    if (len != 32)
        return false;
    for (size_t i = 0; i < p->n_allowed; i++)
        if (memcmp(p->allowed[i], key, 32) == 0)
            return true;
    return false;
}

/* The ZAP handler (ZeroMQ RFC 27): libzmq asks it about every client that
 * completes a CURVE handshake with a server socket of this context, and it
 * answers from curve_allowed_clients. It runs until zmq_ctx_term() in
 * fzmq_close(): while a server socket exists it must answer, because libzmq
 * lets every client in when nobody is bound to the ZAP endpoint. It shares
 * only p->allowed (read-only while it runs) and the zap_refused_* fields. */
static int fzmq_zap_main(void *arg)
{
    struct fzmq *p = arg;
    for (;;) {
        /* version, request id, domain, address, routing id, mechanism, key */
        zmq_msg_t fr[7], extra;
        size_t n = 0;
        int more = 1, err = 0;
        while (more) {
            zmq_msg_t *f = n < 7 ? &fr[n] : &extra;
            zmq_msg_init(f);
            if (zmq_msg_recv(f, p->zap_sock, 0) < 0) {
                err = errno;
                zmq_msg_close(f);
                break;
            }
            more = zmq_msg_more(f);
            if (f == &extra)
                zmq_msg_close(f);
            else
                n++;
        }
        if (!err && n >= 2) {
            bool ok = n == 7 && zmq_msg_size(&fr[5]) == 5 &&
                      memcmp(zmq_msg_data(&fr[5]), "CURVE", 5) == 0 &&
                      fzmq_allowed(p, zmq_msg_data(&fr[6]), zmq_msg_size(&fr[6]));
            if (!ok) {
                mtx_lock(&p->zap_mtx);
                strcpy(p->zap_refused_key, "unknown");
                if (n == 7 && zmq_msg_size(&fr[6]) == 32)
                    zmq_z85_encode(p->zap_refused_key, zmq_msg_data(&fr[6]), 32);
                size_t alen = n >= 4 ? zmq_msg_size(&fr[3]) : 0;
                if (alen >= sizeof p->zap_refused_peer)
                    alen = sizeof p->zap_refused_peer - 1;
                if (alen)
                    memcpy(p->zap_refused_peer, zmq_msg_data(&fr[3]), alen);
                p->zap_refused_peer[alen] = '\0';
                mtx_unlock(&p->zap_mtx);
            }
            const char *code = ok ? "200" : "400";
            const char *text = ok ? "OK" : "client key not in curve_allowed_clients";
            zmq_send(p->zap_sock, "1.0", 3, ZMQ_SNDMORE);
            zmq_send(p->zap_sock, zmq_msg_data(&fr[1]), zmq_msg_size(&fr[1]), ZMQ_SNDMORE);
            zmq_send(p->zap_sock, code, 3, ZMQ_SNDMORE);
            zmq_send(p->zap_sock, text, strlen(text), ZMQ_SNDMORE);
            zmq_send(p->zap_sock, "", 0, ZMQ_SNDMORE); /* user id */
            zmq_send(p->zap_sock, "", 0, 0);           /* metadata */
        }
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&fr[i]);
        if (err == ETERM || err == ENOTSOCK)
            break;
    }
    zmq_close(p->zap_sock);
    return 0;
}

/* Load the allowed clients and start the ZAP handler. The handler is bound
 * before any server socket exists, so no client ever gets in unchecked. */
static int fzmq_zap_start(struct ferry_conn *c)
{
    struct fzmq *p = c->priv;
    int st = fzmq_load_allowed(c, p->cfg->curve_allowed_clients);
    if (st != FERRY_OK)
        return st;
    p->zap_sock = zmq_socket(p->ctx, ZMQ_REP); /* closed by fzmq_zap_main() */
    if (!p->zap_sock || zmq_setsockopt(p->zap_sock, ZMQ_LINGER, &(int){0}, sizeof(int)) != 0 ||
        zmq_bind(p->zap_sock, FZMQ_ZAP_ENDPOINT) != 0) {
        int err = errno;
        if (p->zap_sock)
            zmq_close(p->zap_sock);
        p->zap_sock = NULL;
        return ferry_conn_fail(c, fzmq_status(err), "ZAP handler %s: %s", FZMQ_ZAP_ENDPOINT,
                               zmq_strerror(err));
    }
    if (thrd_create(&p->zap_thread, fzmq_zap_main, p) != thrd_success) {
        zmq_close(p->zap_sock);
        p->zap_sock = NULL;
        return ferry_conn_fail(c, FERRY_E_AGAIN, "cannot start the ZAP handler thread");
    }
    p->zap_running = true;
    return FERRY_OK;
}

/* Make s a CURVE server (bound) or client (connected). Once any CURVE key is
 * configured, a socket whose role lacks its keys is an error rather than a
 * silent fall-back to plain text. */
static int fzmq_curve_setup(struct ferry_conn *c, struct fzmq_sock *s, bool bind)
{
    struct fzmq *p = c->priv;
    const struct fzmq_cfg *cfg = p->cfg;
    int one = 1, st;
    if (!fzmq_curve_on(cfg))
        return FERRY_OK;
    if (bind) {
        if (!cfg->curve_server_secret)
            return ferry_conn_fail(c, FERRY_E_CONFIG,
                                   "endpoint=%s binds here, which needs "
                                   "curve_server_secret: refusing to serve it in plain text",
                                   s->endpoint);
        if ((st = fzmq_setopt(c, s->sock, ZMQ_ZAP_DOMAIN, "zap_domain", FZMQ_ZAP_DOMAIN,
                              strlen(FZMQ_ZAP_DOMAIN))) ||
            (st = fzmq_setopt(c, s->sock, ZMQ_CURVE_SERVER, "curve_server", &one, sizeof one)) ||
            (st = fzmq_setopt(c, s->sock, ZMQ_CURVE_SECRETKEY, "curve_server_secret",
                              cfg->curve_server_secret, FZMQ_KEY_Z85)))
            return st;
    } else {
        if (!cfg->curve_server_key)
            return ferry_conn_fail(c, FERRY_E_CONFIG,
                                   "endpoint=%s connects here, which needs "
                                   "curve_server_key: refusing to connect in plain text",
                                   s->endpoint);
        if ((st = fzmq_setopt(c, s->sock, ZMQ_CURVE_SERVERKEY, "curve_server_key",
                              cfg->curve_server_key, FZMQ_KEY_Z85)) ||
            (st = fzmq_setopt(c, s->sock, ZMQ_CURVE_PUBLICKEY, "curve_client_public",
                              p->client_public, FZMQ_KEY_Z85)) ||
            (st = fzmq_setopt(c, s->sock, ZMQ_CURVE_SECRETKEY, "curve_client_secret",
                              cfg->curve_client_secret, FZMQ_KEY_Z85)))
            return st;
    }
    s->curve = true;
    return FERRY_OK;
}

static const char *fzmq_protocol_error(uint32_t value)
{
    switch (value) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "security mechanism mismatch: one side uses CURVE, the other does not";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
    case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
        return "CURVE key exchange failed: the client does not have this server's public key";
    default: return "ZMTP protocol error";
    }
}

/* A handshake failed on s: a client refused by the ZAP handler, a peer
 * without (or with the wrong) CURVE keys. A refused peer keeps retrying, so
 * only the 1st, 10th, 100th ... failure of each kind on a socket is logged. */
static void fzmq_handshake_failed(struct ferry_conn *c, struct fzmq_sock *s, uint16_t event,
                                  uint32_t value)
{
    struct fzmq *p = c->priv;
    bool auth = event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    uint64_t n = auth ? ++s->refusals : ++s->failures;
    while (n % 10 == 0)
        n /= 10;
    if (n != 1)
        return;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && s->bound) {
        char key[FZMQ_KEY_Z85 + 1] = "unknown", peer[64] = "unknown";
        if (p->zap_running) {
            mtx_lock(&p->zap_mtx);
            if (p->zap_refused_key[0])
                memcpy(key, p->zap_refused_key, sizeof key);
            if (p->zap_refused_peer[0])
                memcpy(peer, p->zap_refused_peer, sizeof peer);
            mtx_unlock(&p->zap_mtx);
        }
        ferry_log_warn(c,
                       "client refused endpoint=%s peer=%s client_key=%s zap_status=%" PRIu32
                       " reason=\"not in curve_allowed_clients\" refusals=%" PRIu64,
                       s->endpoint, peer, key, value, s->refusals);
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        ferry_log_warn(c,
                       "refused by server endpoint=%s zap_status=%" PRIu32 " reason=\"the "
                       "server does not allow this client's key\" refusals=%" PRIu64,
                       s->endpoint, value, s->refusals);
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
        ferry_log_warn(c, "handshake failed endpoint=%s curve=%s reason=\"%s\" failures=%" PRIu64,
                       s->endpoint, s->curve ? "on" : "off", fzmq_protocol_error(value),
                       s->failures);
    } else {
        ferry_log_warn(c, "handshake failed endpoint=%s curve=%s reason=\"%s\" failures=%" PRIu64,
                       s->endpoint, s->curve ? "on" : "off", zmq_strerror((int)value), s->failures);
    }
}

/* ---------------------------------------------------------------------- */
/* Sockets and their monitors */

static void fzmq_topic_count(struct ferry_conn *c, struct fzmq_sock *s, const char *topic,
                             size_t len, long delta)
{
    if (delta > 0)
        s->subscriptions++;
    for (size_t i = 0; i < s->n_topics; i++) {
        if (s->topics[i].len == len && memcmp(s->topics[i].topic, topic, len) == 0) {
            s->topics[i].count += delta;
            return;
        }
    }
    if (delta < 0)
        return;
    struct fzmq_topic *t = realloc(s->topics, (s->n_topics + 1) * sizeof *t);
    char *copy = malloc(len + 1); /* freed in fzmq_sock_free() */
    if (!t || !copy) {
        if (t)
            s->topics = t;
        free(copy);
        ferry_log_warn(c, "subscription not tracked endpoint=%s error=\"out of memory\"",
                       s->endpoint);
        return;
    }
    memcpy(copy, topic, len);
    copy[len] = '\0';
    s->topics = t; /* freed in fzmq_sock_free() */
    s->topics[s->n_topics++] = (struct fzmq_topic){copy, len, delta};
}

static bool fzmq_has_subscriber(const struct fzmq_sock *s, const char *dest)
{
    size_t dlen = strlen(dest);
    for (size_t i = 0; i < s->n_topics; i++)
        if (s->topics[i].count > 0 && s->topics[i].len <= dlen &&
            memcmp(s->topics[i].topic, dest, s->topics[i].len) == 0)
            return true;
    return false;
}

/* Read what libzmq reported since the last call, without blocking: monitor
 * events (peers, reconnects) and, on XPUB, subscriptions. */
static void fzmq_upkeep(struct ferry_conn *c, struct fzmq_sock *s)
{
    struct fzmq *p = c->priv;
    for (;;) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, s->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            break;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&ev) >= 6) {
            memcpy(&event, zmq_msg_data(&ev), sizeof event);
            memcpy(&value, (const char *)zmq_msg_data(&ev) + sizeof event, sizeof value);
        }
        zmq_msg_close(&ev);
        zmq_msg_init(&addr);
        zmq_msg_recv(&addr, s->mon, 0); /* the second frame always follows */
        zmq_msg_close(&addr);

        if (p->rel && s != p->in &&
            (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED || event == ZMQ_EVENT_DISCONNECTED))
            fzrel_peer_event(p->rel, s->sock, event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            s->peers++;
            s->handshakes++;
            if (!s->bound && s->handshakes > 1)
                p->reconnects++;
            if (s->down_logged)
                ferry_log_info(c, "%s endpoint=%s", s->handshakes > 1 ? "reconnected" : "connected",
                               s->endpoint);
            else
                ferry_log_debug(c, "peer connected endpoint=%s peers=%ld", s->endpoint, s->peers);
            s->down_logged = false;
        } else if (event & (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                            ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)) {
            fzmq_handshake_failed(c, s, event, value);
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            if (s->peers > 0)
                s->peers--;
            if (!s->bound && s->peers == 0 && !s->down_logged) {
                ferry_log_warn(c, "connection lost endpoint=%s retry_in=%" PRId64 "ms", s->endpoint,
                               p->cfg->reconnect_min_ms);
                s->down_logged = true;
            } else {
                ferry_log_debug(c, "peer left endpoint=%s peers=%ld", s->endpoint, s->peers);
            }
        }
    }

    if (p->cfg->pattern != FZMQ_PUBSUB || s == p->in)
        return;
    for (;;) {
        zmq_msg_t sub;
        zmq_msg_init(&sub);
        if (zmq_msg_recv(&sub, s->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&sub);
            break;
        }
        const char *d = zmq_msg_data(&sub);
        size_t len = zmq_msg_size(&sub);
        if (len >= 1 && (d[0] == 0 || d[0] == 1))
            fzmq_topic_count(c, s, d + 1, len - 1, d[0] == 1 ? 1 : -1);
        zmq_msg_close(&sub);
    }
}

static void fzmq_sock_free(struct fzmq_sock *s)
{
    if (!s)
        return;
    if (s->sock) {
        zmq_socket_monitor(s->sock, NULL, 0);
        zmq_close(s->sock);
    }
    if (s->mon)
        zmq_close(s->mon);
    for (size_t i = 0; i < s->n_topics; i++)
        free(s->topics[i].topic);
    free(s->topics);
    free(s->endpoint);
    free(s);
}

/* Reliable mode's DEALER (producer) and ROUTER (consumer). The DEALER
 * gets a routing id of its own, so that a consumer's acks find it again
 * after a reconnect; the ROUTER hands a returning id over to the new
 * connection and says when a peer to ack has gone. Heartbeats find a
 * connection that died without a word (a cut cable, a frozen host). */
static int fzmq_reliable_setup(struct ferry_conn *c, struct fzmq_sock *s, int type)
{
    int one = 1, ivl = 1000, ttl = 5000, st;
    if ((st = fzmq_setopt(c, s->sock, ZMQ_HEARTBEAT_IVL, "heartbeat_ivl", &ivl, sizeof ivl)) ||
        (st =
             fzmq_setopt(c, s->sock, ZMQ_HEARTBEAT_TIMEOUT, "heartbeat_timeout", &ttl, sizeof ttl)))
        return st;
    if (type == ZMQ_ROUTER)
        return (st = fzmq_setopt(c, s->sock, ZMQ_ROUTER_MANDATORY, "router_mandatory", &one,
                                 sizeof one))
                   ? st
                   : fzmq_setopt(c, s->sock, ZMQ_ROUTER_HANDOVER, "router_handover", &one,
                                 sizeof one);
    unsigned char id[17] = {'F'}; /* a routing id must not start with a zero byte */
    if (getrandom(id + 1, sizeof id - 1, 0) != (ssize_t)(sizeof id - 1)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)s;
        memcpy(id + 1, &x, sizeof x);
        memcpy(id + 9, &ts, 8);
    }
    return fzmq_setopt(c, s->sock, ZMQ_ROUTING_ID, "routing_id", id, sizeof id);
}

/* Create a socket of type for endpoint, with its monitor, then bind or
 * connect it. On success *out owns everything (freed in fzmq_sock_free()). */
static int fzmq_sock_open(struct ferry_conn *c, int type, const char *endpoint, bool bind,
                          struct fzmq_sock **out)
{
    struct fzmq *p = c->priv;
    const struct fzmq_cfg *cfg = p->cfg;
    int st;
    struct fzmq_sock *s = calloc(1, sizeof *s); /* freed in fzmq_sock_free() */
    if (!s)
        return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
    s->bound = bind;
    s->endpoint = strdup(endpoint);
    s->sock = zmq_socket(p->ctx, type);
    if (!s->endpoint || !s->sock) {
        int err = s->sock ? ENOMEM : errno;
        fzmq_sock_free(s);
        return ferry_conn_fail(c, fzmq_status(err), "create socket endpoint=%s: %s", endpoint,
                               zmq_strerror(err));
    }

    bool sending = type == ZMQ_PUSH || type == ZMQ_XPUB || type == ZMQ_DEALER;
    /* A reliable consumer's ROUTER sends acks: they too may linger. The
     * reliable DEALER does not: fzrel_close() waits for acks itself, and
     * what is unacked then is in the spool (or reported lost). */
    int linger = (sending && type != ZMQ_DEALER) || type == ZMQ_ROUTER ? (int)cfg->linger_ms : 0;
    int ivl = (int)cfg->reconnect_min_ms;
    int ivl_max = (int)(cfg->reconnect_max_ms > cfg->reconnect_min_ms ? cfg->reconnect_max_ms
                                                                      : cfg->reconnect_min_ms);
    int sndhwm = (int)cfg->send_hwm, rcvhwm = (int)cfg->receive_hwm;
    int sndtimeo = FZMQ_SEND_WAIT_MS;
    int64_t maxmsg = cfg->max_message_size;
    int one = 1;
    if ((st = fzmq_setopt(c, s->sock, ZMQ_LINGER, "linger", &linger, sizeof linger)) ||
        (st = fzmq_setopt(c, s->sock, ZMQ_RECONNECT_IVL, "reconnect_min", &ivl, sizeof ivl)) ||
        (st = fzmq_setopt(c, s->sock, ZMQ_RECONNECT_IVL_MAX, "reconnect_max", &ivl_max,
                          sizeof ivl_max)) ||
        (st = fzmq_setopt(c, s->sock, ZMQ_SNDHWM, "send_hwm", &sndhwm, sizeof sndhwm)) ||
        (st = fzmq_setopt(c, s->sock, ZMQ_RCVHWM, "receive_hwm", &rcvhwm, sizeof rcvhwm)) ||
        (st =
             fzmq_setopt(c, s->sock, ZMQ_MAXMSGSIZE, "max_message_size", &maxmsg, sizeof maxmsg)) ||
        /* Queue only on completed connections: while the peer is down,
         * publish says so instead of filling a pipe nobody drains. Not on
         * SUB: libzmq 4.3.4 then never sends the subscription. Not on the
         * reliable DEALER either: it keeps copies anyway, and with
         * ZMQ_IMMEDIATE libzmq drops the acks still unread in the pipe of
         * a consumer that has just closed. */
        (sending && type != ZMQ_DEALER &&
         (st = fzmq_setopt(c, s->sock, ZMQ_IMMEDIATE, "immediate", &one, sizeof one))) ||
        (sending &&
         (st = fzmq_setopt(c, s->sock, ZMQ_SNDTIMEO, "sndtimeo", &sndtimeo, sizeof sndtimeo))) ||
        (type == ZMQ_XPUB &&
         (st = fzmq_setopt(c, s->sock, ZMQ_XPUB_VERBOSER, "xpub_verboser", &one, sizeof one))) ||
        /* A subscriber whose queue is full makes publish say "again"
         * (send_hwm) instead of libzmq dropping its copy in silence. */
        (type == ZMQ_XPUB &&
         (st = fzmq_setopt(c, s->sock, ZMQ_XPUB_NODROP, "xpub_nodrop", &one, sizeof one))) ||
        (st = fzmq_curve_setup(c, s, bind)) ||
        ((type == ZMQ_DEALER || type == ZMQ_ROUTER) && (st = fzmq_reliable_setup(c, s, type)))) {
        fzmq_sock_free(s);
        return st;
    }

    char mon_ep[64];
    snprintf(mon_ep, sizeof mon_ep, "inproc://fzmq-monitor-%u", ++p->mon_seq);
    if (zmq_socket_monitor(s->sock, mon_ep,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0 ||
        !(s->mon = zmq_socket(p->ctx, ZMQ_PAIR)) ||
        zmq_setsockopt(s->mon, ZMQ_LINGER, &(int){0}, sizeof(int)) != 0 ||
        zmq_connect(s->mon, mon_ep) != 0) {
        int err = errno;
        fzmq_sock_free(s);
        return ferry_conn_fail(c, fzmq_status(err), "monitor socket endpoint=%s: %s", endpoint,
                               zmq_strerror(err));
    }

    if ((bind ? zmq_bind(s->sock, endpoint) : zmq_connect(s->sock, endpoint)) != 0) {
        int err = errno;
        fzmq_sock_free(s);
        return ferry_conn_fail(c, fzmq_status(err), "%s failed endpoint=%s error=\"%s\"",
                               bind ? "bind" : "connect", endpoint, zmq_strerror(err));
    }
    ferry_log_debug(c, "socket ready endpoint=%s mode=%s", endpoint, bind ? "bind" : "connect");
    *out = s;
    return FERRY_OK;
}

/* Whether a publish to dest on s can reach anyone now. */
static bool fzmq_can_send(const struct fzmq *p, const struct fzmq_sock *s, const char *dest)
{
    if (p->cfg->pattern == FZMQ_PUBSUB && s->bound)
        return fzmq_has_subscriber(s, dest);
    return s->peers > 0;
}

/* The publishing socket for dest's endpoint, created on first use. A new
 * socket waits up to connect_timeout for a peer, so that a short-lived
 * producer's first message is not refused while the connection forms.
 * A bound one then waits until no peer has joined for two reconnect_min
 * periods: consumers that were retrying all get back in before the first
 * message goes out, instead of the first one to arrive taking it all. */
static int fzmq_out_sock(struct ferry_conn *c, const char *dest, struct fzmq_sock **out)
{
    struct fzmq *p = c->priv;
    const char *ep = fzmq_endpoint_for(c, dest);
    for (struct fzmq_sock *s = p->out; s; s = s->next) {
        if (s->ep_key == ep || strcmp(s->endpoint, ep) == 0) {
            *out = s;
            /* Each look at the monitor costs libzmq a poll of its command
             * mailbox (a system call): with PUSH peers connected, look at
             * most once a clock tick (the coarse clock: a few ms at most,
             * and reading it costs a fraction of the fine one, which
             * showed at a million messages a second); without one, or for
             * XPUB topics, every time. */
            int64_t now = fzmq_tick_ms();
            if (s->peers <= 0 || p->cfg->pattern == FZMQ_PUBSUB || now != s->upkept_ms) {
                s->upkept_ms = now;
                fzmq_upkeep(c, s);
            }
            return FERRY_OK;
        }
    }
    struct fzmq_sock *s;
    int type = p->cfg->pattern == FZMQ_PUBSUB ? ZMQ_XPUB : p->cfg->reliable ? ZMQ_DEALER : ZMQ_PUSH;
    int st = fzmq_sock_open(c, type, ep, p->producer_binds, &s);
    if (st != FERRY_OK)
        return st;
    s->ep_key = ep;
    s->next = p->out;
    p->out = s;

    int64_t deadline = fzmq_now_ms() + p->cfg->connect_timeout_ms;
    int64_t quiet = 2 * p->cfg->reconnect_min_ms, last_join = -1;
    uint64_t joins = 0;
    zmq_pollitem_t items[2] = {{s->mon, 0, ZMQ_POLLIN, 0}, {s->sock, 0, ZMQ_POLLIN, 0}};
    int n_items = type == ZMQ_XPUB ? 2 : 1;
    for (;;) {
        fzmq_upkeep(c, s);
        int64_t now = fzmq_now_ms();
        if (s->handshakes + s->subscriptions != joins) {
            joins = s->handshakes + s->subscriptions;
            last_join = now;
        }
        int64_t until = deadline;
        if (fzmq_can_send(p, s, dest)) {
            if (!s->bound)
                break;
            until = last_join + quiet < deadline ? last_join + quiet : deadline;
        }
        long left = fzmq_left(until);
        if (left == 0 || zmq_poll(items, n_items, left) < 0)
            break;
    }
    *out = s;
    return FERRY_OK;
}

/* ---------------------------------------------------------------------- */
/* Operations */

/* A message of total bytes: a spare one when it fits, else allocated.
 * Ended in fzmq_rmsg_end(). */
static struct fzmq_rmsg *fzmq_rmsg_new(struct fzmq *p, size_t total)
{
    struct fzmq_rmsg *r;
    if (total <= FZMQ_SPARE_SIZE && p->spare) {
        r = p->spare;
        p->spare = r->next;
        p->n_spare--;
    } else {
        size_t size = total <= FZMQ_SPARE_SIZE ? FZMQ_SPARE_SIZE : total;
        /* freed in fzmq_rmsg_end() (kept as a spare) or fzmq_close() */
        r = malloc(size);
        if (!r)
            return NULL;
        r->size = size;
    }
    size_t size = r->size;
    memset(r, 0, sizeof *r);
    r->size = size;
    return r;
}

/* The loan of r ended (unlinked already): keep it for reuse or free it. */
static void fzmq_rmsg_end(struct fzmq *p, struct fzmq_rmsg *r)
{
    if (r->size == FZMQ_SPARE_SIZE && p->n_spare < FZMQ_SPARE_MAX) {
        r->next = p->spare;
        p->spare = r;
        p->n_spare++;
    } else {
        free(r);
    }
}

static void fzmq_rmsg_unlink(struct fzmq *p, struct fzmq_rmsg *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        p->lent = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* Report the messages accepted since the last call. Reports are made
 * after publish() has returned, so the caller has already recorded the
 * message as accepted when its report arrives. A report may publish again:
 * the head moves before each call. */
static void fzmq_report_settled(struct ferry_conn *c)
{
    struct fzmq *p = c->priv;
    while (p->settled_head < p->n_settled)
        ferry_conn_delivered(c, p->settled[p->settled_head++], FERRY_OK, NULL);
    p->settled_head = p->n_settled = 0;
}

static void fzmq_close(struct ferry_conn *c)
{
    struct fzmq *p = c->priv;
    if (!p)
        return;
    if (p->rel_in) /* acks owed for what was handled; the rest comes again */
        fzrel_in_flush(p->rel_in, p->in->sock);
    /* A producer with nothing new to send still delivers what an earlier
     * run left in the spool. */
    if (p->cfg->reliable && p->cfg->spool_dir && !p->in && fzmq_rel_get(c) != FERRY_OK)
        ferry_log_error(c, "spool not delivered spool_dir=%s error=\"%s\"", p->cfg->spool_dir,
                        c->err);
    fzrel_close(c, p->rel, p->cfg->linger_ms); /* waits for acks up to linger */
    fzrel_in_free(p->rel_in);
    while (p->lent) {
        struct fzmq_rmsg *r = p->lent;
        fzmq_rmsg_unlink(p, r);
        free(r);
    }
    while (p->requeue_head) {
        struct fzmq_rmsg *r = p->requeue_head;
        p->requeue_head = r->next;
        free(r);
    }
    while (p->spare) {
        struct fzmq_rmsg *r = p->spare;
        p->spare = r->next;
        free(r);
    }
    fzmq_sock_free(p->in);
    while (p->out) {
        struct fzmq_sock *s = p->out;
        p->out = s->next;
        fzmq_sock_free(s);
    }
    /* Blocks up to linger while queued messages reach their peers; the
     * ZAP handler sees ETERM, closes its socket and ends. */
    if (p->ctx)
        zmq_ctx_term(p->ctx);
    if (p->zap_running)
        thrd_join(p->zap_thread, NULL);
    mtx_destroy(&p->zap_mtx);
    free(p->allowed);
    free(p->sub_dest);
    free(p->settled);
    free(p);
    c->priv = NULL;
}

static int fzmq_open(struct ferry_conn *c)
{
    const struct fzmq_cfg *cfg = c->cfg;
    if (!cfg->endpoint || !fzmq_endpoint_ok(cfg->endpoint))
        return ferry_conn_fail(c, FERRY_E_CONFIG,
                               "bad endpoint \"%s\": expected TRANSPORT://ADDRESS with a "
                               "transport this libzmq supports (tcp, ipc, ...)",
                               cfg->endpoint ? cfg->endpoint : "");
    size_t plen = strlen(FZMQ_ENDPOINT_PREFIX);
    for (size_t i = 0; i < c->n_passthru; i++) {
        const struct ferry_kv *kv = &c->passthru[i];
        if (strncmp(kv->key, FZMQ_ENDPOINT_PREFIX, plen) != 0 || kv->key[plen] == '\0')
            return ferry_conn_fail(c, FERRY_E_CONFIG, "bad option %s: expected endpoint.NAME",
                                   kv->key);
        if (!kv->value || !fzmq_endpoint_ok(kv->value))
            return ferry_conn_fail(c, FERRY_E_CONFIG,
                                   "bad endpoint \"%s\" for %s: expected TRANSPORT://ADDRESS",
                                   kv->value ? kv->value : "", kv->key);
    }

    if (cfg->reliable && cfg->pattern != FZMQ_PIPELINE)
        return ferry_conn_fail(c, FERRY_E_CONFIG,
                               "reliable needs pattern = pipeline (a subscriber of pubsub "
                               "cannot ack)");
    if (cfg->spool_dir && !cfg->reliable)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "spool_dir needs reliable = true");

    char client_public[FZMQ_KEY_Z85 + 1] = "";
    int st = fzmq_curve_check(c, cfg, client_public);
    if (st != FERRY_OK)
        return st;

    struct fzmq *p = calloc(1, sizeof *p); /* freed in fzmq_close() */
    if (!p)
        return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
    if (mtx_init(&p->zap_mtx, mtx_plain) != thrd_success) {
        free(p);
        return ferry_conn_fail(c, FERRY_E_AGAIN, "cannot create a mutex");
    }
    p->cfg = cfg;
    memcpy(p->client_public, client_public, sizeof client_public);
    p->producer_binds = cfg->bind == FZMQ_BIND_PRODUCER ||
                        (cfg->bind == FZMQ_BIND_AUTO && cfg->pattern == FZMQ_PUBSUB);
    p->consumer_binds = !p->producer_binds;
    p->ctx = zmq_ctx_new(); /* terminated in fzmq_close() */
    if (!p->ctx) {
        int err = errno;
        mtx_destroy(&p->zap_mtx);
        free(p);
        return ferry_conn_fail(c, fzmq_status(err), "zmq_ctx_new: %s", zmq_strerror(err));
    }
    c->priv = p;
    if (cfg->curve_allowed_clients && (st = fzmq_zap_start(c)) != FERRY_OK) {
        fzmq_close(c);
        return st;
    }

    /* Nothing is stored by a peer; without reliable nothing is confirmed
     * or acknowledged either: clear every promise this pattern cannot keep. */
    uint32_t keep = FERRY_CAP_KEY_ORDER;
    if (cfg->pattern == FZMQ_PUBSUB)
        keep |= FERRY_CAP_FANOUT;
    else if (p->producer_binds)
        keep = FERRY_CAP_GROUPS; /* round robin: order per key is lost across consumers */
    if (cfg->reliable)           /* resends overtake newer messages: no order per key */
        keep = (keep & ~FERRY_CAP_KEY_ORDER) | FERRY_CAP_ACK | FERRY_CAP_CONFIRMS;
    c->caps &= keep;

    const char *curve = cfg->curve_server_secret && cfg->curve_server_key ? "server,client"
                        : cfg->curve_server_secret                        ? "server"
                        : cfg->curve_server_key                           ? "client"
                                                                          : "off";
    ferry_log_info(c,
                   "opened lib_version=\"%s\" pattern=%s endpoint=%s bind=%s curve=%s "
                   "allowed_clients=%zu reliable=%s",
                   fzmq_lib_version(), fzmq_pattern_name(p), cfg->endpoint,
                   p->producer_binds ? "producer" : "consumer", curve, p->n_allowed,
                   cfg->reliable ? "yes" : "no");
    return FERRY_OK;
}

static int fzmq_send_frame(void *sock, const void *data, size_t len, int more)
{
    /* blocks up to FZMQ_SEND_WAIT_MS (ZMQ_SNDTIMEO) for room */
    return zmq_send(sock, data ? data : "", len, more ? ZMQ_SNDMORE : 0);
}

/* Make room to note one more accepted message for fzmq_report_settled(),
 * so that a message that went out always gets its report. */
static int fzmq_settle_room(struct ferry_conn *c)
{
    struct fzmq *p = c->priv;
    if (p->n_settled == p->settled_cap) {
        size_t cap = p->settled_cap ? 2 * p->settled_cap : 64;
        uint64_t *t = realloc(p->settled, cap * sizeof *t); /* freed in fzmq_close() */
        if (!t)
            return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
        p->settled = t;
        p->settled_cap = cap;
    }
    return FERRY_OK;
}

/* The data frames of m: dest, key, body, then one name/value pair per
 * header (plugins/zmq/README.md). Borrowed: they point into m. f has room
 * for 3 + 2 * FZMQ_MAX_HEADERS frames. */
static size_t fzmq_encode(const struct ferry_msg *m, struct fzrel_frame *f)
{
    size_t n = 0;
    f[n++] = (struct fzrel_frame){m->dest, strlen(m->dest)};
    f[n++] = (struct fzrel_frame){m->key, m->key ? m->key_len : 0};
    f[n++] = (struct fzrel_frame){m->body, m->body_len};
    for (size_t i = 0; i < m->n_headers; i++) {
        f[n++] = (struct fzrel_frame){m->headers[i].name, strlen(m->headers[i].name)};
        f[n++] = (struct fzrel_frame){m->headers[i].value, m->headers[i].value_len};
    }
    return n;
}

/* Hooks lent to reliable.c. */
static int fzmq_rel_sock_for(struct ferry_conn *c, const char *dest, void **sock)
{
    struct fzmq_sock *s;
    int st = fzmq_out_sock(c, dest, &s);
    if (st == FERRY_OK)
        *sock = s->sock;
    return st;
}

static void fzmq_rel_upkeep(struct ferry_conn *c)
{
    struct fzmq *p = c->priv;
    for (struct fzmq_sock *s = p->out; s; s = s->next)
        fzmq_upkeep(c, s);
}

static long fzmq_rel_peers(struct ferry_conn *c)
{
    struct fzmq *p = c->priv;
    long n = 0;
    for (struct fzmq_sock *s = p->out; s; s = s->next)
        n += s->peers;
    return n;
}

/* The reliable producer state, opened on first use: a consumer that
 * shares the producer's configuration never takes the spool's lock. */
static int fzmq_rel_get(struct ferry_conn *c)
{
    struct fzmq *p = c->priv;
    const struct fzmq_cfg *cfg = p->cfg;
    if (p->rel_tried)
        return FERRY_OK;
    struct fzrel_opts o = {.ack_timeout_ms = cfg->ack_timeout_ms,
                           .max_unacked = cfg->max_unacked,
                           .spool_dir = cfg->spool_dir,
                           .spool_max = cfg->spool_max,
                           .spool_fsync = cfg->spool_fsync,
                           .spool_fsync_interval_ms = cfg->spool_fsync_interval_ms,
                           .spool_full = cfg->spool_full};
    static const struct fzrel_hooks hooks = {fzmq_rel_sock_for, fzmq_rel_upkeep, fzmq_rel_peers};
    int st = fzrel_open(c, &o, &hooks, &p->rel); /* freed in fzmq_close() */
    if (st == FERRY_OK)
        p->rel_tried = true;
    return st;
}

/* A reliable publish: the data frames of either wire version follow the
 * reliable header. Kept apart from fzmq_publish() for its stack (a frame
 * list for version 1, a buffer for version 2), which the common path
 * would otherwise reserve and probe for every message. */
static int fzmq_publish_reliable(struct ferry_conn *c, const struct ferry_msg *m, uint64_t size,
                                 bool v2)
{
    struct fzmq *p = c->priv;
    struct fzrel_frame fr[3 + 2 * FZMQ_MAX_HEADERS];
    size_t nfr;
    char small[4096], *v2buf = NULL;
    if (v2) {
        v2buf = size <= sizeof small ? small : malloc((size_t)size); /* freed below */
        if (!v2buf)
            return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory for a %" PRIu64 "-byte message",
                                   size);
        fzmq_wire_v2_encode(m, v2buf);
        fr[0] = (struct fzrel_frame){v2buf, (size_t)size};
        nfr = 1;
    } else {
        nfr = fzmq_encode(m, fr);
    }
    int st;
    if ((st = fzmq_rel_get(c)) == FERRY_OK &&
        (st = fzrel_publish(c, p->rel, m->dest, m->tag, fr, nfr)) == FERRY_OK)
        p->published++;
    if (v2buf != small)
        free(v2buf);
    return st;
}

/* Version 1 frames (fzmq_encode()) on s. libzmq delivers a multipart
 * message whole or not at all, and accepts the remaining frames once it
 * has taken the first. */
static int fzmq_send_v1(struct ferry_conn *c, struct fzmq_sock *s, const struct ferry_msg *m)
{
    struct fzrel_frame fr[3 + 2 * FZMQ_MAX_HEADERS];
    size_t nfr = fzmq_encode(m, fr);
    if (fzmq_send_frame(s->sock, fr[0].data, fr[0].len, nfr > 1) < 0) {
        int err = errno;
        return ferry_conn_fail(c, fzmq_status(err), "publish failed dest=%s error=\"%s\"", m->dest,
                               err == EAGAIN ? "send queue full (send_hwm)" : zmq_strerror(err));
    }
    int rc = 0;
    for (size_t i = 1; rc >= 0 && i < nfr; i++)
        rc = fzmq_send_frame(s->sock, fr[i].data, fr[i].len, i + 1 < nfr);
    if (rc < 0) {
        int err = errno;
        return ferry_conn_fail(c, FERRY_E_FATAL, "publish failed mid-message dest=%s error=\"%s\"",
                               m->dest, zmq_strerror(err));
    }
    return FERRY_OK;
}

static int fzmq_publish(struct ferry_conn *c, const struct ferry_msg *m)
{
    struct fzmq *p = c->priv;
    fzmq_report_settled(c);
    if (!m->dest || !*m->dest)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "publish without a destination");
    if (m->n_headers > FZMQ_MAX_HEADERS)
        return ferry_conn_fail(c, FERRY_E_TOOBIG, "%zu headers, at most %d", m->n_headers,
                               FZMQ_MAX_HEADERS);
    /* version 2: the frame as a whole is what the peer's limit applies to */
    bool v2 = p->cfg->wire_version == 2;
    uint64_t size =
        v2 ? fzmq_wire_v2_size(m) : (uint64_t)m->body_len + m->key_len + strlen(m->dest);
    for (size_t i = 0; !v2 && i < m->n_headers; i++)
        size += strlen(m->headers[i].name) + m->headers[i].value_len;
    if (size == 0 || size > (uint64_t)p->cfg->max_message_size)
        return ferry_conn_fail(c, FERRY_E_TOOBIG,
                               "message of %" PRIu64 " bytes, max_message_size is %" PRId64, size,
                               p->cfg->max_message_size);
    if (p->cfg->reliable)
        return fzmq_publish_reliable(c, m, size, v2);

    struct fzmq_sock *s;
    int st = fzmq_out_sock(c, m->dest, &s);
    if (st == FERRY_OK) /* room for the report before the message goes out */
        st = fzmq_settle_room(c);
    if (st != FERRY_OK)
        return st;
    if (!fzmq_can_send(p, s, m->dest)) {
        if (p->cfg->pattern == FZMQ_PUBSUB && s->bound) {
            /* Fan-out with nobody listening: nothing to deliver to, as
             * with an exchange that has no queue bound. */
            p->published++;
            ferry_log_debug(c, "no subscriber dest=%s endpoint=%s", m->dest, s->endpoint);
            p->settled[p->n_settled++] = m->tag;
            return FERRY_OK;
        }
        if (!s->bound && !s->down_logged) {
            ferry_log_warn(c, "not connected endpoint=%s retry_in=%" PRId64 "ms", s->endpoint,
                           p->cfg->reconnect_min_ms);
            s->down_logged = true;
        }
        return ferry_conn_fail(c, FERRY_E_NOCONN, "%s endpoint=%s dest=%s",
                               s->bound ? "no consumer connected" : "not connected", s->endpoint,
                               m->dest);
    }

    if (v2) { /* one frame, encoded in place in libzmq's buffer */
        zmq_msg_t frame;
        if (zmq_msg_init_size(&frame, (size_t)size) != 0)
            return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory for a %" PRIu64 "-byte message",
                                   size);
        fzmq_wire_v2_encode(m, zmq_msg_data(&frame));
        if (zmq_msg_send(&frame, s->sock, 0) < 0) { /* waits as fzmq_send_frame() */
            int err = errno;
            zmq_msg_close(&frame);
            return ferry_conn_fail(
                c, fzmq_status(err), "publish failed dest=%s error=\"%s\"", m->dest,
                err == EAGAIN ? "send queue full (send_hwm)" : zmq_strerror(err));
        }
    } else if ((st = fzmq_send_v1(c, s, m)) != FERRY_OK) {
        return st;
    }
    p->published++;
    /* No peer acknowledges anything: handing the message to libzmq is as
     * far as this transport can vouch for it. */
    p->settled[p->n_settled++] = m->tag;
    return FERRY_OK;
}

static int fzmq_flush(struct ferry_conn *c, int timeout_ms)
{
    struct fzmq *p = c->priv;
    if (p->cfg->reliable) {
        int st = fzmq_rel_get(c);
        if (st == FERRY_OK && (st = fzrel_pump(c, p->rel, timeout_ms)) != FERRY_OK)
            ferry_conn_fail(c, st, "%" PRIu64 " messages not acknowledged by a consumer yet",
                            fzrel_unacked(p->rel));
        return st;
    }
    /* libzmq has taken every accepted message; nothing more will be known. */
    fzmq_report_settled(c);
    return FERRY_OK;
}

static int fzmq_subscribe(struct ferry_conn *c, const char *dest, const char *group)
{
    struct fzmq *p = c->priv;
    if (p->in)
        return ferry_conn_fail(c, FERRY_E_NOTSUP, "already subscribed to %s", p->sub_dest);
    if (!dest || !*dest)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "subscribe without a destination");
    bool named = group && *group;
    if (named && !(c->caps & FERRY_CAP_GROUPS))
        ferry_log_info(c, "group has no effect pattern=%s group=%s reason=\"%s\"",
                       fzmq_pattern_name(p), group,
                       p->cfg->pattern == FZMQ_PUBSUB ? "every subscriber gets every message"
                                                      : "one consumer binds the endpoint");
    else if (!named && (c->caps & FERRY_CAP_GROUPS))
        ferry_log_info(c,
                       "private subscription shares work dest=%s reason=\"pipeline "
                       "consumers of one endpoint always split the stream\"",
                       dest);

    p->sub_dest = strdup(dest); /* freed in fzmq_close() */
    if (!p->sub_dest)
        return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
    p->sub_dest_len = strlen(dest);
    int type = p->cfg->pattern == FZMQ_PUBSUB ? ZMQ_SUB : p->cfg->reliable ? ZMQ_ROUTER : ZMQ_PULL;
    if (p->cfg->reliable && !(p->rel_in = fzrel_in_new())) /* freed in fzmq_close() */
        return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
    int st = fzmq_sock_open(c, type, fzmq_endpoint_for(c, dest), p->consumer_binds, &p->in);
    if (st == FERRY_OK && type == ZMQ_SUB)
        st = fzmq_setopt(c, p->in->sock, ZMQ_SUBSCRIBE, "subscribe", dest, p->sub_dest_len);
    if (st != FERRY_OK) {
        fzmq_sock_free(p->in);
        p->in = NULL;
        free(p->sub_dest);
        p->sub_dest = NULL;
        return st;
    }
    ferry_log_info(c, "subscribed dest=%s endpoint=%s", dest, p->in->endpoint);
    return FERRY_OK;
}

static void fzmq_warn_dropped(struct ferry_conn *c, const char *why)
{
    struct fzmq *p = c->priv;
    uint64_t n = ++p->dropped;
    /* Log the 1st, 10th, 100th, ...: a misbehaving peer cannot flood the log. */
    while (n % 10 == 0)
        n /= 10;
    if (n == 1)
        ferry_log_warn(c, "message dropped reason=\"%s\" dropped=%" PRIu64, why, p->dropped);
}

/* Build one lent message from frames (either wire version). Returns 1 with
 * *out set, 0 when the message is not ours or malformed (dropped), or a
 * ferry status < 0. */
static int fzmq_build(struct ferry_conn *c, zmq_msg_t *fr, size_t n, struct fzmq_rmsg **out)
{
    struct fzmq *p = c->priv;
    struct fzmq_wire_span frames[3 + 2 * FZMQ_MAX_HEADERS];
    struct fzmq_wire_view v;
    char why[256];
    for (size_t i = 0; i < n; i++)
        frames[i] = (struct fzmq_wire_span){zmq_msg_data(&fr[i]), zmq_msg_size(&fr[i])};
    int rc = n == 1 && fzmq_wire_is_v2(frames[0].data, frames[0].len)
                 ? fzmq_wire_v2_decode(frames[0].data, frames[0].len, &v, why, sizeof why)
                 : fzmq_wire_v1_view(frames, n, &v, why, sizeof why);
    if (rc != 0) {
        fzmq_warn_dropped(c, why);
        return 0;
    }
    if (!v.dest.data) /* a plain peer's body alone */
        v.dest = (struct fzmq_wire_span){p->sub_dest, p->sub_dest_len};
    if (p->cfg->pattern == FZMQ_PUBSUB &&
        (v.dest.len != p->sub_dest_len || memcmp(v.dest.data, p->sub_dest, v.dest.len) != 0))
        return 0; /* a longer topic that only shares our prefix */

    size_t n_hdr = v.n_headers;
    size_t total = sizeof(struct fzmq_rmsg) + n_hdr * sizeof(struct ferry_header);
    total += v.dest.len + 1 + v.body.len + 1 + v.key.len + 1;
    for (size_t h = 0; h < n_hdr; h++)
        total += v.name[h].len + 1 + v.value[h].len + 1;
    /* ended in fzmq_ack(), fzmq_nack(), fzmq_release() or fzmq_close() */
    struct fzmq_rmsg *r = fzmq_rmsg_new(p, total);
    if (!r)
        return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory for a %zu-byte message", total);
    struct ferry_header *hdrs = (struct ferry_header *)(r + 1);
    char *w = (char *)(hdrs + n_hdr);

    /* Each field is copied NUL-terminated so text can be printed as is. */
#define FZMQ_COPY(dst, span)                                                                       \
    do {                                                                                           \
        if ((span).len)                                                                            \
            memcpy(w, (span).data, (span).len);                                                    \
        (dst) = w;                                                                                 \
        w += (span).len;                                                                           \
        *w++ = '\0';                                                                               \
    } while (0)
    FZMQ_COPY(r->m.dest, v.dest);
    FZMQ_COPY(r->m.body, v.body);
    r->m.body_len = v.body.len;
    if (v.key.len > 0) {
        FZMQ_COPY(r->m.key, v.key);
        r->m.key_len = v.key.len;
    }
    for (size_t h = 0; h < n_hdr; h++) {
        FZMQ_COPY(hdrs[h].name, v.name[h]);
        FZMQ_COPY(hdrs[h].value, v.value[h]);
        hdrs[h].value_len = v.value[h].len;
    }
#undef FZMQ_COPY
    r->m.headers = n_hdr ? hdrs : NULL;
    r->m.n_headers = n_hdr;
    r->m.tag = ++p->received;
    *out = r;
    return 1;
}

/* A reliable message: routing id, header, then the data frames. */
static int fzmq_read_reliable(struct ferry_conn *c, zmq_msg_t *fr, size_t n, struct fzmq_rmsg **out)
{
    struct fzmq *p = c->priv;
    const void *data[2];
    size_t len[2];
    for (size_t i = 0; i < 2 && i < n; i++) {
        data[i] = zmq_msg_data(&fr[i]);
        len[i] = zmq_msg_size(&fr[i]);
    }
    uint32_t peer;
    uint64_t seq;
    bool resent;
    const char *why = NULL;
    size_t skip = fzrel_in_strip(p->rel_in, data, len, n, &peer, &seq, &resent, &why);
    if (!skip) {
        fzmq_warn_dropped(c, why);
        return 0;
    }
    int rc = fzmq_build(c, fr + skip, n - skip, out);
    if (rc != 1) {
        /* not taken: no ack, so its producer sends it again; a malformed
         * one is acked, or it would come back for ever */
        if (rc == 0)
            fzrel_in_ack(p->rel_in, peer, seq);
        else
            fzrel_in_forget(p->rel_in, peer);
        return rc;
    }
    (*out)->rel_peer = peer;
    (*out)->rel_seq = seq;
    (*out)->m.redelivered = resent;
    return 1;
}

/* Read one whole multipart message that is ready on the subscription.
 * Returns 1 with *out set, 0 when it was dropped, FERRY_E_TIMEOUT when none
 * is ready, or another status < 0. */
static int fzmq_read_one(struct ferry_conn *c, struct fzmq_rmsg **out)
{
    struct fzmq *p = c->priv;
    zmq_msg_t fr[2 + 3 + 2 * FZMQ_MAX_HEADERS], extra; /* reliable: routing id, header */
    size_t n = 0;
    int more = 1, err = 0;
    bool too_many = false;
    while (more) {
        /* Frames beyond the limit are read into extra and discarded, so the
         * next read starts at the next message. */
        too_many = n == sizeof fr / sizeof fr[0];
        zmq_msg_t *f = too_many ? &extra : &fr[n];
        zmq_msg_init(f);
        if (zmq_msg_recv(f, p->in->sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            err = errno;
            zmq_msg_close(f);
            break;
        }
        more = zmq_msg_more(f);
        if (too_many)
            zmq_msg_close(f);
        else
            n++;
    }
    int rc;
    if (n == 0 && err == EAGAIN)
        rc = FERRY_E_TIMEOUT;
    else if (too_many && !err) {
        fzmq_warn_dropped(c, "more than 256 headers");
        rc = 0;
    } else if (err)
        rc = ferry_conn_fail(c, fzmq_status(err), "receive failed dest=%s error=\"%s\"",
                             p->sub_dest, zmq_strerror(err));
    else if (!p->rel_in)
        rc = fzmq_build(c, fr, n, out);
    else
        rc = fzmq_read_reliable(c, fr, n, out);
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&fr[i]);
    return rc;
}

static void fzmq_lend(struct fzmq *p, struct fzmq_rmsg *r)
{
    r->prev = NULL;
    r->next = p->lent;
    if (p->lent)
        p->lent->prev = r;
    p->lent = r;
}

static int fzmq_receive(struct ferry_conn *c, struct ferry_msg **out, size_t max, size_t *n,
                        int timeout_ms)
{
    struct fzmq *p = c->priv;
    *n = 0;
    fzmq_report_settled(c);
    if (!p->in)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "receive before subscribe");
    if (p->rel_in) /* the acks of the batch handled since the last call */
        fzrel_in_flush(p->rel_in, p->in->sock);
    if (max == 0)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "receive of at most 0 messages");

    int64_t deadline = timeout_ms < 0 ? -1 : fzmq_now_ms() + timeout_ms;
    for (;;) {
        while (*n < max && p->requeue_head) {
            struct fzmq_rmsg *r = p->requeue_head;
            p->requeue_head = r->next;
            if (!p->requeue_head)
                p->requeue_tail = NULL;
            fzmq_lend(p, r);
            out[(*n)++] = &r->m;
        }
        while (*n < max) {
            struct fzmq_rmsg *r = NULL;
            int rc = fzmq_read_one(c, &r);
            if (rc == FERRY_E_TIMEOUT)
                break;
            if (rc < 0)
                return *n > 0 ? FERRY_OK : rc;
            if (rc == 1) {
                fzmq_lend(p, r);
                out[(*n)++] = &r->m;
            }
        }
        fzmq_upkeep(c, p->in);
        if (*n > 0)
            return FERRY_OK;
        long left = fzmq_left(deadline);
        if (left == 0)
            return ferry_conn_fail(c, FERRY_E_TIMEOUT, "no message within %d ms", timeout_ms);
        zmq_pollitem_t items[2] = {{p->in->sock, 0, ZMQ_POLLIN, 0}, {p->in->mon, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, left) < 0 && errno != EINTR) {
            int err = errno;
            return ferry_conn_fail(c, fzmq_status(err), "poll failed dest=%s error=\"%s\"",
                                   p->sub_dest, zmq_strerror(err));
        }
    }
}

static struct fzmq_rmsg *fzmq_loan(struct ferry_msg *m)
{
    return (struct fzmq_rmsg *)m; /* m is the first member */
}

static int fzmq_ack(struct ferry_conn *c, struct ferry_msg *m)
{
    struct fzmq *p = c->priv;
    struct fzmq_rmsg *r = fzmq_loan(m);
    fzmq_rmsg_unlink(p, r);
    int st = FERRY_OK;
    if (p->rel_in) {
        st = fzrel_in_ack(p->rel_in, r->rel_peer, r->rel_seq);
        if (st != FERRY_OK)
            ferry_conn_fail(c, st, "out of memory for an ack (the message comes again)");
        else if (!p->lent || fzrel_in_owed(p->rel_in) >= 1024)
            /* the batch is done (nothing else on loan) or the acks pile
             * up: send them now rather than at the next receive */
            fzrel_in_flush(p->rel_in, p->in->sock);
    }
    fzmq_rmsg_end(p, r);
    return st;
}

static int fzmq_nack(struct ferry_conn *c, struct ferry_msg *m, bool requeue, const char *reason)
{
    struct fzmq *p = c->priv;
    struct fzmq_rmsg *r = fzmq_loan(m);
    fzmq_rmsg_unlink(p, r);
    if (requeue) {
        /* Handed out again first by receive(). Without reliable no peer
         * keeps a copy; with it the producer resends once this connection
         * closes without an ack. */
        r->m.redelivered = 1;
        if (p->requeue_tail)
            p->requeue_tail->next = r;
        else
            p->requeue_head = r;
        p->requeue_tail = r;
        return FERRY_OK;
    }
    ferry_log_debug(c, "message dropped (nack) dest=%s reason=\"%s\"", r->m.dest,
                    reason ? reason : "");
    /* the consumer decided: the producer must not send it again */
    if (p->rel_in)
        fzrel_in_ack(p->rel_in, r->rel_peer, r->rel_seq);
    fzmq_rmsg_end(p, r);
    return FERRY_OK;
}

static void fzmq_release(struct ferry_conn *c, struct ferry_msg *m)
{
    struct fzmq *p = c->priv;
    if (p->rel_in) /* no decision: it comes back, here or (after close) elsewhere */
        fzmq_nack(c, m, true, NULL);
    else
        fzmq_ack(c, m);
}

static int fzmq_health(struct ferry_conn *c, struct ferry_health *out)
{
    struct fzmq *p = c->priv;
    memset(out, 0, sizeof *out);
    out->state = FERRY_HEALTH_CONNECTED;
    /* A connecting producer without a peer, or a pipeline producer without
     * a consumer, cannot move messages. A consumer is ready once subscribed
     * (libzmq connects in the background), and a bound publisher simply
     * has nobody to serve yet. */
    for (struct fzmq_sock *s = p->out; s; s = s->next) {
        fzmq_upkeep(c, s);
        if (s->peers > 0 || (s->bound && p->cfg->pattern == FZMQ_PUBSUB) ||
            out->state != FERRY_HEALTH_CONNECTED)
            continue;
        out->state = FERRY_HEALTH_CONNECTING;
        snprintf(out->reason, sizeof out->reason, "%s endpoint=%s",
                 s->bound ? "waiting for a consumer" : "connecting", s->endpoint);
    }
    if (p->in)
        fzmq_upkeep(c, p->in); /* a subscription is ready once made */
    out->reconnects = p->reconnects;
    out->inflight = p->n_settled - p->settled_head + fzrel_unacked(p->rel);
    out->published = p->published;
    out->confirmed = p->published - out->inflight;
    out->received = p->received;
    return FERRY_OK;
}

static const struct ferry_transport_ops fzmq_ops = {
    .size = sizeof(struct ferry_transport_ops),
    .open = fzmq_open,
    .close = fzmq_close,
    .publish = fzmq_publish,
    .flush = fzmq_flush,
    .subscribe = fzmq_subscribe,
    .receive = fzmq_receive,
    .ack = fzmq_ack,
    .nack = fzmq_nack,
    .release = fzmq_release,
    .health = fzmq_health,
};

#define ferry_descriptor zmq_LTX_ferry_descriptor
const struct ferry_transport ferry_descriptor = {
    .abi = FERRY_TRANSPORT_ABI,
    .size = sizeof(struct ferry_transport),
    .name = "zmq",
    .summary = "ZeroMQ, brokerless, through libzmq (pipeline or pubsub)",
    .lib_version = fzmq_lib_version,
    /* ACK and CONFIRMS only with reliable = true: open() clears them otherwise */
    .caps = FERRY_CAP_GROUPS | FERRY_CAP_KEY_ORDER | FERRY_CAP_FANOUT | FERRY_CAP_ACK |
            FERRY_CAP_CONFIRMS,
    .options = fzmq_options,
    .cfg_size = sizeof(struct fzmq_cfg),
    .ops = &fzmq_ops,
};

/* ferry transport plugin ABI: the only header a transport plugin needs.
 * A plugin is a libtool module exporting one `const struct ferry_transport`
 * named ferry_descriptor (or NAME_LTX_ferry_descriptor). */
#ifndef FERRY_TRANSPORT_H
#define FERRY_TRANSPORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI history:
 *   1  first release. The ops table had no size; `defer` was later
 *      appended to struct ferry_transport.
 *   2  struct ferry_transport_ops starts with its size and holds `defer`.
 * The core loads plugins of ABI 2 and of ABI 1 (it converts their table;
 * an ABI 1 descriptor whose size stops short of defer lacks it), and
 * refuses any other ABI naming both numbers and "rebuild the plugin".
 *
 * How the ABI grows: every struct a plugin hands the core, or the core hands
 * a plugin, that may grow carries its size as the first member (size) or is
 * reached through one that does (ferry_conn, ferry_host, ferry_transport,
 * ferry_transport_ops). New members are appended at the end and are
 * optional: a reader touches a member only when the size the other side
 * was built with covers it (FERRY_OPS_HAS). The option table, ferry_msg
 * and ferry_health do not grow: their layout is fixed for an ABI, and
 * changing it means a new ABI number. Anything else that breaks an
 * existing plugin bumps FERRY_TRANSPORT_ABI. */
#define FERRY_TRANSPORT_ABI 2

/* ---------------------------------------------------------------------- */
/* Status codes: every operation returns one; the text is on the connection */

enum ferry_status {
    FERRY_OK = 0,
    FERRY_E_AGAIN = -1,   /* transient (queue full, broker busy): retry with backoff */
    FERRY_E_TIMEOUT = -2, /* nothing arrived / not confirmed before the deadline */
    FERRY_E_NOCONN = -3,  /* connection lost; message not sent; retry after reconnect */
    FERRY_E_CONFIG = -4,  /* bad or missing option: never retried */
    FERRY_E_NOTSUP = -5,  /* outside this plugin's capabilities */
    FERRY_E_TOOBIG = -6,  /* message exceeds the broker or configured limit */
    FERRY_E_FATAL = -7,   /* handle unusable: close it and open a new one */
    FERRY_E_REJECTED = -8 /* the broker refused this message (nack, policy): do not retry as is */
};

/** True for statuses worth retrying with backoff (AGAIN, TIMEOUT, NOCONN). */
static inline bool ferry_status_retriable(int st)
{
    return st == FERRY_E_AGAIN || st == FERRY_E_TIMEOUT || st == FERRY_E_NOCONN;
}

/* ---------------------------------------------------------------------- */
/* Capabilities: what the transport can promise */

enum ferry_cap {
    FERRY_CAP_ACK = 1u << 0,        /* ack/nack; unacked messages come back */
    FERRY_CAP_GROUPS = 1u << 1,     /* consumers in one group share work */
    FERRY_CAP_DURABLE = 1u << 2,    /* survives a broker restart */
    FERRY_CAP_CONFIRMS = 1u << 3,   /* flush() returns OK only once the broker has it all */
    FERRY_CAP_KEY_ORDER = 1u << 4,  /* order kept per key (per producer) */
    FERRY_CAP_DEADLETTER = 1u << 5, /* nack without requeue goes to a reject destination */
    FERRY_CAP_FANOUT = 1u << 6,     /* consumers in different groups each get every message */
};

/* ---------------------------------------------------------------------- */
/* Typed options: one table drives parsing, validation, --help, docs */

enum ferry_opt_type {
    FERRY_OPT_STR = 1,  /* char *, owned by the core; NULL when unset and no default */
    FERRY_OPT_INT,      /* int64_t, within [min, max] when min < max */
    FERRY_OPT_BOOL,     /* bool: true/false, yes/no, on/off, 1/0 */
    FERRY_OPT_DURATION, /* int64_t milliseconds: "250ms", "5s", "2m", "1h"; bare number = ms */
    FERRY_OPT_SIZE,     /* int64_t bytes: "512", "64KiB", "1MiB", "1GiB", "10kB" */
    FERRY_OPT_ENUM,     /* int: index into .choices ("none|gzip|lz4") */
    FERRY_OPT_PREFIX,   /* a family "rdkafka." -> passed through in ferry_conn.passthru */
};

enum ferry_opt_flag {
    FERRY_OPTF_REQUIRED = 1u << 0, /* no default: the user must set it */
    FERRY_OPTF_SECRET = 1u << 1,   /* never printed; may come from NAME_file or the environment */
};

struct ferry_option {
    const char *name; /* lower_snake_case key; for PREFIX the prefix incl. its dot */
    enum ferry_opt_type type;
    uint32_t flags;      /* FERRY_OPTF_* */
    const char *def;     /* default as the user would write it; NULL = none */
    int64_t min, max;    /* range for INT/DURATION/SIZE; ignored when min >= max */
    const char *choices; /* ENUM: "a|b|c" */
    size_t offset;       /* where the value goes in the cfg struct (not for PREFIX) */
    const char *help;    /* one sentence, ends with a period */
};

/* A key/value pair passed through unchanged (PREFIX family members).
 * key keeps its prefix ("rdkafka.socket.timeout.ms"). */
struct ferry_kv {
    const char *key;
    const char *value;
};

/* ---------------------------------------------------------------------- */
/* Messages */

struct ferry_header {
    const char *name;  /* NUL-terminated */
    const void *value; /* value_len bytes, not necessarily NUL-terminated */
    size_t value_len;
};

struct ferry_msg {
    const char *dest; /* queue / topic / channel name */
    const void *key;  /* routing key, e.g. "service.level"; may be NULL */
    size_t key_len;
    const struct ferry_header *headers;
    size_t n_headers;
    const void *body;
    size_t body_len;
    uint64_t tag;         /* publish: the caller's tag, echoed in delivery reports;
                            receive: set by the plugin, meaningful to it only */
    uint32_t redelivered; /* receive: nonzero when the broker says it may have been
                            delivered before */
    uint32_t flags;       /* reserved, 0 */
};

/* ---------------------------------------------------------------------- */
/* Health */

enum ferry_health_state {
    FERRY_HEALTH_CONNECTED = 0,
    FERRY_HEALTH_CONNECTING, /* not yet connected, or reconnecting after a loss */
    FERRY_HEALTH_BLOCKED,    /* connected but the broker refuses publishes for now */
    FERRY_HEALTH_FAILED,     /* will not recover without a new open */
};

struct ferry_health {
    enum ferry_health_state state;
    char reason[256];    /* why, when not CONNECTED; "" otherwise */
    uint64_t reconnects; /* connections re-established since open */
    uint64_t inflight;   /* published, not yet settled */
    uint64_t published;  /* accepted by publish() */
    uint64_t confirmed;  /* settled OK */
    uint64_t failed;     /* settled with an error */
    uint64_t received;   /* handed out by receive() */
};

/* ---------------------------------------------------------------------- */
/* Host services and the connection */

enum ferry_log_level { FERRY_LOG_ERROR = 0, FERRY_LOG_WARN, FERRY_LOG_INFO, FERRY_LOG_DEBUG };

struct ferry_conn;

/* Delivery report: called by the plugin exactly once for every message
 * that publish() accepted (returned FERRY_OK), when its fate is known.
 * status is FERRY_OK (the broker has it; with FERRY_CAP_CONFIRMS this
 * means confirmed) or an error; reason is NULL on success and otherwise
 * valid only during the call.
 *
 * When: only inside a call on the same connection (publish, flush or
 * receive), in the thread making that call; never from a thread of the
 * plugin or of its client library. A report may come inside publish(X)
 * for X itself (a transport that knows at once, e.g. one that confirms
 * synchronously); publish(X) then returns FERRY_OK. A publish that returns
 * an error never reports. Reports of other, earlier messages may come
 * inside any of those calls. The callback must not call back into the
 * connection. close() makes no reports: flush first.
 *
 * Connection loss, when the client library resends by itself: either
 *  (a) leave the messages pending while the library resends, and report
 *      each once with its final fate (librdkafka's idempotent producer;
 *      health says CONNECTING meanwhile), or
 *  (b) report every unconfirmed message FERRY_E_NOCONN at once (the
 *      caller publishes them again; a copy that did reach the broker is
 *      a duplicate, which at-least-once allows and ids remove), and make
 *      sure the library does not send them again on its own.
 * Never both for one message: a message reported failed that the library
 * then delivers anyway arrives twice without having been re-sent, and a
 * message reported FERRY_OK must never be sent again. */
typedef void (*ferry_delivery_fn)(void *ctx, uint64_t tag, int status, const char *reason);

/* Services the core offers plugins, so plugins need not link libferry.
 * vlog may be called from any thread, concurrently, including threads the
 * plugin or its client library starts (librdkafka's log callback, a ZAP
 * handler), from open() until close() returns; never after. It does not
 * block beyond one write of the line. Use ferry_log_*(c, ...) rather than
 * calling it directly: they add the plugin's name and honour log_level. */
struct ferry_host {
    uint32_t size; /* sizeof(struct ferry_host) when the core was built */
    void (*vlog)(void *ctx, enum ferry_log_level lvl, const char *plugin, const char *fmt,
                 va_list ap);
    void *log_ctx;
    int log_level; /* messages above this level are dropped early */
};

/* The connection handle. The core allocates and frees it; the plugin owns
 * only `priv` (set in open, freed in close). Fields other than priv and err
 * are read-only for the plugin. One thread at a time per connection unless
 * a plugin documents otherwise. */
struct ferry_conn {
    uint32_t size; /* sizeof(struct ferry_conn) of the core */
    const struct ferry_transport *transport;
    const void *cfg;                 /* the filled option struct (cfg_size) */
    const struct ferry_kv *passthru; /* PREFIX options, n_passthru of them */
    size_t n_passthru;
    const struct ferry_host *host;
    ferry_delivery_fn on_delivery; /* may be NULL: reports are then dropped */
    void *delivery_ctx;
    const char *client_id; /* "ferry-producer@host:pid"; for brokers that show clients */
    uint32_t caps;         /* effective FERRY_CAP_* of this connection: the core
                                              sets transport->caps before open; open() may clear
                                              bits its configuration cannot honour (e.g. a
                                              work-queue mode has no fan-out) */
    void *priv;            /* plugin state */
    char err[512];         /* last error text; valid until the next call */
};

/* ---------------------------------------------------------------------- */
/* Operations */

typedef int (*ferry_defer_op)(struct ferry_conn *c, struct ferry_msg *m, int64_t delay_ms,
                              const struct ferry_header *set, size_t n_set);

/* The lag of one partition of a subscribed destination. */
struct ferry_lag {
    const char *dest; /* topic */
    int32_t partition;
    int64_t lag; /* high watermark minus committed offset */
};

/* Backlog and drop figures of a connection, for /metrics and /health. The
 * core zeroes it, sets size and sets the int64_t members to -1 (unknown)
 * before the call; a plugin fills what it knows and must not write past
 * size. */
struct ferry_stats {
    uint32_t size;                /* sizeof(struct ferry_stats) of the core */
    int64_t dest_messages;        /* messages waiting in the subscribed destination (a queue's
                                   message count), -1 unknown */
    int64_t consumer_lag;         /* messages of the subscribed destination not yet consumed by
                                   our group: high watermark minus committed offset, summed
                                   over the partitions assigned to us; -1 unknown */
    uint64_t dropped;             /* messages this connection dropped by a configured policy
                                   since open (e.g. amqp unroutable = drop-and-count) */
    const struct ferry_lag *lags; /* consumer_lag per partition, n_lags of them; owned by the
                                     plugin, valid until the next call on the connection */
    size_t n_lags;
    int64_t lend_limit; /* most messages the broker lends this consumer before it
                                     acks any (AMQP prefetch), -1 no such limit or unknown;
                                     known without a round trip */
};
typedef int (*ferry_stats_op)(struct ferry_conn *c, struct ferry_stats *out);

/* The operations. A plugin sets .size = sizeof(struct ferry_transport_ops);
 * operations the core does not know of yet are appended at the end. */
struct ferry_transport_ops {
    uint32_t size; /* sizeof(struct ferry_transport_ops) when built */

    /** Connect using c->cfg. Return FERRY_OK or an error with c->err set.
     *  A broker that is down is FERRY_E_NOCONN (the caller may retry);
     *  a bad option is FERRY_E_CONFIG. On error the plugin has freed all it
     *  allocated and close() is not called. */
    int (*open)(struct ferry_conn *c);
    /** Free c->priv and everything the plugin holds. Cannot fail. Messages
     *  still lent out are released (no decision) implicitly. */
    void (*close)(struct ferry_conn *c);

    /** Publish one message. BORROWS: every field of m is valid only during
     *  the call; the plugin copies what it keeps; the caller owns its buffers
     *  whatever the result. May be asynchronous: FERRY_OK means accepted
     *  for delivery, and the fate arrives through on_delivery (possibly
     *  before this call returns, see ferry_delivery_fn). An error return
     *  means the message was not accepted and no report will come. A
     *  message larger than the plugin's or the broker's limit is refused
     *  with FERRY_E_TOOBIG before anything is sent, so that the connection
     *  stays up (a broker that closes the connection on an oversized
     *  frame would otherwise meet the same message again on every retry). */
    int (*publish)(struct ferry_conn *c, const struct ferry_msg *m);
    /** Wait until every accepted message is settled (reported through
     *  on_delivery). timeout_ms 0 polls once; negative waits without limit.
     *  Returns FERRY_OK when nothing is pending, FERRY_E_TIMEOUT if some
     *  still are (they stay pending), another status if the connection failed
     *  (the pending ones are then reported failed before it returns). */
    int (*flush)(struct ferry_conn *c, int timeout_ms);

    /** Consume dest. group NULL or "" means a private subscription (with
     *  FERRY_CAP_FANOUT, every subscriber gets every message); consumers in
     *  the same named group share work (FERRY_CAP_GROUPS). Call once per
     *  connection before receive.
     *  @return FERRY_OK once the subscription is made (a group member may
     *  still be joining: health says CONNECTING until it is); FERRY_E_NOCONN
     *  when the broker cannot be reached now (retry); FERRY_E_CONFIG for a
     *  destination or group the broker refuses; c->err says why. */
    int (*subscribe)(struct ferry_conn *c, const char *dest, const char *group);
    /** Receive up to max messages, waiting at most timeout_ms for the first.
     *  LENDS: out[i] belong to the plugin until the caller ends each loan with
     *  exactly one ack, nack or release; then the pointer is dead. Returns
     *  FERRY_OK with *n >= 1, FERRY_E_TIMEOUT with *n = 0, or an error. */
    int (*receive)(struct ferry_conn *c, struct ferry_msg **out, size_t max, size_t *n,
                   int timeout_ms);
    /** The consumer has safely handled m: the broker may forget it. Ends
     *  the loan whatever the result.
     *  @return FERRY_OK when the ack is recorded (it may reach the broker
     *  later, in batches); FERRY_E_NOCONN when the connection that lent m
     *  is gone (the broker will deliver m again: at-least-once); another
     *  error with c->err set. Without FERRY_CAP_ACK it only ends the loan
     *  and returns FERRY_OK. */
    int (*ack)(struct ferry_conn *c, struct ferry_msg *m);
    /** The consumer could not handle m. requeue: deliver it again later;
     *  otherwise route it to the reject destination (FERRY_CAP_DEADLETTER)
     *  with reason attached, or drop it when none is configured. Ends the
     *  loan whatever the result.
     *  @return FERRY_OK when the broker has the decision (with a reject
     *  destination: once the copy there is confirmed); FERRY_E_NOCONN when
     *  the connection that lent m is gone (m comes back); another error
     *  with c->err set, in which case m was not dropped (it comes back). */
    int (*nack)(struct ferry_conn *c, struct ferry_msg *m, bool requeue, const char *reason);
    /** End the loan without a decision: with FERRY_CAP_ACK the message comes
     *  back later (at the latest after the connection closes). */
    void (*release)(struct ferry_conn *c, struct ferry_msg *m);

    /** Fill *out (the core zeroes it first). Cheap; never blocks on the
     *  network.
     *  @return FERRY_OK when *out is filled, whatever the state it reports
     *  (a lost broker is out->state, not an error); an error only when the
     *  plugin cannot tell, with c->err set. */
    int (*health)(struct ferry_conn *c, struct ferry_health *out);

    /* Optional operations appended after the first ABI 2 release follow
     * `defer`; the core reads each one only when `size` covers it. */

    /** Optional (NULL: not offered). End the loan of m, received on c, by
     *  having the broker deliver it again to the same subscription no
     *  sooner than delay_ms from now, with the headers set[0..n_set) added
     *  (replacing any of the same name); key and body unchanged. Blocks
     *  until the broker holds the delayed copy (confirmed where the
     *  transport confirms), then acks the original.
     *  @return FERRY_OK; otherwise an error with c->err set, and the loan
     *  has ended as with release() (the original comes back). */
    ferry_defer_op defer;

    /** Optional (NULL: not offered). Fill *out with what the plugin knows
     *  of its backlog and drops. Cheap: never waits on the network for
     *  more than one short synchronous request, and makes at most one a
     *  second (answering from the last one in between). Same thread rules
     *  as receive. @return FERRY_OK, or an error with c->err set. */
    ferry_stats_op stats;
};

/* Whether ops, built with ops->size, has the member op (it may be NULL). */
#define FERRY_OPS_HAS(ops, op)                                                                     \
    ((ops)->size >= offsetof(struct ferry_transport_ops, op) + sizeof((ops)->op))
/* The smallest ops table the core accepts: every operation up to health. */
#define FERRY_OPS_MIN_SIZE offsetof(struct ferry_transport_ops, defer)

struct ferry_transport {
    uint32_t abi;                       /* FERRY_TRANSPORT_ABI when built */
    uint32_t size;                      /* sizeof(struct ferry_transport) when built */
    const char *name;                   /* must match the file: "kafka" -> kafka.so */
    const char *summary;                /* one line for --list-plugins */
    const char *(*lib_version)(void);   /* client library version actually loaded */
    uint32_t caps;                      /* FERRY_CAP_* */
    const struct ferry_option *options; /* ends with an all-zero row */
    size_t cfg_size;                    /* size of the struct the options fill */
    const struct ferry_transport_ops *ops;
    /* New members are appended here; the core reads one only when `size`
     * covers it. */
};

/* The smallest descriptor the core accepts: everything up to ops. */
#define FERRY_TRANSPORT_MIN_SIZE                                                                   \
    (offsetof(struct ferry_transport, ops) + sizeof(const struct ferry_transport_ops *))

/* ---------------------------------------------------------------------- */
/* Helpers for plugins (static inline: no link dependency on libferry) */

#if defined(__GNUC__)
#define FERRY_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FERRY_PRINTF(a, b)
#endif

/** Record an error on c and return st, for `return ferry_conn_fail(...)`. */
static inline int ferry_conn_fail(struct ferry_conn *c, int st, const char *fmt, ...)
    FERRY_PRINTF(3, 4);
static inline int ferry_conn_fail(struct ferry_conn *c, int st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return st;
}

static inline void ferry_conn_log(struct ferry_conn *c, enum ferry_log_level lvl, const char *fmt,
                                  ...) FERRY_PRINTF(3, 4);
static inline void ferry_conn_log(struct ferry_conn *c, enum ferry_log_level lvl, const char *fmt,
                                  ...)
{
    if (!c->host || !c->host->vlog || (int)lvl > c->host->log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    c->host->vlog(c->host->log_ctx, lvl, c->transport ? c->transport->name : "?", fmt, ap);
    va_end(ap);
}

#define ferry_log_error(c, ...) ferry_conn_log((c), FERRY_LOG_ERROR, __VA_ARGS__)
#define ferry_log_warn(c, ...) ferry_conn_log((c), FERRY_LOG_WARN, __VA_ARGS__)
#define ferry_log_info(c, ...) ferry_conn_log((c), FERRY_LOG_INFO, __VA_ARGS__)
#define ferry_log_debug(c, ...) ferry_conn_log((c), FERRY_LOG_DEBUG, __VA_ARGS__)

/** Report a message's fate to the core (no-op when nobody listens). */
static inline void ferry_conn_delivered(struct ferry_conn *c, uint64_t tag, int st,
                                        const char *reason)
{
    if (c->on_delivery)
        c->on_delivery(c->delivery_ctx, tag, st, reason);
}

#ifdef __cplusplus
}
#endif
#endif /* FERRY_TRANSPORT_H */

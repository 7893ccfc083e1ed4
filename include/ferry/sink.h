/* ferry sink plugin ABI: where a consumer's messages finally land (a file,
 * a database, a service). A sink plugin is a libtool module exporting one
 * `const struct ferry_sink` named ferry_sink_descriptor (or
 * NAME_LTX_ferry_sink_descriptor); it needs this header and transport.h. */
#ifndef FERRY_SINK_H
#define FERRY_SINK_H

#include <ferry/transport.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI history: 1 = first release. Bump for any change that breaks an
 * existing sink. Appending members to the end of a struct does not count:
 * every struct that can grow (the descriptor, the ops table, the handle,
 * the record, health) carries its size, and readers check the size before
 * touching a member added later. */
#define FERRY_SINK_ABI 1

/* ---------------------------------------------------------------------- */
/* Capabilities: what a sink can promise about a committed batch */

enum ferry_sink_cap {
    /* A batch lands whole or not at all: after abort(), or a commit() that
     * failed, none of its records is visible. */
    FERRY_SINK_CAP_TRANSACTIONAL = 1u << 0,
    /* Writing a record again with the same id adds nothing: at-least-once
     * delivery becomes exactly-once records. */
    FERRY_SINK_CAP_IDEMPOTENT = 1u << 1,
    /* A committed batch survives a crash of this process and of the machine
     * (fsync, a database COMMIT, a service's acknowledgement). */
    FERRY_SINK_CAP_DURABLE = 1u << 2,
    /* Each record can be refused on its own (FERRY_E_REJECTED with a
     * reason) while the rest of the batch commits. */
    FERRY_SINK_CAP_PER_RECORD = 1u << 3,
};

/* ---------------------------------------------------------------------- */
/* Records: one consumed message handed to a sink */

struct ferry_sink_record {
    uint32_t size;               /* sizeof(struct ferry_sink_record) of the core */
    const struct ferry_msg *msg; /* borrowed from the transport's loan: valid until
                                       commit() or abort() of its batch returns */
    const char *id;              /* de-duplication id (from the body's id field, or
                                       the id header); NUL-terminated; NULL when none */
    int64_t received_ms;         /* when the consumer received it, Unix ms UTC */
    /* Filled by the sink, read by the core after commit(): */
    int status;         /* FERRY_OK, or FERRY_E_REJECTED: refused for good
                                       (dead-lettered with reason, never retried as is) */
    const char *reason; /* with FERRY_E_REJECTED: why, NUL-terminated; owned
                                       by the sink, valid until its next write(), commit()
                                       or abort() */
};

/* ---------------------------------------------------------------------- */
/* Health */

struct ferry_sink_health {
    uint32_t size;                 /* sizeof(struct ferry_sink_health) of the core */
    enum ferry_health_state state; /* CONNECTED when the next commit can succeed */
    char reason[256];              /* why, when not CONNECTED; "" otherwise */
    uint64_t committed;            /* records in batches committed since open */
    uint64_t rejected;             /* records refused for good since open */
    uint64_t failures;             /* commits that failed (retriable) since open */
    uint64_t reconnects;           /* connections to the server re-established */
};

/* ---------------------------------------------------------------------- */
/* The handle */

struct ferry_sink;

/* An open sink. The core allocates and frees it; the plugin owns only
 * `priv` (set in open, freed in close). Fields other than priv and err are
 * read-only for the plugin. One thread at a time per handle. */
struct ferry_sink_conn {
    uint32_t size; /* sizeof(struct ferry_sink_conn) of the core */
    const struct ferry_sink *sink;
    const void *cfg;                 /* the filled option struct (cfg_size) */
    const struct ferry_kv *passthru; /* PREFIX options, n_passthru of them */
    size_t n_passthru;
    const struct ferry_host *host; /* logging; see transport.h */
    const char *client_id;         /* "ferry-aggregator@host:pid" */
    uint32_t caps;                 /* effective FERRY_SINK_CAP_*: the core sets
                                              sink->caps before open; open() may clear bits
                                              its configuration cannot honour (a file sink on
                                              stdout is not durable) */
    void *priv;                    /* plugin state */
    char err[512];                 /* last error text; valid until the next call */
};

/* ---------------------------------------------------------------------- */
/* Operations. Every status is one of enum ferry_status (transport.h). */

struct ferry_sink_ops {
    uint32_t size; /* sizeof(struct ferry_sink_ops) when built */

    /** Connect or open using s->cfg.
     *  @return FERRY_OK; FERRY_E_CONFIG for a bad option or refused
     *  credentials (never retried: the program exits 78); FERRY_E_NOCONN
     *  when the server cannot be reached (the caller may retry, then exits
     *  69). On error s->err says why, the plugin has freed all it allocated
     *  and close() is not called. */
    int (*open)(struct ferry_sink_conn *s);
    /** Free s->priv and everything the plugin holds; a batch written and
     *  not committed is aborted. Cannot fail. */
    void (*close)(struct ferry_sink_conn *s);

    /** Stage a batch: recs[0..n) in the order received. BORROWS: the records
     *  and the messages they point to stay valid until commit() or abort()
     *  of this batch returns; the plugin copies what it keeps longer. May
     *  send data already; nothing counts as landed before commit().
     *  Called once per batch (a batch is write, then commit or abort).
     *  @return FERRY_OK; a retriable status (FERRY_E_AGAIN, FERRY_E_NOCONN,
     *  FERRY_E_TIMEOUT) when the whole batch should be tried again later
     *  (the core calls abort() first); FERRY_E_FATAL when the handle is
     *  unusable. Per-record refusals are reported after commit(). */
    int (*write)(struct ferry_sink_conn *s, struct ferry_sink_record *recs, size_t n);
    /** Make the staged batch durable (fsync, COMMIT, the service's answer).
     *  After FERRY_OK every record whose status is FERRY_OK has landed and
     *  the core acks it on the broker; a record with FERRY_E_REJECTED has
     *  not landed and the core dead-letters it with its reason.
     *  @return FERRY_OK; a retriable status when the batch may not have
     *  landed (with FERRY_SINK_CAP_TRANSACTIONAL: has not landed at all);
     *  the core then writes the same batch again later, so a sink without
     *  FERRY_SINK_CAP_IDEMPOTENT may land some records twice;
     *  FERRY_E_FATAL when the handle is unusable. Blocks up to the sink's
     *  own timeouts. */
    int (*commit)(struct ferry_sink_conn *s);
    /** Drop the staged batch (with FERRY_SINK_CAP_TRANSACTIONAL nothing of
     *  it lands). Safe to call when nothing is staged. Cannot fail. */
    void (*abort)(struct ferry_sink_conn *s);

    /** Fill *out (the core set out->size). Cheap; never blocks on the
     *  network. @return FERRY_OK. */
    int (*health)(struct ferry_sink_conn *s, struct ferry_sink_health *out);

    /** Optional (NULL: not offered). Reopen files or connections, e.g. on
     *  SIGHUP after logrotate. Called between batches only.
     *  @return FERRY_OK, or an error with s->err set (the core logs it and
     *  goes on; the next write() reports a lasting problem). */
    int (*reopen)(struct ferry_sink_conn *s);
};

struct ferry_sink {
    uint32_t abi;                       /* FERRY_SINK_ABI when built */
    uint32_t size;                      /* sizeof(struct ferry_sink) when built */
    const char *name;                   /* must match the file: "postgresql" -> postgresql.so */
    const char *summary;                /* one line for --list-plugins */
    const char *(*lib_version)(void);   /* client library version actually loaded; may be NULL */
    uint32_t caps;                      /* FERRY_SINK_CAP_* */
    const struct ferry_option *options; /* ends with an all-zero row; read from [NAME] */
    size_t cfg_size;                    /* size of the struct the options fill */
    const struct ferry_sink_ops *ops;
};

/* ---------------------------------------------------------------------- */
/* Helpers for sink plugins (static inline: no link dependency on libferry) */

/** Record an error on s and return st, for `return ferry_sink_fail(...)`. */
static inline int ferry_sink_fail(struct ferry_sink_conn *s, int st, const char *fmt, ...)
    FERRY_PRINTF(3, 4);
static inline int ferry_sink_fail(struct ferry_sink_conn *s, int st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return st;
}

static inline void ferry_sink_log(struct ferry_sink_conn *s, enum ferry_log_level lvl,
                                  const char *fmt, ...) FERRY_PRINTF(3, 4);
static inline void ferry_sink_log(struct ferry_sink_conn *s, enum ferry_log_level lvl,
                                  const char *fmt, ...)
{
    if (!s->host || !s->host->vlog || (int)lvl > s->host->log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    s->host->vlog(s->host->log_ctx, lvl, s->sink ? s->sink->name : "?", fmt, ap);
    va_end(ap);
}

#ifdef __cplusplus
}
#endif
#endif /* FERRY_SINK_H */

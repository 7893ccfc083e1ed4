/* Shared program plumbing: command line and config, the connection with
 * retries, signals, exit codes. The programs' main.c files stay thin. */
#ifndef FERRY_APP_H
#define FERRY_APP_H

#include <ferry/ferry.h>
#include <signal.h>
#include <sysexits.h>

/* One program: its name, config section and option table. */
struct app_spec {
    const char *prog;                   /* "ferry-producer" */
    const char *section;                /* "producer" */
    const char *usage;                  /* "[options] [MESSAGE...]" */
    const char *about;                  /* one paragraph for --help */
    const struct ferry_option *options; /* the section's table */
    void *cfg;                          /* struct the table fills */
    /* Optional: rewrite the loaded configuration before it is checked and
     * bound (old spellings of options that moved). FERRY_OK or
     * FERRY_E_CONFIG with err set. */
    int (*map_config)(struct ferry_config *cfg, char *err, size_t errlen);
};

struct app {
    const struct app_spec *spec;
    struct ferry_config *config; /* owned */
    int log_level;               /* FERRY_LOG_* */
    char **args;                 /* positional arguments (into argv) */
    int nargs;
    char client_id[300];
    volatile sig_atomic_t *stop; /* set by SIGTERM/SIGINT */
    volatile sig_atomic_t *hup;  /* set by SIGHUP */
};

/* Parse argv and the config, bind the program's section into spec->cfg.
 * Handles --help, --version, --list-plugins and --print-config itself.
 * @return -1 to continue, or an exit code to return from main. */
int app_init(struct app *a, const struct app_spec *spec, int argc, char **argv);
void app_fini(struct app *a);

/* Open a connection, retrying while the broker is unreachable, until
 * timeout_ms (negative: forever) or a stop signal.
 * @return the connection, or NULL with *exit_code set (69 or 78). */
struct ferry_conn *app_connect(struct app *a, int64_t timeout_ms, int *exit_code);

/* Refuse to start when the configured transport lacks a capability named
 * in list ("durable,ack"; NULL or "" = none).
 * @return -1 to continue, or an exit code (78) after saying which. */
int app_require(struct app *a, const char *list);

/* Log in the common format: "PROG: level [core] text". */
void app_log(const struct app *a, int level, const char *fmt, ...) FERRY_PRINTF(3, 4);
#define app_error(a, ...) app_log((a), FERRY_LOG_ERROR, __VA_ARGS__)
#define app_warn(a, ...) app_log((a), FERRY_LOG_WARN, __VA_ARGS__)
#define app_info(a, ...) app_log((a), FERRY_LOG_INFO, __VA_ARGS__)
#define app_debug(a, ...) app_log((a), FERRY_LOG_DEBUG, __VA_ARGS__)

/* Exit code for a transport status. */
int app_exit_code(int status);
/* Sleep up to ms, returning early on a stop signal. */
void app_sleep(const struct app *a, int64_t ms);

/* Sections with option tables, NULL-terminated (for docs). */
extern const char *const app_sections[];
/* Option table of a program section ("producer"), or NULL. */
const struct ferry_option *app_section_options(const char *section);

int ferry_producer_main(int argc, char **argv);
int ferry_aggregator_main(int argc, char **argv);
int ferry_validator_main(int argc, char **argv);

/* Producer building blocks, shared with the HTTP ingestion and tests. */
/* Fill buf with one simulated download event; invalid (one of several
 * kinds of bad data) when bad. Returns the body; *len its length. */
const char *app_make_download(uint64_t seq, bool bad, uint64_t *rng, char *buf, size_t buflen,
                              size_t *len);

/* [producer] key: what a message's routing key (Kafka key) is made of. */
enum app_key_mode {
    APP_KEY_SERVICE_LEVEL = 0, /* "auth.error": one partition per service and level */
    APP_KEY_SERVICE,           /* "auth" */
    APP_KEY_ID,                /* the message id: spread evenly, no order between messages */
    APP_KEY_NONE,              /* no key: the transport spreads them */
    APP_KEY_FIELD              /* the value of a top-level member of the body */
};
/* The mode named by s ("service.level", "service", "id", "none", or any
 * other word: APP_KEY_FIELD, that word being the member's name). */
enum app_key_mode app_key_mode(const char *s);
/* The key of one message per mode: deflt for APP_KEY_SERVICE_LEVEL (the
 * key the program would use anyway), service, the body's "id" (else
 * "event_id"), NULL, or the body's member field. Into buf when computed;
 * NULL means no key (also when the body lacks the member). */
const char *app_message_key(enum app_key_mode mode, const char *field, const char *deflt,
                            const char *service, const void *body, size_t len, char *buf,
                            size_t buflen);

/* Validator building block, shared with tests. Validates LEN bytes of
 * BODY against SCHEMA (compiled; "true" accepts any JSON). Returns 1 when
 * valid; 0 when invalid, with every reason (parse errors included, keyword
 * "json") written to WHY; -1 when out of memory. */
struct ferry_schema;
int app_validate_body(const struct ferry_schema *schema, const void *body, size_t len, char *why,
                      size_t whylen);

/* What a validator has done, logged at exit. */
struct app_validator_stats {
    uint64_t valid;   /* forwarded to output and acked */
    uint64_t invalid; /* forwarded to reject and acked */
    uint64_t errors;  /* forwards that failed (the input came back) */
};

#endif

/* [producer] */
struct producer_cfg {
    char *service, *destination;
    int level;    /* index into DEBUG|INFO|WARNING|ERROR|CRITICAL */
    int generate; /* 0 none, 1 logs, 2 downloads */
    int64_t count, rate;
    char *invalid_ratio;   /* fraction 0..1, parsed by the producer */
    char *processing_time; /* seconds (decimal) added to each log, for demos */
    char *key;             /* see enum app_key_mode */
    int64_t flush_timeout, connect_timeout, max_inflight, max_message_size;
    char *id_prefix;
    char *require;               /* capabilities the transport must have */
    char *replay, *replay_group; /* --replay DEST: re-publish its dead letters */
    int64_t replay_count, replay_wait;
};
extern const struct ferry_option app_producer_options[];

/* [aggregator] */
struct aggregator_cfg {
    char *destination, *group, *output, *id_field;
    char *sink; /* sink plugin: file (default), postgresql, ... */
    int format; /* the file sink's: 0 body, 1 record, 2 text */
    int64_t count, batch, batch_bytes, batch_wait, idle_exit, dedup_window, connect_timeout;
    bool fsync, dedup;
    char *verify, *require; /* --verify FILE; capabilities the transport must have */
    int64_t expect;         /* --verify: seqs 1..expect per producer */
    int64_t max_retries, retry_backoff_min, retry_backoff_max; /* see retry.h */
    int retry_mode;                                            /* enum ferry_retry_mode */
    char *dead_letter; /* where messages go after max_retries */
    char *delay;       /* "50ms" or "20ms-200ms": simulated work per message */
};
extern const struct ferry_option app_aggregator_options[];

/* [aggregator] delay: a duration, or MIN-MAX, into milliseconds.
 * @return 0, or -1 with the reason in err. */
int app_parse_delay(const char *s, int64_t *lo, int64_t *hi, char *err, size_t errlen);

/* End-to-end ledger totals of a running aggregator (e2e_missing_total is
 * out->missing, e2e_duplicate_total out->duplicates), for metrics. */
struct agg;
struct ferry_ledger_totals;
void app_aggregator_e2e(const struct agg *g, struct ferry_ledger_totals *out);

/* [validator] */
struct validator_cfg {
    char *input, *output, *reject, *schema, *schema_path, *group;
    int64_t count, batch, idle_exit, connect_timeout, publish_timeout;
    bool check;
    int64_t max_retries, retry_backoff_min, retry_backoff_max; /* see retry.h */
    int retry_mode;                                            /* enum ferry_retry_mode */
};
extern const struct ferry_option app_validator_options[];

/* ---- the consume loop (consume.c), shared by the aggregator and the validator */

#include <ferry/retry.h>
struct ferry_metrics;
struct ferry_metrics_dest;

/* What becomes of one received message, set by the handler. */
enum consume_verdict {
    CONSUME_ACK = 0, /* handled (forwarded, a duplicate): ack it */
    CONSUME_WRITE,   /* hand it to the sink; acked after the commit, or dead-lettered
                         when the sink refuses it (FERRY_E_REJECTED) */
    CONSUME_FAIL,    /* handling failed (why): one failed attempt, deferred or
                         dead-lettered by the retrier; released without one */
    CONSUME_REJECT,  /* refused for good (why): to the dead-letter destination now */
    CONSUME_RELEASE, /* no decision: it comes back */
    CONSUME_SETTLED, /* the loan has ended already (internal) */
};

struct consume_item {
    struct ferry_retry_item it;   /* the connection that lent it, the message, attempts */
    int verdict;                  /* enum consume_verdict, CONSUME_ACK when the handler
                                      leaves it */
    char why[512];                /* with FAIL and REJECT */
    struct ferry_sink_record rec; /* with WRITE: id and received_ms (msg is set by the loop) */
    char id[256];                 /* storage the handler may point rec.id at */
};

/* The handler: set each item's verdict. FERRY_OK, or a status that stops
 * the loop (its items released, the program exits with its code). */
typedef int (*consume_handler)(void *ctx, struct consume_item *items, size_t n);

/* One consumer: fill the configuration part, consume_init(), consume_run(),
 * consume_fini(). The loop never acks a message before the sink committed
 * it: at-least-once; with an idempotent sink, exactly-once records. */
struct consume {
    struct app *app;
    struct ferry_conn *in;        /* subscribed already; borrowed */
    struct ferry_retry *retry;    /* NULL: failed messages are released (come back) */
    const char *dead_letter;      /* the retrier's dead-letter destination, for logs */
    struct ferry_sink_conn *sink; /* NULL: the handler does all (no CONSUME_WRITE) */
    bool retry_in_place;          /* sink failures: abort, back off, write the same
                                          batch again, rather than count failed attempts */
    size_t batch;
    int64_t batch_bytes;                  /* bodies received while a batch commits stop
                                             adding to the next past this (0 = no bound) */
    int64_t batch_wait, idle_exit, count; /* ms, ms, messages (0 = none) */
    int64_t backoff_min, backoff_max;     /* between attempts to write a batch to the sink */
    int64_t pause_after_release;          /* ms to wait after a batch gave messages back */
    consume_handler handle;
    void (*on_idle)(void *ctx); /* a receive found nothing; may be NULL */
    void (*on_settled)(void *ctx, const struct consume_item *items, size_t n); /* may be NULL */
    void *ctx;
    struct ferry_metrics *metrics;     /* may be NULL */
    struct ferry_metrics_dest *series; /* of the destination consumed */
    struct ferry_conn *health_conn;    /* /health judges this one (default: in) */
    struct ferry_pub *health_pub;
    /* counters */
    uint64_t received, acked, written, duplicates, rejected, deferred, dead_lettered, released;
    /* the loop's own */
    bool commit_failing;
    int64_t last_refresh;
    struct ferry_msg **msgs;
    struct consume_item *items;
    struct consume_item *next; /* received while the sink commits items (group commit) */
    struct ferry_retry_item *due;
    struct ferry_sink_record *recs;
    size_t *idx;
};
int consume_init(struct consume *c); /* -1 on ENOMEM */
/* Run until a stop signal, idle_exit, count (records written with a sink,
 * messages acked without) or a fatal error. @return the exit code. */
int consume_run(struct consume *c);
void consume_fini(struct consume *c);

/* The retrier of a program that consumes dest, per its retry options: NULL
 * with *exit_code -1 when max_retries is negative (retry in place), NULL
 * with *exit_code set on failure (after saying why). */
struct ferry_retry;
struct ferry_retry *app_retry_new(struct app *a, struct ferry_conn *in, const char *dest,
                                  const char *group, const char *dead_letter, int64_t max_retries,
                                  int64_t backoff_min, int64_t backoff_max, int mode,
                                  int64_t publish_timeout, int *exit_code);

/* libferry: the application API (config, plugins, connections, reliable
 * publishing, the log envelope). Plugins need only <ferry/transport.h>. */
#ifndef FERRY_H
#define FERRY_H

#include <ferry/transport.h>
#include <ferry/sink.h>
#include <ferry/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of the library loaded at run time ("0.1.0"). Static storage.
 *  The headers compiled against: FERRY_VERSION_STRING, FERRY_VERSION_NUM
 *  (<ferry/version.h>). */
const char *ferry_version(void);
/** Short text for a ferry_status ("connection lost"). Static storage. */
const char *ferry_strerror(int status);

/* ====================================================================== */
/* Configuration: INI file + environment + flags                          */

/* Where a value came from; higher wins. */
enum ferry_source {
    FERRY_SRC_DEFAULT = 0,
    FERRY_SRC_FILE,
    FERRY_SRC_ENV,
    FERRY_SRC_FLAG,
};

struct ferry_config;

/** New empty configuration. Caller owns it: ferry_config_free(). NULL on ENOMEM. */
struct ferry_config *ferry_config_new(void);
void ferry_config_free(struct ferry_config *cfg);

/** Read an INI file into cfg (sections, `key = value`, `;`/`#` comments).
 *  @return FERRY_OK, or FERRY_E_CONFIG with "FILE:LINE: reason" in err. */
int ferry_config_load(struct ferry_config *cfg, const char *path, char *err, size_t errlen);
/** Parse INI text (name is used in messages). Same returns as ferry_config_load. */
int ferry_config_load_string(struct ferry_config *cfg, const char *name, const char *text,
                             char *err, size_t errlen);

/** Set section.key from the command line (FERRY_SRC_FLAG) or a program.
 *  Copies both strings. @return FERRY_OK or FERRY_E_CONFIG on ENOMEM. */
int ferry_config_set(struct ferry_config *cfg, const char *section, const char *key,
                     const char *value, enum ferry_source src);

/** Effective value of section.key: flag > environment (FERRY_SECTION_KEY) >
 *  file; NULL when none. The pointer lives as long as cfg (or the environ). */
const char *ferry_config_get(const struct ferry_config *cfg, const char *section, const char *key);
/** Where the effective value of section.key comes from (FERRY_SRC_DEFAULT
 *  when nothing sets it). */
enum ferry_source ferry_config_source(const struct ferry_config *cfg, const char *section,
                                      const char *key);
/** Path of the file last loaded, or NULL. */
const char *ferry_config_path(const struct ferry_config *cfg);

/** Fill dst (a struct described by opts) from section: each option takes
 *  its flag/env/file value or its default; STR options get malloc'ed
 *  copies (free with ferry_options_free). Keys in the section that match no
 *  option are an error naming the file, line and key. PREFIX families are
 *  returned in *passthru (may be NULL if the table has none; caller frees
 *  with ferry_kv_free).
 *  @return FERRY_OK or FERRY_E_CONFIG with the reason in err. */
int ferry_config_bind(const struct ferry_config *cfg, const char *section,
                      const struct ferry_option *opts, void *dst, struct ferry_kv **passthru,
                      size_t *n_passthru, char *err, size_t errlen);
/** Free what ferry_config_bind allocated inside dst (not dst itself). */
void ferry_options_free(const struct ferry_option *opts, void *dst);
void ferry_kv_free(struct ferry_kv *kv, size_t n);

/** Write "section.key = value  ; source" for every option of opts to f,
 *  secrets shown as "(redacted)". */
void ferry_config_dump(const struct ferry_config *cfg, const char *section,
                       const struct ferry_option *opts, FILE *f);
/** Append to out (comma separated, "section.key") every secret option of
 *  section whose value is written in the loaded file itself rather than in
 *  a NAME_file or the environment; PREFIX keys count when their name says
 *  password, secret or token. out stays NUL-terminated and is cut when
 *  full. @return how many were found. */
size_t ferry_config_file_secrets(const struct ferry_config *cfg, const char *section,
                                 const struct ferry_option *opts, char *out, size_t outlen);
/** Distinct section names present in cfg (file or flags), in order of
 *  appearance, into out[max]. @return how many there are (may exceed max). */
size_t ferry_config_sections(const struct ferry_config *cfg, const char **out, size_t max);
/** Line of the first mention of section in the file, or 0. */
int ferry_config_section_line(const struct ferry_config *cfg, const char *section);
/** Check that every section in cfg is one of known (NULL-terminated).
 *  @return FERRY_OK or FERRY_E_CONFIG naming the file, line and section. */
int ferry_config_check_sections(const struct ferry_config *cfg, const char *const *known, char *err,
                                size_t errlen);

/** Parse one typed value ("5s", "1MiB", "yes") as opts would.
 *  @return FERRY_OK or FERRY_E_CONFIG with the reason in err. */
int ferry_option_parse(const struct ferry_option *o, const char *text, void *dst, char *err,
                       size_t errlen);
/** Check an option table: names, types, defaults parse, help present.
 *  @return FERRY_OK or FERRY_E_CONFIG naming the bad row. */
int ferry_options_validate(const struct ferry_option *opts, char *err, size_t errlen);

/* The [transport] section: which plugin, and where to look for it. */
struct ferry_transport_cfg {
    char *plugin;
    char *plugin_path;
    int log_level; /* FERRY_LOG_*: what the plugin may log */
};
extern const struct ferry_option ferry_transport_options[];

/* ====================================================================== */
/* Plugins                                                                */

/** Load a transport by name ("kafka"). A name is [a-z0-9_]+ (at most 64
 *  bytes), never a path: only the search path's directories are looked
 *  in. Search order: dirs in plugin_path (colon-separated, may be NULL),
 *  then $FERRY_PLUGIN_PATH, then the install directory. Loading the same
 *  plugin twice returns the same descriptor. The descriptor stays valid
 *  until the process ends.
 *  @return the descriptor, or NULL with the reason (and a hint) in err and
 *  *status set to FERRY_E_CONFIG (not found, ABI mismatch, bad table). */
const struct ferry_transport *ferry_plugin_load(const char *name, const char *plugin_path,
                                                int *status, char *err, size_t errlen);

/** Call fn for every loadable plugin found on the search path (deduplicated
 *  by name; the first on the path wins). Plugins that fail to load are
 *  reported through fn with t = NULL and the reason in why.
 *  @return the number of plugins loaded. */
int ferry_plugin_foreach(const char *plugin_path,
                         void (*fn)(const struct ferry_transport *t, const char *file,
                                    const char *why, void *ctx),
                         void *ctx);

/** Human name of one capability bit ("ack"), or NULL. */
const char *ferry_cap_name(uint32_t cap);
/** Write "ack,groups,durable" for caps into buf. */
const char *ferry_caps_str(uint32_t caps, char *buf, size_t len);

/* ====================================================================== */
/* Connections                                                            */

/** Load the plugin named in [transport] plugin (default "zmq"), bind its
 *  section ([NAME]) and open a connection. client_id is copied.
 *  @return the connection, or NULL with *status and err set. The caller
 *  owns the result: ferry_close(). */
struct ferry_conn *ferry_open(const struct ferry_config *cfg, const char *client_id, int *status,
                              char *err, size_t errlen);
/** Close and free c (NULL is fine). Blocks up to the plugin's linger. */
void ferry_close(struct ferry_conn *c);
/** Set who hears delivery reports (see transport.h). */
void ferry_set_delivery(struct ferry_conn *c, ferry_delivery_fn fn, void *ctx);
/** Send the plugin's log lines for c to stderr as "PROG: level [plugin] ...",
 *  keeping those at or above level (FERRY_LOG_*). prog must outlive c. */
void ferry_conn_set_log(struct ferry_conn *c, const char *prog, int level);
/** Last error text on c. Valid until the next call on c. */
const char *ferry_conn_error(const struct ferry_conn *c);

/* Thin checked wrappers around the plugin operations (see transport.h for
 * the ownership rules and what each returns). Each checks that the plugin
 * has the operation before calling it, and returns FERRY_E_NOTSUP, with the
 * reason in ferry_conn_error(), when it does not: publish on a consume-only
 * plugin, subscribe/receive/ack/nack on a publish-only one, defer on one
 * without it. flush without publish returns FERRY_OK (nothing is pending)
 * and release without receive does nothing (nothing was lent). What a
 * transport promises beyond that is in c->caps (FERRY_CAP_*), which the
 * caller checks: an operation it has is never refused for a missing
 * capability (nack without a reject destination drops the message, as
 * transport.h says). One thread at a time per connection. */
int ferry_publish(struct ferry_conn *c, const struct ferry_msg *m);
int ferry_flush(struct ferry_conn *c, int timeout_ms);
int ferry_subscribe(struct ferry_conn *c, const char *dest, const char *group);
int ferry_receive(struct ferry_conn *c, struct ferry_msg **out, size_t max, size_t *n,
                  int timeout_ms);
int ferry_ack(struct ferry_conn *c, struct ferry_msg *m);
int ferry_nack(struct ferry_conn *c, struct ferry_msg *m, bool requeue, const char *reason);
void ferry_release(struct ferry_conn *c, struct ferry_msg *m);
int ferry_health(struct ferry_conn *c, struct ferry_health *out);
/** Backlog and drop figures (struct ferry_stats in transport.h); members
 *  the plugin does not know stay -1 (or 0 for dropped). FERRY_E_NOTSUP
 *  when the plugin offers none. Same thread rules as ferry_receive. */
int ferry_stats(struct ferry_conn *c, struct ferry_stats *out);
/** Whether c's plugin offers defer (see struct ferry_transport). */
bool ferry_can_defer(const struct ferry_conn *c);
/** The plugin's defer: m comes back to this subscription after delay_ms with
 *  the headers in set. Without the operation m is released and
 *  FERRY_E_NOTSUP returned; on any error the loan has ended as release(). */
int ferry_defer(struct ferry_conn *c, struct ferry_msg *m, int64_t delay_ms,
                const struct ferry_header *set, size_t n_set);

/** Value of the header called name in m (first match), or NULL. */
const struct ferry_header *ferry_msg_header(const struct ferry_msg *m, const char *name);

/* ====================================================================== */
/* Sinks: where consumed messages land (see <ferry/sink.h>)                */

/** Load a sink plugin by name ("file") or path, from the same search path
 *  as transports (plugin_path, then $FERRY_PLUGIN_PATH, then the install
 *  directory). The descriptor stays valid until the process ends; loading
 *  twice returns the same one. Thread-safe.
 *  @return the descriptor, or NULL with *status (may be NULL) set to
 *  FERRY_E_CONFIG and err naming the file and the cause (not found, a
 *  transport rather than a sink, sink ABI or size mismatch, name not the
 *  file's, a mandatory operation missing, a bad option table). */
const struct ferry_sink *ferry_sink_load(const char *name, const char *plugin_path, int *status,
                                         char *err, size_t errlen);
/** Call fn for every sink plugin on the search path (deduplicated by name;
 *  the first on the path wins); transports are skipped, sinks that fail to
 *  load come with k = NULL and the reason in why.
 *  @return the number of sinks loaded. */
int ferry_sink_foreach(const char *plugin_path,
                       void (*fn)(const struct ferry_sink *k, const char *file, const char *why,
                                  void *ctx),
                       void *ctx);
/** Human name of one FERRY_SINK_CAP_* bit ("idempotent"), or NULL. */
const char *ferry_sink_cap_name(uint32_t cap);
/** Write "transactional,idempotent" (or "none") for caps into buf; returns buf. */
const char *ferry_sink_caps_str(uint32_t caps, char *buf, size_t len);

/** Load the sink called name (NULL or "": "file") along [transport]
 *  plugin_path, fill its option struct from the [NAME] section of cfg (the
 *  sink's typed option table: file:line:key errors for unknown keys,
 *  FERRY_NAME_KEY environment overrides, secrets from KEY_file) and open
 *  it. client_id is copied; cfg is only read during the call. Logs of the
 *  sink go to stderr at [transport] log_level.
 *  @return the handle (caller owns it: ferry_sink_close()), or NULL with
 *  *status (may be NULL) and err set: FERRY_E_CONFIG for an unloadable
 *  sink, a bad option or refused credentials (exit 78); FERRY_E_NOCONN
 *  when the sink's server is unreachable (retry, then exit 69); another
 *  status from the sink's open. Blocks up to the sink's own timeouts. */
struct ferry_sink_conn *ferry_sink_open(const struct ferry_config *cfg, const char *name,
                                        const char *client_id, int *status, char *err,
                                        size_t errlen);
/** Close and free s (NULL is fine); a staged batch is aborted. */
void ferry_sink_close(struct ferry_sink_conn *s);
/** Send the sink's log lines to stderr as "PROG: level [NAME] ...", those at
 *  or above level (FERRY_LOG_*). prog must outlive s. */
void ferry_sink_set_log(struct ferry_sink_conn *s, const char *prog, int level);
/** Last error text on s; valid until the next call on s. */
const char *ferry_sink_error(const struct ferry_sink_conn *s);

/* Checked wrappers of the sink operations. One batch at a time: write, then
 * exactly one commit or abort. recs BORROWED until that commit or abort
 * returns. One thread at a time per handle. */

/** Stage recs[0..n) (sets each record's size, status FERRY_OK, reason NULL).
 *  @return FERRY_OK; a retriable status (ferry_status_retriable()): abort,
 *  back off and write the same batch again; FERRY_E_FATAL when the handle
 *  is unusable or a batch is already staged. Abort after any error. */
int ferry_sink_write(struct ferry_sink_conn *s, struct ferry_sink_record *recs, size_t n);
/** Make the staged batch land. After FERRY_OK each record has status
 *  FERRY_OK (landed: ack it) or FERRY_E_REJECTED with a reason (did not
 *  land: dead-letter it); FERRY_OK with nothing staged. On any other status
 *  the batch has been aborted already (with FERRY_SINK_CAP_TRANSACTIONAL
 *  nothing of it landed; otherwise some may have): retriable statuses mean
 *  write it again later, FERRY_E_FATAL reopen the sink. Blocks. */
int ferry_sink_commit(struct ferry_sink_conn *s);
/** Drop the staged batch; safe when nothing is staged. */
void ferry_sink_abort(struct ferry_sink_conn *s);
/** Fill *out (size set by the wrapper). Cheap, never blocks.
 *  @return FERRY_OK. */
int ferry_sink_health(struct ferry_sink_conn *s, struct ferry_sink_health *out);
/** Reopen files or connections (SIGHUP). Between batches only.
 *  @return FERRY_OK; FERRY_E_NOTSUP when the sink has no reopen;
 *  FERRY_E_AGAIN when a batch is staged; the sink's error otherwise. */
int ferry_sink_reopen(struct ferry_sink_conn *s);
/** Read back how many records with id have landed (conformance, tests).
 *  @return FERRY_OK with *out; FERRY_E_NOTSUP when the sink cannot tell;
 *  FERRY_E_AGAIN when a batch is staged; the sink's error otherwise. */
int ferry_sink_count(struct ferry_sink_conn *s, const char *id, uint64_t *out);
/** Whether the sink offers count. */
bool ferry_sink_can_count(const struct ferry_sink_conn *s);

/* ====================================================================== */
/* Reliable publishing: copies, retries with backoff, waits for confirms  */

struct ferry_pub_opts {
    size_t max_inflight;    /* unsettled messages before send waits; 0 = 10000 */
    size_t max_bytes;       /* bytes held for retries before send waits; 0 = 256 MiB */
    int64_t backoff_min_ms; /* first retry delay; 0 = 100 */
    int64_t backoff_max_ms; /* cap; 0 = 30000 */
    int64_t give_up_ms;     /* a message unconfirmed this long is failed; 0 = never */
};

struct ferry_pub_stats {
    uint64_t sent;       /* accepted by ferry_pub_send */
    uint64_t confirmed;  /* settled OK */
    uint64_t failed;     /* settled with a permanent error or given up */
    uint64_t retries;    /* re-publish attempts */
    uint64_t pending;    /* held now (in flight or waiting to retry) */
    uint64_t reconnects; /* times the connection came back after a loss */
    uint64_t waiting;    /* of pending, those waiting to be re-published (transport away) */
};

struct ferry_pub;

/* Told once per message when it is finally settled (OK or permanent failure).
 * Runs in the thread calling ferry_pub_send/ferry_pub_flush. */
typedef void (*ferry_pub_done_fn)(void *ctx, uint64_t user_tag, int status, const char *reason);

/** Wrap c (borrowed; must outlive the publisher) with a reliable publisher.
 *  Takes over c's delivery callback. Caller owns the result. */
struct ferry_pub *ferry_pub_new(struct ferry_conn *c, const struct ferry_pub_opts *o,
                                ferry_pub_done_fn done, void *done_ctx);
/** Publish m (borrowed: the caller keeps it); transient failures are
 *  retried with exponential backoff and jitter, never dropped. m is copied
 *  when the transport confirms (FERRY_CAP_CONFIRMS), since a lost confirm
 *  means publishing it again; without confirms only a message that must
 *  wait for a retry is copied, and one that the transport took and later
 *  reports lost is settled with that error (nothing can re-send it).
 *  Blocks while max_inflight/max_bytes is reached, up to timeout_ms
 *  (negative: no limit).
 *  @return FERRY_OK (taken), FERRY_E_TIMEOUT (window full), FERRY_E_TOOBIG or
 *  FERRY_E_CONFIG (never retried). m->tag is the user tag reported to done. */
int ferry_pub_send(struct ferry_pub *p, const struct ferry_msg *m, int timeout_ms);
/** Drive retries and confirms until nothing is pending or timeout_ms passes.
 *  @return FERRY_OK when everything sent so far is settled (see stats for
 *  failures), FERRY_E_TIMEOUT otherwise. */
int ferry_pub_flush(struct ferry_pub *p, int timeout_ms);
/** Do due work without waiting (poll confirms, retry what is due). */
void ferry_pub_poll(struct ferry_pub *p);
void ferry_pub_stats(const struct ferry_pub *p, struct ferry_pub_stats *out);
/** Last error seen by the publisher ("" when none). */
const char *ferry_pub_error(const struct ferry_pub *p);
/** Free p; unsettled messages are dropped (count them with stats first). */
void ferry_pub_free(struct ferry_pub *p);

/* ====================================================================== */
/* The log envelope (DESIGN.md): one JSON object per message              */

enum ferry_level {
    FERRY_DEBUG = 10,
    FERRY_INFO = 20,
    FERRY_WARNING = 30,
    FERRY_ERROR = 40,
    FERRY_CRITICAL = 50
};
/** "INFO" for FERRY_INFO; NULL for an unknown level. */
const char *ferry_level_name(enum ferry_level l);
/** Parse "info"/"INFO"/"warn"/"WARNING"... @return the level or -1. */
int ferry_level_parse(const char *s);

/** Make a unique id (UUID v4 text, 36 chars + NUL) into buf[37]. Thread-safe. */
void ferry_make_id(char buf[37]);
/** RFC 3339 UTC with milliseconds ("2026-11-22T18:32:33.123Z") into buf[32]. */
void ferry_format_time(int64_t unix_ms, char buf[32]);
/** Milliseconds since the epoch. */
int64_t ferry_time_ms(void);

struct ferry_envelope {
    const char *id; /* NULL: a new one is made */
    const char *service;
    enum ferry_level level;
    const char *message;
    const char *information;   /* JSON object text, or NULL for {} */
    int64_t time_ms;           /* 0: now */
    const char *host;          /* NULL: this host's name */
    const char *extra;         /* JSON object whose members are added at the top level, or NULL */
    const char *extra_members; /* with no extra: members appended as they are, already compact
                                  JSON as cJSON prints it ("\"a\":1,\"b\":\"x\""), none named
                                  like an envelope field; or NULL */
};

/** Encode e as one line of JSON. Caller frees the result with free().
 *  @return NULL with err set when information is not a JSON object. */
char *ferry_envelope_encode(const struct ferry_envelope *e, char *err, size_t errlen);
/** Routing key "service.level" (lower-case level) into buf. */
const char *ferry_envelope_key(const char *service, enum ferry_level l, char *buf, size_t len);
/** Extract the member called field ("id") of a JSON object body (string or
 *  number) into buf. @return true when found. */
bool ferry_body_id(const void *body, size_t len, const char *field, char *buf, size_t buflen);

/* ====================================================================== */
/* Application logging: ferry_log() from any thread, delivered in the     */
/* background, surviving broker outages (the [logger] section)            */

enum ferry_full_policy {                         /* what ferry_log() does when its queue is full */
                         FERRY_FULL_BLOCK = 0,   /* wait up to block_timeout, then drop (counted) */
                         FERRY_FULL_DROP_NEWEST, /* drop the new message at once (counted) */
                         FERRY_FULL_SPILL, /* write it to the on-disk spool (needs spool_dir) */
};

enum ferry_spool_fsync { /* when the spool is forced to disk */
                         FERRY_SPOOL_FSYNC_ALWAYS =
                             0, /* after every write: a machine crash loses nothing spooled */
                         FERRY_SPOOL_FSYNC_BATCH, /* every spool_fsync_interval: loses at most that much */
                         FERRY_SPOOL_FSYNC_NEVER, /* left to the kernel: a machine crash may lose ~30 s */
};

/* The [logger] section, filled by ferry_config_bind(ferry_logger_options). */
struct ferry_logger_cfg {
    char *service;                /* envelope service and first part of the routing key */
    int level;                    /* minimum level, index into DEBUG|INFO|WARNING|ERROR|CRITICAL */
    char *destination;            /* queue / topic */
    int64_t queue_size;           /* messages held in memory between callers and the sender */
    int full_policy;              /* enum ferry_full_policy */
    int64_t block_timeout;        /* ms, for FERRY_FULL_BLOCK */
    char *spool_dir;              /* NULL: memory only */
    int64_t spool_max;            /* bytes on disk */
    int spool_fsync;              /* enum ferry_spool_fsync */
    int64_t spool_fsync_interval; /* ms, for FERRY_SPOOL_FSYNC_BATCH */
    int64_t flush_timeout;        /* ms, default for ferry_logger_close() */
    int64_t backoff_min, backoff_max; /* ms, between connection attempts */
    int64_t max_inflight;             /* messages handed to the transport and not yet confirmed */
};
extern const struct ferry_option ferry_logger_options[];

struct ferry_logger_stats {
    uint64_t logged;     /* accepted by ferry_log() (queued or spilled) */
    uint64_t delivered;  /* confirmed by the broker */
    uint64_t dropped;    /* refused (queue full, spool full) or lost at close without a spool */
    uint64_t failed;     /* refused by the broker for good (too big, rejected) */
    uint64_t spooled;    /* written to the on-disk spool (includes those recovered at open) */
    uint64_t pending;    /* accepted, not yet delivered, dropped or failed */
    uint64_t recovered;  /* found in the spool at open, left by an earlier run */
    uint64_t reconnects; /* connections (re)established after the first */
};

struct ferry_logger;

/** Open a logger for service (NULL: [logger] service) configured by the
 *  INI file at path (NULL: defaults and FERRY_SECTION_KEY variables only).
 *  Reads [logger], [transport] and the plugin's section; other sections are
 *  ignored. Starts one background thread; the connection is made there, so
 *  a broker that is down does not fail the open (messages wait or spool).
 *  @return the logger (caller owns it: ferry_logger_close()), or NULL with
 *  *status (may be NULL) and err set: FERRY_E_CONFIG for bad options or an
 *  unloadable plugin, FERRY_E_FATAL when the spool or thread cannot start. */
struct ferry_logger *ferry_logger_open(const char *service, const char *path, int *status,
                                       char *err, size_t errlen);
/** The same from a loaded configuration. cfg is BORROWED until
 *  ferry_logger_close() (reconnections read it); do not change it meanwhile. */
struct ferry_logger *ferry_logger_open_config(const char *service, const struct ferry_config *cfg,
                                              int *status, char *err, size_t errlen);

/** Log one message. information is JSON object text or NULL; the
 *  background thread checks it (text that is not an object is delivered
 *  under "information_text" instead). Copies everything; never touches the
 *  network. Any thread, concurrently.
 *  @return FERRY_OK when accepted (or below the minimum level),
 *  FERRY_E_AGAIN when dropped because the queue (and spool) is full,
 *  FERRY_E_FATAL after close began. Drops are counted in the stats and
 *  reported on stderr (rate-limited). Blocks only with full_policy = block
 *  (up to block_timeout) or spill (one write to the spool). */
int ferry_log(struct ferry_logger *lg, enum ferry_level level, const char *message,
              const char *information);
/** printf-style ferry_log() without information. Same returns. */
int ferry_logf(struct ferry_logger *lg, enum ferry_level level, const char *fmt, ...)
    FERRY_PRINTF(3, 4);
int ferry_vlogf(struct ferry_logger *lg, enum ferry_level level, const char *fmt, va_list ap);

/** Wait until every message accepted before the call is delivered, failed
 *  or dropped; timeout_ms negative waits without limit.
 *  @return FERRY_OK, or FERRY_E_TIMEOUT (they stay queued or spooled).
 *  Blocks. Any thread. */
int ferry_logger_flush(struct ferry_logger *lg, int timeout_ms);
/** Counters at this moment. Any thread. */
void ferry_logger_stats(const struct ferry_logger *lg, struct ferry_logger_stats *out);
/** Stop accepting, deliver what is pending for up to timeout_ms (negative:
 *  the configured flush_timeout), stop the thread and free lg (NULL is
 *  fine). Messages left over stay in the spool for the next open; without
 *  a spool they are lost and counted as dropped. final (may be NULL)
 *  receives the last counters.
 *  @return FERRY_OK when everything was delivered, FERRY_E_TIMEOUT when
 *  some was not (final->pending spooled, or final->dropped lost), another
 *  status when some failed for good. No other call on lg may run or follow. */
int ferry_logger_close(struct ferry_logger *lg, int timeout_ms, struct ferry_logger_stats *final);

#ifdef __cplusplus
}
#endif
#endif /* FERRY_H */

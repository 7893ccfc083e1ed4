/* libferry metrics: a registry of counters and histograms that a program
 * owns, updated from any thread without locks and rendered in the
 * Prometheus text exposition format (version 0.0.4). */
#ifndef FERRY_METRICS_H
#define FERRY_METRICS_H

#include <ferry/transport.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Per-destination counters; each is exported as ferry_<name>_total. */
enum ferry_counter {
    FERRY_CTR_PRODUCED = 0,  /* messages_produced: confirmed by the transport */
    FERRY_CTR_CONSUMED,      /* messages_consumed: received and handled */
    FERRY_CTR_REJECTED,      /* messages_rejected: refused as invalid */
    FERRY_CTR_PROC_ERRORS,   /* message_processing_errors: handling failed */
    FERRY_CTR_DROPPED,       /* messages_dropped: only by a configured drop policy */
    FERRY_CTR_DEAD_LETTERED, /* messages_dead_lettered: sent to the dead-letter destination
                                 after max_retries */
    FERRY_CTR_COUNT
};

/* Handlers of the HTTP server, the "handler" label of
 * ferry_http_request_duration_seconds. */
enum ferry_http_handler {
    FERRY_HTTP_PRODUCE = 0,
    FERRY_HTTP_BATCH_PRODUCE,
    FERRY_HTTP_HEALTH,
    FERRY_HTTP_METRICS,
    FERRY_HTTP_OTHER,
    FERRY_HTTP_HANDLERS
};

/* Most destinations with their own series; later ones share the series
 * with destination="_other" so user input cannot grow memory without bound. */
#define FERRY_METRICS_MAX_DESTS 64

/* What the program's main thread last saw of its transport. */
struct ferry_metrics_state {
    enum ferry_health_state state;
    char reason[256];  /* why, when not connected */
    bool ready;        /* the program can do its job now */
    uint64_t inflight; /* published, not yet settled */
    uint64_t reconnects;
    int64_t uptime_ms;
    char transport[64];
    int64_t dest_messages;  /* messages waiting in the consumed destination; -1 unknown */
    int64_t consumer_lag;   /* kafka: high watermark minus committed offset; -1 unknown */
    char backlog_dest[256]; /* the destination both figures are of */
};

struct ferry_metrics;
struct ferry_metrics_dest;

/** New registry for a program using transport (the "transport" label;
 *  copied). Caller owns it: ferry_metrics_free(). NULL on ENOMEM. */
struct ferry_metrics *ferry_metrics_new(const char *transport);
void ferry_metrics_free(struct ferry_metrics *m);

/** The series of destination (created on first use; at most
 *  FERRY_METRICS_MAX_DESTS distinct names). The pointer stays valid until
 *  ferry_metrics_free(); callers may keep it. NULL only on ENOMEM.
 *  Thread-safe (takes a lock: look up once, then count lock-free). */
struct ferry_metrics_dest *ferry_metrics_dest(struct ferry_metrics *m, const char *destination);

/** Add n to counter k of d (NULL d is ignored). Lock-free, any thread. */
void ferry_metrics_count(struct ferry_metrics_dest *d, enum ferry_counter k, uint64_t n);
/** Record how long handling one message of d took. Lock-free, any thread. */
void ferry_metrics_observe(struct ferry_metrics_dest *d, double seconds);
/** Record n messages of d that each took seconds (a batch handled as one),
 *  as n calls of ferry_metrics_observe() would. Lock-free, any thread. */
void ferry_metrics_observe_n(struct ferry_metrics_dest *d, double seconds, uint64_t n);
/** Record how long an HTTP request to handler took. Lock-free, any thread. */
/** Count one HTTP answer of status (100..599) in ferry_http_responses_total
 *  by class (code="2xx", "4xx", "5xx", ...). Any thread. */
void ferry_metrics_count_http(struct ferry_metrics *m, unsigned status);
void ferry_metrics_observe_http(struct ferry_metrics *m, enum ferry_http_handler h, double seconds);

/** Publish the transport's state as the main thread sees it: h from
 *  ferry_health() (NULL: not connected yet, reason says why), reconnects
 *  (kept monotonic), inflight, and whether the program is ready.
 *  Thread-safe; readers see one consistent snapshot. */
void ferry_metrics_set_state(struct ferry_metrics *m, const struct ferry_health *h,
                             const char *reason, uint64_t reconnects, uint64_t inflight,
                             bool ready);
/** Copy the last snapshot into out. Thread-safe. */
void ferry_metrics_get_state(struct ferry_metrics *m, struct ferry_metrics_state *out);
/** The transport's figures from ferry_stats(): the backlog of dest (NULL:
 *  the first destination registered) for ferry_destination_messages (-1:
 *  unknown, not exported), consumer_lag, the lag over all partitions
 *  (/health), lags[0..n_lags), the lag per partition for
 *  ferry_consumer_lag{destination,partition} (copied, at most
 *  FERRY_METRICS_MAX_LAGS), and dropped, the transport's running total of
 *  drops, whose growth is added to ferry_messages_dropped_total of dest.
 *  Thread-safe. */
#define FERRY_METRICS_MAX_LAGS 256
void ferry_metrics_set_backlog(struct ferry_metrics *m, const char *dest, int64_t dest_messages,
                               int64_t consumer_lag, const struct ferry_lag *lags, size_t n_lags,
                               uint64_t dropped);
/** "connected", "reconnecting", "blocked" or "failed". Static storage. */
const char *ferry_health_state_name(enum ferry_health_state s);

/** Render every metric in the Prometheus text format 0.0.4. Caller frees
 *  the result with free(); *len gets its length. NULL on ENOMEM.
 *  Thread-safe. */
char *ferry_metrics_render(struct ferry_metrics *m, size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* FERRY_METRICS_H */

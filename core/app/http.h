/* The programs' HTTP side: [http] options, /health and /metrics for every
 * program, and the producer's ingestion (POST /produce, /batch-produce). */
#ifndef FERRY_APP_HTTP_H
#define FERRY_APP_HTTP_H

#include <ferry/ferry.h>
#include <ferry/metrics.h>

struct app; /* app.h */

/* [http] */
struct http_cfg {
    char *listen; /* "127.0.0.1:9464"; NULL: no HTTP server */
    char *token;  /* bearer token required by the ingestion endpoints */
    int64_t max_body, max_header, max_batch, request_timeout, header_timeout, confirm_timeout,
        max_connections, retry_after;
    char *tls_cert;      /* PEM certificate (chain) file: serve HTTPS */
    char *tls_key;       /* PEM private key file of tls_cert */
    char *health_listen; /* own listener for /health and /metrics only; NULL: none */
    int64_t health_connections;
};
extern const struct ferry_option app_http_options[];

/* One message of a request, ready to publish. Its address is the
 * publisher's user tag, so a delivery report finds it. */
struct http_msg {
    char *dest, *key, *body, *id; /* owned by the job (body is NUL-terminated) */
    char *ptime;                  /* processing_time for the x-ferry-processing-time
                                             header (non-object payloads), or NULL; owned */
    size_t body_len;
    struct http_job *job;
    struct ferry_metrics_dest *series; /* borrowed from the registry */
    double sent_s;                     /* when handed to the publisher (monotonic) */
    bool envelope;                     /* a log envelope: stamped in the body too */
};

/* One request's messages on their way from a request thread to the main
 * thread and back. remaining, failed, error and abandoned are guarded by
 * the server's lock. */
struct http_job {
    struct http_msg *msgs; /* owned */
    size_t n;
    size_t remaining; /* not yet settled */
    size_t failed;
    int fail_status; /* ferry_status of the first failure */
    char error[256];
    bool abandoned;               /* its request stopped waiting; the last
                                             settlement frees the job */
    struct http_job *next, *prev; /* queue, then the list of jobs in flight */
};

/* What the parser fills in when a message leaves a field out. */
struct http_defaults {
    const char *service;
    enum ferry_level level;
    const char *destination;
    int64_t max_message_size;
    int64_t max_batch;
    size_t max_queue;              /* messages queued before requests get 503 */
    struct ferry_metrics *metrics; /* series looked up per destination; may be NULL */
    int key_mode;                  /* enum app_key_mode of a message without "key" */
    const char *key_field;         /* its field, for APP_KEY_FIELD */
    const char *producer_id;       /* x-ferry-producer stamped on every message, with
                                    * x-ferry-seq counted from 1 in publish order;
                                    * NULL: unstamped */
};

/* Parse the body of POST /produce (batch false: one JSON object) or POST
 * /batch-produce (batch true: {"messages": [...]} or [...]) into a new job; see the
 * README section "HTTP ingestion" for the fields.
 * @return 0 with *out set (caller frees with app_http_job_free), or the
 * HTTP status to answer (400, 413) with the reason in err. */
int app_http_parse(const char *body, size_t len, bool batch, const struct http_defaults *d,
                   struct http_job **out, char *err, size_t errlen);
void app_http_job_free(struct http_job *j);

/* Equal strings, in time that depends only on the length of expected. */
bool app_http_token_equal(const char *given, const char *expected);

/* Split "ADDR:PORT" / "[V6]:PORT" (a bare port is refused: the address
 * says which interfaces listen). @return 0, or -1 with the reason in err. */
int app_http_split_listen(const char *listen, char *host, size_t hostlen, char *port,
                          size_t portlen, char *err, size_t errlen);

struct app_http;

/* Bind [http] and start the server when listen is set. ingest enables the
 * producer's POST endpoints (NULL: only /health and /metrics).
 * @return -1 to continue (*out is NULL when HTTP is off), or an exit code. */
int app_http_start(struct app *a, struct ferry_metrics *m, const struct http_defaults *ingest,
                   struct app_http **out);
/* Stop the server (waits for the request threads) and free it. NULL is fine. */
void app_http_stop(struct app_http *h);

/* Refresh the snapshot /health and /metrics read: connection state from
 * ferry_health(c) (c may be NULL: not connected, why says why), the
 * publisher's backlog, and whether the program is otherwise ready. At most
 * every 200 ms unless force. Main thread. */
void app_http_refresh(struct ferry_metrics *m, struct ferry_conn *c, struct ferry_pub *p,
                      bool ready, const char *why, int64_t *last, bool force);

/* The producer's server loop: publish the requests' messages through p
 * and settle each request when the transport has confirmed them; on a
 * stop signal stop accepting, let the requests in progress finish (up to
 * confirm_timeout and a second) and return. p must have been made with
 * app_http_on_done and h as its done-callback. Main thread; it alone uses
 * c and p. Flush p afterwards, then app_http_stop(). */
void app_http_serve(struct app_http *h, struct app *a, struct ferry_conn *c, struct ferry_pub *p,
                    size_t max_inflight);
/* The publisher's done-callback in server mode: tag is a struct http_msg *. */
void app_http_on_done(void *h, uint64_t tag, int status, const char *reason);

#endif

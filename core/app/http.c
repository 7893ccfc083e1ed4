/* The HTTP server of every program (libmicrohttpd): GET /health, GET
 * /metrics, and for the producer POST /produce and POST /batch-produce,
 * answered 2xx only once the transport has confirmed every message. */
#include "config.h"
#include "app.h"
#include "private.h"
#include "http.h"
#include "jsoncheck.h"
#include <ferry/ledger.h>

#include <ferry/ledger.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * Threading. A ferry_conn and its ferry_pub may be used by one thread at a
 * time, and the program's main thread already owns them (it reconnects,
 * retries and drives confirms). libmicrohttpd runs one thread per
 * connection (MHD_USE_THREAD_PER_CONNECTION, bounded by max_connections),
 * and a request thread may block. So a request thread does everything that
 * needs no transport: authentication, reading and size-checking the body,
 * parsing and validating the JSON, encoding the envelopes. It then queues
 * the finished job under h->lock and sleeps on h->settled. The main thread
 * takes jobs from the queue, publishes their messages through the reliable
 * publisher, and in the publisher's done-callback (which runs in the main
 * thread) counts each job down; the last settlement wakes the request,
 * which answers 200, or an error if any message failed. A request that
 * waits longer than confirm_timeout marks its job abandoned and answers
 * 503; the job then lives until its last message settles, so the main
 * thread never touches freed memory. /health and /metrics never touch the
 * transport: they read the metrics registry (atomic counters and a
 * snapshot the main thread refreshes under a mutex).
 */

/* libmicrohttpd keeps the request line and header fields in a memory pool
 * per connection, which also holds the parsed header table (about 56 bytes
 * a field) and the response header: max_header plus this much, so a
 * request of max_header bytes in up to about 60 fields always fits. An
 * over-full pool makes libmicrohttpd answer 431 and close. */
#define HTTP_POOL_SLACK 4096

#define H(f) offsetof(struct http_cfg, f)
const struct ferry_option app_http_options[] = {
    {.name = "listen",
     .type = FERRY_OPT_STR,
     .offset = H(listen),
     .help = "ADDRESS:PORT to serve /health, /metrics (and the producer's /produce) on, "
             "e.g. 127.0.0.1:9464; exactly that address is bound; unset: no HTTP server."},
    {.name = "token",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .offset = H(token),
     .help = "Bearer token required by POST /produce and /batch-produce (also token_file, or "
             "FERRY_HTTP_TOKEN); unset: no authentication."},
    {.name = "max_body",
     .type = FERRY_OPT_SIZE,
     .def = "1MiB",
     .min = 1,
     .max = 1073741824,
     .offset = H(max_body),
     .help = "Largest request body accepted; larger ones get 413."},
    {.name = "max_header",
     .type = FERRY_OPT_SIZE,
     .def = "16KiB",
     .min = 1024,
     .max = 1048576,
     .offset = H(max_header),
     .help = "Largest request line plus header fields accepted, in bytes (in up to about 50 "
             "fields); larger ones get 431 and the connection is closed."},
    {.name = "max_batch",
     .type = FERRY_OPT_INT,
     .def = "10000",
     .min = 1,
     .max = 1000000,
     .offset = H(max_batch),
     .help = "Most messages in one /batch-produce request; more get 413."},
    {.name = "request_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "30s",
     .min = 1000,
     .max = 3600000,
     .offset = H(request_timeout),
     .help = "A connection idle this long (a slow or stalled client) is closed."},
    {.name = "header_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "10s",
     .min = 100,
     .max = 3600000,
     .offset = H(header_timeout),
     .help = "Time a client has for the TLS handshake, request line and header fields of a "
             "request, however steadily it sends (a slow client holding connections open)."},
    {.name = "confirm_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "30s",
     .min = 1,
     .max = 3600000,
     .offset = H(confirm_timeout),
     .help = "How long a request waits for the transport to confirm its messages before 503."},
    {.name = "max_connections",
     .type = FERRY_OPT_INT,
     .def = "64",
     .min = 1,
     .max = 10000,
     .offset = H(max_connections),
     .help = "Concurrent HTTP connections, each served by its own thread."},
    {.name = "retry_after",
     .type = FERRY_OPT_DURATION,
     .def = "5s",
     .min = 1000,
     .max = 3600000,
     .offset = H(retry_after),
     .help = "Retry-After sent with 503 answers (whole seconds)."},
    {.name = "tls_cert",
     .type = FERRY_OPT_STR,
     .offset = H(tls_cert),
     .help = "PEM certificate (chain) file: with tls_key, serve HTTPS instead of HTTP."},
    {.name = "tls_key",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .offset = H(tls_key),
     .help = "PEM private key file of tls_cert; keep it mode 0600."},
    {.name = "health_listen",
     .type = FERRY_OPT_STR,
     .offset = H(health_listen),
     .help = "ADDRESS:PORT of a second, plain-HTTP listener serving only GET /health and "
             "/metrics, with its own connections: probes keep answering while slow or "
             "numerous clients hold every connection of listen. Unset: none."},
    {.name = "health_connections",
     .type = FERRY_OPT_INT,
     .def = "8",
     .min = 1,
     .max = 1000,
     .offset = H(health_connections),
     .help = "Concurrent connections of health_listen."},
    {0}};
#undef H

/* At most one log line of a kind per HTTP_LOG_INTERVAL_S. */
struct http_ratelimit {
    struct timespec last;   /* when one was last logged; zero: never */
    unsigned long left_out; /* lines left out since */
};
#define HTTP_LOG_INTERVAL_S 10.0

struct app_http {
    struct app *app;
    struct http_cfg cfg;           /* bound from [http]; freed in app_http_stop() */
    struct ferry_metrics *metrics; /* borrowed */
    bool ingest;
    struct http_defaults defaults;
    struct MHD_Daemon *daemon;
    struct MHD_Daemon *health_daemon; /* health_listen; NULL without */
    char *tls_cert_pem, *tls_key_pem; /* file contents for MHD; freed in app_http_stop() */
    pthread_mutex_t lock;
    pthread_cond_t work;            /* a job was queued */
    pthread_cond_t settled;         /* a job was settled, or the server is closing */
    struct http_job *qhead, *qtail; /* queued, not yet taken */
    struct http_job *flying;        /* taken by the main thread, not yet settled */
    size_t queued_msgs, max_queue;
    _Atomic int active;            /* ingestion requests being handled */
    atomic_bool closing;           /* written under lock; reply() reads it without */
    atomic_bool serving;           /* the daemon started: rate-limit its messages */
    pthread_mutex_t log_lock;      /* guards mhd_log */
    struct http_ratelimit mhd_log; /* libmicrohttpd's messages */
    struct http_ratelimit cut_log; /* the reaper's; guarded by conns_lock */
    /* header_timeout: connections, tracked from open to close, and the
     * thread that cuts off those too slow with their header */
    pthread_mutex_t conns_lock; /* guards conns, the fields of each, reaper_stop */
    pthread_cond_t reaper_wake;
    struct http_conn *conns;
    bool reaper_started, reaper_stop;
    pthread_t reaper;
};

/* A client connection; the socket context of libmicrohttpd. */
struct http_conn {
    int fd;
    struct timespec since; /* start of the handshake or of the current request's header */
    bool in_body;          /* header complete: request_timeout alone applies */
    bool cut;              /* shut down for a late header, waiting to be closed */
    struct http_conn *next, *prev;
};

/* ---------------------------------------------------------------------- */
/* Request parsing                                                        */

void app_http_job_free(struct http_job *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->n; i++) {
        free(j->msgs[i].dest);
        free(j->msgs[i].key);
        free(j->msgs[i].body);
        free(j->msgs[i].id);
        free(j->msgs[i].ptime);
    }
    free(j->msgs);
    free(j);
}

static bool member_in(const char *name, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (!strcmp(name, *allowed))
            return true;
    return false;
}

/* "id" as text: a string, or an integer number. */
static char *id_text(const cJSON *v, char *err, size_t errlen)
{
    char buf[64];
    if (cJSON_IsString(v) && *v->valuestring && strlen(v->valuestring) < 256)
        return strdup(v->valuestring); /* the caller's: freed in app_http_job_free() */
    /* integers a double holds exactly (|n| <= 2^53); the range check comes
     * first because converting a larger double to long long is undefined */
    if (cJSON_IsNumber(v) && v->valuedouble >= -9007199254740992.0 &&
        v->valuedouble <= 9007199254740992.0 &&
        v->valuedouble == (double)(long long)v->valuedouble) {
        snprintf(buf, sizeof buf, "%lld", (long long)v->valuedouble);
        return strdup(buf); /* the caller's: freed in app_http_job_free() */
    }
    snprintf(err, errlen, "id must be a non-empty string (under 256 bytes) or an integer");
    return NULL;
}

static const char *opt_string(const cJSON *o, const char *name, const char *def, bool *bad,
                              char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v)
        return def;
    if (!cJSON_IsString(v) || !*v->valuestring) {
        snprintf(err, errlen, "%s must be a non-empty string", name);
        *bad = true;
        return NULL;
    }
    return v->valuestring;
}

/* d as the shortest of %.15g and %.17g that reads back as d, as cJSON
 * prints numbers. */
static void number_text(double d, char *buf, size_t len)
{
    snprintf(buf, len, "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, len, "%.17g", d);
}

/* One message object into m. @return 0, 400 or 413 with err set. */
static int parse_one(const cJSON *o, const struct http_defaults *d, struct http_msg *m, char *err,
                     size_t errlen)
{
    static const char *const envelope_fields[] = {"id",      "service",         "level",
                                                  "message", "information",     "destination",
                                                  "key",     "processing_time", NULL};
    static const char *const payload_fields[] = {"id",  "payload",         "destination",
                                                 "key", "processing_time", NULL};
    if (!cJSON_IsObject(o)) {
        snprintf(err, errlen, "a message must be a JSON object");
        return 400;
    }
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(o, "message");
    const cJSON *payload = cJSON_GetObjectItemCaseSensitive(o, "payload");
    if (msg && payload) {
        snprintf(err, errlen, "give either message (a log) or payload (an event), not both");
        return 400;
    }
    if (!msg && !payload) {
        snprintf(err, errlen, "missing field: message (a log) or payload (an event)");
        return 400;
    }
    const char *const *allowed = msg ? envelope_fields : payload_fields;
    for (const cJSON *f = o->child; f; f = f->next)
        if (!member_in(f->string, allowed)) {
            snprintf(err, errlen, "unknown field: %s", f->string);
            return 400;
        }
    bool bad = false;
    const char *dest = opt_string(o, "destination", d->destination, &bad, err, errlen);
    const char *key = bad ? NULL : opt_string(o, "key", NULL, &bad, err, errlen);
    if (bad)
        return 400;
    /* seconds of simulated work for the consumer, as the replaced API took it */
    const cJSON *ptime = cJSON_GetObjectItemCaseSensitive(o, "processing_time");
    if (ptime &&
        (!cJSON_IsNumber(ptime) || !(ptime->valuedouble >= 0) || ptime->valuedouble > 3600)) {
        snprintf(err, errlen, "processing_time must be a number of seconds from 0 to 3600");
        return 400;
    }
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(o, "id");
    char idbuf[37];
    if (idv) {
        if (!(m->id = id_text(idv, err, errlen))) /* freed in app_http_job_free() */
            return 400;
    }

    char keybuf[300], keybuf2[256];
    bool opt_key = key != NULL;
    if (msg) {
        if (!cJSON_IsString(msg)) {
            snprintf(err, errlen, "message must be a string");
            return 400;
        }
        const char *service = opt_string(o, "service", d->service, &bad, err, errlen);
        const char *level = bad ? NULL : opt_string(o, "level", NULL, &bad, err, errlen);
        if (bad)
            return 400;
        int lvl = level ? ferry_level_parse(level) : (int)d->level;
        if (lvl < 0) {
            snprintf(err, errlen, "level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL");
            return 400;
        }
        const cJSON *info = cJSON_GetObjectItemCaseSensitive(o, "information");
        char *info_text = NULL; /* freed below */
        if (info && !cJSON_IsNull(info)) {
            if (!cJSON_IsObject(info)) {
                snprintf(err, errlen, "information must be a JSON object");
                return 400;
            }
            if (!(info_text = cJSON_PrintUnformatted(info))) { /* freed below */
                snprintf(err, errlen, "out of memory");
                return 500;
            }
        }
        if (!m->id) {
            ferry_make_id(idbuf);
            m->id = strdup(idbuf); /* freed in app_http_job_free() */
        }
        struct ferry_envelope e = {.id = m->id,
                                   .service = service,
                                   .level = (enum ferry_level)lvl,
                                   .message = msg->valuestring,
                                   .information = info_text};
        char extra[64], t[32];
        if (ptime) {
            number_text(ptime->valuedouble, t, sizeof t);
            snprintf(extra, sizeof extra, "{\"processing_time\":%s}", t);
            e.extra = extra;
        }
        char eerr[256];
        m->body = m->id ? ferry_envelope_encode(&e, eerr, sizeof eerr)
                        : NULL; /* freed in app_http_job_free() */
        free(info_text);
        if (!m->body) {
            snprintf(err, errlen, "%s", m->id ? eerr : "out of memory");
            return m->id ? 400 : 500;
        }
        if (!key)
            key = ferry_envelope_key(service, (enum ferry_level)lvl, keybuf, sizeof keybuf);
        if (!opt_key)
            key = app_message_key((enum app_key_mode)d->key_mode, d->key_field, key, service,
                                  m->body, strlen(m->body), keybuf2, sizeof keybuf2);
        m->envelope = true;
    } else if (!cJSON_IsObject(payload)) {
        /* Any other JSON value (a string, a number, an array) is sent as
         * its JSON text; the id and processing_time, which it cannot
         * carry, travel in the x-ferry-id and x-ferry-processing-time
         * headers. */
        if (!m->id) {
            ferry_make_id(idbuf);
            m->id = strdup(idbuf); /* freed in app_http_job_free() */
        }
        m->body = m->id ? cJSON_PrintUnformatted(payload) : NULL; /* freed in app_http_job_free() */
        if (ptime && m->body) {
            char t[32];
            number_text(ptime->valuedouble, t, sizeof t);
            m->ptime = strdup(t); /* freed in app_http_job_free() */
        }
        if (!m->body || (ptime && !m->ptime)) {
            snprintf(err, errlen, "out of memory");
            return 500;
        }
    } else {
        cJSON *copy = cJSON_Duplicate(payload, true); /* freed below */
        if (!copy) {
            snprintf(err, errlen, "out of memory");
            return 500;
        }
        const cJSON *inner = cJSON_GetObjectItemCaseSensitive(copy, "id");
        if (inner) {
            char ierr[128];
            char *iid = id_text(inner, ierr, sizeof ierr); /* freed below */
            bool clash = !iid || (m->id && strcmp(iid, m->id));
            if (!iid)
                snprintf(err, errlen, "payload.%s", ierr);
            else if (clash)
                snprintf(err, errlen, "id and payload.id differ");
            if (clash) {
                free(iid);
                cJSON_Delete(copy);
                return 400;
            }
            free(m->id);
            m->id = iid;
        } else {
            if (!m->id) {
                ferry_make_id(idbuf);
                m->id = strdup(idbuf); /* freed in app_http_job_free() */
            }
            /* the id travels inside the event, where consumers de-duplicate by it */
            if (!m->id || !(idv ? cJSON_AddItemToObject(copy, "id", cJSON_Duplicate(idv, false))
                                : cJSON_AddStringToObject(copy, "id", m->id) != NULL)) {
                cJSON_Delete(copy);
                snprintf(err, errlen, "out of memory");
                return 500;
            }
        }
        if (ptime) {
            cJSON_DeleteItemFromObjectCaseSensitive(copy, "processing_time");
            if (!cJSON_AddNumberToObject(copy, "processing_time", ptime->valuedouble)) {
                cJSON_Delete(copy);
                snprintf(err, errlen, "out of memory");
                return 500;
            }
        }
        m->body = cJSON_PrintUnformatted(copy); /* freed in app_http_job_free() */
        cJSON_Delete(copy);
        if (!m->body) {
            snprintf(err, errlen, "out of memory");
            return 500;
        }
    }
    m->body_len = strlen(m->body);
    /* an event without "key": only modes that need no log envelope apply */
    if (!msg && !opt_key && d->key_mode != APP_KEY_SERVICE_LEVEL && d->key_mode != APP_KEY_SERVICE)
        key = app_message_key((enum app_key_mode)d->key_mode, d->key_field, NULL, NULL, m->body,
                              m->body_len, keybuf2, sizeof keybuf2);
    if (!msg && !opt_key && d->key_mode == APP_KEY_ID)
        key = m->id;
    if (d->max_message_size > 0 && (int64_t)m->body_len > d->max_message_size) {
        snprintf(err, errlen, "message of %zu bytes exceeds max_message_size (%" PRId64 ")",
                 m->body_len, d->max_message_size);
        return 413;
    }
    m->dest = strdup(dest);            /* freed in app_http_job_free() */
    m->key = key ? strdup(key) : NULL; /* freed in app_http_job_free() */
    if (!m->dest || (key && !m->key)) {
        snprintf(err, errlen, "out of memory");
        return 500;
    }
    m->series = ferry_metrics_dest(d->metrics, m->dest);
    return 0;
}

static int http_parse(const char *body, size_t len, bool batch, const struct http_defaults *d,
                      struct http_job **out, char *err, size_t errlen);

int app_http_parse(const char *body, size_t len, bool batch, const struct http_defaults *d,
                   struct http_job **out, char *err, size_t errlen)
{
    int rc = http_parse(body, len, batch, d, out, err, errlen);
    /* the reason goes into a JSON answer: a quoted key or a reason cut at
     * errlen may end inside a UTF-8 sequence; keep the valid prefix */
    if (rc != 0 && errlen)
        err[ferry_utf8_check(err, strnlen(err, errlen - 1))] = '\0';
    return rc;
}

static int http_parse(const char *body, size_t len, bool batch, const struct http_defaults *d,
                      struct http_job **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(body, len, &end, false); /* freed below */
    if (!doc) {
        snprintf(err, errlen, "invalid JSON at byte %zu", end ? (size_t)(end - body) : (size_t)0);
        return 400;
    }
    for (const char *p = end; p && p < body + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            snprintf(err, errlen, "invalid JSON at byte %zu: text after the value",
                     (size_t)(p - body));
            cJSON_Delete(doc);
            return 400;
        }
    /* What cJSON lets through: a key given twice (cJSON would keep the
     * first), a NUL (cJSON would cut the string there), invalid UTF-8
     * (which would go out in the JSON ferry writes), a number beyond a
     * double. Refused, with the byte offset. */
    if (ferry_json_check(body, len, FERRY_JSON_NO_DUP_KEYS | FERRY_JSON_NO_NUL, NULL, err,
                         errlen)) {
        cJSON_Delete(doc);
        return 400;
    }
    const cJSON *list = doc;
    size_t n = 1;
    if (batch) {
        /* {"messages": [...]}, or a bare array as the replaced API took */
        list = cJSON_IsArray(doc) ? doc : cJSON_GetObjectItemCaseSensitive(doc, "messages");
        if (list != doc && (!cJSON_IsObject(doc) || !cJSON_IsArray(list) || doc->child->next)) {
            snprintf(err, errlen,
                     "a batch is an array, or an object with one member, messages: [...]");
            cJSON_Delete(doc);
            return 400;
        }
        n = (size_t)cJSON_GetArraySize(list);
        if (n == 0) {
            snprintf(err, errlen, "messages is empty");
            cJSON_Delete(doc);
            return 400;
        }
        if (d->max_batch > 0 && (int64_t)n > d->max_batch) {
            snprintf(err, errlen, "batch of %zu messages exceeds max_batch (%" PRId64 ")", n,
                     d->max_batch);
            cJSON_Delete(doc);
            return 413;
        }
    }
    struct http_job *j = calloc(1, sizeof *j); /* freed in app_http_job_free() */
    if (j)
        j->msgs = calloc(n, sizeof *j->msgs); /* freed in app_http_job_free() */
    if (!j || !j->msgs) {
        free(j);
        cJSON_Delete(doc);
        snprintf(err, errlen, "out of memory");
        return 500;
    }
    j->n = n;
    j->remaining = n;
    int rc = 0;
    const cJSON *item = batch ? list->child : doc;
    for (size_t i = 0; i < n && !rc; i++, item = item->next) {
        char why[400];
        j->msgs[i].job = j;
        rc = parse_one(item, d, &j->msgs[i], why, sizeof why);
        if (rc && batch)
            snprintf(err, errlen, "messages[%zu]: %s", i, why);
        else if (rc)
            snprintf(err, errlen, "%s", why);
    }
    cJSON_Delete(doc);
    if (rc) {
        app_http_job_free(j);
        return rc;
    }
    *out = j;
    return 0;
}

/* The whole of a (small) PEM file, NUL-terminated, or NULL with err set.
 * The caller frees it. */
static char *read_pem(const char *what, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    long len = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && len < (1L << 20) &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len + 1)) != NULL &&
        fread(buf, 1, (size_t)len, f) == (size_t)len) {
        buf[len] = '\0';
        fclose(f);
        /* GnuTLS's own complaint comes later and says little; a file that
         * is not PEM of the right kind is named here. */
        const char *kind = strcmp(what, "tls_key") ? "CERTIFICATE-----" : "PRIVATE KEY-----";
        const char *begin = strstr(buf, "-----BEGIN ");
        if (begin && strstr(begin, kind))
            return buf;
        snprintf(err, errlen, "%s %s: not a PEM file with a \"-----BEGIN ...%s\" line", what, path,
                 kind);
        if (!strcmp(what, "tls_key"))
            memset(buf, 0, (size_t)len);
        free(buf);
        return NULL;
    }
    int e = errno;
    snprintf(err, errlen, "%s %s: %s", what, path,
             !f                  ? strerror(e)
             : len >= (1L << 20) ? "larger than 1 MiB"
                                 : "cannot read it");
    if (f)
        fclose(f);
    free(buf);
    return NULL;
}

bool app_http_token_equal(const char *given, const char *expected)
{
    size_t gl = strlen(given), el = strlen(expected);
    unsigned diff = gl != el;
    for (size_t i = 0; i < el; i++)
        diff |= (unsigned char)expected[i] ^ (unsigned char)(gl ? given[i % gl] : 0);
    return diff == 0;
}

int app_http_split_listen(const char *listen, char *host, size_t hostlen, char *port,
                          size_t portlen, char *err, size_t errlen)
{
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hl;
    if (*listen == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "'%s' is not [IPV6]:PORT", listen);
            return -1;
        }
        h = listen + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        if (!colon || colon == listen) {
            snprintf(err, errlen,
                     "'%s' has no address: give ADDRESS:PORT, e.g. 127.0.0.1:%s "
                     "(or 0.0.0.0:%s to listen on every interface)",
                     listen, colon ? colon + 1 : listen, colon ? colon + 1 : listen);
            return -1;
        }
        if (memchr(listen, ':', (size_t)(colon - listen))) {
            snprintf(err, errlen, "'%s': write an IPv6 address as [ADDRESS]:PORT", listen);
            return -1;
        }
        hl = (size_t)(colon - listen);
    }
    const char *p = colon + 1;
    char *end;
    long v = strtol(p, &end, 10);
    if (!*p || *end || v < 0 || v > 65535) {
        snprintf(err, errlen, "'%s': port must be a number from 0 to 65535", listen);
        return -1;
    }
    if (hl == 0 || hl >= hostlen || strlen(p) >= portlen) {
        snprintf(err, errlen, "'%s' is not ADDRESS:PORT", listen);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, portlen, "%s", p);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Responses                                                              */

struct req {
    enum ferry_http_handler handler;
    struct timespec start;
    bool counted; /* in h->active */
    int early;    /* status decided before the body */
    char early_why[200];
    char *body; /* owned; freed in on_completed() */
    size_t len, cap;
    bool too_big;
};

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static enum MHD_Result reply_as(struct app_http *h, struct MHD_Connection *conn, unsigned status,
                                const char *type, char *text, bool close);

static enum MHD_Result reply(struct app_http *h, struct MHD_Connection *conn, unsigned status,
                             const char *type, char *text)
{
    return reply_as(h, conn, status, type, text, false);
}

static char *json_error(const char *why);

/* An answer after which the connection is closed: what follows on it
 * cannot be trusted to be a request. */
static enum MHD_Result reply_closing(struct app_http *h, struct MHD_Connection *conn,
                                     unsigned status, char *json)
{
    return reply_as(h, conn, status, "application/json", json, true);
}

static enum MHD_Result reply_as(struct app_http *h, struct MHD_Connection *conn, unsigned status,
                                const char *type, char *text, bool close)
{
    /* text is malloc'ed; MHD frees it with the response */
    struct MHD_Response *r =
        MHD_create_response_from_buffer(text ? strlen(text) : 0, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE) {
        char ra[32];
        snprintf(ra, sizeof ra, "%" PRId64, (h->cfg.retry_after + 999) / 1000);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"ferry\"");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST");
    if (h->closing || close)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    ferry_metrics_count_http(h->metrics, status);
    return rc;
}

/* {"error": why} or {"status": ..., ...}; cJSON escapes the text. */
static char *json_error(const char *why)
{
    cJSON *o = cJSON_CreateObject(); /* freed below */
    cJSON_AddStringToObject(o, "error", why);
    char *s = cJSON_PrintUnformatted(o); /* handed to reply() */
    cJSON_Delete(o);
    return s;
}

static enum MHD_Result reply_error(struct app_http *h, struct MHD_Connection *conn, unsigned status,
                                   const char *why)
{
    return reply(h, conn, status, "application/json", json_error(why));
}

static enum MHD_Result serve_health(struct app_http *h, struct MHD_Connection *conn)
{
    struct ferry_metrics_state st;
    ferry_metrics_get_state(h->metrics, &st);
    cJSON *o = cJSON_CreateObject(); /* freed below */
    cJSON_AddStringToObject(o, "status", st.ready ? "ok" : "unavailable");
    cJSON_AddStringToObject(o, "program", h->app->spec->prog);
    cJSON_AddStringToObject(o, "version", ferry_version());
    cJSON_AddStringToObject(o, "transport", st.transport);
    cJSON_AddStringToObject(o, "connection", ferry_health_state_name(st.state));
    if (st.reason[0])
        cJSON_AddStringToObject(o, "reason", st.reason);
    cJSON_AddNumberToObject(o, "inflight", (double)st.inflight);
    cJSON_AddNumberToObject(o, "reconnects", (double)st.reconnects);
    cJSON_AddNumberToObject(o, "uptime_seconds", (double)(st.uptime_ms / 100) / 10.0);
    if (st.dest_messages >= 0)
        cJSON_AddNumberToObject(o, "destination_messages", (double)st.dest_messages);
    if (st.consumer_lag >= 0)
        cJSON_AddNumberToObject(o, "consumer_lag", (double)st.consumer_lag);
    char *s = cJSON_PrintUnformatted(o); /* handed to reply() */
    cJSON_Delete(o);
    return reply(h, conn, st.ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "application/json",
                 s);
}

static enum MHD_Result serve_metrics(struct app_http *h, struct MHD_Connection *conn)
{
    size_t len;
    char *text = ferry_metrics_render(h->metrics, &len); /* handed to reply() */
    if (!text)
        return reply_error(h, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    return reply(h, conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text);
}

/* ---------------------------------------------------------------------- */
/* Ingestion: the request side                                            */

static int status_of_failure(int st)
{
    switch (st) {
    case FERRY_E_TOOBIG: return MHD_HTTP_CONTENT_TOO_LARGE;
    case FERRY_E_AGAIN:
    case FERRY_E_TIMEOUT:
    case FERRY_E_NOCONN: return MHD_HTTP_SERVICE_UNAVAILABLE;
    default: return MHD_HTTP_BAD_GATEWAY;
    }
}

static enum MHD_Result ingest(struct app_http *h, struct MHD_Connection *conn, struct req *rq)
{
    char err[512];
    struct http_job *j;
    int rc =
        app_http_parse(rq->body ? rq->body : "", rq->len, rq->handler == FERRY_HTTP_BATCH_PRODUCE,
                       &h->defaults, &j, err, sizeof err);
    if (rc) {
        struct ferry_metrics_dest *d = ferry_metrics_dest(h->metrics, h->defaults.destination);
        if (rc == 400)
            ferry_metrics_count(d, FERRY_CTR_REJECTED, 1);
        return reply_error(h, conn, (unsigned)rc, err);
    }
    struct ferry_metrics_state st;
    ferry_metrics_get_state(h->metrics, &st);
    pthread_mutex_lock(&h->lock);
    const char *refuse = NULL;
    if (h->closing) {
        refuse = "shutting down";
    } else if (!st.ready) {
        snprintf(err, sizeof err, "transport unavailable: %s",
                 st.reason[0] ? st.reason : ferry_health_state_name(st.state));
        refuse = err;
    } else if (h->queued_msgs + j->n > h->max_queue && h->queued_msgs > 0) {
        refuse = "saturated: too many messages waiting to be published";
    }
    if (refuse) {
        pthread_mutex_unlock(&h->lock);
        app_http_job_free(j);
        return reply_error(h, conn, MHD_HTTP_SERVICE_UNAVAILABLE, refuse);
    }
    if (h->qtail)
        h->qtail->next = j;
    else
        h->qhead = j;
    h->qtail = j;
    h->queued_msgs += j->n;
    pthread_cond_signal(&h->work);
    struct timespec until;
    ferry_mono_deadline(&until, h->cfg.confirm_timeout);
    int wr = 0;
    while (j->remaining && !h->closing && wr != ETIMEDOUT)
        wr = pthread_cond_timedwait(&h->settled, &h->lock, &until);
    bool done = j->remaining == 0;
    if (!done)
        j->abandoned = true; /* the main thread frees it when the last message settles */
    size_t failed = j->failed;
    int fail_status = j->fail_status;
    char why[300];
    snprintf(why, sizeof why, "%s", j->error);
    pthread_mutex_unlock(&h->lock);
    if (!done) {
        snprintf(err, sizeof err,
                 "not confirmed within %" PRId64 " ms; the messages may still "
                 "arrive: retry with the same ids",
                 h->cfg.confirm_timeout);
        return reply_error(h, conn, MHD_HTTP_SERVICE_UNAVAILABLE, err);
    }
    if (failed) {
        snprintf(err, sizeof err, "%zu of %zu messages failed: %s", failed, j->n, why);
        app_http_job_free(j);
        return reply_error(h, conn, (unsigned)status_of_failure(fail_status), err);
    }
    cJSON *o = cJSON_CreateObject(); /* freed below */
    cJSON_AddStringToObject(o, "status", "confirmed");
    cJSON_AddNumberToObject(o, "count", (double)j->n);
    cJSON *ids = cJSON_AddArrayToObject(o, "ids");
    for (size_t i = 0; ids && i < j->n; i++)
        cJSON_AddItemToArray(ids, cJSON_CreateString(j->msgs[i].id));
    app_http_job_free(j);
    char *s = cJSON_PrintUnformatted(o); /* handed to reply() */
    cJSON_Delete(o);
    return reply(h, conn, MHD_HTTP_OK, "application/json", s);
}

static enum ferry_http_handler handler_of(const char *url)
{
    if (!strcmp(url, "/produce"))
        return FERRY_HTTP_PRODUCE;
    if (!strcmp(url, "/batch-produce"))
        return FERRY_HTTP_BATCH_PRODUCE;
    if (!strcmp(url, "/health"))
        return FERRY_HTTP_HEALTH;
    if (!strcmp(url, "/metrics"))
        return FERRY_HTTP_METRICS;
    return FERRY_HTTP_OTHER;
}

/* Request framing: how many Content-Length fields (and whether they
 * differ), whether Transfer-Encoding came too. */
struct framing {
    unsigned n_length;
    bool lengths_differ;
    const char *first_length;
    bool transfer_encoding;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    struct framing *f = cls;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        if (f->n_length++ && strcmp(f->first_length, value ? value : ""))
            f->lengths_differ = true;
        else if (f->n_length == 1)
            f->first_length = value ? value : "";
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        f->transfer_encoding = true;
    }
    return MHD_YES;
}

/* Why the request's framing is ambiguous, or NULL. libmicrohttpd takes the
 * first of two Content-Length fields and lets chunked coding win over
 * Content-Length; a proxy in front may have read either differently, so
 * the rest of the connection could hold a request it never saw (request
 * smuggling). Such a request is answered 400 and the connection closed. */
static const char *ambiguous_framing(struct MHD_Connection *conn)
{
    struct framing f = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
    if (f.lengths_differ)
        return "Content-Length given twice with different values";
    if (f.n_length && f.transfer_encoding)
        return "Content-Length together with Transfer-Encoding";
    return NULL;
}

/* First call of a request: decide what needs no body. */
static void first_call(struct app_http *h, struct MHD_Connection *conn, const char *method,
                       struct req *rq)
{
    bool post = !strcmp(method, MHD_HTTP_METHOD_POST);
    bool get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
    switch (rq->handler) {
    case FERRY_HTTP_HEALTH:
    case FERRY_HTTP_METRICS:
        if (!get)
            rq->early = MHD_HTTP_METHOD_NOT_ALLOWED;
        return;
    case FERRY_HTTP_PRODUCE:
    case FERRY_HTTP_BATCH_PRODUCE:
        if (!h->ingest) {
            rq->early = MHD_HTTP_NOT_FOUND;
            snprintf(rq->early_why, sizeof rq->early_why,
                     "%s takes no messages: ingestion is served by ferry-producer",
                     h->app->spec->prog);
            return;
        }
        if (!post) {
            rq->early = MHD_HTTP_METHOD_NOT_ALLOWED;
            return;
        }
        break;
    default: rq->early = MHD_HTTP_NOT_FOUND; return;
    }
    atomic_fetch_add(&h->active, 1);
    rq->counted = true;
    if (h->cfg.token) {
        const char *auth =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        bool ok =
            auth && !strncmp(auth, "Bearer ", 7) && app_http_token_equal(auth + 7, h->cfg.token);
        if (!ok) {
            rq->early = MHD_HTTP_UNAUTHORIZED;
            snprintf(rq->early_why, sizeof rq->early_why,
                     auth ? "wrong bearer token" : "missing Authorization: Bearer TOKEN");
            return;
        }
    }
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    long long declared = cl ? strtoll(cl, NULL, 10) : 0;
    if (declared > h->cfg.max_body) {
        /* Answering before the body arrives makes MHD close the connection,
         * and a client still sending sees a reset instead of the 413. So
         * answer early only when the client waits for "100 Continue" or
         * the body is far too big to be worth reading; otherwise read and
         * discard it, then answer. */
        const char *expect =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
        if ((expect && !strcasecmp(expect, "100-continue")) || declared / 8 > h->cfg.max_body) {
            rq->early = MHD_HTTP_CONTENT_TOO_LARGE;
            snprintf(rq->early_why, sizeof rq->early_why,
                     "body of %s bytes exceeds max_body (%" PRId64 ")", cl, h->cfg.max_body);
        } else {
            rq->too_big = true;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* header_timeout                                                          */
/*
 * libmicrohttpd's connection timeout counts idle time only, so a client
 * that sends one byte a second keeps a connection (and its thread) for as
 * long as it likes; max_connections of them lock everyone else out. Each
 * connection is tracked from open to close, and a reaper thread shuts down
 * the socket of one whose header has not arrived within header_timeout;
 * libmicrohttpd then sees the connection end and closes it. The socket is
 * shut down under conns_lock, and libmicrohttpd reports a connection
 * closed (which unlinks it under that lock) before it closes the socket,
 * so the descriptor is never one reused by another connection.
 */

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct app_http *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct http_conn *hc = calloc(1, sizeof *hc); /* freed below when the connection closes */
        if (!hc || !ci) {
            free(hc);
            return; /* untracked: request_timeout still applies */
        }
        hc->fd = ci->connect_fd;
        clock_gettime(CLOCK_MONOTONIC, &hc->since);
        pthread_mutex_lock(&h->conns_lock);
        hc->next = h->conns;
        if (h->conns)
            h->conns->prev = hc;
        h->conns = hc;
        pthread_mutex_unlock(&h->conns_lock);
        *socket_context = hc;
        return;
    }
    struct http_conn *hc = *socket_context;
    if (!hc)
        return;
    pthread_mutex_lock(&h->conns_lock);
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        h->conns = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    pthread_mutex_unlock(&h->conns_lock);
    free(hc);
    *socket_context = NULL;
}

/* The header of conn's request is complete (in_body), or its request is
 * done and the header of the next one may come. */
static void http_conn_mark(struct app_http *h, struct MHD_Connection *conn, bool in_body)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct http_conn *hc = ci ? ci->socket_context : NULL;
    if (!hc)
        return;
    pthread_mutex_lock(&h->conns_lock);
    hc->in_body = in_body;
    if (!in_body)
        clock_gettime(CLOCK_MONOTONIC, &hc->since);
    pthread_mutex_unlock(&h->conns_lock);
}

/* True when a line may be logged now, with the count left out before it. */
static bool ratelimit_pass(struct http_ratelimit *rl, unsigned long *left_out)
{
    if (rl->last.tv_sec && since(&rl->last) < HTTP_LOG_INTERVAL_S) {
        rl->left_out++;
        return false;
    }
    *left_out = rl->left_out;
    rl->left_out = 0;
    clock_gettime(CLOCK_MONOTONIC, &rl->last);
    return true;
}

static void *reaper_main(void *arg)
{
    struct app_http *h = arg;
    double limit = (double)h->cfg.header_timeout / 1000.0;
    pthread_mutex_lock(&h->conns_lock);
    while (!h->reaper_stop) {
        unsigned cut = 0;
        for (struct http_conn *hc = h->conns; hc; hc = hc->next) {
            if (hc->in_body || hc->cut || since(&hc->since) < limit)
                continue;
            shutdown(hc->fd, SHUT_RDWR);
            hc->cut = true;
            cut++;
        }
        unsigned long left_out;
        if (cut && ratelimit_pass(&h->cut_log, &left_out))
            app_warn(h->app,
                     "http slow clients cut off count=%u header_timeout=%" PRId64 "ms left_out=%lu",
                     cut, h->cfg.header_timeout, left_out);
        struct timespec until;
        ferry_mono_deadline(&until, 100);
        pthread_cond_timedwait(&h->reaper_wake, &h->conns_lock, &until);
    }
    pthread_mutex_unlock(&h->conns_lock);
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct app_http *h = cls;
    struct req *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq); /* freed in on_completed() */
        if (!rq)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &rq->start);
        rq->handler = handler_of(url);
        *con_cls = rq;
        http_conn_mark(h, conn, true);
        const union MHD_ConnectionInfo *di =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
        if (h->health_daemon && di && di->daemon == h->health_daemon &&
            rq->handler != FERRY_HTTP_HEALTH && rq->handler != FERRY_HTTP_METRICS)
            return reply_closing(h, conn, MHD_HTTP_NOT_FOUND,
                                 json_error("health_listen serves only /health and /metrics"));
        const char *amb = ambiguous_framing(conn);
        if (amb) {
            return reply_closing(h, conn, MHD_HTTP_BAD_REQUEST, json_error(amb));
        }
        first_call(h, conn, method, rq);
        /* answering now skips the body (and "Expect: 100-continue" uploads) */
        if (rq->early)
            return reply_error(h, conn, (unsigned)rq->early,
                               rq->early_why[0]                  ? rq->early_why
                               : rq->early == MHD_HTTP_NOT_FOUND ? "not found"
                                                                 : "method not allowed");
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (rq->too_big || rq->len + n > (size_t)h->cfg.max_body) {
            rq->too_big = true; /* keep reading and discarding: chunked, no Content-Length */
            return MHD_YES;
        }
        if (rq->len + n + 1 > rq->cap) {
            size_t cap = (rq->len + n + 1) * 2;
            char *nb = realloc(rq->body, cap); /* freed in on_completed() */
            if (!nb)
                return MHD_NO;
            rq->body = nb;
            rq->cap = cap;
        }
        memcpy(rq->body + rq->len, upload, n);
        rq->len += n;
        rq->body[rq->len] = '\0';
        return MHD_YES;
    }
    switch (rq->handler) {
    case FERRY_HTTP_HEALTH: return serve_health(h, conn);
    case FERRY_HTTP_METRICS: return serve_metrics(h, conn);
    default: break;
    }
    if (rq->too_big) {
        char why[128];
        snprintf(why, sizeof why, "body exceeds max_body (%" PRId64 " bytes)", h->cfg.max_body);
        return reply_error(h, conn, MHD_HTTP_CONTENT_TOO_LARGE, why);
    }
    return ingest(h, conn, rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    struct app_http *h = cls;
    http_conn_mark(h, conn, false); /* a kept-alive connection waits for its next header */
    struct req *rq = *con_cls;
    if (!rq)
        return;
    ferry_metrics_observe_http(h->metrics, rq->handler, since(&rq->start));
    if (rq->counted)
        atomic_fetch_sub(&h->active, 1);
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

/* ---------------------------------------------------------------------- */
/* Start and stop                                                         */

/* libmicrohttpd's own messages (a refused oversized header, the connection
 * limit reached, a failed TLS handshake) in our log format, on one line.
 * Clients cause most of them, so once serving at most one line per
 * interval, saying how many were left out. */
FERRY_PRINTF(2, 0)
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct app_http *h = cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == 0x7f)
            *p = *p == '"' ? '\'' : ' ';
    size_t n = strlen(msg);
    while (n && msg[n - 1] == ' ')
        msg[--n] = '\0';
    unsigned long left_out = 0;
    if (atomic_load(&h->serving)) {
        pthread_mutex_lock(&h->log_lock);
        bool pass = ratelimit_pass(&h->mhd_log, &left_out);
        pthread_mutex_unlock(&h->log_lock);
        if (!pass)
            return;
    }
    app_warn(h->app, "http server notice detail=\"%s\" left_out=%lu", msg, left_out);
}

int app_http_start(struct app *a, struct ferry_metrics *m, const struct http_defaults *ingest_d,
                   struct app_http **out)
{
    *out = NULL;
    struct app_http *h = calloc(1, sizeof *h); /* freed in app_http_stop() */
    if (!h)
        return EX_OSERR;
    char err[1024];
    if (ferry_config_bind(a->config, "http", app_http_options, &h->cfg, NULL, NULL, err,
                          sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", a->spec->prog, err);
        free(h);
        return EX_CONFIG;
    }
    if (!h->cfg.listen || !*h->cfg.listen) {
        ferry_options_free(app_http_options, &h->cfg);
        free(h);
        return -1;
    }
    if (h->cfg.token && !*h->cfg.token) {
        fprintf(stderr, "%s: error: [http] token is empty\n", a->spec->prog);
        ferry_options_free(app_http_options, &h->cfg);
        free(h);
        return EX_CONFIG;
    }
    if (h->cfg.tls_cert || h->cfg.tls_key) {
        const char *why = NULL;
        if (!h->cfg.tls_cert || !h->cfg.tls_key)
            why = "tls_cert and tls_key go together";
        else if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
            why = "this libmicrohttpd has no TLS support";
        else if (!(h->tls_cert_pem = read_pem("tls_cert", h->cfg.tls_cert, err, sizeof err)) ||
                 !(h->tls_key_pem = read_pem("tls_key", h->cfg.tls_key, err, sizeof err)))
            why = err;
        if (why) {
            fprintf(stderr, "%s: error: [http] %s\n", a->spec->prog, why);
            free(h->tls_cert_pem);
            free(h->tls_key_pem);
            ferry_options_free(app_http_options, &h->cfg);
            free(h);
            return EX_CONFIG;
        }
    }
    char host[256], port[16];
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV},
                    *ai = NULL;
    int gai = 0;
    if (app_http_split_listen(h->cfg.listen, host, sizeof host, port, sizeof port, err,
                              sizeof err) ||
        (gai = getaddrinfo(host, port, &hints, &ai)) != 0) {
        if (gai)
            snprintf(err, sizeof err, "'%s': %s", h->cfg.listen, gai_strerror(gai));
        fprintf(stderr, "%s: error: [http] listen: %s\n", a->spec->prog, err);
        ferry_options_free(app_http_options, &h->cfg);
        free(h);
        return EX_CONFIG;
    }
    h->app = a;
    h->metrics = m;
    h->ingest = ingest_d != NULL;
    if (ingest_d) {
        h->defaults = *ingest_d;
        h->defaults.max_batch = h->cfg.max_batch;
        h->max_queue = ingest_d->max_queue ? ingest_d->max_queue : 10000;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&h->lock, NULL);
    pthread_mutex_init(&h->log_lock, NULL);
    pthread_mutex_init(&h->conns_lock, NULL);
    pthread_cond_init(&h->reaper_wake, &ca);
    pthread_cond_init(&h->work, &ca);
    pthread_cond_init(&h->settled, &ca);
    pthread_condattr_destroy(&ca);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* HTTPS when tls_cert and tls_key are set: libmicrohttpd with GnuTLS
     * takes both as PEM text. */
    struct MHD_OptionItem tls_opts[3] = {{MHD_OPTION_END, 0, NULL}};
    if (h->tls_cert_pem) {
        flags |= MHD_USE_TLS;
        tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert_pem};
        tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key_pem};
        tls_opts[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    }
    errno = 0;
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
        h, /* first: it also covers start-up */
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)h->cfg.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)((h->cfg.request_timeout + 999) / 1000), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(h->cfg.max_header + HTTP_POOL_SLACK), MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    int e = errno;
    freeaddrinfo(ai);
    if (!h->daemon) {
        /* No errno: libmicrohttpd refused an option, above all a TLS
         * certificate or key GnuTLS cannot use (its reason is logged above),
         * which is the configuration's fault, not the system's. */
        fprintf(stderr, "%s: error: cannot listen on %s: %s\n", a->spec->prog, h->cfg.listen,
                e                 ? strerror(e)
                : h->tls_cert_pem ? "libmicrohttpd refused [http] tls_cert or tls_key (see above)"
                                  : "libmicrohttpd refused the options");
        app_http_stop(h);
        return e ? EX_UNAVAILABLE : EX_CONFIG;
    }
    if (h->cfg.health_listen && *h->cfg.health_listen) {
        /* /health and /metrics on their own listener and connections */
        char hhost[256], hport[16];
        struct addrinfo *hai = NULL;
        int hg = 0;
        if (app_http_split_listen(h->cfg.health_listen, hhost, sizeof hhost, hport, sizeof hport,
                                  err, sizeof err) ||
            (hg = getaddrinfo(hhost, hport, &hints, &hai)) != 0) {
            if (hg)
                snprintf(err, sizeof err, "'%s': %s", h->cfg.health_listen, gai_strerror(hg));
            fprintf(stderr, "%s: error: [http] health_listen: %s\n", a->spec->prog, err);
            app_http_stop(h);
            return EX_CONFIG;
        }
        unsigned hflags = (flags & ~(unsigned)(MHD_USE_TLS | MHD_USE_IPv6)) |
                          (hai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
        errno = 0;
        h->health_daemon = MHD_start_daemon(
            hflags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
            MHD_OPTION_SOCK_ADDR, hai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
            MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)h->cfg.health_connections, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)((h->cfg.request_timeout + 999) / 1000), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
            (size_t)(h->cfg.max_header + HTTP_POOL_SLACK), MHD_OPTION_END);
        e = errno;
        freeaddrinfo(hai);
        if (!h->health_daemon) {
            fprintf(stderr, "%s: error: cannot listen on %s (health_listen): %s\n", a->spec->prog,
                    h->cfg.health_listen, e ? strerror(e) : "refused");
            app_http_stop(h);
            return e ? EX_UNAVAILABLE : EX_CONFIG;
        }
        const union MHD_DaemonInfo *hdi =
            MHD_get_daemon_info(h->health_daemon, MHD_DAEMON_INFO_BIND_PORT);
        app_info(a, "http health listening address=%s:%u endpoints=/health,/metrics", hhost,
                 hdi ? hdi->port : 0);
    }
    if ((e = pthread_create(&h->reaper, NULL, reaper_main, h)) != 0) {
        fprintf(stderr, "%s: error: [http] cannot start the header_timeout thread: %s\n",
                a->spec->prog, strerror(e));
        app_http_stop(h);
        return EX_OSERR;
    }
    h->reaper_started = true;
    atomic_store(&h->serving, true);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    app_info(a, "http listening address=%s:%u scheme=%s endpoints=%s%s", host, di ? di->port : 0,
             h->tls_cert_pem ? "https" : "http", h->ingest ? "/produce,/batch-produce," : "",
             "/health,/metrics");
    *out = h;
    return -1;
}

void app_http_stop(struct app_http *h)
{
    if (!h)
        return;
    if (h->reaper_started) {
        pthread_mutex_lock(&h->conns_lock);
        h->reaper_stop = true;
        pthread_cond_signal(&h->reaper_wake);
        pthread_mutex_unlock(&h->conns_lock);
        pthread_join(h->reaper, NULL);
    }
    if (h->daemon) {
        pthread_mutex_lock(&h->lock);
        h->closing = true;
        pthread_cond_broadcast(&h->settled);
        pthread_mutex_unlock(&h->lock);
        MHD_stop_daemon(h->daemon); /* joins every request thread */
    }
    if (h->health_daemon)
        MHD_stop_daemon(h->health_daemon);
    for (struct http_job *j = h->qhead, *n; j; j = n) {
        n = j->next;
        app_http_job_free(j);
    }
    /* jobs still with the publisher were abandoned by their requests */
    for (struct http_job *j = h->flying, *n; j; j = n) {
        n = j->next;
        app_http_job_free(j);
    }
    if (h->app) {
        pthread_cond_destroy(&h->work);
        pthread_cond_destroy(&h->settled);
        pthread_mutex_destroy(&h->lock);
        pthread_mutex_destroy(&h->log_lock);
        pthread_cond_destroy(&h->reaper_wake);
        pthread_mutex_destroy(&h->conns_lock);
    }
    free(h->tls_cert_pem);
    if (h->tls_key_pem) { /* the private key does not outlive the server in memory */
        memset(h->tls_key_pem, 0, strlen(h->tls_key_pem));
        free(h->tls_key_pem);
    }
    ferry_options_free(app_http_options, &h->cfg);
    free(h);
}

/* ---------------------------------------------------------------------- */
/* The main thread's side                                                 */

/* Whether c has reported itself connected (set: record that it has). The
 * main thread's only; a few connections per program. */
static bool was_connected(const struct ferry_conn *c, bool set)
{
    static const struct ferry_conn *seen[8];
    for (size_t i = 0; i < FERRY_ARRAY_LEN(seen); i++) {
        if (seen[i] == c)
            return true;
        if (!seen[i] && set) {
            seen[i] = c;
            return true;
        }
    }
    return false;
}

void app_http_refresh(struct ferry_metrics *m, struct ferry_conn *c, struct ferry_pub *p,
                      bool ready, const char *why, int64_t *last, bool force)
{
    if (!m)
        return;
    int64_t now = ferry_mono_ms();
    if (!force && now - *last < 200)
        return;
    *last = now;
    struct ferry_health fh;
    struct ferry_pub_stats ps = {0};
    if (p)
        ferry_pub_stats(p, &ps);
    if (!c) {
        ferry_metrics_set_state(m, NULL, why ? why : "not connected", 0, 0, false);
        return;
    }
    /* A publisher with nothing in flight does not drive the transport, and
     * some plugins learn of broker state only while driven (librdkafka
     * serves its callbacks in poll): a zero-timeout flush lets them. */
    if (p && ps.pending == 0)
        ferry_flush(c, 0);
    if (ferry_health(c, &fh) != FERRY_OK) {
        memset(&fh, 0, sizeof fh);
        fh.state = FERRY_HEALTH_CONNECTED; /* no health report: judge by the publisher */
    }
    char reason[300] = "";
    bool usable = fh.state == FERRY_HEALTH_CONNECTED;
    if (p && ps.waiting) {
        /* the publisher knows best: the transport refuses what it sends */
        usable = false;
        if (fh.state == FERRY_HEALTH_CONNECTED)
            fh.state = FERRY_HEALTH_CONNECTING;
        snprintf(reason, sizeof reason, "%" PRIu64 " messages waiting to be retried: %s",
                 ps.waiting, ferry_pub_error(p));
    } else if (p && fh.state == FERRY_HEALTH_CONNECTING && fh.published == 0 && ps.sent == 0 &&
               !was_connected(c, false)) {
        /* Some transports connect on the first publish (Kafka's producer
         * is made then): before it, being unconnected is no reason to
         * refuse the first request, which will find out. A connection
         * that was up and is lost is another matter (an idle AMQP
         * producer whose node stopped). */
        usable = true;
    }
    if (fh.state == FERRY_HEALTH_CONNECTED)
        was_connected(c, true);
    uint64_t inflight = p ? ps.pending : fh.inflight;
    struct ferry_stats fs;
    if (ferry_stats(c, &fs) == FERRY_OK)
        ferry_metrics_set_backlog(m, NULL, fs.dest_messages, fs.consumer_lag, fs.lags, fs.n_lags,
                                  fs.dropped);
    ferry_metrics_set_state(m, &fh, reason[0] ? reason : why, ps.reconnects, inflight,
                            ready && usable);
}

void app_http_on_done(void *ctx, uint64_t tag, int status, const char *reason)
{
    struct app_http *h = ctx;
    struct http_msg *m = (struct http_msg *)(uintptr_t)tag;
    struct http_job *j = m->job;
    if (status == FERRY_OK) {
        ferry_metrics_count(m->series, FERRY_CTR_PRODUCED, 1);
        ferry_metrics_observe(m->series, mono_s() - m->sent_s);
    } else {
        ferry_metrics_count(m->series, FERRY_CTR_PROC_ERRORS, 1);
        app_warn(h->app, "message failed id=%s dest=%s error=\"%s\"", m->id, m->dest,
                 reason ? reason : ferry_strerror(status));
    }
    pthread_mutex_lock(&h->lock);
    if (status != FERRY_OK && !j->failed++) {
        j->fail_status = status;
        snprintf(j->error, sizeof j->error, "%s", reason ? reason : ferry_strerror(status));
    }
    bool last = --j->remaining == 0;
    bool free_it = last && j->abandoned;
    if (last) { /* off the in-flight list */
        if (j->prev)
            j->prev->next = j->next;
        else
            h->flying = j->next;
        if (j->next)
            j->next->prev = j->prev;
        j->next = j->prev = NULL;
        pthread_cond_broadcast(&h->settled);
    }
    pthread_mutex_unlock(&h->lock);
    if (free_it)
        app_http_job_free(j);
}

/* Take the next queued job, waiting up to wait_ms. */
static struct http_job *take(struct app_http *h, int64_t wait_ms)
{
    pthread_mutex_lock(&h->lock);
    if (!h->qhead && wait_ms > 0) {
        struct timespec until;
        ferry_mono_deadline(&until, wait_ms);
        pthread_cond_timedwait(&h->work, &h->lock, &until);
    }
    struct http_job *j = h->qhead;
    if (j) {
        h->qhead = j->next;
        if (!h->qhead)
            h->qtail = NULL;
        h->queued_msgs -= j->n;
        j->prev = NULL;
        j->next = h->flying;
        if (h->flying)
            h->flying->prev = j;
        h->flying = j;
    }
    pthread_mutex_unlock(&h->lock);
    return j;
}

/* Nothing queued and no request in progress: refuse new ones from now on. */
static bool try_close(struct app_http *h, bool force)
{
    pthread_mutex_lock(&h->lock);
    bool idle = !h->qhead && !h->flying && atomic_load(&h->active) == 0;
    if (idle || force) {
        h->closing = true;
        pthread_cond_broadcast(&h->settled);
    }
    pthread_mutex_unlock(&h->lock);
    return idle || force;
}

void app_http_serve(struct app_http *h, struct app *a, struct ferry_conn *c, struct ferry_pub *p,
                    size_t max_inflight)
{
    int64_t drain_ms = h->cfg.confirm_timeout + 1000;
    struct http_job *cur = NULL;
    size_t next = 0;
    int64_t last_refresh = 0, drain_until = 0;
    uint64_t stamp_seq = 0; /* seqs handed out */
    char *stamped = NULL;   /* the body being sent with its stamp; freed below */
    size_t stamped_cap = 0;
    bool stopping = false;
    app_http_refresh(h->metrics, c, p, true, NULL, &last_refresh, true);
    for (;;) {
        if (*a->stop && !stopping) {
            stopping = true;
            drain_until = ferry_mono_ms() + drain_ms;
            /* no new connections; open ones finish their requests */
            MHD_socket s = MHD_quiesce_daemon(h->daemon);
            if (s != MHD_INVALID_SOCKET)
                close(s);
            app_info(a, "draining http requests=%d", atomic_load(&h->active));
        }
        if (stopping) {
            bool late = ferry_mono_ms() >= drain_until;
            if ((!cur || late) && try_close(h, late))
                break;
        }
        app_http_refresh(h->metrics, c, p, true, NULL, &last_refresh, false);
        struct ferry_pub_stats ps;
        ferry_pub_stats(p, &ps);
        if (!cur)
            cur = take(h, ps.pending ? 0 : 50);
        while (cur && ps.pending < max_inflight) {
            /* a report from inside publish() may settle the job's last
             * message and, if its request gave up, free the job: read
             * what is needed first */
            size_t count = cur->n;
            struct http_msg *m = &cur->msgs[next];
            /* the ledger stamp: the HTTP server is one producer, its seq
             * counts messages in the order they are published */
            char seqtext[24];
            int sl = snprintf(seqtext, sizeof seqtext, "%" PRIu64, stamp_seq + 1);
            const char *pid = h->defaults.producer_id;
            struct ferry_header hdr[4];
            size_t nh = 0;
            hdr[nh++] = (struct ferry_header){
                .name = FERRY_HDR_ID, .value = m->id, .value_len = strlen(m->id)};
            if (m->ptime)
                hdr[nh++] = (struct ferry_header){.name = FERRY_HDR_PROCESSING_TIME,
                                                  .value = m->ptime,
                                                  .value_len = strlen(m->ptime)};
            if (pid) {
                hdr[nh++] = (struct ferry_header){
                    .name = FERRY_HDR_PRODUCER, .value = pid, .value_len = strlen(pid)};
                hdr[nh++] = (struct ferry_header){
                    .name = FERRY_HDR_SEQ, .value = seqtext, .value_len = (size_t)sl};
            }
            struct ferry_msg fm = {.dest = m->dest,
                                   .key = m->key,
                                   .key_len = m->key ? strlen(m->key) : 0,
                                   .body = m->body,
                                   .body_len = m->body_len,
                                   .tag = (uint64_t)(uintptr_t)m,
                                   .headers = hdr,
                                   .n_headers = nh};
            /* a log envelope carries the stamp in its body as well, as the
             * producer's own do, so the output file accounts for it; an
             * event (payload) is left as the client wrote it */
            size_t need = m->body_len + strlen(pid ? pid : "") + 48;
            if (pid && m->envelope && m->body_len > 1 && m->body[m->body_len - 1] == '}') {
                if (need > stamped_cap) {
                    char *nb = realloc(stamped, need); /* freed below */
                    if (nb) {
                        stamped = nb;
                        stamped_cap = need;
                    }
                }
                if (need <= stamped_cap) {
                    memcpy(stamped, m->body, m->body_len - 1);
                    int xl = snprintf(stamped + m->body_len - 1, stamped_cap - m->body_len + 1,
                                      ",\"producer\":\"%s\",\"seq\":%s}", pid, seqtext);
                    fm.body = stamped;
                    fm.body_len = m->body_len - 1 + (size_t)xl;
                }
            }
            m->sent_s = mono_s();
            int rc = ferry_pub_send(p, &fm, 0);
            if (rc == FERRY_E_TIMEOUT)
                break; /* window full: confirms first */
            if (rc == FERRY_OK)
                stamp_seq++;
            if (rc != FERRY_OK)
                app_http_on_done(h, fm.tag, rc, ferry_pub_error(p));
            ps.pending++;
            if (++next == count) {
                next = 0;
                cur = take(h, 0);
            }
        }
        if (ps.pending)
            ferry_pub_flush(p, 20);
    }
    free(stamped);
}

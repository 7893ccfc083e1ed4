/* gRPC sink for ferry: each batch becomes one unary call Sink.Write of
 * proto/ferry/v1/sink.proto through the gRPC C core, encoded with
 * protobuf-c; a batch counts as landed only once the service answered. */
#include "config.h"

#include <ferry/sink.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "ferry/v1/sink.pb-c.h"

/* Filled by the core from fgrpc_options before open(). */
struct fgrpc_cfg {
    char *target;
    char *method;
    int64_t deadline_ms;
    int64_t connect_timeout_ms;
    bool plaintext;
    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    char *tls_server_name;
    char *token;
    int64_t max_message_size;
};

#define FGRPC_HEADER_PREFIX "header."
#define FGRPC_MAX_METADATA 64

static const struct ferry_option fgrpc_options[] = {
    {.name = "target",
     .type = FERRY_OPT_STR,
     .def = "127.0.0.1:50051",
     .offset = offsetof(struct fgrpc_cfg, target),
     .help = "The service's address: host:port, dns:///host:port or unix:/path/to.sock."},
    {.name = "method",
     .type = FERRY_OPT_STR,
     .def = "/ferry.v1.Sink/Write",
     .offset = offsetof(struct fgrpc_cfg, method),
     .help = "Full name of the unary method that takes a ferry.v1.WriteRequest."},
    {.name = "deadline",
     .type = FERRY_OPT_DURATION,
     .def = "10s",
     .min = 1,
     .max = 3600000,
     .offset = offsetof(struct fgrpc_cfg, deadline_ms),
     .help =
         "Deadline of each call (one batch), in milliseconds; past it the batch is sent again."},
    {.name = "connect_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "10s",
     .min = 1,
     .max = 3600000,
     .offset = offsetof(struct fgrpc_cfg, connect_timeout_ms),
     .help = "How long open waits for the service to be reachable, in milliseconds; "
             "past it the program retries and finally exits 69."},
    {.name = "plaintext",
     .type = FERRY_OPT_BOOL,
     .def = "false",
     .offset = offsetof(struct fgrpc_cfg, plaintext),
     .help = "Talk to the service without TLS; TLS is used unless this is set."},
    {.name = "tls_ca",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fgrpc_cfg, tls_ca),
     .help = "PEM file of the CAs that sign the service's certificate (default: the system's)."},
    {.name = "tls_cert",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fgrpc_cfg, tls_cert),
     .help = "PEM client certificate for mutual TLS (with tls_key)."},
    {.name = "tls_key",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .offset = offsetof(struct fgrpc_cfg, tls_key),
     .help = "PEM private key of tls_cert."},
    {.name = "tls_server_name",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fgrpc_cfg, tls_server_name),
     .help = "Name the service's certificate must carry, when not the target's host."},
    {.name = "token",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .offset = offsetof(struct fgrpc_cfg, token),
     .help = "Bearer token sent as the authorization metadata of every call."},
    {.name = FGRPC_HEADER_PREFIX,
     .type = FERRY_OPT_PREFIX,
     .help = "header.NAME = VALUE sends metadata NAME (lower case) with every call."},
    {.name = "max_message_size",
     .type = FERRY_OPT_SIZE,
     .def = "64MiB",
     .min = 1024,
     .max = INT64_C(2147483647),
     .offset = offsetof(struct fgrpc_cfg, max_message_size),
     .help = "Largest request or answer, in bytes; a larger batch fails before it is sent."},
    {0}};

struct fgrpc {
    const struct fgrpc_cfg *cfg;
    grpc_channel *ch;
    grpc_completion_queue *cq;
    grpc_metadata md[FGRPC_MAX_METADATA];
    size_t n_md;
    /* The staged batch: recs borrowed from the core, the request packed by
     * write() (malloc'ed, freed when the batch ends). */
    struct ferry_sink_record *recs;
    size_t n;
    uint8_t *req;
    size_t req_len;
    char **reasons; /* per-record reasons of the last commit, malloc'ed */
    size_t n_reasons;
    bool failing; /* the last commit failed: the next success is a reconnect */
    struct ferry_sink_health h;
};

static const char *fgrpc_lib_version(void)
{
    return grpc_version_string();
}

static const char *fgrpc_code_name(grpc_status_code c)
{
    static const char *const names[] = {"OK",
                                        "CANCELLED",
                                        "UNKNOWN",
                                        "INVALID_ARGUMENT",
                                        "DEADLINE_EXCEEDED",
                                        "NOT_FOUND",
                                        "ALREADY_EXISTS",
                                        "PERMISSION_DENIED",
                                        "RESOURCE_EXHAUSTED",
                                        "FAILED_PRECONDITION",
                                        "ABORTED",
                                        "OUT_OF_RANGE",
                                        "UNIMPLEMENTED",
                                        "INTERNAL",
                                        "UNAVAILABLE",
                                        "DATA_LOSS",
                                        "UNAUTHENTICATED"};
    return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "?";
}

/* What the core should do with a call that ended in code: FERRY_OK for an
 * answer, a retriable status, FERRY_E_CONFIG for refused credentials, or
 * FERRY_E_REJECTED for a permanent refusal of the whole batch. */
static int fgrpc_status(grpc_status_code c)
{
    switch (c) {
    case GRPC_STATUS_OK: return FERRY_OK;
    case GRPC_STATUS_UNAVAILABLE: return FERRY_E_NOCONN;
    case GRPC_STATUS_DEADLINE_EXCEEDED: return FERRY_E_TIMEOUT;
    case GRPC_STATUS_RESOURCE_EXHAUSTED: return FERRY_E_AGAIN;
    case GRPC_STATUS_UNAUTHENTICATED:
    case GRPC_STATUS_PERMISSION_DENIED: return FERRY_E_CONFIG;
    default: return FERRY_E_REJECTED;
    }
}

/* Whole file into a NUL-terminated string; the caller frees it. */
static char *fgrpc_slurp(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
        if (cap - len - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        snprintf(err, errlen, "%s: %s", path, buf ? "read error" : "out of memory");
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

static void fgrpc_free_reasons(struct fgrpc *g)
{
    for (size_t i = 0; i < g->n_reasons; i++)
        free(g->reasons[i]);
    free(g->reasons);
    g->reasons = NULL;
    g->n_reasons = 0;
}

static void fgrpc_end_batch(struct fgrpc *g)
{
    free(g->req);
    g->req = NULL;
    g->req_len = 0;
    g->recs = NULL;
    g->n = 0;
}

static void fgrpc_free(struct fgrpc *g)
{
    fgrpc_end_batch(g);
    fgrpc_free_reasons(g);
    for (size_t i = 0; i < g->n_md; i++) {
        grpc_slice_unref(g->md[i].key);
        grpc_slice_unref(g->md[i].value);
    }
    if (g->ch)
        grpc_channel_destroy(g->ch);
    if (g->cq) {
        grpc_completion_queue_shutdown(g->cq);
        grpc_completion_queue_destroy(g->cq);
    }
    free(g);
    grpc_shutdown_blocking(); /* all of gRPC's threads gone: a fork after close is safe */
}

static bool fgrpc_add_md(struct fgrpc *g, const char *key, const char *value)
{
    if (g->n_md == FGRPC_MAX_METADATA)
        return false;
    g->md[g->n_md].key = grpc_slice_from_copied_string(key);
    g->md[g->n_md].value = grpc_slice_from_copied_string(value);
    g->n_md++;
    return true;
}

static int fgrpc_open(struct ferry_sink_conn *s)
{
    const struct fgrpc_cfg *cfg = s->cfg;
    if (!cfg->target || !*cfg->target)
        return ferry_sink_fail(s, FERRY_E_CONFIG, "[grpc] target is empty");
    if (!cfg->method || cfg->method[0] != '/')
        return ferry_sink_fail(s, FERRY_E_CONFIG,
                               "[grpc] method must be a full name like /ferry.v1.Sink/Write");
    if (!cfg->tls_cert != !cfg->tls_key)
        return ferry_sink_fail(s, FERRY_E_CONFIG, "[grpc] tls_cert and tls_key go together");
    if (cfg->plaintext && (cfg->tls_ca || cfg->tls_cert || cfg->tls_server_name))
        return ferry_sink_fail(s, FERRY_E_CONFIG,
                               "[grpc] plaintext = true contradicts the tls_* options");

    grpc_init();
    struct fgrpc *g = calloc(1, sizeof *g); /* freed in fgrpc_close() */
    if (!g) {
        grpc_shutdown();
        return ferry_sink_fail(s, FERRY_E_FATAL, "out of memory");
    }
    g->cfg = cfg;
    g->h.size = sizeof g->h;

    if (cfg->token && *cfg->token) {
        char auth[4096];
        if ((size_t)snprintf(auth, sizeof auth, "Bearer %s", cfg->token) >= sizeof auth) {
            fgrpc_free(g);
            return ferry_sink_fail(s, FERRY_E_CONFIG, "[grpc] token is too long");
        }
        fgrpc_add_md(g, "authorization", auth);
    }
    for (size_t i = 0; i < s->n_passthru; i++) {
        const char *name = s->passthru[i].key + strlen(FGRPC_HEADER_PREFIX);
        bool ok = *name != '\0';
        for (const char *p = name; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
                  *p == '.'))
                ok = false;
        if (!ok || !fgrpc_add_md(g, name, s->passthru[i].value)) {
            fgrpc_free(g);
            return ferry_sink_fail(s, FERRY_E_CONFIG,
                                   "[grpc] %s: metadata names are lower case letters, digits, "
                                   "'-', '_' and '.' (at most %d headers)",
                                   s->passthru[i].key, FGRPC_MAX_METADATA);
        }
    }

    grpc_channel_credentials *creds;
    char *ca = NULL, *cert = NULL, *key = NULL;
    if (cfg->plaintext) {
        creds = grpc_insecure_credentials_create();
    } else {
        char why[512];
        if ((cfg->tls_ca && !(ca = fgrpc_slurp(cfg->tls_ca, why, sizeof why))) ||
            (cfg->tls_cert && !(cert = fgrpc_slurp(cfg->tls_cert, why, sizeof why))) ||
            (cfg->tls_key && !(key = fgrpc_slurp(cfg->tls_key, why, sizeof why)))) {
            free(ca);
            free(cert);
            fgrpc_free(g);
            return ferry_sink_fail(s, FERRY_E_CONFIG, "[grpc] TLS file %s", why);
        }
        grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
        creds = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
    }
    grpc_arg args[3];
    size_t n_args = 0;
    args[n_args++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                                .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                                .value.integer = (int)cfg->max_message_size};
    args[n_args++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                                .key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
                                .value.integer = (int)cfg->max_message_size};
    if (cfg->tls_server_name)
        args[n_args++] = (grpc_arg){.type = GRPC_ARG_STRING,
                                    .key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                                    .value.string = cfg->tls_server_name};
    grpc_channel_args cargs = {.num_args = n_args, .args = args};
    g->ch = grpc_channel_create(cfg->target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    free(ca);
    free(cert);
    if (key) {
        memset(key, 0, strlen(key));
        free(key);
    }
    g->cq = grpc_completion_queue_create_for_pluck(NULL);
    if (!g->ch || !g->cq) {
        fgrpc_free(g);
        return ferry_sink_fail(s, FERRY_E_CONFIG, "[grpc] cannot create a channel to %s",
                               cfg->target);
    }
    /* Connect now, so a service that cannot be reached (or a TLS handshake
     * that fails) is reported by open and health is true from the start. */
    gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                      gpr_time_from_millis(cfg->connect_timeout_ms, GPR_TIMESPAN));
    grpc_connectivity_state cs = grpc_channel_check_connectivity_state(g->ch, 1);
    while (cs != GRPC_CHANNEL_READY && cs != GRPC_CHANNEL_SHUTDOWN &&
           gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), until) < 0) {
        grpc_channel_watch_connectivity_state(g->ch, cs, until, g->cq, (void *)g);
        grpc_completion_queue_pluck(g->cq, (void *)g, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        cs = grpc_channel_check_connectivity_state(g->ch, 1);
    }
    if (cs != GRPC_CHANNEL_READY) {
        fgrpc_free(g);
        return ferry_sink_fail(s, FERRY_E_NOCONN,
                               "cannot reach the gRPC service at %s within %" PRId64 "ms%s",
                               cfg->target, cfg->connect_timeout_ms,
                               cfg->plaintext ? "" : " (TLS: check tls_ca and tls_server_name)");
    }
    s->priv = g;
    ferry_sink_log(s, FERRY_LOG_INFO, "channel target=%s method=%s tls=%s grpc=%s", cfg->target,
                   cfg->method, cfg->plaintext ? "off" : "on", grpc_version_string());
    return FERRY_OK;
}

static void fgrpc_close(struct ferry_sink_conn *s)
{
    struct fgrpc *g = s->priv;
    if (g)
        fgrpc_free(g);
    s->priv = NULL;
}

/* Unix ms of "2026-01-02T03:04:05.678Z" (RFC 3339 UTC as the envelope
 * writes it, offsets accepted); 0 when it does not parse. */
static int64_t fgrpc_rfc3339_ms(const char *t)
{
    struct tm tm = {0};
    int ms = 0, n = 0;
    if (sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6)
        return 0;
    const char *p = t + n;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        for (; digits < 3; digits++)
            ms *= 10;
    }
    int off = 0;
    if ((*p == '+' || *p == '-') && p[1] && p[2] && p[3] == ':') {
        int hh = 0, mm = 0;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return 0;
        off = (*p == '+' ? 1 : -1) * (hh * 60 + mm) * 60;
    } else if (*p != 'Z' && *p != 'z') {
        return 0;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t secs = timegm(&tm);
    if (secs == (time_t)-1)
        return 0;
    return ((int64_t)secs - off) * 1000 + ms;
}

static Ferry__V1__Level fgrpc_level(const char *l)
{
    static const struct {
        const char *name;
        Ferry__V1__Level v;
    } map[] = {{"DEBUG", FERRY__V1__LEVEL__DEBUG},     {"INFO", FERRY__V1__LEVEL__INFO},
               {"WARNING", FERRY__V1__LEVEL__WARNING}, {"WARN", FERRY__V1__LEVEL__WARNING},
               {"ERROR", FERRY__V1__LEVEL__ERROR},     {"CRITICAL", FERRY__V1__LEVEL__CRITICAL}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(l, map[i].name) == 0)
            return map[i].v;
    return FERRY__V1__LEVEL__LEVEL_UNSPECIFIED;
}

static const char *fgrpc_jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Per-event scratch that must live until the request is packed. */
struct fgrpc_scratch {
    Ferry__V1__Event ev;
    Ferry__V1__LogEnvelope log;
    Ferry__V1__Header *hdrs;
    Ferry__V1__Header **hdr_ptrs;
    char *key;
    char *info;
    cJSON *json;
};

/* The typed view of a log envelope, when the body is one. */
static void fgrpc_log_view(struct fgrpc_scratch *x, const struct ferry_msg *m)
{
    const char *b = m->body;
    size_t i = 0;
    while (i < m->body_len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
        i++;
    if (i == m->body_len || b[i] != '{')
        return;
    x->json = cJSON_ParseWithLength(b, m->body_len);
    if (!cJSON_IsObject(x->json))
        return;
    const char *svc = fgrpc_jstr(x->json, "service"), *lvl = fgrpc_jstr(x->json, "level"),
               *msg = fgrpc_jstr(x->json, "message"), *ts = fgrpc_jstr(x->json, "timestamp");
    if (!svc || !lvl || !msg || !ts)
        return;
    ferry__v1__log_envelope__init(&x->log);
    x->log.service = (char *)svc;
    x->log.level = fgrpc_level(lvl);
    x->log.message = (char *)msg;
    x->log.timestamp = (char *)ts;
    x->log.timestamp_unix_ms = fgrpc_rfc3339_ms(ts);
    const char *host = fgrpc_jstr(x->json, "host");
    if (host)
        x->log.host = (char *)host;
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(x->json, "information");
    if (info && (x->info = cJSON_PrintUnformatted(info)))
        x->log.information_json = x->info;
    x->ev.log = &x->log;
}

static void fgrpc_scratch_free(struct fgrpc_scratch *x, size_t n)
{
    for (size_t i = 0; x && i < n; i++) {
        free(x[i].hdrs);
        free(x[i].hdr_ptrs);
        free(x[i].key);
        free(x[i].info);
        cJSON_Delete(x[i].json);
    }
    free(x);
}

static int fgrpc_write(struct ferry_sink_conn *s, struct ferry_sink_record *recs, size_t n)
{
    struct fgrpc *g = s->priv;
    fgrpc_end_batch(g);
    fgrpc_free_reasons(g);
    for (size_t i = 0; i < n; i++)
        recs[i].status = FERRY_OK, recs[i].reason = NULL;

    struct fgrpc_scratch *x = calloc(n ? n : 1, sizeof *x);
    Ferry__V1__Event **evs = calloc(n ? n : 1, sizeof *evs);
    if (!x || !evs) {
        free(x);
        free(evs);
        return ferry_sink_fail(s, FERRY_E_AGAIN, "out of memory building a batch of %zu", n);
    }
    int st = FERRY_OK;
    for (size_t i = 0; i < n && st == FERRY_OK; i++) {
        const struct ferry_msg *m = recs[i].msg;
        Ferry__V1__Event *ev = &x[i].ev;
        ferry__v1__event__init(ev);
        evs[i] = ev;
        if (recs[i].id)
            ev->id = (char *)recs[i].id;
        if (m->dest)
            ev->destination = (char *)m->dest;
        if (m->key && m->key_len) {
            if (!(x[i].key = strndup(m->key, m->key_len))) {
                st = ferry_sink_fail(s, FERRY_E_AGAIN, "out of memory");
                break;
            }
            ev->routing_key = x[i].key;
        }
        if (m->n_headers) {
            x[i].hdrs = calloc(m->n_headers, sizeof *x[i].hdrs);
            x[i].hdr_ptrs = calloc(m->n_headers, sizeof *x[i].hdr_ptrs);
            if (!x[i].hdrs || !x[i].hdr_ptrs) {
                st = ferry_sink_fail(s, FERRY_E_AGAIN, "out of memory");
                break;
            }
            for (size_t h = 0; h < m->n_headers; h++) {
                ferry__v1__header__init(&x[i].hdrs[h]);
                x[i].hdrs[h].name = (char *)m->headers[h].name;
                x[i].hdrs[h].value.data = (uint8_t *)m->headers[h].value;
                x[i].hdrs[h].value.len = m->headers[h].value_len;
                x[i].hdr_ptrs[h] = &x[i].hdrs[h];
            }
            ev->n_headers = m->n_headers;
            ev->headers = x[i].hdr_ptrs;
        }
        ev->body.data = (uint8_t *)m->body;
        ev->body.len = m->body_len;
        ev->received_unix_ms = recs[i].received_ms;
        ev->redelivered = m->redelivered != 0;
        fgrpc_log_view(&x[i], m);
    }
    if (st == FERRY_OK) {
        Ferry__V1__WriteRequest req = FERRY__V1__WRITE_REQUEST__INIT;
        req.n_events = n;
        req.events = evs;
        if (s->client_id)
            req.client_id = (char *)s->client_id;
        g->req_len = ferry__v1__write_request__get_packed_size(&req);
        if ((int64_t)g->req_len > g->cfg->max_message_size) {
            st = ferry_sink_fail(s, FERRY_E_FATAL,
                                 "a batch of %zu events is %zu bytes, over max_message_size "
                                 "%" PRId64 ": lower the batch size",
                                 n, g->req_len, g->cfg->max_message_size);
        } else if (!(g->req =
                         malloc(g->req_len ? g->req_len : 1))) { /* freed in fgrpc_end_batch() */
            st = ferry_sink_fail(s, FERRY_E_AGAIN, "out of memory");
        } else {
            ferry__v1__write_request__pack(&req, g->req);
            g->recs = recs;
            g->n = n;
        }
    }
    fgrpc_scratch_free(x, n);
    free(evs);
    if (st != FERRY_OK)
        fgrpc_end_batch(g);
    return st;
}

static void fgrpc_abort(struct ferry_sink_conn *s)
{
    struct fgrpc *g = s->priv;
    fgrpc_end_batch(g);
    fgrpc_free_reasons(g);
}

static char *fgrpc_keep_reason(struct fgrpc *g, const char *text)
{
    char **nr = realloc(g->reasons, (g->n_reasons + 1) * sizeof *nr);
    if (!nr)
        return NULL;
    g->reasons = nr;
    char *r = strdup(text);
    if (r)
        g->reasons[g->n_reasons++] = r;
    return r;
}

/* Every record refused with one reason (a permanent status for the batch). */
static void fgrpc_reject_all(struct fgrpc *g, const char *why)
{
    const char *r = fgrpc_keep_reason(g, why);
    for (size_t i = 0; i < g->n; i++) {
        g->recs[i].status = FERRY_E_REJECTED;
        g->recs[i].reason = r ? r : "rejected by the service (out of memory for the reason)";
    }
    g->h.rejected += g->n;
}

/* One unary call; fills *code, *details (malloc'ed) and *resp (a
 * grpc_byte_buffer the caller destroys, NULL when the call failed). */
static int fgrpc_call(struct ferry_sink_conn *s, grpc_status_code *code, char **details,
                      grpc_byte_buffer **resp)
{
    struct fgrpc *g = s->priv;
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(g->cfg->deadline_ms, GPR_TIMESPAN));
    grpc_slice method = grpc_slice_from_static_string(g->cfg->method);
    grpc_call *call = grpc_channel_create_call(g->ch, NULL, GRPC_PROPAGATE_DEFAULTS, g->cq, method,
                                               NULL, deadline, NULL);
    if (!call)
        return ferry_sink_fail(s, FERRY_E_FATAL, "cannot create a call on %s", g->cfg->target);
    grpc_slice body = grpc_slice_from_static_buffer(g->req, g->req_len);
    grpc_byte_buffer *out = grpc_raw_byte_buffer_create(&body, 1);
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_slice status_details = grpc_empty_slice();
    *resp = NULL;

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = g->n_md;
    ops[0].data.send_initial_metadata.metadata = g->n_md ? g->md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = out;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = resp;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = code;
    ops[5].data.recv_status_on_client.status_details = &status_details;

    int st = FERRY_OK;
    grpc_call_error ce = grpc_call_start_batch(call, ops, 6, (void *)call, NULL);
    if (ce != GRPC_CALL_OK) {
        st = ferry_sink_fail(s, FERRY_E_FATAL, "grpc_call_start_batch: error %d", (int)ce);
    } else {
        /* The call's own deadline ends it; pluck waits a little longer so
         * the status is always the one the call reports. */
        grpc_event ev = grpc_completion_queue_pluck(
            g->cq, (void *)call, gpr_time_add(deadline, gpr_time_from_millis(5000, GPR_TIMESPAN)),
            NULL);
        if (ev.type != GRPC_OP_COMPLETE) {
            grpc_call_cancel(call, NULL);
            grpc_completion_queue_pluck(g->cq, (void *)call, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                        NULL);
            *code = GRPC_STATUS_DEADLINE_EXCEEDED;
        }
        *details = grpc_slice_to_c_string(status_details);
    }
    grpc_slice_unref(status_details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_byte_buffer_destroy(out);
    grpc_call_unref(call);
    if (st != FERRY_OK && *resp) {
        grpc_byte_buffer_destroy(*resp);
        *resp = NULL;
    }
    return st;
}

/* Apply the service's per-event results to the batch. */
static int fgrpc_results(struct ferry_sink_conn *s, grpc_byte_buffer *resp)
{
    struct fgrpc *g = s->priv;
    if (!resp)
        return ferry_sink_fail(s, FERRY_E_AGAIN, "the service answered OK without a message");
    grpc_byte_buffer_reader rd;
    if (!grpc_byte_buffer_reader_init(&rd, resp))
        return ferry_sink_fail(s, FERRY_E_AGAIN, "cannot read the service's answer");
    grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    Ferry__V1__WriteResponse *wr =
        ferry__v1__write_response__unpack(NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    if (!wr)
        return ferry_sink_fail(s, FERRY_E_AGAIN,
                               "the service's answer is not a ferry.v1.WriteResponse");
    for (size_t i = 0; i < wr->n_results; i++) {
        const Ferry__V1__Result *r = wr->results[i];
        if (r->index >= g->n || r->accepted || g->recs[r->index].status != FERRY_OK)
            continue;
        char buf[1024];
        snprintf(buf, sizeof buf, "rejected by the service: %s",
                 r->reason && *r->reason ? r->reason : "(no reason given)");
        const char *kept = fgrpc_keep_reason(g, buf);
        g->recs[r->index].status = FERRY_E_REJECTED;
        g->recs[r->index].reason = kept ? kept : "rejected by the service";
        g->h.rejected++;
    }
    ferry__v1__write_response__free_unpacked(wr, NULL);
    return FERRY_OK;
}

static int fgrpc_commit(struct ferry_sink_conn *s)
{
    struct fgrpc *g = s->priv;
    if (!g->recs)
        return FERRY_OK;
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    char *details = NULL;
    grpc_byte_buffer *resp = NULL;
    int st = fgrpc_call(s, &code, &details, &resp);
    if (st == FERRY_OK) {
        const char *d = details && *details ? details : "(no details)";
        st = fgrpc_status(code);
        if (st == FERRY_OK) {
            st = fgrpc_results(s, resp);
        } else if (st == FERRY_E_REJECTED) {
            char why[1024];
            snprintf(why, sizeof why, "grpc status %s: %s", fgrpc_code_name(code), d);
            fgrpc_reject_all(g, why);
            st = FERRY_OK;
        } else if (st == FERRY_E_CONFIG) {
            st = ferry_sink_fail(s, FERRY_E_CONFIG,
                                 "the service at %s refused our credentials: %s: %s "
                                 "(check [grpc] token, header.* and tls_cert)",
                                 g->cfg->target, fgrpc_code_name(code), d);
        } else {
            st = ferry_sink_fail(s, st, "call to %s%s failed: %s: %s (will retry)", g->cfg->target,
                                 g->cfg->method, fgrpc_code_name(code), d);
        }
    }
    gpr_free(details);
    if (resp)
        grpc_byte_buffer_destroy(resp);
    if (st == FERRY_OK) {
        size_t ok = 0;
        for (size_t i = 0; i < g->n; i++)
            ok += g->recs[i].status == FERRY_OK;
        g->h.committed += ok;
        if (g->failing)
            g->h.reconnects++;
        g->failing = false;
        g->h.reason[0] = '\0';
    } else {
        g->h.failures++;
        g->failing = true;
        snprintf(g->h.reason, sizeof g->h.reason, "%.255s", s->err);
    }
    /* The request stays for nobody: a retry is a new write() of the batch. */
    free(g->req);
    g->req = NULL;
    g->recs = NULL;
    g->n = 0;
    return st;
}

static int fgrpc_health(struct ferry_sink_conn *s, struct ferry_sink_health *out)
{
    struct fgrpc *g = s->priv;
    size_t sz = out->size < sizeof *out ? out->size : sizeof *out;
    struct ferry_sink_health h = g->h;
    h.size = out->size;
    switch (grpc_channel_check_connectivity_state(g->ch, 0)) {
    case GRPC_CHANNEL_READY:
    case GRPC_CHANNEL_IDLE:
        h.state = g->failing ? FERRY_HEALTH_CONNECTING : FERRY_HEALTH_CONNECTED;
        break;
    case GRPC_CHANNEL_SHUTDOWN: h.state = FERRY_HEALTH_FAILED; break;
    default:
        h.state = FERRY_HEALTH_CONNECTING;
        if (!h.reason[0])
            snprintf(h.reason, sizeof h.reason, "connecting to %s", g->cfg->target);
        break;
    }
    if (h.state == FERRY_HEALTH_CONNECTED)
        h.reason[0] = '\0';
    memcpy(out, &h, sz);
    return FERRY_OK;
}

static const struct ferry_sink_ops fgrpc_ops = {
    .size = sizeof(struct ferry_sink_ops),
    .open = fgrpc_open,
    .close = fgrpc_close,
    .write = fgrpc_write,
    .commit = fgrpc_commit,
    .abort = fgrpc_abort,
    .health = fgrpc_health,
};

#define ferry_sink_descriptor grpc_LTX_ferry_sink_descriptor
const struct ferry_sink ferry_sink_descriptor = {
    .abi = FERRY_SINK_ABI,
    .size = sizeof(struct ferry_sink),
    .name = "grpc",
    .summary = "forward each batch to a gRPC service (ferry.v1.Sink/Write, protobuf)",
    .lib_version = fgrpc_lib_version,
    .caps = FERRY_SINK_CAP_DURABLE | FERRY_SINK_CAP_PER_RECORD,
    .options = fgrpc_options,
    .cfg_size = sizeof(struct fgrpc_cfg),
    .ops = &fgrpc_ops,
};

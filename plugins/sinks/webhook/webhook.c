/* Webhook sink for ferry: each batch is one HTTP POST (NDJSON or a JSON
 * array) through libcurl on a reused handle (keep-alive); the batch counts
 * as landed only on a 2xx answer. */
#include "config.h"

#include <ferry/sink.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Filled by the core from fwh_options before open(). */
struct fwh_cfg {
    char *url;
    int format;
    char *token;
    char *username;
    char *password;
    bool tls_verify;
    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    int64_t connect_timeout_ms;
    int64_t timeout_ms;
    int64_t retry_after_max_ms;
};

enum fwh_format { FWH_NDJSON = 0, FWH_JSON_ARRAY };

#define FWH_HEADER_PREFIX "header."
#define FWH_ANSWER_KEEP 512 /* bytes of an error answer kept for the reason */

static const struct ferry_option fwh_options[] = {
    {.name = "url",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_REQUIRED,
     .offset = offsetof(struct fwh_cfg, url),
     .help = "Where each batch is POSTed, e.g. https://api.example.com/events."},
    {.name = "format",
     .type = FERRY_OPT_ENUM,
     .def = "ndjson",
     .choices = "ndjson|json_array",
     .offset = offsetof(struct fwh_cfg, format),
     .help = "ndjson (one event per line, application/x-ndjson) or json_array "
             "(one JSON array, application/json)."},
    {.name = "token",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .offset = offsetof(struct fwh_cfg, token),
     .help = "Bearer token sent as Authorization: Bearer TOKEN."},
    {.name = "username",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fwh_cfg, username),
     .help = "User for HTTP basic authentication (with password)."},
    {.name = "password",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .offset = offsetof(struct fwh_cfg, password),
     .help = "Password for HTTP basic authentication."},
    {.name = "tls_verify",
     .type = FERRY_OPT_BOOL,
     .def = "true",
     .offset = offsetof(struct fwh_cfg, tls_verify),
     .help = "Verify the server's certificate and name; turn off only for tests."},
    {.name = "tls_ca",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fwh_cfg, tls_ca),
     .help = "PEM file of the CAs that sign the server's certificate (default: the system's)."},
    {.name = "tls_cert",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fwh_cfg, tls_cert),
     .help = "PEM client certificate for mutual TLS (with tls_key)."},
    {.name = "tls_key",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fwh_cfg, tls_key),
     .help = "PEM private key file of tls_cert."},
    {.name = "connect_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "5s",
     .min = 1,
     .max = 600000,
     .offset = offsetof(struct fwh_cfg, connect_timeout_ms),
     .help = "Longest wait for a connection (TCP and TLS), in milliseconds."},
    {.name = "timeout",
     .type = FERRY_OPT_DURATION,
     .def = "30s",
     .min = 1,
     .max = 3600000,
     .offset = offsetof(struct fwh_cfg, timeout_ms),
     .help = "Longest a whole request may take, in milliseconds; past it the batch is sent again."},
    {.name = "retry_after_max",
     .type = FERRY_OPT_DURATION,
     .def = "5m",
     .min = 0,
     .max = 86400000,
     .offset = offsetof(struct fwh_cfg, retry_after_max_ms),
     .help = "Cap on a server's Retry-After, in milliseconds."},
    {.name = FWH_HEADER_PREFIX,
     .type = FERRY_OPT_PREFIX,
     .help = "header.NAME = VALUE adds the HTTP header NAME to every request."},
    {0}};

struct fwh {
    const struct fwh_cfg *cfg;
    CURL *curl;
    struct curl_slist *headers;
    char *auth; /* "Authorization: Bearer ...", malloc'ed */
    /* The staged batch: recs borrowed from the core, the body built by write(). */
    struct ferry_sink_record *recs;
    size_t n;
    char *body;
    size_t body_len, body_cap;
    char answer[FWH_ANSWER_KEEP + 1];
    size_t answer_len;
    char reason[FWH_ANSWER_KEEP + 128];
    bool failing;
    struct ferry_sink_health h;
    char curl_err[CURL_ERROR_SIZE];
};

static const char *fwh_lib_version(void)
{
    return curl_version();
}

/* Keep the first FWH_ANSWER_KEEP bytes of the answer for error reasons. */
static size_t fwh_on_data(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct fwh *w = ctx;
    size_t n = size * nmemb, room = FWH_ANSWER_KEEP - w->answer_len;
    size_t take = n < room ? n : room;
    memcpy(w->answer + w->answer_len, p, take);
    w->answer_len += take;
    w->answer[w->answer_len] = '\0';
    return n;
}

static void fwh_free(struct fwh *w)
{
    if (w->curl)
        curl_easy_cleanup(w->curl);
    curl_slist_free_all(w->headers);
    if (w->auth) {
        memset(w->auth, 0, strlen(w->auth));
        free(w->auth);
    }
    free(w->body);
    free(w);
}

static int fwh_open(struct ferry_sink_conn *s)
{
    const struct fwh_cfg *cfg = s->cfg;
    if (!cfg->url ||
        (strncmp(cfg->url, "http://", 7) != 0 && strncmp(cfg->url, "https://", 8) != 0))
        return ferry_sink_fail(s, FERRY_E_CONFIG,
                               "[webhook] url must start with http:// or https://");
    if (cfg->token && cfg->username)
        return ferry_sink_fail(s, FERRY_E_CONFIG,
                               "[webhook] set token or username/password, not both");
    if (!cfg->username != !cfg->password)
        return ferry_sink_fail(s, FERRY_E_CONFIG, "[webhook] username and password go together");
    if (!cfg->tls_cert != !cfg->tls_key)
        return ferry_sink_fail(s, FERRY_E_CONFIG, "[webhook] tls_cert and tls_key go together");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return ferry_sink_fail(s, FERRY_E_FATAL, "curl_global_init failed");

    struct fwh *w = calloc(1, sizeof *w); /* freed in fwh_close() */
    if (!w || !(w->curl = curl_easy_init())) {
        free(w);
        return ferry_sink_fail(s, FERRY_E_FATAL, "out of memory");
    }
    w->cfg = cfg;
    w->h.size = sizeof w->h;
    struct curl_slist *hl = NULL;
    hl = curl_slist_append(hl, cfg->format == FWH_NDJSON ? "Content-Type: application/x-ndjson"
                                                         : "Content-Type: application/json");
    /* No "Expect: 100-continue" round trip before each batch. */
    hl = curl_slist_append(hl, "Expect:");
    if (cfg->token) {
        size_t len = strlen(cfg->token) + sizeof "Authorization: Bearer ";
        if ((w->auth = malloc(len)))
            snprintf(w->auth, len, "Authorization: Bearer %s", cfg->token);
        hl = w->auth ? curl_slist_append(hl, w->auth) : NULL;
    }
    for (size_t i = 0; hl && i < s->n_passthru; i++) {
        const char *name = s->passthru[i].key + strlen(FWH_HEADER_PREFIX);
        char line[2048];
        if (!*name || strpbrk(name, ": \r\n") || strpbrk(s->passthru[i].value, "\r\n") ||
            (size_t)snprintf(line, sizeof line, "%s: %s", name, s->passthru[i].value) >=
                sizeof line) {
            curl_slist_free_all(hl);
            fwh_free(w);
            return ferry_sink_fail(s, FERRY_E_CONFIG, "[webhook] %s: not a valid HTTP header",
                                   s->passthru[i].key);
        }
        hl = curl_slist_append(hl, line);
    }
    if (!hl) {
        fwh_free(w);
        return ferry_sink_fail(s, FERRY_E_FATAL, "out of memory");
    }
    w->headers = hl;

    CURL *c = w->curl;
    curl_easy_setopt(c, CURLOPT_URL, cfg->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, w->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fwh_on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, w->curl_err);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cfg->timeout_ms);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, cfg->tls_verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, cfg->tls_verify ? 2L : 0L);
    if (cfg->tls_ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->tls_ca);
    if (cfg->tls_cert) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, cfg->tls_cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, cfg->tls_key);
    }
    if (cfg->username) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, cfg->username);
        curl_easy_setopt(c, CURLOPT_PASSWORD, cfg->password);
    }
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ferry-webhook");
    s->priv = w;
    if (!cfg->tls_verify)
        ferry_sink_log(s, FERRY_LOG_WARN, "TLS verification is off url=%s", cfg->url);
    ferry_sink_log(s, FERRY_LOG_INFO, "posting url=%s format=%s curl=%s", cfg->url,
                   cfg->format == FWH_NDJSON ? "ndjson" : "json_array", curl_version());
    return FERRY_OK;
}

static void fwh_close(struct ferry_sink_conn *s)
{
    if (s->priv)
        fwh_free(s->priv);
    s->priv = NULL;
}

static bool fwh_append(struct fwh *w, const char *p, size_t len)
{
    if (w->body_len + len + 1 > w->body_cap) {
        size_t cap = w->body_cap ? w->body_cap : 4096;
        while (cap < w->body_len + len + 1)
            cap *= 2;
        char *nb = realloc(w->body, cap); /* freed in fwh_free() */
        if (!nb)
            return false;
        w->body = nb;
        w->body_cap = cap;
    }
    memcpy(w->body + w->body_len, p, len);
    w->body_len += len;
    w->body[w->body_len] = '\0';
    return true;
}

/* One event as one line of JSON: a JSON body as it is (re-serialized when
 * it spans lines), anything else as a JSON string. */
static bool fwh_append_event(struct fwh *w, const struct ferry_msg *m)
{
    const char *b = m->body;
    cJSON *j = cJSON_ParseWithLength(b, m->body_len);
    if (j && !memchr(b, '\n', m->body_len) && !memchr(b, '\r', m->body_len)) {
        cJSON_Delete(j);
        return fwh_append(w, b, m->body_len);
    }
    char *text = NULL;
    if (j) {
        text = cJSON_PrintUnformatted(j);
    } else {
        char *copy = strndup(b, m->body_len);
        cJSON *str = copy ? cJSON_CreateString(copy) : NULL;
        free(copy);
        text = str ? cJSON_PrintUnformatted(str) : NULL;
        cJSON_Delete(str);
    }
    cJSON_Delete(j);
    bool ok = text && fwh_append(w, text, strlen(text));
    free(text);
    return ok;
}

static int fwh_write(struct ferry_sink_conn *s, struct ferry_sink_record *recs, size_t n)
{
    struct fwh *w = s->priv;
    bool array = w->cfg->format == FWH_JSON_ARRAY;
    w->body_len = 0;
    w->recs = NULL;
    w->n = 0;
    bool ok = !array || fwh_append(w, "[", 1);
    for (size_t i = 0; ok && i < n; i++) {
        recs[i].status = FERRY_OK;
        recs[i].reason = NULL;
        if (array && i > 0)
            ok = fwh_append(w, ",", 1);
        ok = ok && fwh_append_event(w, recs[i].msg);
        if (!array)
            ok = ok && fwh_append(w, "\n", 1);
    }
    if (ok && array)
        ok = fwh_append(w, "]", 1);
    if (!ok)
        return ferry_sink_fail(s, FERRY_E_AGAIN, "out of memory building a batch of %zu", n);
    w->recs = recs;
    w->n = n;
    return FERRY_OK;
}

static void fwh_abort(struct ferry_sink_conn *s)
{
    struct fwh *w = s->priv;
    w->recs = NULL;
    w->n = 0;
    w->body_len = 0;
}

/* The answer's first bytes, printable, for a reason or a log line. */
static const char *fwh_answer(struct fwh *w)
{
    for (size_t i = 0; i < w->answer_len; i++)
        if ((unsigned char)w->answer[i] < 0x20 && w->answer[i] != '\t')
            w->answer[i] = ' ';
    return w->answer_len ? w->answer : "(empty answer)";
}

static int fwh_post(struct ferry_sink_conn *s)
{
    struct fwh *w = s->priv;
    CURL *c = w->curl;
    w->answer_len = 0;
    w->answer[0] = '\0';
    w->curl_err[0] = '\0';
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, w->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)w->body_len);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        const char *why = w->curl_err[0] ? w->curl_err : curl_easy_strerror(rc);
        switch (rc) {
        case CURLE_OPERATION_TIMEDOUT:
            return ferry_sink_fail(s, FERRY_E_TIMEOUT, "POST %s: %s (will retry)", w->cfg->url,
                                   why);
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
            return ferry_sink_fail(s, FERRY_E_CONFIG, "POST %s: %s (check [webhook] url and tls_*)",
                                   w->cfg->url, why);
        default:
            return ferry_sink_fail(s, FERRY_E_NOCONN, "POST %s: %s (will retry)", w->cfg->url, why);
        }
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300)
        return FERRY_OK;
    if (code == 429 || code == 503) {
        curl_off_t ra = -1;
        int64_t ms = 0;
        if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0) {
            ms = (int64_t)ra * 1000;
            if (ms > w->cfg->retry_after_max_ms)
                ms = w->cfg->retry_after_max_ms;
            ferry_sink_retry_after(s, ms);
        }
        return ferry_sink_fail(s, FERRY_E_AGAIN, "POST %s: HTTP %ld retry_after=%" PRId64 "ms: %s",
                               w->cfg->url, code, ms, fwh_answer(w));
    }
    if (code >= 500 || code == 408)
        return ferry_sink_fail(s, FERRY_E_AGAIN, "POST %s: HTTP %ld (will retry): %s", w->cfg->url,
                               code, fwh_answer(w));
    if (code == 401 || code == 403 || code == 407)
        return ferry_sink_fail(s, FERRY_E_CONFIG,
                               "POST %s: HTTP %ld: the server refused our credentials "
                               "(check [webhook] token or username/password): %s",
                               w->cfg->url, code, fwh_answer(w));
    /* Any other answer (4xx, or a 1xx/3xx we do not follow) refuses the
     * batch for good: every record is dead-lettered with the answer. */
    snprintf(w->reason, sizeof w->reason, "HTTP %ld from %s: %s", code, w->cfg->url, fwh_answer(w));
    for (size_t i = 0; i < w->n; i++) {
        w->recs[i].status = FERRY_E_REJECTED;
        w->recs[i].reason = w->reason;
    }
    w->h.rejected += w->n;
    return FERRY_OK;
}

static int fwh_commit(struct ferry_sink_conn *s)
{
    struct fwh *w = s->priv;
    if (!w->recs)
        return FERRY_OK;
    int st = fwh_post(s);
    if (st == FERRY_OK) {
        for (size_t i = 0; i < w->n; i++)
            w->h.committed += w->recs[i].status == FERRY_OK;
        if (w->failing)
            w->h.reconnects++;
        w->failing = false;
        w->h.reason[0] = '\0';
    } else {
        w->h.failures++;
        w->failing = true;
        snprintf(w->h.reason, sizeof w->h.reason, "%.255s", s->err);
    }
    w->recs = NULL;
    w->n = 0;
    return st;
}

static int fwh_health(struct ferry_sink_conn *s, struct ferry_sink_health *out)
{
    struct fwh *w = s->priv;
    size_t sz = out->size < sizeof *out ? out->size : sizeof *out;
    struct ferry_sink_health h = w->h;
    h.size = out->size;
    h.state = w->failing ? FERRY_HEALTH_CONNECTING : FERRY_HEALTH_CONNECTED;
    memcpy(out, &h, sz);
    return FERRY_OK;
}

static const struct ferry_sink_ops fwh_ops = {
    .size = sizeof(struct ferry_sink_ops),
    .open = fwh_open,
    .close = fwh_close,
    .write = fwh_write,
    .commit = fwh_commit,
    .abort = fwh_abort,
    .health = fwh_health,
};

#define ferry_sink_descriptor webhook_LTX_ferry_sink_descriptor
const struct ferry_sink ferry_sink_descriptor = {
    .abi = FERRY_SINK_ABI,
    .size = sizeof(struct ferry_sink),
    .name = "webhook",
    .summary = "POST each batch to an HTTP endpoint as NDJSON or a JSON array (libcurl)",
    .lib_version = fwh_lib_version,
    .caps = FERRY_SINK_CAP_DURABLE,
    .options = fwh_options,
    .cfg_size = sizeof(struct fwh_cfg),
    .ops = &fwh_ops,
};

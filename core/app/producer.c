/* ferry-producer: send log lines (arguments or stdin) or simulated traffic,
 * and exit 0 only once the broker has confirmed every message. */
#include "config.h"
#include "app.h"
#include "http.h"
#include "private.h"
#include "jsoncheck.h"
#include <ferry/ledger.h>
#include <ferry/retry.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>

struct producer {
    struct app app;
    struct producer_cfg cfg;
    struct ferry_conn *conn;
    struct ferry_pub *pub;
    uint64_t seq;
    uint64_t rng;
    double invalid_ratio;
    uint64_t failed;
    uint64_t refused;     /* stdin lines or arguments not sent: bad data */
    uint64_t failed_data; /* of failed: refused by the broker as too big */
    char key[256];
    enum app_key_mode key_mode;        /* from cfg.key */
    struct ferry_metrics *metrics;     /* owned */
    struct ferry_metrics_dest *series; /* of cfg.destination, in metrics */
    struct app_http *http;             /* owned; NULL without [http] listen */
    int64_t last_refresh;
    char producer_id[160];   /* x-ferry-producer: host:pid:start-ms */
    char host[256];          /* looked up once: gethostname is a system call */
    char ptime[64];          /* ,"processing_time":X as cJSON prints it, or empty */
    unsigned char rnd[4096]; /* random bytes for message ids, one getrandom per 256 */
    size_t rnd_used;
};

/* A UUID v4 message id from the pool (ferry_make_id costs one getrandom
 * system call per id, most of a small message's cost). */
static void make_id(struct producer *p, char buf[37])
{
    if (p->rnd_used + 16 > sizeof p->rnd) {
        if (getrandom(p->rnd, sizeof p->rnd, 0) != (ssize_t)sizeof p->rnd) {
            ferry_make_id(buf);
            return;
        }
        p->rnd_used = 0;
    }
    unsigned char *r = p->rnd + p->rnd_used;
    p->rnd_used += 16;
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    char *w = buf;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *w++ = '-';
        *w++ = hex[r[i] >> 4];
        *w++ = hex[r[i] & 15];
    }
    *w = '\0';
}

static void on_done(void *ctx, uint64_t tag, int status, const char *reason)
{
    struct producer *p = ctx;
    ferry_metrics_count(p->series, status == FERRY_OK ? FERRY_CTR_PRODUCED : FERRY_CTR_PROC_ERRORS,
                        1);
    if (status != FERRY_OK) {
        p->failed++;
        /* too big for the broker: the message's fault, for good (65); a
         * rejection (unroutable, a policy) is the setup's and stays 69 */
        if (status == FERRY_E_TOOBIG)
            p->failed_data++;
        if (p->failed <= 5)
            app_error(&p->app, "message failed seq=%" PRIu64 " error=\"%s\"", tag,
                      reason ? reason : ferry_strerror(status));
    }
}

enum app_key_mode app_key_mode(const char *s)
{
    if (!s || !strcmp(s, "service.level"))
        return APP_KEY_SERVICE_LEVEL;
    if (!strcmp(s, "service"))
        return APP_KEY_SERVICE;
    if (!strcmp(s, "id"))
        return APP_KEY_ID;
    if (!strcmp(s, "none"))
        return APP_KEY_NONE;
    return APP_KEY_FIELD;
}

const char *app_message_key(enum app_key_mode mode, const char *field, const char *deflt,
                            const char *service, const void *body, size_t len, char *buf,
                            size_t buflen)
{
    switch (mode) {
    case APP_KEY_SERVICE_LEVEL: return deflt;
    case APP_KEY_SERVICE: return service ? service : deflt;
    case APP_KEY_NONE: return NULL;
    case APP_KEY_ID:
        return ferry_body_id(body, len, "id", buf, buflen) ||
                       ferry_body_id(body, len, "event_id", buf, buflen)
                   ? buf
                   : NULL;
    default: return ferry_body_id(body, len, field, buf, buflen) ? buf : NULL;
    }
}

/* n in decimal at w; returns the end (not terminated). */
static char *u64_text(char *w, uint64_t n)
{
    char tmp[20];
    size_t k = 0;
    do {
        tmp[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    while (k)
        *w++ = tmp[--k];
    return w;
}

static int send_body(struct producer *p, const char *dest, const char *key, const void *body,
                     size_t len)
{
    char kbuf[256];
    key =
        app_message_key(p->key_mode, p->cfg.key, key, p->cfg.generate == 2 ? NULL : p->cfg.service,
                        body, len, kbuf, sizeof kbuf);
    if ((int64_t)len > p->cfg.max_message_size) {
        app_error(&p->app, "message too big size=%zu max=%" PRId64, len, p->cfg.max_message_size);
        return FERRY_E_TOOBIG;
    }
    /* the end-to-end ledger stamp: who sent it and its place in the run */
    char seq[24];
    int sl = (int)(u64_text(seq, p->seq + 1) - seq);
    struct ferry_header hdr[2] = {
        {.name = FERRY_HDR_PRODUCER, .value = p->producer_id, .value_len = strlen(p->producer_id)},
        {.name = FERRY_HDR_SEQ, .value = seq, .value_len = (size_t)sl}};
    struct ferry_msg m = {.dest = dest,
                          .key = key,
                          .key_len = key ? strlen(key) : 0,
                          .headers = hdr,
                          .n_headers = 2,
                          .body = body,
                          .body_len = len,
                          .tag = ++p->seq};
    int rc = ferry_pub_send(p->pub, &m, -1);
    app_http_refresh(p->metrics, p->conn, p->pub, true, NULL, &p->last_refresh, false);
    if (rc != FERRY_OK)
        app_error(&p->app, "publish failed dest=%s error=\"%s\"", dest, ferry_pub_error(p->pub));
    return rc;
}

/* ,"processing_time":X in p->ptime, X printed by cJSON as the generic
 * envelope path would. */
static int set_ptime(struct producer *p)
{
    p->ptime[0] = '\0';
    if (!p->cfg.processing_time)
        return 0;
    char in[96];
    if ((size_t)snprintf(in, sizeof in, "{\"processing_time\":%s}", p->cfg.processing_time) >=
        sizeof in)
        return -1;
    cJSON *o = cJSON_Parse(in);                       /* freed below */
    char *out = o ? cJSON_PrintUnformatted(o) : NULL; /* freed below */
    size_t ol = out ? strlen(out) : 0;
    int rc = -1;
    if (ol > 2 && ol < sizeof p->ptime) {
        p->ptime[0] = ',';
        memcpy(p->ptime + 1, out + 1, ol - 2);
        p->ptime[ol - 1] = '\0';
        rc = 0;
    }
    free(out);
    cJSON_Delete(o);
    return rc;
}

static int send_log(struct producer *p, const char *text)
{
    char err[256], idbuf[128], extra[384];
    enum ferry_level lvl = (enum ferry_level)((p->cfg.level + 1) * 10);
    struct ferry_envelope e = {
        .service = p->cfg.service, .level = lvl, .message = text, .host = p->host, .id = idbuf};
    if (p->cfg.id_prefix)
        snprintf(idbuf, sizeof idbuf, "%s-%" PRIu64, p->cfg.id_prefix, p->seq + 1);
    else
        make_id(p, idbuf);
    /* producer and seq also go in the body, so the output file carries them */
    if (p->seq + 1 < 1000000000000000ULL) {
        /* as cJSON would print them (integers below 1e15 in plain digits),
         * without its parse and print per message */
        char *w = extra;
        size_t il = strlen(p->producer_id), pl = strlen(p->ptime);
        memcpy(w, "\"producer\":\"", 12);
        memcpy(w + 12, p->producer_id, il);
        w += 12 + il;
        memcpy(w, "\",\"seq\":", 8);
        w = u64_text(w + 8, p->seq + 1);
        memcpy(w, p->ptime, pl + 1);
        e.extra_members = extra;
    } else {
        int xl = snprintf(extra, sizeof extra, "{\"producer\":\"%s\",\"seq\":%" PRIu64,
                          p->producer_id, p->seq + 1);
        if (p->cfg.processing_time && xl > 0 && (size_t)xl < sizeof extra)
            xl += snprintf(extra + xl, sizeof extra - (size_t)xl, ",\"processing_time\":%s",
                           p->cfg.processing_time);
        if (xl > 0 && (size_t)xl < sizeof extra)
            snprintf(extra + xl, sizeof extra - (size_t)xl, "}");
        e.extra = extra;
    }
    char *body = ferry_envelope_encode(&e, err, sizeof err); /* freed below */
    if (!body) {
        app_error(&p->app, "cannot encode message error=\"%s\"", err);
        return FERRY_E_CONFIG;
    }
    int rc = send_body(p, p->cfg.destination, p->key, body, strlen(body));
    free(body);
    return rc;
}

static const char *const services[] = {"auth", "billing", "search", "frontend", "storage"};
static const char *const sample_messages[] = {
    "User logged in", "Payment processed",          "Cache miss for key",
    "Request served", "Disk usage above threshold", "Retrying upstream call",
    "Session expired"};

const char *app_make_download(uint64_t seq, bool bad, uint64_t *rng, char *buf, size_t buflen,
                              size_t *len)
{
    uint64_t r = *rng;
    r ^= r >> 12;
    r ^= r << 25;
    r ^= r >> 27;
    *rng = r;
    uint64_t x = r * 0x2545F4914F6CDD1DULL;
    double lat = (double)(x % 180000) / 1000.0 - 90.0;
    double lon = (double)((x >> 20) % 360000) / 1000.0 - 180.0;
    long long size = (long long)((x >> 8) % 5000000000ULL);
    double speed = (double)((x >> 16) % 100000000) / 10.0;
    char ts[32];
    ferry_format_time(ferry_time_ms(), ts);
    int kind = bad ? (int)((x >> 40) % 6) : -1;
    int n;
    switch (kind) {
    case 0: /* latitude out of range */
        lat = 91.0 + (double)(x % 89);
        /* fall through */
    case 1: /* negative size */
        if (kind == 1)
            size = -1 - (long long)(x % 1000);
        /* fall through */
    case -1:
        n = snprintf(
            buf, buflen,
            "{\"event_id\":\"dl-%" PRIu64
            "\",\"user_id\":\"user-%u\",\"file_name\":\"file-%u.iso\","
            "\"file_size\":%lld,\"bytes_per_second\":%.1f,\"latitude\":%.3f,\"longitude\":%.3f,"
            "\"timestamp\":\"%s\"}",
            seq, (unsigned)(x % 10000), (unsigned)((x >> 32) % 1000), size, speed, lat, lon, ts);
        break;
    case 2: /* missing field */
        n = snprintf(
            buf, buflen,
            "{\"event_id\":\"dl-%" PRIu64 "\",\"file_name\":\"file.iso\",\"file_size\":%lld,"
            "\"bytes_per_second\":%.1f,\"latitude\":%.3f,\"longitude\":%.3f,\"timestamp\":\"%s\"}",
            seq, size, speed, lat, lon, ts);
        break;
    case 3: /* wrong type */
        n = snprintf(
            buf, buflen,
            "{\"event_id\":\"dl-%" PRIu64 "\",\"user_id\":\"user-1\",\"file_name\":\"file.iso\","
            "\"file_size\":\"big\",\"bytes_per_second\":%.1f,\"latitude\":%.3f,\"longitude\":%.3f,"
            "\"timestamp\":\"%s\"}",
            seq, speed, lat, lon, ts);
        break;
    case 4: /* longitude out of range */
        n = snprintf(
            buf, buflen,
            "{\"event_id\":\"dl-%" PRIu64 "\",\"user_id\":\"user-2\",\"file_name\":\"file.iso\","
            "\"file_size\":%lld,\"bytes_per_second\":%.1f,\"latitude\":%.3f,\"longitude\":%.3f,"
            "\"timestamp\":\"%s\"}",
            seq, size, speed, lat, 200.0 + (double)(x % 100), ts);
        break;
    default: /* not JSON at all */
        n = snprintf(buf, buflen, "dl-%" PRIu64 " this is not JSON {", seq);
        break;
    }
    *len = n < 0 ? 0 : (size_t)n < buflen ? (size_t)n : buflen - 1;
    return buf;
}

/* Pace to rate msgs/s from start; sleeps in small steps. */
static void pace(struct producer *p, int64_t start_ms, uint64_t sent)
{
    if (p->cfg.rate <= 0)
        return;
    int64_t due = start_ms + (int64_t)(sent * 1000 / (uint64_t)p->cfg.rate);
    int64_t now = ferry_time_ms();
    while (due > now && !*p->app.stop) {
        ferry_pub_poll(p->pub);
        int64_t d = due - now > 20 ? 20 : due - now;
        ferry_sleep_ms(d);
        now = ferry_time_ms();
    }
}

static int generate(struct producer *p)
{
    int64_t start = ferry_time_ms();
    char buf[1024];
    uint64_t bad_every = 0;
    for (uint64_t i = 0; (p->cfg.count == 0 || i < (uint64_t)p->cfg.count) && !*p->app.stop; i++) {
        pace(p, start, i);
        int rc;
        if (p->cfg.generate == 1) {
            snprintf(buf, sizeof buf, "Log Entry %" PRIu64 ": %s", i + 1,
                     sample_messages[i % (sizeof sample_messages / sizeof *sample_messages)]);
            const char *svc = p->cfg.service;
            if (!strcmp(svc, "ferry")) /* no service chosen: spread over a few */
                p->cfg.service = (char *)services[i % (sizeof services / sizeof *services)];
            ferry_envelope_key(p->cfg.service, (enum ferry_level)((p->cfg.level + 1) * 10), p->key,
                               sizeof p->key);
            rc = send_log(p, buf);
            p->cfg.service = (char *)svc;
        } else {
            /* deterministic spread: exactly round(count * ratio) invalid events */
            bool bad = false;
            if (p->invalid_ratio > 0) {
                uint64_t want = (uint64_t)floor((double)(i + 1) * p->invalid_ratio + 1e-9);
                bad = want > bad_every;
                if (bad)
                    bad_every = want;
            }
            size_t len;
            app_make_download(i + 1, bad, &p->rng, buf, sizeof buf, &len);
            rc = send_body(p, p->cfg.destination, bad ? "downloads.invalid" : "downloads.valid",
                           buf, len);
        }
        if (rc != FERRY_OK)
            return rc;
    }
    return FERRY_OK;
}

/* Why text of n bytes cannot be a log message, or NULL: a NUL byte (the
 * envelope is a C string, so it would be cut there) or bytes that are not
 * UTF-8 (JSON is UTF-8). Such a line is refused, never cut or altered. */
static const char *unfit_text(const char *text, size_t n, char *why, size_t whylen)
{
    const char *nul = memchr(text, '\0', n);
    size_t bad = ferry_utf8_check(text, nul ? (size_t)(nul - text) : n);
    if (bad < (nul ? (size_t)(nul - text) : n)) {
        snprintf(why, whylen, "invalid UTF-8 at byte %zu", bad);
        return why;
    }
    if (nul) {
        snprintf(why, whylen, "NUL byte at byte %zu", (size_t)(nul - text));
        return why;
    }
    return NULL;
}

/* Lines refused so far: counted, the first few named by number. */
struct refusals {
    uint64_t n;
    uint64_t first[10];
};

static void refuse_line(struct producer *p, struct refusals *r, uint64_t lineno, const char *why)
{
    if (r->n < FERRY_ARRAY_LEN(r->first))
        r->first[r->n] = lineno;
    if (++r->n <= 10)
        app_error(&p->app, "line refused line=%" PRIu64 " reason=\"%s\"%s", lineno, why,
                  r->n == 10 ? " (further refusals are counted, not logged)" : "");
}

/* stdin in blocks: read(2) returns as soon as anything arrives (fread
 * would wait for a whole block), lines are found with memchr. */
struct line_reader {
    char buf[65536];
    size_t off, len;
    int err; /* errno of a failed read */
};

/* The next line of stdin, without its newline: its first max + 1 bytes
 * into line (*n), the rest only counted (*over). Returns false at the end
 * of the input (or a read error, or a stop signal), with what the last
 * line without a newline held. */
static bool next_line(struct producer *p, struct line_reader *r, char *line, size_t max, size_t *n,
                      uint64_t *over)
{
    for (;;) {
        if (r->off == r->len) {
            ssize_t k = read(STDIN_FILENO, r->buf, sizeof r->buf);
            if (k < 0 && errno == EINTR && !*p->app.stop)
                continue;
            if (k <= 0) {
                if (k < 0 && errno != EINTR)
                    r->err = errno;
                return false;
            }
            r->off = 0;
            r->len = (size_t)k;
        }
        const char *at = r->buf + r->off;
        size_t avail = r->len - r->off;
        const char *nl = memchr(at, '\n', avail);
        size_t take = nl ? (size_t)(nl - at) : avail;
        size_t room = *n <= max ? max + 1 - *n : 0;
        size_t keep = take < room ? take : room;
        memcpy(line + *n, at, keep);
        *n += keep;
        *over += take - keep;
        r->off += take + (nl ? 1 : 0);
        if (nl)
            return true;
    }
}

/* One message per line of stdin. A line is read with a bound of
 * max_message_size + 1 bytes: a longer one is refused by its line number
 * and the rest of it skipped unread into memory, as is a line holding a
 * NUL byte or invalid UTF-8, or whose envelope exceeds max_message_size.
 * The lines after a refused one are still sent; at the end the refused
 * lines are reported and the exit status is 65 (EX_DATAERR). A transport
 * failure stops the reading. */
static int from_lines(struct producer *p)
{
    size_t max = p->cfg.max_message_size > 0 ? (size_t)p->cfg.max_message_size : 1048576;
    char *line = malloc(max + 2); /* freed below */
    if (!line)
        return FERRY_E_FATAL;
    struct refusals r = {0};
    uint64_t lineno = 0;
    int rc = FERRY_OK;
    bool eof = false;
    struct line_reader in = {0};
    while (rc == FERRY_OK && !*p->app.stop && !eof) {
        size_t n = 0;
        uint64_t over = 0; /* bytes beyond the bound, skipped */
        if (!next_line(p, &in, line, max, &n, &over)) {
            eof = true;
            if (n == 0 && over == 0)
                break;
        }
        lineno++;
        if (n > max) {
            char why[160];
            snprintf(why, sizeof why,
                     "longer than max_message_size (%zu bytes): %" PRIu64 " bytes or more", max,
                     (uint64_t)n + over);
            refuse_line(p, &r, lineno, why);
            continue;
        }
        while (n > 0 && line[n - 1] == '\r')
            n--;
        line[n] = '\0';
        if (n == 0)
            continue;
        char why[128];
        if (unfit_text(line, n, why, sizeof why)) {
            refuse_line(p, &r, lineno, why);
            continue;
        }
        rc = send_log(p, line);
        if (rc == FERRY_E_TOOBIG) {
            refuse_line(p, &r, lineno, "its envelope exceeds max_message_size");
            rc = FERRY_OK;
        }
    }
    if (in.err) {
        app_error(&p->app, "cannot read stdin after line %" PRIu64 ": %s", lineno,
                  strerror(in.err));
        if (rc == FERRY_OK)
            rc = FERRY_E_FATAL;
    }
    free(line);
    if (rc != FERRY_OK && !eof)
        app_error(&p->app,
                  "stopped reading stdin after line %" PRIu64 ": the lines after it "
                  "were not sent",
                  lineno);
    if (r.n) {
        char list[256] = "";
        size_t w = 0;
        for (size_t i = 0; i < r.n && i < FERRY_ARRAY_LEN(r.first) && w < sizeof list - 24; i++)
            w +=
                (size_t)snprintf(list + w, sizeof list - w, "%s%" PRIu64, i ? "," : "", r.first[i]);
        app_error(&p->app,
                  "lines refused count=%" PRIu64 " lines=%s%s (not sent; the other "
                  "lines were)",
                  r.n, list, r.n > FERRY_ARRAY_LEN(r.first) ? ",..." : "");
        p->refused = r.n;
    }
    return rc;
}

/* --replay: one batch of dead letters being re-published. */
struct replay {
    struct producer *p;
    signed char *result; /* per slot: 1 pending, 0 confirmed, -1 failed; owned */
    uint64_t base;       /* publisher tag of slot 0 */
    size_t max;
};

static void on_replayed(void *ctx, uint64_t tag, int status, const char *reason)
{
    struct replay *r = ctx;
    if (status != FERRY_OK && r->p->failed++ < 5)
        app_error(&r->p->app, "replay failed error=\"%s\" (the dead letter stays)",
                  reason ? reason : ferry_strerror(status));
    if (tag >= r->base && tag - r->base < r->max)
        r->result[tag - r->base] = status == FERRY_OK ? 0 : -1;
}

#define HV(h) (int)((h) ? (h)->value_len : 1), (h) ? (const char *)(h)->value : "-"

/* Re-publish m to its original destination without the retry headers.
 * Returns FERRY_OK when taken, FERRY_E_CONFIG when m names no destination. */
static int replay_one(struct producer *p, struct ferry_msg *m, uint64_t tag)
{
    static const char *const drop[] = {FERRY_HDR_ERROR,
                                       FERRY_HDR_SOURCE,
                                       FERRY_HDR_ATTEMPTS,
                                       FERRY_HDR_ORIGINAL_DEST,
                                       FERRY_HDR_DUE,
                                       FERRY_HDR_RETRY_GROUP,
                                       NULL};
    const struct ferry_header *o = ferry_msg_header(m, FERRY_HDR_ORIGINAL_DEST);
    if (!o || !o->value_len)
        o = ferry_msg_header(m, FERRY_HDR_SOURCE);
    if (!o || !o->value_len || o->value_len > 1023)
        return FERRY_E_CONFIG;
    char dest[1024];
    memcpy(dest, o->value, o->value_len);
    dest[o->value_len] = '\0';
    struct ferry_header hs[64];
    size_t n = ferry_retry_stamp(m, NULL, 0, drop, hs, 64);
    if (n > 64)
        return FERRY_E_TOOBIG;
    app_debug(&p->app, "replayed dest=%s attempts=%.*s producer=%.*s seq=%.*s error=\"%.*s\"", dest,
              HV(ferry_msg_header(m, FERRY_HDR_ATTEMPTS)),
              HV(ferry_msg_header(m, FERRY_HDR_PRODUCER)), HV(ferry_msg_header(m, FERRY_HDR_SEQ)),
              HV(ferry_msg_header(m, FERRY_HDR_ERROR)));
    struct ferry_msg out = {.dest = dest,
                            .key = m->key,
                            .key_len = m->key_len,
                            .headers = hs,
                            .n_headers = n,
                            .body = m->body,
                            .body_len = m->body_len,
                            .tag = tag};
    return ferry_pub_send(p->pub, &out, -1);
}

/* Consume the dead-letter destination and re-publish each message to where
 * it came from, acking it only once the copy is confirmed. Messages that
 * name no destination are left where they are. */
static int replay(struct producer *p, struct ferry_conn *in)
{
    size_t max = 200;
    struct replay r = {.p = p, .max = max};
    struct ferry_msg **batch = calloc(max, sizeof *batch); /* freed below */
    struct ferry_msg **kept = NULL;                        /* unroutable, released at the end */
    size_t nkept = 0, capkept = 0;
    r.result = calloc(max, sizeof *r.result); /* freed below */
    if (!batch || !r.result) {
        free(batch);
        free(r.result);
        return FERRY_E_FATAL;
    }
    ferry_pub_free(p->pub);
    p->pub = ferry_pub_new(p->conn, &(struct ferry_pub_opts){.give_up_ms = p->cfg.flush_timeout},
                           on_replayed, &r); /* freed in ferry_producer_main() */
    int st = p->pub ? ferry_subscribe(in, p->cfg.replay, p->cfg.replay_group) : FERRY_E_FATAL;
    if (st != FERRY_OK)
        app_error(&p->app, "subscribe failed destination=%s error=\"%s\"", p->cfg.replay,
                  ferry_conn_error(in));
    uint64_t replayed = 0, failed = 0;
    int64_t last = ferry_mono_ms();
    while (st == FERRY_OK && !*p->app.stop &&
           (!p->cfg.replay_count || (int64_t)replayed < p->cfg.replay_count)) {
        size_t want = max, n = 0;
        if (p->cfg.replay_count && p->cfg.replay_count - (int64_t)replayed < (int64_t)want)
            want = (size_t)(p->cfg.replay_count - (int64_t)replayed);
        int rc = ferry_receive(in, batch, want, &n, 200);
        if (rc != FERRY_OK || !n) {
            if (rc != FERRY_OK && rc != FERRY_E_TIMEOUT && !ferry_status_retriable(rc)) {
                app_error(&p->app, "receive failed error=\"%s\"", ferry_conn_error(in));
                st = rc;
            } else if (ferry_mono_ms() - last >= p->cfg.replay_wait) {
                break; /* drained */
            }
            continue;
        }
        last = ferry_mono_ms();
        r.base += max;
        for (size_t i = 0; i < n; i++) {
            r.result[i] = 1;
            int sr = replay_one(p, batch[i], r.base + i);
            if (sr == FERRY_E_CONFIG) {
                r.result[i] = 2;
                if (nkept == capkept) {
                    size_t cap = capkept ? capkept * 2 : 64;
                    struct ferry_msg **nk = realloc(kept, cap * sizeof *nk);
                    if (nk) {
                        kept = nk;
                        capkept = cap;
                    }
                }
                if (nkept < capkept) {
                    kept[nkept++] = batch[i];
                } else {
                    ferry_release(in, batch[i]);
                }
            } else if (sr != FERRY_OK) {
                r.result[i] = -1;
                app_error(&p->app, "replay refused error=\"%s\"", ferry_pub_error(p->pub));
            }
        }
        ferry_pub_flush(p->pub,
                        (int)(p->cfg.flush_timeout > INT32_MAX ? INT32_MAX : p->cfg.flush_timeout));
        for (size_t i = 0; i < n; i++) {
            if (r.result[i] == 2)
                continue;
            if (r.result[i] == 0) {
                ferry_ack(in, batch[i]);
                replayed++;
            } else {
                ferry_release(in, batch[i]); /* stays a dead letter */
                failed++;
            }
        }
        if (failed)
            break;
    }
    for (size_t i = 0; i < nkept; i++)
        ferry_release(in, kept[i]);
    if (nkept)
        app_warn(&p->app,
                 "dead letters without x-ferry-original-dest or x-ferry-source left in "
                 "place count=%zu destination=%s",
                 nkept, p->cfg.replay);
    app_info(&p->app, "replay done destination=%s replayed=%" PRIu64 " failed=%" PRIu64 " left=%zu",
             p->cfg.replay, replayed, failed, nkept);
    free(kept);
    free(batch);
    free(r.result);
    if (st == FERRY_OK && failed)
        st = FERRY_E_NOCONN;
    if (st == FERRY_OK && nkept)
        st = FERRY_E_REJECTED;
    return st;
}

int ferry_producer_main(int argc, char **argv)
{
    struct producer p = {0};
    static const struct app_spec spec_tmpl = {
        .prog = "ferry-producer",
        .section = "producer",
        .usage = "[options] [MESSAGE...]",
        .about =
            "Send each MESSAGE (or each line of stdin when there are none) as a log envelope,\n"
            "or simulated traffic with --generate logs|downloads. Exits 0 only when the\n"
            "transport has confirmed every message.",
        .options = app_producer_options};
    struct app_spec spec = spec_tmpl;
    spec.cfg = &p.cfg;
    int rc = app_init(&p.app, &spec, argc, argv);
    if (rc >= 0) {
        app_fini(&p.app);
        return rc;
    }
    p.rng = ferry_time_ms() | 1;
    p.rnd_used = sizeof p.rnd;
    if (gethostname(p.host, sizeof p.host))
        snprintf(p.host, sizeof p.host, "unknown");
    p.host[sizeof p.host - 1] = '\0';
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    /* JSON-safe: the id goes into the body unescaped */
    for (char *h = host; *h; h++)
        if (*h == '"' || *h == '\\' || (unsigned char)*h < 0x20)
            *h = '_';
    snprintf(p.producer_id, sizeof p.producer_id, "%s:%ld:%" PRId64, host, (long)getpid(),
             ferry_time_ms());
    char *end;
    errno = 0;
    p.invalid_ratio = strtod(p.cfg.invalid_ratio ? p.cfg.invalid_ratio : "0", &end);
    if (errno || *end || !isfinite(p.invalid_ratio) || p.invalid_ratio < 0 || p.invalid_ratio > 1) {
        fprintf(stderr,
                "ferry-producer: error: [producer] invalid_ratio: '%s' is not a fraction between 0 "
                "and 1\n",
                p.cfg.invalid_ratio);
        app_fini(&p.app);
        return EX_CONFIG;
    }
    double pt = p.cfg.processing_time ? strtod(p.cfg.processing_time, &end) : 0;
    if ((p.cfg.processing_time && (!isfinite(pt) || pt < 0 || *end)) || set_ptime(&p) != 0) {
        fprintf(
            stderr,
            "ferry-producer: error: [producer] processing_time: '%s' is not a number of seconds\n",
            p.cfg.processing_time);
        app_fini(&p.app);
        return EX_CONFIG;
    }
    if (p.cfg.replay && (p.cfg.generate || p.app.nargs)) {
        fprintf(stderr, "ferry-producer: --replay excludes --generate and MESSAGE arguments\n"
                        "Try 'ferry-producer --help'.\n");
        app_fini(&p.app);
        return EX_USAGE;
    }
    if (p.cfg.generate && p.app.nargs) {
        fprintf(stderr, "ferry-producer: --generate and MESSAGE arguments exclude each other\n"
                        "Try 'ferry-producer --help'.\n");
        app_fini(&p.app);
        return EX_USAGE;
    }
    ferry_envelope_key(p.cfg.service, (enum ferry_level)((p.cfg.level + 1) * 10), p.key,
                       sizeof p.key);
    p.key_mode = app_key_mode(p.cfg.key);
    if (p.key_mode == APP_KEY_FIELD && (!*p.cfg.key || strlen(p.cfg.key) > 64)) {
        fprintf(stderr,
                "ferry-producer: error: [producer] key: '%s' is not service.level, service, "
                "id, none or a field name\n",
                p.cfg.key);
        app_fini(&p.app);
        return EX_CONFIG;
    }
    rc = app_require(&p.app, p.cfg.require);
    if (rc >= 0) {
        app_fini(&p.app);
        return rc;
    }

    const char *tname = ferry_config_get(p.app.config, "transport", "plugin");
    p.metrics = ferry_metrics_new(tname ? tname : "zmq"); /* freed below */
    if (!p.metrics) {
        app_fini(&p.app);
        return EX_OSERR;
    }
    p.series = ferry_metrics_dest(p.metrics, p.cfg.destination);
    /* with nothing else to send, --http makes the producer a server */
    bool serve = !p.cfg.generate && !p.app.nargs && !p.cfg.replay;
    struct http_defaults hd = {.service = p.cfg.service,
                               .level = (enum ferry_level)((p.cfg.level + 1) * 10),
                               .destination = p.cfg.destination,
                               .max_message_size = p.cfg.max_message_size,
                               .max_queue = (size_t)p.cfg.max_inflight,
                               .metrics = p.metrics,
                               .key_mode = p.key_mode,
                               .key_field = p.cfg.key,
                               .producer_id = p.producer_id};
    rc = app_http_start(&p.app, p.metrics, serve ? &hd : NULL, &p.http);
    serve = serve && p.http;
    if (rc < 0)
        p.conn = app_connect(&p.app, p.cfg.connect_timeout, &rc);
    if (!p.conn) {
        app_http_stop(p.http);
        ferry_metrics_free(p.metrics);
        app_fini(&p.app);
        return rc;
    }
    if (!(p.conn->caps & FERRY_CAP_CONFIRMS))
        app_info(&p.app,
                 "transport has no publisher confirms transport=%s: success means handed to the "
                 "transport",
                 p.conn->transport->name);
    struct ferry_pub_opts po = {.max_inflight = (size_t)p.cfg.max_inflight,
                                .give_up_ms = p.cfg.flush_timeout};
    p.pub = serve ? ferry_pub_new(p.conn, &po, app_http_on_done, p.http)
                  : ferry_pub_new(p.conn, &po, on_done, &p); /* freed below */
    int st;
    struct ferry_conn *in = NULL;
    if (!p.pub)
        st = FERRY_E_FATAL;
    else if (p.cfg.replay) {
        in = app_connect(&p.app, p.cfg.connect_timeout, &rc);
        st = in ? replay(&p, in) : FERRY_E_NOCONN;
    } else if (serve) {
        app_http_serve(p.http, &p.app, p.conn, p.pub, (size_t)p.cfg.max_inflight);
        st = FERRY_OK;
    } else if (p.cfg.generate)
        st = generate(&p);
    else if (p.app.nargs) {
        st = FERRY_OK;
        for (int i = 0; i < p.app.nargs && st == FERRY_OK; i++) {
            char why[128];
            const char *a = p.app.args[i];
            if (unfit_text(a, strlen(a), why, sizeof why)) {
                app_error(&p.app, "argument refused index=%d reason=\"%s\"", i + 1, why);
                st = FERRY_E_REJECTED;
            } else {
                st = send_log(&p, a);
            }
        }
    } else
        st = from_lines(&p);

    int fl =
        p.pub ? ferry_pub_flush(
                    p.pub, (int)(p.cfg.flush_timeout > INT32_MAX ? INT32_MAX : p.cfg.flush_timeout))
              : FERRY_E_FATAL;
    struct ferry_pub_stats ps = {0};
    if (p.pub)
        ferry_pub_stats(p.pub, &ps);
    if (st == FERRY_OK && fl != FERRY_OK)
        st = FERRY_E_TIMEOUT;
    struct ferry_stats fs;
    if (ferry_stats(p.conn, &fs) == FERRY_OK && fs.dropped) {
        ferry_metrics_set_backlog(p.metrics, p.cfg.destination, -1, -1, NULL, 0, fs.dropped);
        app_warn(&p.app,
                 "messages dropped by the transport's configured policy dropped=%" PRIu64
                 " (amqp: unroutable = drop-and-count; counted in ferry_messages_dropped_total)",
                 fs.dropped);
    }
    /* in server mode each failure was already answered to its request */
    if (st == FERRY_OK && !serve && (ps.failed || p.failed))
        st = p.failed && p.failed == p.failed_data ? FERRY_E_REJECTED : FERRY_E_NOCONN;
    if (st == FERRY_OK && p.refused)
        st = FERRY_E_REJECTED; /* the others are confirmed; the refused ones were named */
    if (st == FERRY_OK)
        app_info(&p.app, "done sent=%" PRIu64 " confirmed=%" PRIu64 " retries=%" PRIu64, ps.sent,
                 ps.confirmed, ps.retries);
    else
        app_error(&p.app,
                  "not all messages confirmed sent=%" PRIu64 " confirmed=%" PRIu64
                  " failed=%" PRIu64 " pending=%" PRIu64 " refused=%" PRIu64 " error=\"%s\"",
                  ps.sent, ps.confirmed, ps.failed, ps.pending, p.refused,
                  p.refused && !ps.failed && !ps.pending ? "bad input refused (see above)"
                  : p.pub                                ? ferry_pub_error(p.pub)
                                                         : "");
    app_http_stop(p.http);
    ferry_pub_free(p.pub);
    ferry_close(in);
    ferry_close(p.conn);
    ferry_metrics_free(p.metrics);
    app_fini(&p.app);
    return app_exit_code(st);
}

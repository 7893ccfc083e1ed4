/* ferry-aggregator: consume a destination and append every message to a
 * file, acking a batch only after it is written and fsync'ed. */
#include "config.h"
#include "app.h"
#include "private.h"
#include "http.h"
#include "idset.h"

#include <ferry/ledger.h>
#include <ferry/retry.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct agg {
    struct app app;
    struct aggregator_cfg cfg;
    struct ferry_conn *conn;
    int fd;
    struct idset seen;
    struct ferry_ledger *ledger; /* seqs written per producer; owned */
    char *buf;                   /* the batch being written; owned */
    size_t len, cap;
    uint64_t written, duplicates, received;
    struct ferry_metrics *metrics;     /* owned */
    struct ferry_metrics_dest *series; /* of cfg.destination, in metrics */
    struct app_http *http;             /* owned; NULL without [http] listen */
    int64_t last_refresh;
    struct ferry_retry *retry; /* owned; NULL: retry writes in place forever */
    char *dead_letter;         /* owned: cfg.dead_letter or DESTINATION.dead-letter */
    uint64_t deferred, dead_lettered;
    int64_t delay_lo, delay_hi; /* [aggregator] delay in ms; 0, 0: none */
    uint64_t rng;               /* for the delay's jitter */
};

/* What run() knows of each message of the batch being handled. */
struct slot {
    struct ferry_retry_item it;
    bool fresh;          /* to be written (not a duplicate) */
    bool stamped;        /* carries a ledger stamp, added once written */
    uint64_t hash;       /* id for de-duplication, 0 = none */
    uint64_t stamp_hash; /* of producer and seq, to find repeats within the batch */
    uint64_t seq;
    char prod[256];
};

static int buf_put(struct agg *g, const void *p, size_t n)
{
    if (g->len + n > g->cap) {
        size_t cap = (g->len + n) * 2;
        char *nb = realloc(g->buf, cap); /* freed at exit of ferry_aggregator_main() */
        if (!nb)
            return -1;
        g->buf = nb;
        g->cap = cap;
    }
    memcpy(g->buf + g->len, p, n);
    g->len += n;
    return 0;
}

/* One line per message: newlines inside a body are escaped so the file
 * stays line-oriented. */
static int put_body_line(struct agg *g, const char *b, size_t n)
{
    /* most bodies have none of the three: memchr is vectorised, a byte
     * loop costs about 12 instructions a byte */
    if (!memchr(b, '\n', n) && !memchr(b, '\r', n) && !memchr(b, '\\', n))
        return buf_put(g, b, n) || buf_put(g, "\n", 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != '\n' && b[i] != '\r' && b[i] != '\\')
            continue;
        if (buf_put(g, b + start, i - start) || buf_put(g,
                                                        b[i] == '\n'   ? "\\n"
                                                        : b[i] == '\r' ? "\\r"
                                                                       : "\\\\",
                                                        2))
            return -1;
        start = i + 1;
    }
    return buf_put(g, b + start, n - start) || buf_put(g, "\n", 1);
}

static int put_record(struct agg *g, const struct ferry_msg *m)
{
    cJSON *o = cJSON_CreateObject(); /* freed below */
    cJSON *h = cJSON_CreateObject();
    if (!o || !h) {
        cJSON_Delete(o);
        cJSON_Delete(h);
        return -1;
    }
    cJSON_AddStringToObject(o, "destination", m->dest ? m->dest : "");
    if (m->key) {
        char *k = strndup(m->key, m->key_len);
        cJSON_AddStringToObject(o, "key", k ? k : "");
        free(k);
    }
    for (size_t i = 0; i < m->n_headers; i++) {
        char *v = strndup(m->headers[i].value, m->headers[i].value_len);
        cJSON_AddStringToObject(h, m->headers[i].name, v ? v : "");
        free(v);
    }
    cJSON_AddItemToObject(o, "headers", h);
    cJSON *body = cJSON_ParseWithLength(m->body, m->body_len);
    if (!body) {
        char *s = strndup(m->body, m->body_len);
        body = cJSON_CreateString(s ? s : "");
        free(s);
    }
    cJSON_AddItemToObject(o, "body", body);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return -1;
    int rc = buf_put(g, text, strlen(text)) || buf_put(g, "\n", 1);
    free(text);
    return rc;
}

static int open_output(struct agg *g)
{
    int fd = open(g->cfg.output, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        app_error(&g->app, "cannot open output file=%s error=\"%s\"", g->cfg.output,
                  strerror(errno));
        return -1;
    }
    if (g->fd >= 0)
        close(g->fd);
    g->fd = fd;
    return 0;
}

/* Whether body holds needle, looking for its rare byte needle[k] with
 * memchr (vectorised) where memmem would step through every byte. */
static bool body_has(const void *body, size_t n, const char *needle, size_t k)
{
    size_t nl = strlen(needle);
    if (n < nl)
        return false;
    const char *b = body;
    size_t from = k, last = n - nl + k; /* where needle[k] can sit */
    while (from <= last) {
        const char *q = memchr(b + from, needle[k], last - from + 1);
        if (!q)
            return false;
        size_t at = (size_t)(q - b);
        if (!memcmp(b + at - k, needle, nl))
            return true;
        from = at + 1;
    }
    return false;
}

/* The producer's ledger stamp, from the headers (cheap) or else from the
 * body's "producer" and "seq" members. */
static bool msg_stamp(const struct ferry_msg *m, char *prod, size_t plen, uint64_t *seq)
{
    const struct ferry_header *hp = ferry_msg_header(m, FERRY_HDR_PRODUCER);
    const struct ferry_header *hs = ferry_msg_header(m, FERRY_HDR_SEQ);
    if (hp && hs && hp->value_len && hp->value_len < plen &&
        ferry_ledger_parse_seq(hs->value, hs->value_len, seq)) {
        memcpy(prod, hp->value, hp->value_len);
        prod[hp->value_len] = '\0';
        return true;
    }
    char num[32];
    if (!body_has(m->body, m->body_len, "\"seq\"", 3) ||
        !ferry_body_id(m->body, m->body_len, "producer", prod, plen) ||
        !ferry_body_id(m->body, m->body_len, "seq", num, sizeof num))
        return false;
    return ferry_ledger_parse_seq(num, strlen(num), seq);
}

static bool json_stamp(const cJSON *prod, const cJSON *seq, char *buf, size_t len, uint64_t *out)
{
    if (!cJSON_IsString(prod) || !prod->valuestring[0] || strlen(prod->valuestring) >= len)
        return false;
    if (cJSON_IsNumber(seq) && seq->valuedouble >= 1 && seq->valuedouble < 9007199254740992.0)
        *out = (uint64_t)seq->valuedouble;
    else if (!cJSON_IsString(seq) ||
             !ferry_ledger_parse_seq(seq->valuestring, strlen(seq->valuestring), out))
        return false;
    snprintf(buf, len, "%s", prod->valuestring);
    return true;
}

/* The stamp of one line of an output file in either format: a body with
 * "producer" and "seq", or a record whose headers or body carry them. */
static bool line_stamp(const cJSON *o, char *prod, size_t plen, uint64_t *seq)
{
    if (json_stamp(cJSON_GetObjectItemCaseSensitive(o, "producer"),
                   cJSON_GetObjectItemCaseSensitive(o, "seq"), prod, plen, seq))
        return true;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "headers");
    if (json_stamp(cJSON_GetObjectItemCaseSensitive(h, FERRY_HDR_PRODUCER),
                   cJSON_GetObjectItemCaseSensitive(h, FERRY_HDR_SEQ), prod, plen, seq))
        return true;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "body");
    return json_stamp(cJSON_GetObjectItemCaseSensitive(b, "producer"),
                      cJSON_GetObjectItemCaseSensitive(b, "seq"), prod, plen, seq);
}

/* The message id: the id_field of a JSON object body, else the x-ferry-id
 * header (the HTTP API's non-object payloads carry it there). */
static bool msg_id(const struct agg *g, const struct ferry_msg *m, char *id, size_t len)
{
    if (ferry_body_id(m->body, m->body_len, g->cfg.id_field, id, len))
        return true;
    const struct ferry_header *h = ferry_msg_header(m, FERRY_HDR_ID);
    if (!h || !h->value_len || h->value_len >= len)
        return false;
    memcpy(id, h->value, h->value_len);
    id[h->value_len] = '\0';
    return true;
}

/* The id of one line of an output file: the id_field of a body line, or of
 * a record's body, or a record's x-ferry-id header. */
static const char *line_id(const cJSON *o, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!cJSON_IsString(v)) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "body");
        v = cJSON_GetObjectItemCaseSensitive(b, field);
    }
    if (!cJSON_IsString(v)) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "headers");
        v = cJSON_GetObjectItemCaseSensitive(h, FERRY_HDR_ID);
    }
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* Remember the ids already in the file, so redeliveries after a crash are
 * not written twice. */
static int load_seen(struct agg *g)
{
    FILE *f = fopen(g->cfg.output, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char *line = NULL; /* freed below */
    size_t cap = 0;
    ssize_t n;
    uint64_t count = 0;
    char id[256];
    uint64_t stamped = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        const char *body = line;
        size_t len = (size_t)n;
        char prod[256];
        uint64_t seq;
        if (memmem(line, len, "\"seq\"", 5)) {
            cJSON *o = cJSON_ParseWithLength(line, len); /* freed below */
            if (o && line_stamp(o, prod, sizeof prod, &seq) &&
                ferry_ledger_add(g->ledger, prod, seq) >= 0)
                stamped++;
            cJSON_Delete(o);
        }
        if (!g->cfg.dedup)
            continue;
        if (g->cfg.format == 1) { /* record: the id is inside "body" or the headers */
            cJSON *o = cJSON_ParseWithLength(line, len);
            const char *v = o ? line_id(o, g->cfg.id_field) : NULL;
            if (v && strlen(v) < sizeof id) {
                idset_add(&g->seen, idset_hash(v, strlen(v)));
                count++;
            }
            cJSON_Delete(o);
            continue;
        }
        if (ferry_body_id(body, len, g->cfg.id_field, id, sizeof id)) {
            idset_add(&g->seen, idset_hash(id, strlen(id)));
            count++;
        }
    }
    free(line);
    fclose(f);
    if (count || stamped)
        app_info(&g->app, "resuming output file=%s known_ids=%" PRIu64 " stamped=%" PRIu64,
                 g->cfg.output, count, stamped);
    return 0;
}

/* Simulated work: a numeric "processing_time" (seconds) in the body, or
 * in the x-ferry-processing-time header. */
static void simulate_work(struct agg *g, const struct ferry_msg *m)
{
    const struct ferry_header *h = ferry_msg_header(m, FERRY_HDR_PROCESSING_TIME);
    if (h && h->value_len && h->value_len < 32) {
        char t[32], *end;
        memcpy(t, h->value, h->value_len);
        t[h->value_len] = '\0';
        double s = strtod(t, &end);
        if (!*end && s > 0 && s < 3600)
            app_sleep(&g->app, (int64_t)(s * 1000));
        return;
    }
    if (!body_has(m->body, m->body_len, "processing_time", 10))
        return;
    cJSON *o = cJSON_ParseWithLength(m->body, m->body_len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "processing_time");
    if (cJSON_IsNumber(t) && t->valuedouble > 0 && t->valuedouble < 3600)
        app_sleep(&g->app, (int64_t)(t->valuedouble * 1000));
    cJSON_Delete(o);
}

int app_parse_delay(const char *s, int64_t *lo, int64_t *hi, char *err, size_t errlen)
{
    *lo = *hi = 0;
    if (!s || !*s)
        return 0;
    const struct ferry_option o = {
        .name = "delay", .type = FERRY_OPT_DURATION, .min = 0, .max = 3600000};
    char a[64], e2[128];
    const char *dash = strchr(s, '-');
    size_t al = dash ? (size_t)(dash - s) : strlen(s);
    if (al >= sizeof a)
        al = sizeof a - 1;
    memcpy(a, s, al);
    a[al] = '\0';
    if (ferry_option_parse(&o, a, lo, e2, sizeof e2) != FERRY_OK ||
        ferry_option_parse(&o, dash ? dash + 1 : a, hi, e2, sizeof e2) != FERRY_OK || *hi < *lo) {
        snprintf(err, errlen,
                 "[aggregator] delay: '%s' is not a duration (50ms) or a range "
                 "MIN-MAX (20ms-200ms)",
                 s);
        return -1;
    }
    return 0;
}

/* [aggregator] delay: sleep a fixed time, or a uniform pick in the range. */
static void delay_work(struct agg *g)
{
    if (!g->delay_hi)
        return;
    int64_t d = g->delay_lo;
    if (g->delay_hi > g->delay_lo) {
        uint64_t r = g->rng;
        r ^= r >> 12;
        r ^= r << 25;
        r ^= r >> 27;
        g->rng = r;
        d += (int64_t)((r * 0x2545F4914F6CDD1DULL) % (uint64_t)(g->delay_hi - g->delay_lo + 1));
    }
    app_sleep(&g->app, d);
}

/* Write the batch and make it durable; on failure the file is cut back to
 * where it was so a retry does not leave half a batch. */
static int write_batch(struct agg *g)
{
    struct stat sb;
    off_t before = fstat(g->fd, &sb) == 0 ? sb.st_size : -1;
    size_t off = 0;
    while (off < g->len) {
        ssize_t w = write(g->fd, g->buf + off, g->len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        off += (size_t)w;
    }
    if (g->cfg.fsync && fdatasync(g->fd))
        goto fail;
    return 0;
fail:;
    int e = errno;
    if (before >= 0 && ftruncate(g->fd, before) == 0 && g->cfg.fsync)
        fdatasync(g->fd);
    errno = e;
    return -1;
}

/* The batch could not be written: each fresh message counts one failed
 * attempt and is deferred or dead-lettered; duplicates are already in the
 * file and are acked. Returns how many could be neither (released). */
static size_t retry_batch(struct agg *g, struct slot *slots, size_t n, const char *why)
{
    size_t deferred = 0, dead = 0, errors = 0;
    for (size_t i = 0; i < n; i++) {
        if (!slots[i].fresh) {
            ferry_ack(slots[i].it.conn, slots[i].it.msg);
            continue;
        }
        bool dl;
        if (ferry_retry_fail(g->retry, &slots[i].it, why, &dl) != FERRY_OK) {
            if (!errors)
                app_error(&g->app,
                          "cannot defer or dead-letter error=\"%s\" (the message comes back)",
                          ferry_retry_error(g->retry));
            errors++;
        } else if (dl) {
            dead++;
        } else {
            deferred++;
        }
    }
    g->deferred += deferred;
    g->dead_lettered += dead;
    ferry_metrics_count(g->series, FERRY_CTR_DEAD_LETTERED, dead);
    app_warn(&g->app,
             "write failed file=%s error=\"%s\" deferred=%zu dead_lettered=%zu "
             "dead_letter=%s released=%zu",
             g->cfg.output, why, deferred, dead, g->dead_letter, errors);
    return errors;
}

/* Classify and format received message i (fresh or duplicate); -1 when
 * out of memory. */
static int take(struct agg *g, struct slot *slots, size_t i, struct idset_gen *ids,
                struct idset_gen *stamps)
{
    struct slot *sl = &slots[i];
    const struct ferry_msg *m = sl->it.msg;
    char id[256];
    sl->fresh = true;
    sl->hash = sl->stamp_hash = 0;
    sl->stamped = msg_stamp(m, sl->prod, sizeof sl->prod, &sl->seq);
    if (sl->stamped) {
        sl->stamp_hash =
            (idset_hash(sl->prod, strlen(sl->prod)) ^ (sl->seq * 0x9E3779B97F4A7C15ULL)) | 1;
        bool dup = ferry_ledger_has(g->ledger, sl->prod, sl->seq);
        /* twice in this batch (written to the ledger only once written):
         * the hash set says maybe, the scan makes sure */
        if (!dup && !idset_batch_put(stamps, sl->stamp_hash))
            for (size_t j = 0; j < i && !dup; j++)
                dup = slots[j].fresh && slots[j].stamped && slots[j].stamp_hash == sl->stamp_hash &&
                      slots[j].seq == sl->seq && !strcmp(slots[j].prod, sl->prod);
        if (dup) {
            ferry_ledger_add(g->ledger, sl->prod, sl->seq); /* counts the duplicate */
            if (g->cfg.dedup) {
                sl->fresh = false;
                g->duplicates++;
                app_debug(&g->app, "duplicate skipped producer=%s seq=%" PRIu64, sl->prod, sl->seq);
                return 0;
            }
            sl->stamped = false;
        }
    }
    if (g->cfg.dedup && msg_id(g, m, id, sizeof id)) {
        sl->hash = idset_hash(id, strlen(id));
        /* in the file already, or twice in this batch */
        if (idset_has(&g->seen, sl->hash) || !idset_batch_put(ids, sl->hash)) {
            sl->fresh = false;
            g->duplicates++;
            app_debug(&g->app, "duplicate skipped id=%s", id);
            return 0;
        }
    }
    simulate_work(g, m);
    delay_work(g);
    return g->cfg.format == 1 ? put_record(g, m) : put_body_line(g, m->body, m->body_len);
}

static int run(struct agg *g)
{
    size_t max = (size_t)g->cfg.batch;
    struct ferry_msg **batch = calloc(max, sizeof *batch);   /* freed below */
    struct slot *slots = calloc(max, sizeof *slots);         /* freed below */
    struct ferry_retry_item *due = calloc(max, sizeof *due); /* freed below */
    struct idset_gen ids = {0}, stamps = {0};                /* of this batch; freed below */
    if (!batch || !slots || !due || idset_batch_init(&ids, max) || idset_batch_init(&stamps, max)) {
        free(ids.v);
        free(batch);
        free(slots);
        free(due);
        return EX_OSERR;
    }
    int exit_code = EX_OK;
    int64_t last_msg = ferry_mono_ms();
    struct ferry_backoff rb; /* receive failures */
    ferry_backoff_init(&rb, 100, 30000);
    while (!*g->app.stop) {
        app_http_refresh(g->metrics, g->conn, NULL, true, NULL, &g->last_refresh, false);
        if (*g->app.hup) {
            *g->app.hup = 0;
            if (open_output(g) == 0)
                app_info(&g->app, "reopened output file=%s", g->cfg.output);
        }
        size_t want = max;
        if (g->cfg.count && g->cfg.count - (int64_t)g->written < (int64_t)want)
            want = (size_t)(g->cfg.count - (int64_t)g->written);
        /* retries that are due first, then fresh messages */
        size_t n = g->retry ? ferry_retry_poll(g->retry, due, want) : 0;
        for (size_t i = 0; i < n; i++)
            slots[i].it = due[i];
        size_t got = 0;
        int wait = (int)g->cfg.batch_wait;
        int64_t next = g->retry ? ferry_retry_next_due(g->retry) : -1;
        if (n || (next >= 0 && next < wait))
            wait = n ? 0 : (int)next;
        int rc = n < want ? ferry_receive(g->conn, batch, want - n, &got, wait) : FERRY_OK;
        for (size_t i = 0; i < got; i++)
            slots[n + i].it =
                (struct ferry_retry_item){g->conn, batch[i], ferry_retry_attempts(batch[i])};
        n += got;
        if (rc != FERRY_OK && rc != FERRY_E_TIMEOUT && !n) {
            if (!ferry_status_retriable(rc)) {
                app_error(&g->app, "receive failed error=\"%s\"", ferry_conn_error(g->conn));
                exit_code = app_exit_code(rc);
                break;
            }
            int64_t d = ferry_backoff_next(&rb);
            app_warn(&g->app, "receive failed error=\"%s\" retry_in=%" PRId64 "ms",
                     ferry_conn_error(g->conn), d);
            app_sleep(&g->app, d);
            continue;
        }
        if (!n) {
            if (g->cfg.idle_exit && ferry_mono_ms() - last_msg >= g->cfg.idle_exit &&
                (!g->retry || ferry_retry_next_due(g->retry) < 0)) {
                app_info(&g->app, "idle for %" PRId64 " ms, exiting", g->cfg.idle_exit);
                break;
            }
            continue;
        }
        ferry_backoff_reset(&rb);
        last_msg = ferry_mono_ms();
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        g->received += got;
        g->len = 0;
        idset_batch_clear(&ids);
        idset_batch_clear(&stamps);
        size_t new_count = 0;
        for (size_t i = 0; i < n && exit_code == EX_OK; i++) {
            if (take(g, slots, i, &ids, &stamps)) {
                app_error(&g->app, "out of memory");
                exit_code = EX_OSERR;
            } else if (slots[i].fresh) {
                new_count++;
            }
        }
        /* durable before acked: retry the write in place until it works or
         * we stop, or count a failed attempt of each message */
        struct ferry_backoff wb;
        ferry_backoff_init(&wb, g->cfg.retry_backoff_min, g->cfg.retry_backoff_max);
        bool write_failed = false, diverted = false;
        while (exit_code == EX_OK && g->len && write_batch(g)) {
            char why[512];
            snprintf(why, sizeof why, "cannot write %s: %s", g->cfg.output, strerror(errno));
            if (!write_failed)
                ferry_metrics_count(g->series, FERRY_CTR_PROC_ERRORS, n);
            write_failed = true;
            app_http_refresh(g->metrics, g->conn, NULL, false, "cannot write the output file",
                             &g->last_refresh, true);
            if (g->retry) {
                if (retry_batch(g, slots, n, why))
                    app_sleep(&g->app, ferry_backoff_next(&wb)); /* let the fault clear */
                diverted = true;
                break;
            }
            int64_t d = ferry_backoff_next(&wb);
            app_error(&g->app,
                      "write failed file=%s error=\"%s\" holding=%zu retry_in=%" PRId64 "ms",
                      g->cfg.output, strerror(errno), n, d);
            if (*g->app.stop) {
                exit_code = EX_IOERR;
                break;
            }
            app_sleep(&g->app, d);
            if (*g->app.hup) { /* logrotate may have moved the file meanwhile */
                *g->app.hup = 0;
                open_output(g);
            }
        }
        if (diverted)
            continue;
        if (exit_code != EX_OK) {
            for (size_t i = 0; i < n; i++)
                ferry_release(slots[i].it.conn, slots[i].it.msg);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (slots[i].fresh && slots[i].hash)
                idset_add(&g->seen, slots[i].hash);
            if (slots[i].fresh && slots[i].stamped &&
                ferry_ledger_add(g->ledger, slots[i].prod, slots[i].seq) < 0)
                app_warn(&g->app, "ledger out of memory producer=%s seq=%" PRIu64, slots[i].prod,
                         slots[i].seq);
            int ar = ferry_ack(slots[i].it.conn, slots[i].it.msg);
            if (ar != FERRY_OK && ar != FERRY_E_NOTSUP)
                app_debug(&g->app, "ack failed error=\"%s\" (the broker will redeliver)",
                          ferry_conn_error(slots[i].it.conn));
        }
        g->written += new_count;
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        ferry_metrics_count(g->series, FERRY_CTR_CONSUMED, n);
        for (size_t i = 0; i < n; i++) /* each message waited for its whole batch */
            ferry_metrics_observe(g->series, took);
        if (write_failed)
            app_http_refresh(g->metrics, g->conn, NULL, true, NULL, &g->last_refresh, true);
        if (g->cfg.count && (int64_t)g->written >= g->cfg.count)
            break;
    }
    free(batch);
    free(slots);
    free(due);
    free(ids.v);
    free(stamps.v);
    return exit_code;
}

void app_aggregator_e2e(const struct agg *g, struct ferry_ledger_totals *out)
{
    ferry_ledger_totals(g->ledger, out);
}

/* --verify FILE: the ledger of an output file, printed on stdout.
 * 0 when every producer's seqs are all there exactly once, 65 otherwise. */
static int verify_file(struct agg *g)
{
    FILE *f = fopen(g->cfg.verify, "r");
    if (!f) {
        fprintf(stderr, "ferry-aggregator: error: cannot open %s: %s\n", g->cfg.verify,
                strerror(errno));
        return EX_NOINPUT;
    }
    struct ferry_ledger *l = ferry_ledger_new(0, 0); /* freed below */
    if (!l) {
        fclose(f);
        return EX_OSERR;
    }
    ferry_ledger_expect(l, (uint64_t)g->cfg.expect);
    char *line = NULL; /* freed below */
    size_t cap = 0;
    ssize_t n;
    int rerr = 0;
    uint64_t lines = 0, unstamped = 0, ids = 0, dup_ids = 0;
    /* every id of the file, to count the ones written twice */
    struct idset_gen seen = {0}; /* freed below */
    while ((n = getline(&line, &cap, f)) > 0) {
        lines++;
        char prod[256];
        uint64_t seq;
        cJSON *o = cJSON_ParseWithLength(line, (size_t)n); /* freed below */
        if (!o || !line_stamp(o, prod, sizeof prod, &seq) || ferry_ledger_add(l, prod, seq) < 0)
            unstamped++;
        const char *id = o ? line_id(o, g->cfg.id_field) : NULL;
        if (id) {
            if (seen.n * 2 >= seen.cap) {
                struct idset_gen bigger = {0};
                if (idset_batch_init(&bigger, seen.cap ? seen.cap : 1024)) {
                    cJSON_Delete(o);
                    rerr = -1;
                    break;
                }
                for (size_t i = 0; i < seen.cap; i++)
                    if (seen.v[i])
                        idset_batch_put(&bigger, seen.v[i]);
                free(seen.v);
                seen = bigger;
            }
            ids++;
            if (!idset_batch_put(&seen, idset_hash(id, strlen(id))))
                dup_ids++;
        }
        cJSON_Delete(o);
    }
    free(seen.v);
    free(line);
    if (!rerr)
        rerr = ferror(f);
    fclose(f);
    struct ferry_ledger_totals t;
    ferry_ledger_totals(l, &t);
    printf("file=%s lines=%" PRIu64 " unstamped=%" PRIu64 " producers=%" PRIu64 " ids=%" PRIu64
           " duplicate_ids=%" PRIu64 "\n",
           g->cfg.verify, lines, unstamped, t.producers, ids, dup_ids);
    ferry_ledger_report(l, stdout, 50);
    bool ok = !rerr && t.missing == 0 && t.duplicates == 0 && dup_ids == 0 &&
              (t.producers > 0 || !g->cfg.expect);
    printf("result=%s received=%" PRIu64 " unique=%" PRIu64 " missing=%" PRIu64
           " duplicates=%" PRIu64 "\n",
           ok ? "complete" : "incomplete", t.received, t.unique, t.missing, t.duplicates);
    ferry_ledger_free(l);
    if (rerr) {
        fprintf(stderr, "ferry-aggregator: error: cannot read %s\n", g->cfg.verify);
        return EX_IOERR;
    }
    return ok ? EX_OK : EX_DATAERR;
}

/* The retrier, dead-lettering to cfg.dead_letter or DESTINATION.dead-letter. */
static struct ferry_retry *agg_retry(struct agg *g, int *rc)
{
    const char *dest = g->cfg.destination;
    size_t len =
        g->cfg.dead_letter ? strlen(g->cfg.dead_letter) + 1 : strlen(dest) + sizeof ".dead-letter";
    g->dead_letter = malloc(len); /* freed at the end of ferry_aggregator_main() */
    *rc = -1;
    if (!g->dead_letter)
        return NULL;
    if (g->cfg.dead_letter)
        memcpy(g->dead_letter, g->cfg.dead_letter, len);
    else
        snprintf(g->dead_letter, len, "%s.dead-letter", dest);
    return app_retry_new(&g->app, g->conn, dest, g->cfg.group, g->dead_letter, g->cfg.max_retries,
                         g->cfg.retry_backoff_min, g->cfg.retry_backoff_max, g->cfg.retry_mode, 0,
                         rc);
}

int ferry_aggregator_main(int argc, char **argv)
{
    struct agg g = {.fd = -1};
    static const struct app_spec spec_tmpl = {
        .prog = "ferry-aggregator",
        .section = "aggregator",
        .usage = "[options]",
        .about = "Consume a destination and append every message to a file, one per line,\n"
                 "acking each batch only after it is written and fsync'ed. Messages whose id\n"
                 "is already in the file are skipped. SIGHUP reopens the file (logrotate);\n"
                 "SIGTERM finishes the current batch and exits 0. --verify FILE reports the\n"
                 "producers' sequence numbers missing from or repeated in FILE (exit 0 or 65).",
        .options = app_aggregator_options};
    struct app_spec spec = spec_tmpl;
    spec.cfg = &g.cfg;
    int rc = app_init(&g.app, &spec, argc, argv);
    if (rc >= 0) {
        app_fini(&g.app);
        return rc;
    }
    if (g.app.nargs) {
        fprintf(stderr,
                "ferry-aggregator: unexpected argument '%s'\nTry 'ferry-aggregator --help'.\n",
                g.app.args[0]);
        app_fini(&g.app);
        return EX_USAGE;
    }
    if (g.cfg.verify) {
        rc = verify_file(&g);
        app_fini(&g.app);
        return rc;
    }
    char derr[256];
    if (app_parse_delay(g.cfg.delay, &g.delay_lo, &g.delay_hi, derr, sizeof derr)) {
        fprintf(stderr, "ferry-aggregator: error: %s\n", derr);
        app_fini(&g.app);
        return EX_CONFIG;
    }
    g.rng = (uint64_t)ferry_time_ms() | 1;
    rc = app_require(&g.app, g.cfg.require);
    if (rc >= 0) {
        app_fini(&g.app);
        return rc;
    }
    g.ledger = ferry_ledger_new(0, 0); /* freed at the end of ferry_aggregator_main() */
    if (!g.ledger || idset_init(&g.seen, (size_t)g.cfg.dedup_window) || load_seen(&g) ||
        open_output(&g)) {
        if (g.fd < 0 && errno)
            app_error(&g.app, "cannot use output file=%s error=\"%s\"", g.cfg.output,
                      strerror(errno));
        idset_free(&g.seen);
        ferry_ledger_free(g.ledger);
        app_fini(&g.app);
        return EX_CANTCREAT;
    }
    const char *tname = ferry_config_get(g.app.config, "transport", "plugin");
    g.metrics = ferry_metrics_new(tname ? tname : "zmq"); /* freed below */
    g.series = ferry_metrics_dest(g.metrics, g.cfg.destination);
    rc = g.metrics ? app_http_start(&g.app, g.metrics, NULL, &g.http) : EX_OSERR;
    if (rc < 0)
        g.conn = app_connect(&g.app, g.cfg.connect_timeout, &rc);
    if (!g.conn) {
        app_http_stop(g.http);
        ferry_metrics_free(g.metrics);
        close(g.fd);
        idset_free(&g.seen);
        ferry_ledger_free(g.ledger);
        app_fini(&g.app);
        return rc;
    }
    if (!(g.conn->caps & FERRY_CAP_ACK))
        app_warn(&g.app,
                 "transport cannot redeliver transport=%s: messages in flight when this "
                 "process dies are lost",
                 g.conn->transport->name);
    int st = ferry_subscribe(g.conn, g.cfg.destination, g.cfg.group);
    if (st != FERRY_OK) {
        app_error(&g.app, "subscribe failed destination=%s error=\"%s\"", g.cfg.destination,
                  ferry_conn_error(g.conn));
        rc = app_exit_code(st);
    } else if (g.cfg.max_retries >= 0 && !(g.retry = agg_retry(&g, &rc))) {
        rc = rc >= 0 ? rc : EX_OSERR; /* app_retry_new() said why */
    } else {
        app_info(&g.app, "consuming destination=%s group=%s output=%s", g.cfg.destination,
                 g.cfg.group, g.cfg.output);
        rc = run(&g);
        app_info(&g.app,
                 "stopped received=%" PRIu64 " written=%" PRIu64 " duplicates=%" PRIu64
                 " deferred=%" PRIu64 " dead_lettered=%" PRIu64,
                 g.received, g.written, g.duplicates, g.deferred, g.dead_lettered);
        struct ferry_ledger_totals t;
        app_aggregator_e2e(&g, &t);
        app_log(&g.app, t.missing || t.duplicates ? FERRY_LOG_WARN : FERRY_LOG_INFO,
                "ledger producers=%" PRIu64 " unique=%" PRIu64 " missing=%" PRIu64
                " redelivered=%" PRIu64,
                t.producers, t.unique, t.missing, t.duplicates);
    }
    app_http_stop(g.http);
    ferry_retry_free(g.retry);
    free(g.dead_letter);
    ferry_close(g.conn);
    ferry_metrics_free(g.metrics);
    close(g.fd);
    free(g.buf);
    idset_free(&g.seen);
    ferry_ledger_free(g.ledger);
    app_fini(&g.app);
    return rc;
}

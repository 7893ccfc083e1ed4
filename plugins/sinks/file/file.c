/* file.so: the default sink. Appends each committed batch to a file (or
 * standard output), one line per message, fsync'ed before the batch counts
 * as landed; skips ids already in the file; notices the file deleted or
 * replaced under it and writes the batch again at the path. */
#include "config.h"

#include <ferry/sink.h>

#include "base64.h"
#include "idset.h"
#include "jsoncheck.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum ffile_format { FFILE_BODY = 0, FFILE_RECORD, FFILE_TEXT };

struct ffile_cfg {
    char *output;
    int format; /* enum ffile_format */
    bool fsync;
    bool dedup;
    int64_t dedup_window;
    char *id_field;
};

#define C(f) offsetof(struct ffile_cfg, f)
static const struct ferry_option ffile_options[] = {
    {.name = "output",
     .type = FERRY_OPT_STR,
     .def = "aggregated_logs.txt",
     .offset = C(output),
     .help = "File every message is appended to, one per line; - is standard output (not durable, "
             "de-duplication from memory only)."},
    {.name = "format",
     .type = FERRY_OPT_ENUM,
     .def = "body",
     .choices = "body|record|text",
     .offset = C(format),
     .help = "body: each message body as is; record: a JSON object with destination, key, headers "
             "and body; text: one human line per log (timestamp service level message)."},
    {.name = "fsync",
     .type = FERRY_OPT_BOOL,
     .def = "true",
     .offset = C(fsync),
     .help = "fsync the file before a batch counts as written (turn off only for benchmarks)."},
    {.name = "dedup",
     .type = FERRY_OPT_BOOL,
     .def = "true",
     .offset = C(dedup),
     .help = "Skip messages whose id is already in the file (read at start) or was written since."},
    {.name = "dedup_window",
     .type = FERRY_OPT_INT,
     .def = "2000000",
     .min = 1000,
     .max = 1000000000,
     .offset = C(dedup_window),
     .help = "How many recent ids are remembered for de-duplication (about 16 bytes each)."},
    {.name = "id_field",
     .type = FERRY_OPT_STR,
     .def = "id",
     .offset = C(id_field),
     .help =
         "JSON member of a body holding its id, used to read the ids back from the file at start."},
    {0}};
#undef C

struct ffile {
    const struct ffile_cfg *cfg;
    bool is_stdout;
    bool stream; /* stdout, a FIFO, a terminal: no fsync, no read back, no inode check */
    int fd;
    dev_t dev; /* of the file open, to notice it deleted or replaced */
    ino_t ino;
    struct idset seen;          /* ids in the file; owned */
    struct idset_gen batch_ids; /* of the staged batch; owned */
    uint64_t *staged_hash;      /* per staged record, 0 = none or not fresh; owned */
    size_t staged_cap;
    size_t nstaged; /* records in the staged batch */
    size_t skipped; /* of them, duplicates not written */
    char *buf;      /* lines of the staged batch; owned */
    size_t len, cap;
    bool staged;
    bool failed; /* output gone for good (a closed pipe) */
    char reason[256];
    uint64_t committed, failures, reopens, duplicates;
};

/* ---- lines ------------------------------------------------------------- */

static int buf_put(struct ffile *f, const void *p, size_t n)
{
    if (f->len + n > f->cap) {
        size_t cap = (f->len + n) * 2;
        char *nb = realloc(f->buf, cap); /* freed in ffile_close() */
        if (!nb)
            return -1;
        f->buf = nb;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    return 0;
}

/* One line: the bytes of b, with newline, CR and backslash escaped so the
 * file stays line-oriented, then a newline. */
static int put_line(struct ffile *f, const char *b, size_t n)
{
    /* most bodies have none of the three: memchr is vectorised */
    if (!memchr(b, '\n', n) && !memchr(b, '\r', n) && !memchr(b, '\\', n)) {
        if (f->len + n + 1 > f->cap) /* buf_put() grows the buffer */
            return buf_put(f, b, n) || buf_put(f, "\n", 1);
        memcpy(f->buf + f->len, b, n);
        f->buf[f->len + n] = '\n';
        f->len += n + 1;
        return 0;
    }
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != '\n' && b[i] != '\r' && b[i] != '\\')
            continue;
        if (buf_put(f, b + start, i - start) || buf_put(f,
                                                        b[i] == '\n'   ? "\\n"
                                                        : b[i] == '\r' ? "\\r"
                                                                       : "\\\\",
                                                        2))
            return -1;
        start = i + 1;
    }
    return buf_put(f, b + start, n - start) || buf_put(f, "\n", 1);
}

/* True when b holds text a JSON string can carry as it is: valid UTF-8
 * without NUL bytes. */
static bool plain_text(const char *b, size_t n)
{
    return !memchr(b, '\0', n) && ferry_utf8_check(b, n) == n;
}

/* Add b as the string member name of o, or, when b is not text a JSON
 * string can carry, its base64 form as member name_base64: the record stays
 * valid UTF-8 JSON and loses no byte. Returns false when out of memory. */
static bool add_bytes(cJSON *o, const char *name, const char *b, size_t n)
{
    char member[256];
    char *v = plain_text(b, n) ? strndup(b, n) : NULL; /* freed below */
    if (!v) {
        snprintf(member, sizeof member, "%s_base64", name);
        name = member;
        v = ferry_base64_encode(b, n);
    }
    bool ok = v && cJSON_AddStringToObject(o, name, v);
    free(v);
    return ok;
}

/* {"destination":..,"key":..,"headers":{..},"body":..}: a body that is
 * JSON goes in as JSON, other text as a string; a key, header or body that
 * is not valid UTF-8 or holds a NUL goes in base64 as key_base64, a member
 * of headers_base64 (name and value in base64) or body_base64. */
static int put_record(struct ffile *f, const struct ferry_msg *m)
{
    cJSON *o = cJSON_CreateObject(); /* freed below, with all it holds */
    bool ok = o && cJSON_AddStringToObject(o, "destination", m->dest ? m->dest : "");
    if (ok && m->key)
        ok = add_bytes(o, "key", m->key, m->key_len);
    cJSON *h = ok ? cJSON_AddObjectToObject(o, "headers") : NULL, *hb = NULL;
    ok = h != NULL;
    for (size_t i = 0; ok && i < m->n_headers; i++) {
        const struct ferry_header *x = &m->headers[i];
        const char *name = x->name ? x->name : "";
        if (plain_text(name, strlen(name)) && plain_text(x->value, x->value_len)) {
            ok = add_bytes(h, name, x->value, x->value_len);
            continue;
        }
        if (!hb)
            hb = cJSON_AddObjectToObject(o, "headers_base64");
        char *bn = ferry_base64_encode(name, strlen(name)),
             *bv = ferry_base64_encode(x->value, x->value_len);
        ok = hb && bn && bv && cJSON_AddStringToObject(hb, bn, bv);
        free(bn);
        free(bv);
    }
    if (ok && plain_text(m->body, m->body_len)) {
        cJSON *body = cJSON_ParseWithLength(m->body, m->body_len);
        if (body)
            cJSON_AddItemToObject(o, "body", body);
        else
            ok = add_bytes(o, "body", m->body, m->body_len);
    } else if (ok) {
        ok = add_bytes(o, "body", m->body, m->body_len);
    }
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL; /* freed below */
    cJSON_Delete(o);
    if (!text)
        return -1;
    int rc = buf_put(f, text, strlen(text)) || buf_put(f, "\n", 1);
    free(text);
    return rc;
}

static const char *json_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "2026-12-02T10:00:00.000Z auth ERROR disk full": the envelope's timestamp
 * (else the time received), service, level and message; a body that is not
 * an envelope is printed as it is after the time received. */
static int put_text(struct ffile *f, const struct ferry_sink_record *r)
{
    const struct ferry_msg *m = r->msg;
    char now[40];
    time_t secs = (time_t)(r->received_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t k = strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(now + k, sizeof now - k, ".%03dZ", (int)(r->received_ms % 1000));
    cJSON *o = cJSON_ParseWithLength(m->body, m->body_len); /* freed below */
    const char *msg = cJSON_IsObject(o) ? json_str(o, "message") : NULL;
    int rc;
    if (msg) {
        const char *ts = json_str(o, "timestamp"), *svc = json_str(o, "service"),
                   *lvl = json_str(o, "level");
        char head[512];
        int n = snprintf(head, sizeof head, "%s %s %s ", ts && *ts ? ts : now,
                         svc && *svc ? svc : "-", lvl && *lvl ? lvl : "-");
        rc = buf_put(f, head, n > 0 && (size_t)n < sizeof head ? (size_t)n : strlen(head)) ||
             put_line(f, msg, strlen(msg));
    } else {
        rc = buf_put(f, now, strlen(now)) || buf_put(f, " - - ", 5) ||
             put_line(f, m->body, m->body_len);
    }
    cJSON_Delete(o);
    return rc;
}

/* ---- ids read back from the file ------------------------------------- */

static bool stamp_id(const cJSON *prod, const cJSON *seq, char *buf, size_t len)
{
    if (!cJSON_IsString(prod) || !prod->valuestring[0])
        return false;
    if (cJSON_IsNumber(seq) && seq->valuedouble >= 1)
        snprintf(buf, len, "%s#%.0f", prod->valuestring, seq->valuedouble);
    else if (cJSON_IsString(seq) && seq->valuestring[0])
        snprintf(buf, len, "%s#%s", prod->valuestring, seq->valuestring);
    else
        return false;
    return true;
}

/* The id the core gives a record (the body's id field, else the x-ferry-id
 * header, else the producer's stamp "PRODUCER#SEQ"), recovered from one
 * line of the file. */
static bool line_id(const struct ffile_cfg *cfg, const char *line, size_t n, char *buf, size_t len)
{
    const char *field = cfg->id_field;
    size_t fl = strlen(field);
    /* fast path: a body line that begins {"id":"..." */
    if (cfg->format == FFILE_BODY && n > fl + 5 && line[0] == '{' && line[1] == '"' &&
        !memcmp(line + 2, field, fl) && !memcmp(line + 2 + fl, "\":\"", 3)) {
        const char *v = line + fl + 5, *end = memchr(v, '"', n - fl - 5);
        if (end && end > v && !memchr(v, '\\', (size_t)(end - v)) && (size_t)(end - v) < len) {
            memcpy(buf, v, (size_t)(end - v));
            buf[end - v] = '\0';
            return true;
        }
    }
    cJSON *o = cJSON_ParseWithLength(line, n); /* freed below */
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return false;
    }
    const cJSON *body =
        cfg->format == FFILE_RECORD ? cJSON_GetObjectItemCaseSensitive(o, "body") : o;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, field);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "headers");
    /* a record whose body has no id: the x-ferry-id header (HTTP payloads) */
    const cJSON *hid =
        cfg->format == FFILE_RECORD ? cJSON_GetObjectItemCaseSensitive(h, "x-ferry-id") : NULL;
    bool ok = true;
    if (cJSON_IsString(id) && id->valuestring[0])
        snprintf(buf, len, "%s", id->valuestring);
    else if (cJSON_IsNumber(id))
        snprintf(buf, len, "%.17g", id->valuedouble);
    else if (cJSON_IsString(hid) && hid->valuestring[0])
        snprintf(buf, len, "%s", hid->valuestring);
    else if (!stamp_id(cJSON_GetObjectItemCaseSensitive(body, "producer"),
                       cJSON_GetObjectItemCaseSensitive(body, "seq"), buf, len)) {
        ok = cfg->format == FFILE_RECORD &&
             stamp_id(cJSON_GetObjectItemCaseSensitive(h, "x-ferry-producer"),
                      cJSON_GetObjectItemCaseSensitive(h, "x-ferry-seq"), buf, len);
    }
    cJSON_Delete(o);
    return ok;
}

/* Call fn for the id of every line of the file at path; a torn last line
 * (no newline: a crash mid-write) is cut off when cut is set. */
static int scan_ids(struct ffile *f, const char *path, bool cut,
                    void (*fn)(struct ffile *f, const char *id, void *ctx), void *ctx)
{
    FILE *in = fopen(path, "r");
    if (!in)
        return errno == ENOENT ? 0 : -1;
    char *line = NULL; /* freed below */
    size_t cap = 0;
    ssize_t n;
    off_t good = 0;
    char id[512];
    while ((n = getline(&line, &cap, in)) > 0) {
        if (line[n - 1] != '\n')
            break; /* torn */
        good += n;
        if (line_id(f->cfg, line, (size_t)n - 1, id, sizeof id))
            fn(f, id, ctx);
    }
    free(line);
    bool err = ferror(in);
    fclose(in);
    if (err)
        return -1;
    struct stat sb;
    if (cut && stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > good &&
        truncate(path, good) != 0)
        return -1;
    return 0;
}

static void remember(struct ffile *f, const char *id, void *ctx)
{
    uint64_t *count = ctx;
    idset_add(&f->seen, idset_hash(id, strlen(id)));
    (*count)++;
}

/* ---- the file ---------------------------------------------------------- */

static int open_path(struct ferry_sink_conn *s, struct ffile *f)
{
    int fd = open(f->cfg->output, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return ferry_sink_fail(
            s, e == EACCES || e == ENOENT || e == EISDIR ? FERRY_E_CONFIG : FERRY_E_AGAIN,
            "cannot open output file %s: %s", f->cfg->output, strerror(e));
    }
    if (f->fd >= 0)
        close(f->fd);
    f->fd = fd;
    f->dev = sb.st_dev;
    f->ino = sb.st_ino;
    return FERRY_OK;
}

/* Whether the path still names the file open (logrotate without SIGHUP, a
 * mistaken rm); false also when the path is gone. The check and the write
 * are not atomic: a file replaced right after the check still gets the
 * batch, which the check after the write then finds in the rotated file. */
static bool same_file(const struct ffile *f)
{
    struct stat sb;
    return stat(f->cfg->output, &sb) == 0 && sb.st_dev == f->dev && sb.st_ino == f->ino;
}

static void ffile_free(struct ffile *f)
{
    if (f->fd >= 0 && !f->is_stdout)
        close(f->fd);
    idset_free(&f->seen);
    free(f->batch_ids.v);
    free(f->staged_hash);
    free(f->buf);
    free(f);
}

static int ffile_open(struct ferry_sink_conn *s)
{
    const struct ffile_cfg *cfg = s->cfg;
    struct ffile *f = calloc(1, sizeof *f); /* freed in ffile_close() */
    if (!f)
        return ferry_sink_fail(s, FERRY_E_FATAL, "out of memory");
    f->cfg = cfg;
    f->fd = -1;
    f->is_stdout = !strcmp(cfg->output, "-");
    /* /dev/stdout, a FIFO, a terminal: a stream, never read back (reading
     * the read end of our own pipe would wait forever) */
    struct stat pb;
    bool stream = !f->is_stdout && stat(cfg->output, &pb) == 0 && !S_ISREG(pb.st_mode);
    if (idset_init(&f->seen, (size_t)cfg->dedup_window) || idset_batch_init(&f->batch_ids, 1024)) {
        ffile_free(f);
        return ferry_sink_fail(s, FERRY_E_FATAL, "out of memory");
    }
    if (f->is_stdout) {
        /* never read back: stdout may be a terminal or a pipe (today's
         * /dev/stdout hang); ids are remembered from this run only */
        f->fd = STDOUT_FILENO;
        f->stream = true;
        s->caps &= ~(uint32_t)(FERRY_SINK_CAP_DURABLE | FERRY_SINK_CAP_IDEMPOTENT);
    } else {
        uint64_t known = 0;
        if (cfg->dedup && cfg->format != FFILE_TEXT && !stream &&
            scan_ids(f, cfg->output, true, remember, &known)) {
            int e = errno;
            ffile_free(f);
            return ferry_sink_fail(s, FERRY_E_CONFIG, "cannot read output file %s: %s", cfg->output,
                                   strerror(e));
        }
        int st = open_path(s, f);
        if (st != FERRY_OK) {
            ffile_free(f);
            return st;
        }
        f->stream = stream;
        if (known)
            ferry_sink_log(s, FERRY_LOG_INFO, "resuming output file=%s known_ids=%" PRIu64,
                           cfg->output, known);
        if (!cfg->fsync || stream)
            s->caps &= ~(uint32_t)FERRY_SINK_CAP_DURABLE;
        if (stream)
            s->caps &= ~(uint32_t)FERRY_SINK_CAP_IDEMPOTENT;
        /* text lines carry no id to read back at the next start */
        if (cfg->format == FFILE_TEXT)
            s->caps &= ~(uint32_t)FERRY_SINK_CAP_IDEMPOTENT;
    }
    if (!cfg->dedup)
        s->caps &= ~(uint32_t)FERRY_SINK_CAP_IDEMPOTENT;
    s->priv = f;
    return FERRY_OK;
}

static void ffile_close(struct ferry_sink_conn *s)
{
    ffile_free(s->priv);
    s->priv = NULL;
}

static int ffile_write(struct ferry_sink_conn *s, struct ferry_sink_record *recs, size_t n)
{
    struct ffile *f = s->priv;
    f->len = 0;
    f->staged = true;
    f->nstaged = 0;
    if (n > f->staged_cap) {
        uint64_t *nh = realloc(f->staged_hash, n * sizeof *nh); /* freed in ffile_free() */
        if (!nh)
            return ferry_sink_fail(s, FERRY_E_AGAIN, "out of memory");
        f->staged_hash = nh;
        f->staged_cap = n;
        free(f->batch_ids.v);
        f->batch_ids = (struct idset_gen){0};
        if (idset_batch_init(&f->batch_ids, n))
            return ferry_sink_fail(s, FERRY_E_AGAIN, "out of memory");
    }
    idset_batch_clear(&f->batch_ids);
    f->nstaged = n;
    f->skipped = 0;
    for (size_t i = 0; i < n; i++) {
        const struct ferry_sink_record *r = &recs[i];
        f->staged_hash[i] = 0;
        if (f->cfg->dedup && r->id && *r->id) {
            uint64_t h = idset_hash(r->id, strlen(r->id));
            /* in the file already, or twice in this batch */
            if (idset_has(&f->seen, h) || !idset_batch_put(&f->batch_ids, h)) {
                f->duplicates++;
                f->skipped++;
                ferry_sink_log(s, FERRY_LOG_DEBUG, "duplicate skipped id=%s", r->id);
                continue;
            }
            f->staged_hash[i] = h;
        }
        const struct ferry_msg *m = r->msg;
        int rc = f->cfg->format == FFILE_RECORD ? put_record(f, m)
                 : f->cfg->format == FFILE_TEXT ? put_text(f, r)
                                                : put_line(f, m->body, m->body_len);
        if (rc) {
            idset_batch_forget(&f->batch_ids, f->staged_hash, i + 1);
            return ferry_sink_fail(s, FERRY_E_AGAIN, "out of memory");
        }
    }
    /* the batch's own ids matter only within this call */
    idset_batch_forget(&f->batch_ids, f->staged_hash, n);
    return FERRY_OK;
}

/* Write the staged lines and make them durable; on failure the file is
 * cut back to where it was, so nothing of the batch stays. */
static int put_all(struct ferry_sink_conn *s, struct ffile *f)
{
    struct stat sb;
    off_t before = !f->stream && fstat(f->fd, &sb) == 0 ? sb.st_size : -1;
    size_t off = 0;
    while (off < f->len) {
        ssize_t w = write(f->fd, f->buf + off, f->len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        off += (size_t)w;
    }
    if (!f->stream && f->cfg->fsync && fdatasync(f->fd))
        goto fail;
    return FERRY_OK;
fail:;
    int e = errno;
    if (before >= 0 && ftruncate(f->fd, before) == 0 && f->cfg->fsync)
        fdatasync(f->fd);
    if (f->stream && e == EPIPE) {
        f->failed = true;
        snprintf(f->reason, sizeof f->reason, "%s closed by its reader",
                 f->is_stdout ? "standard output" : f->cfg->output);
        return ferry_sink_fail(s, FERRY_E_FATAL, "%s", f->reason);
    }
    snprintf(f->reason, sizeof f->reason, "cannot write %s: %s", f->cfg->output, strerror(e));
    return ferry_sink_fail(s, FERRY_E_AGAIN, "%s", f->reason);
}

static int ffile_commit(struct ferry_sink_conn *s)
{
    struct ffile *f = s->priv;
    int st = FERRY_OK;
    /* the path must still name our file before and after the write, or the
     * batch would be acked into a file nobody can see: reopen, write again */
    for (int tries = 0; f->len; tries++) {
        if (!f->stream && !same_file(f)) {
            if (tries >= 3) {
                st = ferry_sink_fail(s, FERRY_E_AGAIN, "output file %s keeps being replaced",
                                     f->cfg->output);
                break;
            }
            ferry_sink_log(s, FERRY_LOG_WARN,
                           "output file deleted or replaced file=%s, "
                           "reopening it and writing the batch there",
                           f->cfg->output);
            if ((st = open_path(s, f)) != FERRY_OK) {
                if (st == FERRY_E_CONFIG)
                    st = FERRY_E_AGAIN; /* the directory may come back */
                break;
            }
            f->reopens++;
        }
        if ((st = put_all(s, f)) != FERRY_OK)
            break;
        if (f->stream || same_file(f))
            break;
        /* moved away meanwhile (rotated): the batch is in the rotated file,
         * which someone can read; later batches go to the path. Deleted: it
         * is nowhere, write it again at the path. */
        struct stat sb;
        if (fstat(f->fd, &sb) == 0 && sb.st_nlink > 0) {
            ferry_sink_log(s, FERRY_LOG_WARN, "output file replaced file=%s, reopening it",
                           f->cfg->output);
            if (open_path(s, f) == FERRY_OK)
                f->reopens++;
            break;
        }
    }
    if (st != FERRY_OK) {
        f->failures++;
        return st;
    }
    f->reason[0] = '\0';
    for (size_t i = 0; i < f->nstaged; i++)
        if (f->staged_hash[i])
            idset_add(&f->seen, f->staged_hash[i]);
    f->committed += f->nstaged - f->skipped;
    f->nstaged = 0;
    f->staged = false;
    f->len = 0;
    return FERRY_OK;
}

static void ffile_abort(struct ferry_sink_conn *s)
{
    struct ffile *f = s->priv;
    f->len = 0;
    f->nstaged = 0;
    f->staged = false;
}

static int ffile_health(struct ferry_sink_conn *s, struct ferry_sink_health *out)
{
    struct ffile *f = s->priv;
    if (f->stream && !f->failed) {
        /* a pipe whose reader is gone: say so now rather than at the next
         * batch, which may never come (`ferry-aggregator --output - | head`) */
        struct pollfd p = {.fd = f->fd, .events = 0};
        if (poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP))) {
            f->failed = true;
            snprintf(f->reason, sizeof f->reason, "%s closed by its reader",
                     f->is_stdout ? "standard output" : f->cfg->output);
        }
    }
    out->state = f->failed      ? FERRY_HEALTH_FAILED
                 : f->reason[0] ? FERRY_HEALTH_BLOCKED
                                : FERRY_HEALTH_CONNECTED;
    snprintf(out->reason, sizeof out->reason, "%s", f->reason);
    out->committed = f->committed;
    out->failures = f->failures;
    out->reconnects = f->reopens;
    return FERRY_OK;
}

static int ffile_reopen(struct ferry_sink_conn *s)
{
    struct ffile *f = s->priv;
    if (f->is_stdout)
        return FERRY_OK;
    int st = open_path(s, f);
    if (st == FERRY_OK)
        f->reopens++;
    return st;
}

struct count_ctx {
    const char *id;
    uint64_t n;
};

static void count_one(struct ffile *f, const char *id, void *ctx)
{
    (void)f;
    struct count_ctx *c = ctx;
    if (!strcmp(id, c->id))
        c->n++;
}

static int ffile_count(struct ferry_sink_conn *s, const char *id, uint64_t *out)
{
    struct ffile *f = s->priv;
    if (f->stream || f->cfg->format == FFILE_TEXT)
        return ferry_sink_fail(s, FERRY_E_NOTSUP, "%s cannot be read back",
                               f->stream ? "a stream" : "format = text");
    struct count_ctx c = {id, 0};
    if (scan_ids(f, f->cfg->output, false, count_one, &c))
        return ferry_sink_fail(s, FERRY_E_AGAIN, "cannot read %s: %s", f->cfg->output,
                               strerror(errno));
    *out = c.n;
    return FERRY_OK;
}

static const struct ferry_sink_ops ffile_ops = {.size = sizeof(struct ferry_sink_ops),
                                                .open = ffile_open,
                                                .close = ffile_close,
                                                .write = ffile_write,
                                                .commit = ffile_commit,
                                                .abort = ffile_abort,
                                                .health = ffile_health,
                                                .reopen = ffile_reopen,
                                                .count = ffile_count};

#define ferry_sink_descriptor file_LTX_ferry_sink_descriptor
const struct ferry_sink ferry_sink_descriptor = {
    .abi = FERRY_SINK_ABI,
    .size = sizeof(struct ferry_sink),
    .name = "file",
    .summary = "Append each message to a file or standard output, fsync'ed before the ack",
    .caps = FERRY_SINK_CAP_TRANSACTIONAL | FERRY_SINK_CAP_IDEMPOTENT | FERRY_SINK_CAP_DURABLE,
    .options = ffile_options,
    .cfg_size = sizeof(struct ffile_cfg),
    .ops = &ffile_ops};

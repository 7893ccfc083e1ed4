/* PostgreSQL sink for ferry: each batch is one transaction (COPY into a
 * temporary table, INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING,
 * COMMIT) through libpq. Table layout and guarantees: README.md here. */
#include "config.h"

#include <ferry/sink.h>

#include "jsoncheck.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Filled by the core from fpg_options before open(). */
struct fpg_cfg {
    char *conninfo;
    char *table;
    bool create_table;
    char *columns;
    int64_t connect_timeout_ms;
    int64_t statement_timeout_ms;
    int64_t reconnect_min_ms;
    int64_t reconnect_max_ms;
};

static const struct ferry_option fpg_options[] = {
    {.name = "conninfo",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .def = "",
     .offset = offsetof(struct fpg_cfg, conninfo),
     .help = "libpq connection string (\"host=db port=5432 dbname=logs user=ferry "
             "password=...\" or a postgresql:// URI); empty uses libpq's PG* environment; "
             "a secret: prefer conninfo_file or FERRY_POSTGRESQL_CONNINFO."},
    {.name = "table",
     .type = FERRY_OPT_STR,
     .def = "ferry_logs",
     .offset = offsetof(struct fpg_cfg, table),
     .help = "Table the rows go to, optionally schema.table."},
    {.name = "create_table",
     .type = FERRY_OPT_BOOL,
     .def = "true",
     .offset = offsetof(struct fpg_cfg, create_table),
     .help = "Create the table (and the mapped columns) when missing; with false a "
             "missing table or column is a configuration error at start."},
    {.name = "columns",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fpg_cfg, columns),
     .help = "JSON members of the body copied into columns of their own, "
             "\"name:type, ...\", e.g. \"service:text, level:text, timestamp:timestamptz\"."},
    {.name = "connect_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "10s",
     .min = 1000,
     .max = 3600000,
     .offset = offsetof(struct fpg_cfg, connect_timeout_ms),
     .help = "How long one connection attempt may take, in milliseconds (whole seconds)."},
    {.name = "statement_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "60s",
     .min = 0,
     .max = 86400000,
     .offset = offsetof(struct fpg_cfg, statement_timeout_ms),
     .help = "Server-side limit for each statement of a batch, in milliseconds; 0 for none."},
    {.name = "reconnect_min",
     .type = FERRY_OPT_DURATION,
     .def = "100ms",
     .min = 1,
     .max = 600000,
     .offset = offsetof(struct fpg_cfg, reconnect_min_ms),
     .help = "First delay before reconnecting after a lost connection, in milliseconds; "
             "it doubles up to reconnect_max."},
    {.name = "reconnect_max",
     .type = FERRY_OPT_DURATION,
     .def = "5s",
     .min = 1,
     .max = 3600000,
     .offset = offsetof(struct fpg_cfg, reconnect_max_ms),
     .help = "Longest delay between reconnection attempts, in milliseconds."},
    {0}};

#define FPG_STAGE "ferry_stage"
#define FPG_MAX_COLUMNS 64

/* A growable byte buffer. */
struct fpg_buf {
    char *p;
    size_t len, cap;
    bool oom;
};

struct fpg_column {
    char *ident;  /* quoted identifier; freed in fpg_free() */
    char *type;   /* SQL type as written; freed in fpg_free() */
    char *member; /* the JSON member name as an SQL literal; freed in fpg_free() */
    bool json;    /* type jsonb/json: take the member as JSON, not as text */
    bool text;    /* a character type: assigned as text, so a value too long for
                      varchar(n) is refused (an explicit cast would cut it) */
};

struct fpg {
    const struct fpg_cfg *cfg;
    PGconn *pg;  /* NULL while disconnected */
    char *table; /* quoted, schema-qualified; freed in fpg_free() */
    struct fpg_column cols[FPG_MAX_COLUMNS];
    size_t ncols;
    char *insert_sql;     /* INSERT ... SELECT of the whole stage */
    char *insert_row_sql; /* the same for one row (WHERE seq = $1) */
    bool table_ok;        /* the table was created/checked on this connection */
    /* the staged batch (borrowed records, our COPY text) */
    struct ferry_sink_record *recs;
    size_t n;
    struct fpg_buf copy;
    uint64_t batch_nonjson;
    uint64_t batch_landed; /* rows the INSERTs of this batch added */
    /* reconnection */
    int64_t next_attempt_ms;
    int64_t backoff_ms;
    uint64_t rng; /* xorshift state for the jitter */
    bool ever_connected;
    /* generated ids for records without one */
    char noid_prefix[40];
    uint64_t noid_seq;
    char (*noids)[64]; /* per staged record; freed in fpg_free() */
    size_t noids_cap;
    /* health */
    enum ferry_health_state state;
    char reason[256];
    uint64_t committed, rejected, failures, reconnects, nonjson;
    struct fpg_buf reasons; /* per-record reasons of the last commit */
};

/* ---------------------------------------------------------------------- */
/* Small helpers */

static int64_t fpg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fpg_reserve(struct fpg_buf *b, size_t more)
{
    if (b->oom || b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap); /* freed in fpg_free() */
    if (!p) {
        b->oom = true;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void fpg_put(struct fpg_buf *b, const void *s, size_t n)
{
    fpg_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void fpg_puts(struct fpg_buf *b, const char *s)
{
    fpg_put(b, s, strlen(s));
}

static void fpg_putc(struct fpg_buf *b, char c)
{
    fpg_reserve(b, 1);
    if (b->oom)
        return;
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}

/* Replace text[from, to) by mask, within cap bytes (the tail is cut when
 * the mask is longer than what it replaces and text is full). */
static void fpg_splice(char *text, size_t cap, size_t from, size_t to, const char *mask)
{
    size_t len = strlen(text), ml = strlen(mask);
    if (from + ml >= cap)
        ml = cap - 1 - from;
    size_t tail = len - to;
    if (from + ml + tail >= cap)
        tail = cap - 1 - from - ml;
    memmove(text + from + ml, text + to, tail);
    memcpy(text + from, mask, ml);
    text[from + ml + tail] = '\0';
}

/* Hide the value of every password=... and of a URI's user:password@ in
 * text (libpq's messages and ours may quote the connection string). */
static void fpg_redact(char *text, size_t cap)
{
    static const char mask[] = "(redacted)";
    char *p = text;
    while ((p = strstr(p, "password")) != NULL) {
        p += strlen("password");
        char *v = p;
        while (*v == ' ' || *v == '\t')
            v++;
        if (*v != '=')
            continue;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        char *e = v;
        if (*e == '\'') {
            e++;
            while (*e && *e != '\'')
                e += (*e == '\\' && e[1]) ? 2 : 1;
            if (*e)
                e++;
        } else {
            while (*e && *e != ' ' && *e != '&' && *e != '\n' && *e != '"')
                e++;
        }
        fpg_splice(text, cap, (size_t)(v - text), (size_t)(e - text), mask);
        p = v + strlen(mask) < text + strlen(text) ? v + strlen(mask) : text + strlen(text);
    }
    char *u = strstr(text, "://");
    if (u) {
        char *at = strchr(u + 3, '@'), *colon = strchr(u + 3, ':');
        if (at && colon && colon < at)
            fpg_splice(text, cap, (size_t)(colon + 1 - text), (size_t)(at - text), mask);
    }
}

/* libpq's messages end with a newline and may span lines: one line. */
static void fpg_oneline(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
}

static int fpg_fail(struct ferry_sink_conn *s, int st, const char *fmt, ...) FERRY_PRINTF(3, 4);
static int fpg_fail(struct ferry_sink_conn *s, int st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    fpg_oneline(s->err);
    fpg_redact(s->err, sizeof s->err);
    return st;
}

/* ---------------------------------------------------------------------- */
/* What jsonb accepts: RFC 8259 JSON in valid UTF-8, no \u0000, surrogate
 * escapes paired. A body that passes goes to the jsonb column; any other
 * body goes to body_text (UTF-8 text without NUL) or body_raw (bytes). */

/* Length of the valid UTF-8 sequence at p (0 when invalid). */
static size_t fpg_utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned min;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        min = 0x80;
        c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        min = 0x800;
        c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        min = 0x10000;
        c &= 0x07;
    } else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return n;
}

/* jsonb takes the body as is: one JSON value in valid UTF-8, numbers of any
 * size (numeric), no \u0000 and no NUL byte, surrogate escapes paired. */
static bool fpg_jsonb_ok(const void *body, size_t len)
{
    return len > 0 && ferry_json_check(body, len, FERRY_JSON_NO_NUL | FERRY_JSON_ANY_NUMBER, NULL,
                                       NULL, 0) == 0;
}

/* body_text takes valid UTF-8 without NUL */
static bool fpg_utf8_text(const void *s, size_t n)
{
    return !memchr(s, 0, n) && ferry_utf8_check(s, n) == n;
}

/* ---------------------------------------------------------------------- */
/* COPY text format */

/* A field: bytes made valid UTF-8 text (invalid bytes and NUL become
 * U+FFFD) and escaped for COPY's text format. */
static void fpg_copy_text(struct fpg_buf *b, const void *s, size_t n)
{
    const unsigned char *p = s, *end = p + n;
    fpg_reserve(b, n + n / 8 + 8);
    while (p < end) {
        unsigned c = *p;
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            /* the common case: a run of plain ASCII */
            const unsigned char *r = p;
            while (r < end && *r >= 0x20 && *r < 0x80 && *r != '\\')
                r++;
            fpg_put(b, p, (size_t)(r - p));
            p = r;
            continue;
        }
        switch (c) {
        case '\\':
            fpg_put(b, "\\\\", 2);
            p++;
            continue;
        case '\n':
            fpg_put(b, "\\n", 2);
            p++;
            continue;
        case '\r':
            fpg_put(b, "\\r", 2);
            p++;
            continue;
        case '\t':
            fpg_put(b, "\\t", 2);
            p++;
            continue;
        case 0:
            fpg_put(b, "\xEF\xBF\xBD", 3);
            p++;
            continue;
        default: break;
        }
        if (c < 0x80) {
            fpg_putc(b, (char)c);
            p++;
            continue;
        }
        size_t l = fpg_utf8_len(p, end);
        if (l) {
            fpg_put(b, p, l);
            p += l;
        } else {
            fpg_put(b, "\xEF\xBF\xBD", 3);
            p++;
        }
    }
}

/* A JSON string literal's contents for jsonb (same repairs as above). */
static void fpg_json_text(struct fpg_buf *b, const void *s, size_t n)
{
    const unsigned char *p = s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            /* escaped for JSON, then the backslash escaped for COPY */
            fpg_puts(b, c == '"' ? "\\\\\"" : "\\\\\\\\");
            p++;
        } else if (c < 0x20 || c == 0x7F) {
            char u[16];
            snprintf(u, sizeof u, c ? "\\\\u%04x" : "\\\\ufffd", c);
            fpg_puts(b, u);
            p++;
        } else if (c < 0x80) {
            fpg_putc(b, (char)c);
            p++;
        } else {
            size_t l = fpg_utf8_len(p, end);
            if (l) {
                fpg_put(b, p, l);
                p += l;
            } else {
                fpg_puts(b, "\\\\ufffd");
                p++;
            }
        }
    }
}

static void fpg_copy_bytea(struct fpg_buf *b, const void *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = s;
    fpg_reserve(b, 2 * n + 3);
    fpg_puts(b, "\\\\x");
    for (size_t i = 0; i < n && !b->oom; i++) {
        b->p[b->len++] = hex[p[i] >> 4];
        b->p[b->len++] = hex[p[i] & 15];
    }
    if (!b->oom)
        b->p[b->len] = '\0';
}

/* ---------------------------------------------------------------------- */
/* Configuration: table name and column mapping */

static char *fpg_ident(PGconn *pg, const char *name, size_t n)
{
    return PQescapeIdentifier(pg, name, n); /* PQfreemem() */
}

static void fpg_free_cols(struct fpg *p)
{
    for (size_t i = 0; i < p->ncols; i++) {
        PQfreemem(p->cols[i].ident);
        free(p->cols[i].type);
        PQfreemem(p->cols[i].member);
    }
    p->ncols = 0;
}

static bool fpg_type_ok(const char *t)
{
    if (!*t)
        return false;
    for (const char *c = t; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '_' || *c == ' ' || *c == '(' || *c == ')'))
            return false;
    return true;
}

static const char *const fpg_reserved[] = {"id",          "received_at", "destination",
                                           "routing_key", "headers",     "body",
                                           "body_text",   "body_raw",    NULL};

/* Parse "name:type, ..." into p->cols (needs a connection for quoting). */
static int fpg_parse_columns(struct ferry_sink_conn *s, struct fpg *p)
{
    const char *spec = p->cfg->columns;
    if (!spec)
        return FERRY_OK;
    const char *c = spec;
    while (*c) {
        while (*c == ' ' || *c == ',')
            c++;
        if (!*c)
            break;
        const char *e = strchr(c, ',');
        if (!e)
            e = c + strlen(c);
        const char *colon = memchr(c, ':', (size_t)(e - c));
        if (!colon)
            return fpg_fail(s, FERRY_E_CONFIG, "columns: \"%.*s\" is not name:type", (int)(e - c),
                            c);
        const char *ne = colon;
        while (ne > c && ne[-1] == ' ')
            ne--;
        const char *t = colon + 1;
        while (t < e && *t == ' ')
            t++;
        const char *te = e;
        while (te > t && te[-1] == ' ')
            te--;
        if (ne == c)
            return fpg_fail(s, FERRY_E_CONFIG, "columns: empty name in \"%.*s\"", (int)(e - c), c);
        char *type = strndup(t, (size_t)(te - t)); /* freed in fpg_free_cols() */
        if (!type)
            return fpg_fail(s, FERRY_E_FATAL, "out of memory");
        for (char *q = type; *q; q++)
            *q = (char)tolower((unsigned char)*q);
        if (!fpg_type_ok(type)) {
            int st = fpg_fail(s, FERRY_E_CONFIG,
                              "columns: type \"%s\" of %.*s is not a SQL "
                              "type name (letters, digits, _, spaces, parentheses)",
                              type, (int)(ne - c), c);
            free(type);
            return st;
        }
        for (size_t r = 0; fpg_reserved[r]; r++)
            if (strlen(fpg_reserved[r]) == (size_t)(ne - c) &&
                !memcmp(fpg_reserved[r], c, (size_t)(ne - c))) {
                free(type);
                return fpg_fail(s, FERRY_E_CONFIG, "columns: %s is one of the sink's own columns",
                                fpg_reserved[r]);
            }
        if (p->ncols == FPG_MAX_COLUMNS) {
            free(type);
            return fpg_fail(s, FERRY_E_CONFIG, "columns: more than %d", FPG_MAX_COLUMNS);
        }
        struct fpg_column *col = &p->cols[p->ncols];
        col->type = type;
        col->ident = fpg_ident(p->pg, c, (size_t)(ne - c));
        col->member = PQescapeLiteral(p->pg, c, (size_t)(ne - c));
        col->json = !strcmp(type, "jsonb") || !strcmp(type, "json");
        col->text = !strncmp(type, "text", 4) || !strncmp(type, "varchar", 7) ||
                    !strncmp(type, "char", 4) || !strncmp(type, "character", 9) ||
                    !strncmp(type, "bpchar", 6);
        p->ncols++;
        if (!col->ident || !col->member)
            return fpg_fail(s, FERRY_E_CONFIG, "columns: %s", PQerrorMessage(p->pg));
        c = e;
    }
    return FERRY_OK;
}

static int fpg_parse_table(struct ferry_sink_conn *s, struct fpg *p)
{
    const char *t = p->cfg->table;
    if (!t || !*t)
        return fpg_fail(s, FERRY_E_CONFIG, "table is empty");
    const char *dot = strchr(t, '.');
    struct fpg_buf b = {0};
    if (dot) {
        char *a = fpg_ident(p->pg, t, (size_t)(dot - t)),
             *z = fpg_ident(p->pg, dot + 1, strlen(dot + 1));
        if (a && z) {
            fpg_puts(&b, a);
            fpg_putc(&b, '.');
            fpg_puts(&b, z);
        }
        PQfreemem(a);
        PQfreemem(z);
    } else {
        char *a = fpg_ident(p->pg, t, strlen(t));
        if (a)
            fpg_puts(&b, a);
        PQfreemem(a);
    }
    if (!b.p || b.oom) {
        free(b.p);
        return fpg_fail(s, FERRY_E_CONFIG, "table \"%s\": %s", t, PQerrorMessage(p->pg));
    }
    p->table = b.p; /* freed in fpg_free() */
    return FERRY_OK;
}

static int fpg_build_sql(struct ferry_sink_conn *s, struct fpg *p)
{
    struct fpg_buf b = {0};
    fpg_puts(&b, "INSERT INTO ");
    fpg_puts(&b, p->table);
    fpg_puts(&b, " (id, received_at, destination, routing_key, headers, body, body_text, body_raw");
    for (size_t i = 0; i < p->ncols; i++) {
        fpg_puts(&b, ", ");
        fpg_puts(&b, p->cols[i].ident);
    }
    fpg_puts(&b, ") SELECT id, to_timestamp(received_ms / 1000.0), destination, routing_key, "
                 "headers::jsonb, b, body_text, body_raw");
    for (size_t i = 0; i < p->ncols; i++) {
        fpg_puts(&b, p->cols[i].json ? ", CASE WHEN jsonb_typeof(b) = 'object' THEN (b->"
                                     : ", CASE WHEN jsonb_typeof(b) = 'object' THEN (b->>");
        fpg_puts(&b, p->cols[i].member);
        fpg_puts(&b, ")");
        if (!p->cols[i].text) {
            fpg_puts(&b, "::");
            fpg_puts(&b, p->cols[i].type);
        }
        fpg_puts(&b, " END");
    }
    fpg_puts(&b, " FROM (SELECT *, body::jsonb AS b FROM " FPG_STAGE ") s");
    size_t where = b.len;
    fpg_puts(&b, " ON CONFLICT (id) DO NOTHING");
    if (b.oom) {
        free(b.p);
        return fpg_fail(s, FERRY_E_FATAL, "out of memory");
    }
    /* the one-row variant: the same with WHERE seq = $1 */
    struct fpg_buf r = {0};
    fpg_put(&r, b.p, where);
    fpg_puts(&r, " WHERE seq = $1");
    fpg_puts(&r, b.p + where);
    if (r.oom) {
        free(b.p);
        free(r.p);
        return fpg_fail(s, FERRY_E_FATAL, "out of memory");
    }
    p->insert_sql = b.p;     /* freed in fpg_free() */
    p->insert_row_sql = r.p; /* freed in fpg_free() */
    return FERRY_OK;
}

/* ---------------------------------------------------------------------- */
/* Connection */

/* Server errors by SQLSTATE class: what the batch should do about them. */
enum fpg_err { FPG_ERR_CONN, FPG_ERR_DATA, FPG_ERR_TIMEOUT, FPG_ERR_TABLE, FPG_ERR_OTHER };

static enum fpg_err fpg_classify(PGconn *pg, const PGresult *r)
{
    if (PQstatus(pg) == CONNECTION_BAD)
        return FPG_ERR_CONN;
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (!st)
        return FPG_ERR_CONN; /* no answer from the server at all */
    if (!strncmp(st, "08", 2) || !strncmp(st, "57P", 3))
        return FPG_ERR_CONN; /* connection exception, admin/crash shutdown */
    if (!strcmp(st, "57014"))
        return FPG_ERR_TIMEOUT; /* statement_timeout */
    if (!strncmp(st, "22", 2) || !strncmp(st, "23", 2) || !strncmp(st, "54", 2))
        return FPG_ERR_DATA; /* data exception, integrity, program limit (too long) */
    if (!strcmp(st, "42P01") || !strcmp(st, "42703"))
        return FPG_ERR_TABLE; /* the table or a column is gone */
    return FPG_ERR_OTHER;
}

/* Server notices ("relation already exists, skipping") go to the debug log,
 * not to stderr as libpq would have it. */
static void fpg_notice(void *arg, const char *message)
{
    struct ferry_sink_conn *s = arg;
    char line[512];
    snprintf(line, sizeof line, "%s", message);
    fpg_oneline(line);
    ferry_sink_log(s, FERRY_LOG_DEBUG, "server notice: %s", line);
}

static void fpg_disconnect(struct fpg *p)
{
    if (p->pg)
        PQfinish(p->pg);
    p->pg = NULL;
    p->table_ok = false;
}

/* Run sql (no parameters); FERRY_OK or the error in s->err. */
static int fpg_exec(struct ferry_sink_conn *s, struct fpg *p, const char *sql, const char *what)
{
    PGresult *r = PQexec(p->pg, sql);
    ExecStatusType rs = PQresultStatus(r);
    if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK) {
        PQclear(r);
        return FERRY_OK;
    }
    enum fpg_err e = fpg_classify(p->pg, r);
    fpg_fail(s, FERRY_E_AGAIN, "%s: %s", what, PQerrorMessage(p->pg));
    PQclear(r);
    switch (e) {
    case FPG_ERR_CONN: return FERRY_E_NOCONN;
    case FPG_ERR_TIMEOUT: return FERRY_E_TIMEOUT;
    case FPG_ERR_TABLE: return FERRY_E_CONFIG;
    default: return FERRY_E_AGAIN;
    }
}

/* Create or check the table; on a fresh connection also the stage table. */
static int fpg_prepare(struct ferry_sink_conn *s, struct fpg *p)
{
    struct fpg_buf b = {0};
    int st;
    char tmo[96];
    snprintf(tmo, sizeof tmo, "SET statement_timeout = %" PRId64, p->cfg->statement_timeout_ms);
    if ((st = fpg_exec(s, p, tmo, "set statement_timeout")) != FERRY_OK)
        return st;
    /* ON COMMIT DELETE ROWS: each batch starts with an empty stage */
    if ((st = fpg_exec(s, p,
                       "CREATE TEMP TABLE IF NOT EXISTS " FPG_STAGE " (seq int, id text, "
                       "received_ms bigint, destination text, routing_key text, headers text, "
                       "body text, body_text text, body_raw bytea) ON COMMIT DELETE ROWS",
                       "create the stage table")) != FERRY_OK)
        return st;
    if (p->cfg->create_table) {
        fpg_puts(&b, "CREATE TABLE IF NOT EXISTS ");
        fpg_puts(&b, p->table);
        fpg_puts(&b, " (id text PRIMARY KEY, received_at timestamptz NOT NULL, destination text, "
                     "routing_key text, headers jsonb, body jsonb, body_text text, body_raw bytea");
        for (size_t i = 0; i < p->ncols; i++) {
            fpg_puts(&b, ", ");
            fpg_puts(&b, p->cols[i].ident);
            fpg_putc(&b, ' ');
            fpg_puts(&b, p->cols[i].type);
        }
        fpg_puts(&b, ")");
        st = b.oom ? FERRY_E_FATAL : fpg_exec(s, p, b.p, "create table");
        /* a table created earlier without some mapped column gets it now */
        for (size_t i = 0; st == FERRY_OK && i < p->ncols; i++) {
            b.len = 0;
            fpg_puts(&b, "ALTER TABLE ");
            fpg_puts(&b, p->table);
            fpg_puts(&b, " ADD COLUMN IF NOT EXISTS ");
            fpg_puts(&b, p->cols[i].ident);
            fpg_putc(&b, ' ');
            fpg_puts(&b, p->cols[i].type);
            st = b.oom ? FERRY_E_FATAL : fpg_exec(s, p, b.p, "add a mapped column");
        }
        free(b.p);
        if (st != FERRY_OK) {
            /* a concurrent CREATE by another aggregator: try again later */
            if (st == FERRY_E_CONFIG)
                st = FERRY_E_AGAIN;
            return st;
        }
    } else {
        free(b.p);
    }
    /* Whether every column we write exists, and the statement is valid:
     * plan it without running it. */
    b = (struct fpg_buf){0};
    fpg_puts(&b, "EXPLAIN ");
    fpg_puts(&b, p->insert_sql);
    st = b.oom ? FERRY_E_FATAL : fpg_exec(s, p, b.p, "check the table");
    free(b.p);
    if (st != FERRY_OK)
        return st;
    PGresult *r = PQprepare(p->pg, "ferry_row", p->insert_row_sql, 1, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        enum fpg_err e = fpg_classify(p->pg, r);
        fpg_fail(s, FERRY_E_AGAIN, "prepare: %s", PQerrorMessage(p->pg));
        PQclear(r);
        return e == FPG_ERR_CONN ? FERRY_E_NOCONN : FERRY_E_AGAIN;
    }
    PQclear(r);
    p->table_ok = true;
    return FERRY_OK;
}

/* Does this connection failure come from the server refusing us (bad
 * password, unknown role or database, pg_hba) rather than from the network
 * or a server that is starting or stopping? */
static bool fpg_refused(PGconn *pg, const char *msg)
{
    if (PQconnectionNeedsPassword(pg))
        return true;
    if (strstr(msg, "starting up") || strstr(msg, "shutting down") ||
        strstr(msg, "recovery mode") || strstr(msg, "too many") ||
        strstr(msg, "remaining connection slots"))
        return false;
    return strstr(msg, "FATAL:") || strstr(msg, "no password supplied") || strstr(msg, "SSL") ||
           strstr(msg, "certificate");
}

/* One connection attempt. FERRY_OK, FERRY_E_CONFIG (refused, bad conninfo)
 * or FERRY_E_NOCONN. */
static int fpg_connect(struct ferry_sink_conn *s, struct fpg *p)
{
    char tmo[32], *perr = NULL;
    snprintf(tmo, sizeof tmo, "%" PRId64, (p->cfg->connect_timeout_ms + 999) / 1000);
    const char *conninfo = p->cfg->conninfo ? p->cfg->conninfo : "";
    PQconninfoOption *parsed = PQconninfoParse(conninfo, &perr);
    if (!parsed) {
        int st = fpg_fail(s, FERRY_E_CONFIG, "conninfo: %s", perr ? perr : "out of memory");
        PQfreemem(perr);
        return st;
    }
    PQconninfoFree(parsed);
    /* later keywords win: our timeout and name unless the conninfo sets
     * them (expand_dbname expands "dbname" in place, so it comes first) */
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {tmo, s->client_id ? s->client_id : "ferry", conninfo, NULL};
    fpg_disconnect(p);
    p->pg = PQconnectdbParams(keys, vals, 1);
    if (!p->pg)
        return fpg_fail(s, FERRY_E_NOCONN, "connect: out of memory");
    if (PQstatus(p->pg) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(p->pg);
        int st = fpg_fail(s, fpg_refused(p->pg, msg) ? FERRY_E_CONFIG : FERRY_E_NOCONN,
                          "connect: %s", msg);
        fpg_disconnect(p);
        return st;
    }
    PQsetNoticeProcessor(p->pg, fpg_notice, s);
    if (PQserverVersion(p->pg) < 90500) {
        int st = fpg_fail(s, FERRY_E_CONFIG,
                          "server version %d is too old: ON CONFLICT needs "
                          "PostgreSQL 9.5 or later",
                          PQserverVersion(p->pg));
        fpg_disconnect(p);
        return st;
    }
    return FERRY_OK;
}

static void fpg_set_state(struct fpg *p, enum ferry_health_state st, const char *why)
{
    p->state = st;
    size_t l = why ? strnlen(why, sizeof p->reason - 1) : 0;
    if (l)
        memcpy(p->reason, why, l);
    p->reason[l] = '\0';
}

/* Connected and ready for a batch, or why not. Reconnects with backoff. */
static int fpg_ensure(struct ferry_sink_conn *s, struct fpg *p)
{
    if (p->pg && PQstatus(p->pg) == CONNECTION_OK && p->table_ok)
        return FERRY_OK;
    fpg_disconnect(p);
    int64_t now = fpg_now_ms();
    if (now < p->next_attempt_ms)
        return fpg_fail(s, FERRY_E_NOCONN, "not connected (%s); next attempt in %" PRId64 " ms",
                        p->reason, p->next_attempt_ms - now);
    int st = fpg_connect(s, p);
    if (st == FERRY_OK)
        st = fpg_prepare(s, p);
    if (st == FERRY_OK) {
        if (p->ever_connected && p->state != FERRY_HEALTH_CONNECTED) {
            p->reconnects++;
            ferry_sink_log(s, FERRY_LOG_INFO, "reconnected host=%s port=%s table=%s", PQhost(p->pg),
                           PQport(p->pg), p->cfg->table);
        }
        p->ever_connected = true;
        p->backoff_ms = 0;
        fpg_set_state(p, FERRY_HEALTH_CONNECTED, NULL);
        return FERRY_OK;
    }
    /* a refused login after a restart (password changed) is not fatal for a
     * running aggregator: it keeps trying and says why */
    if (p->state == FERRY_HEALTH_CONNECTED)
        ferry_sink_log(s, FERRY_LOG_WARN, "connection lost error=\"%s\"", s->err);
    fpg_disconnect(p);
    int64_t lo = p->cfg->reconnect_min_ms, hi = p->cfg->reconnect_max_ms;
    p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : lo;
    if (p->backoff_ms > hi)
        p->backoff_ms = hi;
    /* jitter: 50..100 % of the delay, so a fleet does not reconnect in step */
    p->rng ^= p->rng << 13;
    p->rng ^= p->rng >> 7;
    p->rng ^= p->rng << 17;
    int64_t d = p->backoff_ms / 2 + (int64_t)(p->rng % (uint64_t)(p->backoff_ms / 2 + 1));
    p->next_attempt_ms = fpg_now_ms() + d;
    fpg_set_state(p, FERRY_HEALTH_CONNECTING, s->err);
    return ferry_status_retriable(st) ? st : FERRY_E_NOCONN;
}

/* ---------------------------------------------------------------------- */
/* Operations */

static void fpg_free(struct fpg *p)
{
    fpg_disconnect(p);
    fpg_free_cols(p);
    free(p->table);
    free(p->insert_sql);
    free(p->insert_row_sql);
    free(p->copy.p);
    free(p->reasons.p);
    free(p->noids);
    free(p);
}

static int fpg_open(struct ferry_sink_conn *s)
{
    const struct fpg_cfg *cfg = s->cfg;
    struct fpg *p = calloc(1, sizeof *p); /* freed in fpg_close() */
    if (!p)
        return fpg_fail(s, FERRY_E_FATAL, "out of memory");
    p->cfg = cfg;
    if (cfg->reconnect_min_ms > cfg->reconnect_max_ms) {
        free(p);
        return fpg_fail(s, FERRY_E_CONFIG,
                        "reconnect_min (%" PRId64 " ms) exceeds reconnect_max "
                        "(%" PRId64 " ms)",
                        cfg->reconnect_min_ms, cfg->reconnect_max_ms);
    }
    /* generated ids: unique per process start, see README ("ids") */
    unsigned char rnd[8] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, rnd, sizeof rnd) != (ssize_t)sizeof rnd) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
        memcpy(rnd, &v, sizeof rnd);
    }
    if (fd >= 0)
        close(fd);
    snprintf(p->noid_prefix, sizeof p->noid_prefix, "noid-%02x%02x%02x%02x%02x%02x%02x%02x-",
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    memcpy(&p->rng, rnd, sizeof p->rng);
    p->rng |= 1;

    int st = fpg_connect(s, p);
    if (st == FERRY_OK)
        st = fpg_parse_table(s, p);
    if (st == FERRY_OK)
        st = fpg_parse_columns(s, p);
    if (st == FERRY_OK)
        st = fpg_build_sql(s, p);
    if (st == FERRY_OK) {
        st = fpg_prepare(s, p);
        /* a missing table (create_table = false), a missing column, an
         * unknown type, no permission: the table cannot be used as configured */
        if (st != FERRY_OK && st != FERRY_E_NOCONN && st != FERRY_E_TIMEOUT)
            st = FERRY_E_CONFIG;
    }
    if (st != FERRY_OK) {
        fpg_free(p);
        return st;
    }
    p->ever_connected = true;
    fpg_set_state(p, FERRY_HEALTH_CONNECTED, NULL);
    ferry_sink_log(s, FERRY_LOG_INFO,
                   "connected host=%s port=%s dbname=%s user=%s table=%s "
                   "server_version=%d",
                   PQhost(p->pg), PQport(p->pg), PQdb(p->pg), PQuser(p->pg), cfg->table,
                   PQserverVersion(p->pg));
    s->priv = p;
    return FERRY_OK;
}

static void fpg_close(struct ferry_sink_conn *s)
{
    struct fpg *p = s->priv;
    if (!p)
        return;
    if (p->pg && PQtransactionStatus(p->pg) != PQTRANS_IDLE)
        PQclear(PQexec(p->pg, "ROLLBACK"));
    fpg_free(p);
    s->priv = NULL;
}

static void fpg_abort(struct ferry_sink_conn *s)
{
    struct fpg *p = s->priv;
    p->recs = NULL;
    p->n = 0;
    p->copy.len = 0;
    if (p->pg && PQtransactionStatus(p->pg) != PQTRANS_IDLE)
        PQclear(PQexec(p->pg, "ROLLBACK"));
}

/* Build the COPY text of the batch: one line per record. */
static int fpg_write(struct ferry_sink_conn *s, struct ferry_sink_record *recs, size_t n)
{
    struct fpg *p = s->priv;
    p->recs = recs;
    p->n = n;
    p->copy.len = 0;
    p->copy.oom = false;
    p->batch_nonjson = 0;
    if (n > p->noids_cap) {
        void *q = realloc(p->noids, n * sizeof *p->noids); /* freed in fpg_free() */
        if (!q)
            return fpg_fail(s, FERRY_E_AGAIN, "out of memory for %zu records", n);
        p->noids = q;
        p->noids_cap = n;
    }
    struct fpg_buf *b = &p->copy;
    for (size_t i = 0; i < n; i++) {
        const struct ferry_msg *m = recs[i].msg;
        recs[i].status = FERRY_OK;
        recs[i].reason = NULL;
        char num[48];
        snprintf(num, sizeof num, "%zu\t", i);
        fpg_puts(b, num);
        if (recs[i].id) {
            fpg_copy_text(b, recs[i].id, strlen(recs[i].id));
        } else {
            snprintf(p->noids[i], sizeof p->noids[i], "%s%" PRIu64, p->noid_prefix, ++p->noid_seq);
            fpg_puts(b, p->noids[i]);
        }
        snprintf(num, sizeof num, "\t%" PRId64 "\t", recs[i].received_ms);
        fpg_puts(b, num);
        if (m->dest)
            fpg_copy_text(b, m->dest, strlen(m->dest));
        else
            fpg_puts(b, "\\N");
        fpg_putc(b, '\t');
        if (m->key)
            fpg_copy_text(b, m->key, m->key_len);
        else
            fpg_puts(b, "\\N");
        fpg_putc(b, '\t');
        if (m->n_headers) {
            fpg_putc(b, '{');
            for (size_t h = 0; h < m->n_headers; h++) {
                if (h)
                    fpg_putc(b, ',');
                fpg_putc(b, '"');
                fpg_json_text(b, m->headers[h].name, strlen(m->headers[h].name));
                fpg_puts(b, "\":\"");
                fpg_json_text(b, m->headers[h].value, m->headers[h].value_len);
                fpg_putc(b, '"');
            }
            fpg_putc(b, '}');
        } else {
            fpg_puts(b, "\\N");
        }
        fpg_putc(b, '\t');
        /* body (jsonb), body_text, body_raw: exactly one is set */
        if (fpg_jsonb_ok(m->body, m->body_len)) {
            fpg_copy_text(b, m->body, m->body_len);
            fpg_puts(b, "\t\\N\t\\N\n");
        } else if (fpg_utf8_text(m->body, m->body_len)) {
            p->batch_nonjson++;
            fpg_puts(b, "\\N\t");
            fpg_copy_text(b, m->body, m->body_len);
            fpg_puts(b, "\t\\N\n");
        } else {
            p->batch_nonjson++;
            fpg_puts(b, "\\N\t\\N\t");
            fpg_copy_bytea(b, m->body, m->body_len);
            fpg_putc(b, '\n');
        }
    }
    if (b->oom)
        return fpg_fail(s, FERRY_E_AGAIN, "out of memory staging %zu records", n);
    return FERRY_OK;
}

/* A failed step of commit(): roll back, and decide retriable or not. */
static int fpg_batch_error(struct ferry_sink_conn *s, struct fpg *p, PGresult *r, const char *what)
{
    enum fpg_err e = fpg_classify(p->pg, r);
    fpg_fail(s, FERRY_E_AGAIN, "%s: %s", what, PQerrorMessage(p->pg));
    PQclear(r);
    p->failures++;
    if (e == FPG_ERR_CONN) {
        ferry_sink_log(s, FERRY_LOG_WARN, "connection lost error=\"%s\"", s->err);
        fpg_disconnect(p);
        p->next_attempt_ms = 0; /* the first reconnect is immediate */
        fpg_set_state(p, FERRY_HEALTH_CONNECTING, s->err);
        return FERRY_E_NOCONN;
    }
    if (PQtransactionStatus(p->pg) != PQTRANS_IDLE)
        PQclear(PQexec(p->pg, "ROLLBACK"));
    if (e == FPG_ERR_TABLE) {
        /* dropped or altered under us: a new session creates or checks it again */
        fpg_disconnect(p);
        p->next_attempt_ms = 0;
    }
    return e == FPG_ERR_TIMEOUT ? FERRY_E_TIMEOUT : FERRY_E_AGAIN;
}

/* The bulk INSERT refused some row: insert row by row, each in a savepoint,
 * and mark the rows the server refuses. */
static int fpg_rows(struct ferry_sink_conn *s, struct fpg *p)
{
    p->reasons.len = 0;
    p->reasons.oom = false;
    /* offsets into p->reasons, turned into pointers at the end (it grows) */
    size_t *off = calloc(p->n, sizeof *off); /* freed below */
    if (!off)
        return fpg_fail(s, FERRY_E_AGAIN, "out of memory");
    int st = FERRY_OK;
    for (size_t i = 0; i < p->n && st == FERRY_OK; i++) {
        PGresult *r = PQexec(p->pg, "SAVEPOINT ferry_row");
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            st = fpg_batch_error(s, p, r, "savepoint");
            break;
        }
        PQclear(r);
        char seq[24];
        snprintf(seq, sizeof seq, "%zu", i);
        const char *params[1] = {seq};
        r = PQexecPrepared(p->pg, "ferry_row", 1, params, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_COMMAND_OK) {
            p->batch_landed += strtoull(PQcmdTuples(r), NULL, 10);
            PQclear(r);
            r = PQexec(p->pg, "RELEASE SAVEPOINT ferry_row");
            if (PQresultStatus(r) != PGRES_COMMAND_OK)
                st = fpg_batch_error(s, p, r, "release savepoint");
            else
                PQclear(r);
            continue;
        }
        if (fpg_classify(p->pg, r) != FPG_ERR_DATA) {
            st = fpg_batch_error(s, p, r, "insert");
            break;
        }
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
        fpg_oneline(msg);
        PQclear(r);
        p->recs[i].status = FERRY_E_REJECTED;
        off[i] = p->reasons.len + 1;
        fpg_puts(&p->reasons, "postgresql refused the row: ");
        fpg_puts(&p->reasons, msg);
        fpg_putc(&p->reasons, '\0');
        r = PQexec(p->pg, "ROLLBACK TO SAVEPOINT ferry_row");
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            st = fpg_batch_error(s, p, r, "rollback to savepoint");
        else
            PQclear(r);
    }
    for (size_t i = 0; i < p->n; i++)
        if (p->recs[i].status == FERRY_E_REJECTED)
            p->recs[i].reason = off[i] && !p->reasons.oom ? p->reasons.p + off[i] - 1
                                                          : "postgresql refused the row";
    free(off);
    return st;
}

static int fpg_commit(struct ferry_sink_conn *s)
{
    struct fpg *p = s->priv;
    if (!p->recs)
        return FERRY_OK;
    int st = fpg_ensure(s, p);
    if (st != FERRY_OK) {
        p->failures++;
        return st;
    }
    for (size_t i = 0; i < p->n; i++) {
        p->recs[i].status = FERRY_OK;
        p->recs[i].reason = NULL;
    }
    p->batch_landed = 0;
    PGresult *r = PQexec(p->pg, "BEGIN");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return fpg_batch_error(s, p, r, "begin");
    PQclear(r);
    r = PQexec(p->pg, "COPY " FPG_STAGE " FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN)
        return fpg_batch_error(s, p, r, "copy");
    PQclear(r);
    if (PQputCopyData(p->pg, p->copy.p ? p->copy.p : "", (int)p->copy.len) != 1 ||
        PQputCopyEnd(p->pg, NULL) != 1)
        return fpg_batch_error(s, p, NULL, "copy data");
    r = PQgetResult(p->pg);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return fpg_batch_error(s, p, r, "copy");
    PQclear(r);
    while ((r = PQgetResult(p->pg)) != NULL)
        PQclear(r);
    r = PQexec(p->pg, "SAVEPOINT ferry_bulk");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return fpg_batch_error(s, p, r, "savepoint");
    PQclear(r);
    r = PQexec(p->pg, p->insert_sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        if (fpg_classify(p->pg, r) != FPG_ERR_DATA)
            return fpg_batch_error(s, p, r, "insert");
        char first[300];
        snprintf(first, sizeof first, "%s", PQresultErrorMessage(r));
        fpg_oneline(first);
        PQclear(r);
        ferry_sink_log(s, FERRY_LOG_DEBUG,
                       "batch refused, inserting row by row rows=%zu "
                       "error=\"%s\"",
                       p->n, first);
        r = PQexec(p->pg, "ROLLBACK TO SAVEPOINT ferry_bulk");
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            return fpg_batch_error(s, p, r, "rollback to savepoint");
        PQclear(r);
        if ((st = fpg_rows(s, p)) != FERRY_OK)
            return st;
    } else {
        p->batch_landed = strtoull(PQcmdTuples(r), NULL, 10);
        PQclear(r);
    }
    r = PQexec(p->pg, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return fpg_batch_error(s, p, r, "commit");
    PQclear(r);
    /* landed */
    size_t rejected = 0;
    for (size_t i = 0; i < p->n; i++)
        rejected += p->recs[i].status == FERRY_E_REJECTED;
    p->committed += p->batch_landed; /* duplicates skipped by ON CONFLICT do not count */
    p->rejected += rejected;
    if (p->batch_nonjson) {
        if (p->nonjson == 0)
            ferry_sink_log(s, FERRY_LOG_WARN,
                           "bodies that are not JSON stored in body_text/"
                           "body_raw count=%" PRIu64,
                           p->batch_nonjson);
        p->nonjson += p->batch_nonjson;
    }
    p->recs = NULL;
    p->n = 0;
    return FERRY_OK;
}

static int fpg_health(struct ferry_sink_conn *s, struct ferry_sink_health *out)
{
    struct fpg *p = s->priv;
    out->state = p->state;
    snprintf(out->reason, sizeof out->reason, "%s",
             p->state == FERRY_HEALTH_CONNECTED ? "" : p->reason);
    out->committed = p->committed;
    out->rejected = p->rejected;
    out->failures = p->failures;
    out->reconnects = p->reconnects;
    return FERRY_OK;
}

/* SIGHUP: a fresh connection (e.g. after a failover changed what the host
 * name points to). Between batches only. */
static int fpg_reopen(struct ferry_sink_conn *s)
{
    struct fpg *p = s->priv;
    fpg_disconnect(p);
    p->next_attempt_ms = 0;
    int st = fpg_ensure(s, p);
    return st;
}

/* How many rows carry this id (0 or 1: it is the primary key). */
static int fpg_count(struct ferry_sink_conn *s, const char *id, uint64_t *out)
{
    struct fpg *p = s->priv;
    int st = fpg_ensure(s, p);
    if (st != FERRY_OK)
        return st;
    struct fpg_buf b = {0};
    fpg_puts(&b, "SELECT count(*) FROM ");
    fpg_puts(&b, p->table);
    fpg_puts(&b, " WHERE id = $1");
    if (b.oom) {
        free(b.p);
        return fpg_fail(s, FERRY_E_AGAIN, "out of memory");
    }
    const char *params[1] = {id};
    PGresult *r = PQexecParams(p->pg, b.p, 1, NULL, params, NULL, NULL, 0);
    free(b.p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        enum fpg_err e = fpg_classify(p->pg, r);
        fpg_fail(s, FERRY_E_AGAIN, "count: %s", PQerrorMessage(p->pg));
        PQclear(r);
        if (e == FPG_ERR_CONN) {
            fpg_disconnect(p);
            return FERRY_E_NOCONN;
        }
        return FERRY_E_AGAIN;
    }
    *out = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return FERRY_OK;
}

static const char *fpg_lib_version(void)
{
    static char v[32];
    int n = PQlibVersion();
    snprintf(v, sizeof v, "libpq %d.%d", n / 10000, n % 100);
    return v;
}

static const struct ferry_sink_ops fpg_ops = {
    .size = sizeof(struct ferry_sink_ops),
    .open = fpg_open,
    .close = fpg_close,
    .write = fpg_write,
    .commit = fpg_commit,
    .abort = fpg_abort,
    .health = fpg_health,
    .reopen = fpg_reopen,
    .count = fpg_count,
};

#define ferry_sink_descriptor postgresql_LTX_ferry_sink_descriptor
const struct ferry_sink ferry_sink_descriptor = {
    .abi = FERRY_SINK_ABI,
    .size = sizeof(struct ferry_sink),
    .name = "postgresql",
    .summary =
        "PostgreSQL through libpq: COPY, one transaction per batch, ON CONFLICT (id) DO NOTHING",
    .lib_version = fpg_lib_version,
    .caps = FERRY_SINK_CAP_TRANSACTIONAL | FERRY_SINK_CAP_IDEMPOTENT | FERRY_SINK_CAP_DURABLE |
            FERRY_SINK_CAP_PER_RECORD,
    .options = fpg_options,
    .cfg_size = sizeof(struct fpg_cfg),
    .ops = &fpg_ops,
};

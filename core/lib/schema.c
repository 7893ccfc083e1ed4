/* ferry: JSON Schema draft-07 compiler and validator.
 * Schemas are compiled once into an immutable graph of nodes ($ref resolved,
 * regular expressions compiled); validation walks that graph without mutating it. */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "ferry/schema.h"
#include "schema_internal.h"
#include "jsoncheck.h"

/* Deepest chain of nested schema applications before validation gives up;
 * guards against schemas that reference themselves without consuming input
 * and bounds stack use (cJSON itself stops at 1000 nesting levels). */
#define MAX_DEPTH 1000

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */

enum {
    T_NULL = 1u << 0,
    T_BOOL = 1u << 1,
    T_OBJECT = 1u << 2,
    T_ARRAY = 1u << 3,
    T_NUMBER = 1u << 4,
    T_STRING = 1u << 5,
    T_INTEGER = 1u << 6,
};

static const struct {
    const char *name;
    unsigned bit;
} type_names[] = {
    {"null", T_NULL},     {"boolean", T_BOOL},  {"object", T_OBJECT},   {"array", T_ARRAY},
    {"number", T_NUMBER}, {"string", T_STRING}, {"integer", T_INTEGER},
};

/* Growable byte buffer; always NUL-terminated once anything was added. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap); /* owned by the buffer's user */
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

/* Returns the buffer's string (possibly empty), or NULL when memory ran out. */
static char *sb_take(struct sbuf *b)
{
    if (!b->oom && !b->p)
        sb_addn(b, "", 0);
    if (b->oom) {
        free(b->p);
        b->p = NULL;
        return NULL;
    }
    char *p = b->p;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1); /* owned by the caller */
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

/* Append TOKEN escaped as a JSON Pointer reference token. */
static void sb_add_ptr_token(struct sbuf *b, const char *token)
{
    for (const char *t = token; *t; t++) {
        if (*t == '~')
            sb_add(b, "~0");
        else if (*t == '/')
            sb_add(b, "~1");
        else
            sb_addn(b, t, 1);
    }
}

/* Shortest of %.15g/%.16g/%.17g that reads back as the same double. */
static void format_number(double d, char *buf, size_t n)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* Short printable form of a JSON value for messages (BUF gets at most N-1 bytes). */
static void describe_value(const cJSON *x, char *buf, size_t n)
{
    if (cJSON_IsNumber(x)) {
        format_number(x->valuedouble, buf, n);
        return;
    }
    if (cJSON_IsNull(x) || cJSON_IsBool(x)) {
        snprintf(buf, n, "%s", cJSON_IsNull(x) ? "null" : cJSON_IsTrue(x) ? "true" : "false");
        return;
    }
    char *p = cJSON_PrintUnformatted(x); /* freed below */
    if (!p) {
        snprintf(buf, n, "%s",
                 cJSON_IsString(x)  ? "string"
                 : cJSON_IsArray(x) ? "array"
                                    : "object");
        return;
    }
    size_t len = strlen(p);
    if (len < n)
        memcpy(buf, p, len + 1);
    else {
        /* cut on a UTF-8 character boundary and mark the cut */
        size_t cut = n - 4;
        while (cut > 0 && ((unsigned char)p[cut] & 0xC0) == 0x80)
            cut--;
        memcpy(buf, p, cut);
        memcpy(buf + cut, "...", 4);
    }
    free(p);
}

static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

static bool is_integral(double d)
{
    return isfinite(d) && floor(d) == d;
}

/* ------------------------------------------------------------------------ */
/* Exact decimal multipleOf                                                  */

/* A finite double as MANT * 10^EXP, with MANT holding no trailing zeros. */
struct decimal {
    uint64_t mant;
    int exp;
    bool zero;
};

static void to_decimal(double d, struct decimal *out)
{
    char buf[40];
    d = fabs(d);
    out->zero = d == 0;
    out->mant = 0;
    out->exp = 0;
    if (out->zero)
        return;
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    /* buf is "D.DDDDe[+-]XX" */
    int ndigits = 0;
    const char *p = buf;
    for (; *p && *p != 'e'; p++) {
        if (*p >= '0' && *p <= '9') {
            out->mant = out->mant * 10 + (uint64_t)(*p - '0');
            ndigits++;
        }
    }
    int e = *p == 'e' ? atoi(p + 1) : 0;
    out->exp = e - (ndigits - 1);
    while (out->mant && out->mant % 10 == 0) {
        out->mant /= 10;
        out->exp++;
    }
}

/* (a * b) % m without overflow; a, b < m < 2^62. */
static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t m)
{
    uint64_t r = 0;
    a %= m;
    while (b) {
        if (b & 1)
            r = (r + a) % m;
        a = (a * 2) % m;
        b >>= 1;
    }
    return r;
}

static bool decimal_multiple(const struct decimal *x, const struct decimal *d)
{
    if (x->zero)
        return true;
    if (x->exp < d->exp)
        return false; /* x has a non-zero digit finer than d's last digit */
    uint64_t r = x->mant % d->mant;
    uint64_t ten = 10 % d->mant;
    for (int k = x->exp - d->exp; k > 0 && r; k >>= 1) {
        if (k & 1)
            r = mulmod(r, ten, d->mant);
        ten = mulmod(ten, ten, d->mant);
    }
    return r == 0;
}

/* ------------------------------------------------------------------------ */
/* Compiled schema                                                           */

struct prop {
    const char *name; /* points into the schema document */
    struct snode *schema;
};

struct pattern_prop {
    pcre2_code *re; /* freed in ferry_schema_free() */
    const char *source;
    struct snode *schema;
};

struct dependency {
    const char *name;
    const cJSON *required; /* array of names, or NULL */
    struct snode *schema;  /* or NULL */
};

/* Flags of struct snode. */
enum {
    HAS_MAXIMUM = 1u << 0,
    HAS_MINIMUM = 1u << 1,
    HAS_EXMAXIMUM = 1u << 2,
    HAS_EXMINIMUM = 1u << 3,
    HAS_MULTIPLE = 1u << 4,
    HAS_CONST = 1u << 5,
    UNIQUE_ITEMS = 1u << 6,
    CONTENT_BASE64 = 1u << 7,
    CONTENT_JSON = 1u << 8,
};

struct snode {
    int boolean;       /* -1 object schema, 0 false, 1 true */
    char *path;        /* "#/properties/x"; freed in ferry_schema_free() */
    struct snode *ref; /* $ref target: when set, nothing else applies */
    unsigned types;    /* allowed types, 0 = any */
    unsigned flags;
    const cJSON *enum_values, *const_value;
    double maximum, minimum, exmaximum, exminimum, multiple;
    struct decimal multiple_dec;
    size_t max_length, min_length, max_items, min_items, max_props, min_props;
    pcre2_code *pattern; /* freed in ferry_schema_free() */
    const char *pattern_source;
    enum ferry_schema_format format;
    const char *format_name;
    struct snode *items;       /* "items" as one schema */
    struct snode **items_list; /* "items" as an array; freed in ferry_schema_free() */
    size_t n_items;
    struct snode *additional_items, *contains;
    const cJSON *required;
    uint64_t required_mask; /* bits of "props" that are required, when all of them are */
    struct prop *props;     /* sorted by name; freed in ferry_schema_free() */
    size_t n_props;
    struct pattern_prop *pattern_props; /* freed in ferry_schema_free() */
    size_t n_pattern_props;
    struct snode *additional_props, *property_names;
    struct dependency *deps; /* freed in ferry_schema_free() */
    size_t n_deps;
    struct snode *if_, *then_, *else_, *not_;
    struct snode **all_of, **any_of, **one_of; /* freed in ferry_schema_free() */
    size_t n_all_of, n_any_of, n_one_of;
};

struct document {
    char *uri;   /* retrieval URI without fragment */
    cJSON *root; /* parsed text; compiled nodes point into it */
};

struct ferry_schema {
    struct document *docs; /* freed in ferry_schema_free() */
    size_t n_docs;
    struct snode **nodes; /* every node, for freeing */
    size_t n_nodes;
    struct snode *root;
    size_t max_errors;
};

static void node_free(struct snode *n)
{
    free(n->path);
    pcre2_code_free(n->pattern);
    free(n->items_list);
    free(n->props);
    for (size_t i = 0; i < n->n_pattern_props; i++)
        pcre2_code_free(n->pattern_props[i].re);
    free(n->pattern_props);
    free(n->deps);
    free(n->all_of);
    free(n->any_of);
    free(n->one_of);
    free(n);
}

void ferry_schema_free(struct ferry_schema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_nodes; i++)
        node_free(s->nodes[i]);
    free(s->nodes);
    for (size_t i = 0; i < s->n_docs; i++) {
        free(s->docs[i].uri);
        cJSON_Delete(s->docs[i].root);
    }
    free(s->docs);
    free(s);
}

/* ------------------------------------------------------------------------ */
/* URIs (RFC 3986 reference resolution)                                      */

struct uri_parts {
    const char *scheme, *auth, *path, *query, *frag;
    size_t scheme_n, auth_n, path_n, query_n, frag_n;
    bool has_scheme, has_auth, has_query, has_frag;
};

static void uri_split(const char *u, struct uri_parts *p)
{
    memset(p, 0, sizeof *p);
    const char *s = u;
    const char *c = s;
    while (*c && *c != ':' && *c != '/' && *c != '?' && *c != '#')
        c++;
    if (*c == ':' && c > s) {
        p->has_scheme = true;
        p->scheme = s;
        p->scheme_n = (size_t)(c - s);
        s = c + 1;
    }
    if (s[0] == '/' && s[1] == '/') {
        p->has_auth = true;
        p->auth = s + 2;
        s += 2;
        while (*s && *s != '/' && *s != '?' && *s != '#')
            s++;
        p->auth_n = (size_t)(s - p->auth);
    }
    p->path = s;
    while (*s && *s != '?' && *s != '#')
        s++;
    p->path_n = (size_t)(s - p->path);
    if (*s == '?') {
        p->has_query = true;
        p->query = ++s;
        while (*s && *s != '#')
            s++;
        p->query_n = (size_t)(s - p->query);
    }
    if (*s == '#') {
        p->has_frag = true;
        p->frag = s + 1;
        p->frag_n = strlen(s + 1);
    }
}

/* RFC 3986 5.2.4, appending the result to OUT. */
static void remove_dot_segments(struct sbuf *out, const char *in, size_t n)
{
    /* the output never grows beyond the input, so work in a copy */
    char *buf = xstrndup(in, n); /* freed below */
    char *res = malloc(n + 1);   /* freed below */
    if (!buf || !res) {
        free(buf);
        free(res);
        out->oom = true;
        return;
    }
    char *a = buf;
    size_t rl = 0;
    while (*a) {
        if (!strncmp(a, "../", 3))
            a += 3;
        else if (!strncmp(a, "./", 2))
            a += 2;
        else if (!strncmp(a, "/./", 3))
            a += 2;
        else if (!strcmp(a, "/.")) {
            a[1] = '\0';
        } else if (!strncmp(a, "/../", 4) || !strcmp(a, "/..")) {
            if (a[3] == '/')
                a += 3;
            else {
                a += 2;
                *a = '/';
            }
            while (rl > 0 && res[rl - 1] != '/')
                rl--;
            if (rl > 0)
                rl--;
        } else if (!strcmp(a, ".") || !strcmp(a, "..")) {
            a += strlen(a);
        } else {
            size_t k = 1;
            while (a[k] && a[k] != '/')
                k++;
            if (a[0] != '/') {
                k = 0;
                while (a[k] && a[k] != '/')
                    k++;
            }
            memcpy(res + rl, a, k);
            rl += k;
            a += k;
        }
    }
    sb_addn(out, res, rl);
    free(buf);
    free(res);
}

/* Resolve REF against BASE; returns a new string (owned by the caller). */
static char *uri_resolve(const char *base, const char *ref)
{
    struct uri_parts b, r;
    struct sbuf o = {0};
    uri_split(base ? base : "", &b);
    uri_split(ref, &r);
    const struct uri_parts *q; /* where scheme comes from */
    if (r.has_scheme) {
        q = &r;
        sb_addn(&o, r.scheme, r.scheme_n);
        sb_add(&o, ":");
        if (r.has_auth) {
            sb_add(&o, "//");
            sb_addn(&o, r.auth, r.auth_n);
        }
        remove_dot_segments(&o, r.path, r.path_n);
        if (r.has_query) {
            sb_add(&o, "?");
            sb_addn(&o, r.query, r.query_n);
        }
    } else {
        q = &b;
        if (b.has_scheme) {
            sb_addn(&o, b.scheme, b.scheme_n);
            sb_add(&o, ":");
        }
        if (r.has_auth) {
            sb_add(&o, "//");
            sb_addn(&o, r.auth, r.auth_n);
            remove_dot_segments(&o, r.path, r.path_n);
            if (r.has_query) {
                sb_add(&o, "?");
                sb_addn(&o, r.query, r.query_n);
            }
        } else {
            if (b.has_auth) {
                sb_add(&o, "//");
                sb_addn(&o, b.auth, b.auth_n);
            }
            if (r.path_n == 0) {
                sb_addn(&o, b.path, b.path_n);
                if (r.has_query) {
                    sb_add(&o, "?");
                    sb_addn(&o, r.query, r.query_n);
                } else if (b.has_query) {
                    sb_add(&o, "?");
                    sb_addn(&o, b.query, b.query_n);
                }
            } else {
                if (r.path[0] == '/')
                    remove_dot_segments(&o, r.path, r.path_n);
                else {
                    struct sbuf m = {0};
                    if (b.has_auth && b.path_n == 0)
                        sb_add(&m, "/");
                    else {
                        size_t k = b.path_n;
                        while (k > 0 && b.path[k - 1] != '/')
                            k--;
                        sb_addn(&m, b.path, k);
                    }
                    sb_addn(&m, r.path, r.path_n);
                    if (m.oom)
                        o.oom = true;
                    else
                        remove_dot_segments(&o, m.p, m.len);
                    free(m.p);
                }
                if (r.has_query) {
                    sb_add(&o, "?");
                    sb_addn(&o, r.query, r.query_n);
                }
            }
        }
    }
    (void)q;
    if (r.has_frag && r.frag_n > 0) {
        sb_add(&o, "#");
        sb_addn(&o, r.frag, r.frag_n);
    }
    return sb_take(&o);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode N bytes of S into a new string (owned by the caller). */
static char *percent_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1); /* owned by the caller */
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n + 1 && (h = hexval((unsigned char)s[i + 1])) >= 0 &&
            (l = hexval((unsigned char)s[i + 2])) >= 0) {
            out[o++] = (char)(h * 16 + l);
            i += 2;
        } else
            out[o++] = s[i];
    }
    out[o] = '\0';
    return out;
}

/* ------------------------------------------------------------------------ */
/* Compilation                                                               */

/* A schema resource reachable by URI: a document root or a node with $id. */
struct id_entry {
    char *uri;   /* absolute, without empty fragment */
    char *base;  /* base URI in effect inside the node */
    char *outer; /* base URI in effect around the node (before its $id) */
    char *path;  /* schema path of the node */
    const cJSON *node;
};

struct memo_slot {
    const cJSON *key;
    struct snode *node;
};

struct compiler {
    struct ferry_schema *s;
    const struct ferry_schema_opts *opts;
    char *root_dir;      /* directory of the schema file, or NULL */
    const char *errname; /* file name for messages, or NULL */
    char *err;
    size_t errlen;
    bool failed;
    struct id_entry *ids; /* freed at the end of compilation */
    size_t n_ids, cap_ids;
    struct memo_slot *memo; /* cJSON node -> compiled node; freed at the end of compilation */
    size_t memo_cap, memo_n;
    size_t cap_nodes, cap_docs;
};

static void cerr(struct compiler *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cerr(struct compiler *c, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    if (!c->err || !c->errlen)
        return;
    size_t off = 0;
    if (c->errname) {
        snprintf(c->err, c->errlen, "%s: ", c->errname);
        off = strlen(c->err);
    }
    if (off < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + off, c->errlen - off, fmt, ap);
        va_end(ap);
    }
}

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *q = realloc(p, nc * size); /* owned by the caller's array */
    if (q)
        *cap = nc;
    return q;
}

static size_t ptr_hash(const void *p, size_t cap)
{
    uintptr_t v = (uintptr_t)p;
    v ^= v >> 17;
    v *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(v >> 7) & (cap - 1);
}

static struct snode *memo_get(struct compiler *c, const cJSON *key)
{
    if (!c->memo_cap)
        return NULL;
    for (size_t i = ptr_hash(key, c->memo_cap);; i = (i + 1) & (c->memo_cap - 1)) {
        if (!c->memo[i].key)
            return NULL;
        if (c->memo[i].key == key)
            return c->memo[i].node;
    }
}

static bool memo_put(struct compiler *c, const cJSON *key, struct snode *node)
{
    if ((c->memo_n + 1) * 2 > c->memo_cap) {
        size_t nc = c->memo_cap ? c->memo_cap * 2 : 64;
        struct memo_slot *m = calloc(nc, sizeof *m); /* freed at the end of compilation */
        if (!m)
            return false;
        for (size_t i = 0; i < c->memo_cap; i++) {
            if (!c->memo[i].key)
                continue;
            size_t j = ptr_hash(c->memo[i].key, nc);
            while (m[j].key)
                j = (j + 1) & (nc - 1);
            m[j] = c->memo[i];
        }
        free(c->memo);
        c->memo = m;
        c->memo_cap = nc;
    }
    size_t i = ptr_hash(key, c->memo_cap);
    while (c->memo[i].key)
        i = (i + 1) & (c->memo_cap - 1);
    c->memo[i].key = key;
    c->memo[i].node = node;
    c->memo_n++;
    return true;
}

static char *strip_empty_fragment(char *uri)
{
    size_t n = uri ? strlen(uri) : 0;
    if (n && uri[n - 1] == '#')
        uri[n - 1] = '\0';
    return uri;
}

static bool add_id(struct compiler *c, const char *uri, const char *base, const char *outer,
                   const char *path, const cJSON *node)
{
    struct id_entry *ids = grow(c->ids, &c->cap_ids, c->n_ids + 1, sizeof *ids);
    if (!ids)
        return false;
    c->ids = ids;
    struct id_entry *e = &ids[c->n_ids];
    e->uri = xstrdup(uri);     /* freed at the end of compilation */
    e->base = xstrdup(base);   /* freed at the end of compilation */
    e->path = xstrdup(path);   /* freed at the end of compilation */
    e->outer = xstrdup(outer); /* freed at the end of compilation */
    e->node = node;
    if (!e->uri || !e->base || !e->path || !e->outer) {
        free(e->uri);
        free(e->base);
        free(e->outer);
        free(e->path);
        return false;
    }
    c->n_ids++;
    return true;
}

static const struct id_entry *find_id(const struct compiler *c, const char *uri)
{
    for (size_t i = 0; i < c->n_ids; i++)
        if (!strcmp(c->ids[i].uri, uri))
            return &c->ids[i];
    return NULL;
}

/* The $id of schema object J that changes the base URI, or NULL
 * (in draft-07 an $id next to $ref is ignored like every other sibling). */
static const char *schema_id(const cJSON *j)
{
    if (!cJSON_IsObject(j) || cJSON_GetObjectItemCaseSensitive(j, "$ref"))
        return NULL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "$id");
    return cJSON_IsString(id) ? id->valuestring : NULL;
}

static char *child_path(const char *path, const char *a, const char *b)
{
    struct sbuf sb = {0};
    sb_add(&sb, path);
    sb_add(&sb, "/");
    sb_add_ptr_token(&sb, a);
    if (b) {
        sb_add(&sb, "/");
        sb_add_ptr_token(&sb, b);
    }
    return sb_take(&sb); /* owned by the caller */
}

/* Keywords whose value is a schema, an array of schemas, or an object of schemas. */
static const char *const kw_schema[] = {"additionalItems",
                                        "additionalProperties",
                                        "contains",
                                        "propertyNames",
                                        "if",
                                        "then",
                                        "else",
                                        "not",
                                        NULL};
static const char *const kw_schema_map[] = {"properties", "patternProperties", "definitions",
                                            "dependencies", NULL};
static const char *const kw_schema_array[] = {"allOf", "anyOf", "oneOf", NULL};

/* Record every $id below J (whose base URI before its own $id is BASE). */
static bool index_ids(struct compiler *c, const cJSON *j, const char *base, const char *path)
{
    if (!cJSON_IsObject(j))
        return true;
    char *own = NULL; /* freed below */
    const char *id = schema_id(j);
    if (id) {
        own = strip_empty_fragment(uri_resolve(base, id)); /* freed below */
        if (!own)
            return false;
        char *hash = strchr(own, '#');
        /* a plain-name fragment id keeps the document's base */
        char *nb = hash ? xstrndup(own, (size_t)(hash - own)) : xstrdup(own); /* freed below */
        bool ok = nb && add_id(c, own, nb, base, path, j);
        free(own);
        own = nb;
        if (!ok) {
            free(own);
            return false;
        }
        base = own;
    }
    bool ok = true;
    for (const cJSON *k = j->child; k && ok; k = k->next) {
        const char *key = k->string;
        if (!key)
            continue;
        bool single = false, map = false, arr = false;
        for (size_t i = 0; kw_schema[i]; i++)
            single |= !strcmp(key, kw_schema[i]);
        for (size_t i = 0; kw_schema_map[i]; i++)
            map |= !strcmp(key, kw_schema_map[i]);
        for (size_t i = 0; kw_schema_array[i]; i++)
            arr |= !strcmp(key, kw_schema_array[i]);
        if (!strcmp(key, "items")) {
            single = cJSON_IsObject(k);
            arr = cJSON_IsArray(k);
        }
        if (single) {
            char *p = child_path(path, key, NULL); /* freed below */
            ok = p && index_ids(c, k, base, p);
            free(p);
        } else if ((map && cJSON_IsObject(k)) || (arr && cJSON_IsArray(k))) {
            size_t idx = 0;
            for (const cJSON *e = k->child; e && ok; e = e->next, idx++) {
                char num[24];
                snprintf(num, sizeof num, "%zu", idx);
                char *p = child_path(path, key, map ? e->string : num); /* freed below */
                ok = p && index_ids(c, e, base, p);
                free(p);
            }
        }
    }
    free(own);
    return ok;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct sbuf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        sb_addn(&b, chunk, n);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b.p);
        errno = EIO;
        return NULL;
    }
    *len = b.len;
    return sb_take(&b); /* owned by the caller */
}

/* Parse TEXT; on failure report "NAME:LINE:COL: reason" (NAME may be NULL). */
static cJSON *parse_json(struct compiler *c, const char *text, const char *name)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &end, 1); /* owned by the caller */
    if (j)
        return j;
    size_t off = end && end >= text ? (size_t)(end - text) : 0;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else
            col++;
    }
    const char *saved = c->errname;
    c->errname = NULL;
    if (name)
        cerr(c, "%s:%zu:%zu: invalid JSON", name, line, col);
    else
        cerr(c, "%zu:%zu: invalid JSON", line, col);
    c->errname = saved;
    return NULL;
}

static struct document *add_document(struct compiler *c, const char *uri, cJSON *root)
{
    struct ferry_schema *s = c->s;
    struct document *d = grow(s->docs, &c->cap_docs, s->n_docs + 1, sizeof *d);
    if (!d) {
        cJSON_Delete(root);
        return NULL;
    }
    s->docs = d;
    d = &s->docs[s->n_docs];
    d->uri = xstrdup(uri); /* freed in ferry_schema_free() */
    if (!d->uri) {
        cJSON_Delete(root);
        return NULL;
    }
    d->root = root;
    s->n_docs++;
    return d;
}

/* Register document ROOT retrieved from URI: its own entry and its $ids. */
static bool register_document(struct compiler *c, const char *uri, cJSON *root, bool is_main)
{
    struct document *d = add_document(c, uri, root);
    if (!d) {
        cerr(c, "out of memory");
        return false;
    }
    struct sbuf p = {0};
    if (!is_main)
        sb_add(&p, uri);
    sb_add(&p, "#");
    char *path = sb_take(&p); /* freed below */
    const char *id = schema_id(root);
    char *base = id ? strip_empty_fragment(uri_resolve(uri, id)) : xstrdup(uri); /* freed below */
    char *hash = base ? strchr(base, '#') : NULL;
    if (hash)
        *hash = '\0';
    bool ok =
        path && base && add_id(c, uri, base, uri, path, root) && index_ids(c, root, uri, path);
    free(path);
    free(base);
    if (!ok)
        cerr(c, "out of memory");
    return ok;
}

static char *join_path(const char *dir, size_t dirlen, const char *rest)
{
    struct sbuf b = {0};
    sb_addn(&b, dir, dirlen);
    if (dirlen && dir[dirlen - 1] != '/' && rest[0] != '/')
        sb_add(&b, "/");
    sb_add(&b, rest);
    return sb_take(&b); /* owned by the caller */
}

/* Try to read the file for URI (no fragment); returns its text or NULL.
 * *USED gets the file name that was read (owned by the caller). */
static char *fetch_local(struct compiler *c, const char *uri, char **used)
{
    char *cands[64]; /* candidate file names, each freed after the loop at the end */
    size_t nc = 0;
    const struct ferry_schema_opts *o = c->opts;
    if (o && o->uri_map) {
        for (size_t i = 0; o->uri_map[i] && o->uri_map[i + 1] && nc < 16; i += 2) {
            size_t pl = strlen(o->uri_map[i]);
            if (!strncmp(uri, o->uri_map[i], pl)) {
                char *rest = percent_decode(uri + pl, strlen(uri + pl)); /* freed below */
                if (rest)
                    cands[nc++] = join_path(o->uri_map[i + 1], strlen(o->uri_map[i + 1]), rest);
                free(rest);
            }
        }
    }
    struct uri_parts u;
    uri_split(uri, &u);
    char *upath = percent_decode(u.path, u.path_n); /* freed below */
    if (!upath)
        return NULL;
    if (u.has_scheme && u.scheme_n == 4 && !strncmp(u.scheme, "file", 4))
        cands[nc++] = xstrdup(upath);
    else if (!u.has_scheme && upath[0]) {
        if (upath[0] == '/')
            cands[nc++] = xstrdup(upath);
        else if (c->root_dir)
            cands[nc++] = join_path(c->root_dir, strlen(c->root_dir), upath);
        else
            cands[nc++] = xstrdup(upath);
    }
    const char *slash = strrchr(upath, '/');
    const char *basename = slash ? slash + 1 : upath;
    if (basename[0]) {
        if (c->root_dir)
            cands[nc++] = join_path(c->root_dir, strlen(c->root_dir), basename);
        const char *sp = o ? o->search_path : NULL;
        while (sp && *sp && nc < 60) {
            const char *colon = strchr(sp, ':');
            size_t dl = colon ? (size_t)(colon - sp) : strlen(sp);
            if (dl) {
                const char *rel = upath[0] == '/' ? upath + 1 : upath;
                cands[nc++] = join_path(sp, dl, rel);
                if (rel != basename && strcmp(rel, basename))
                    cands[nc++] = join_path(sp, dl, basename);
            }
            sp = colon ? colon + 1 : NULL;
        }
    }
    free(upath);
    char *text = NULL;
    for (size_t i = 0; i < nc; i++) {
        size_t len;
        /* TEXT is owned by the caller */
        if (!text && cands[i] && (text = read_file(cands[i], &len)) != NULL) {
            *used = cands[i];
            continue;
        }
        free(cands[i]);
    }
    return text;
}

/* Find or load the resource for URI (no fragment). */
static const struct id_entry *resource(struct compiler *c, const char *uri)
{
    const struct id_entry *e = find_id(c, uri);
    if (e || c->failed)
        return e;
    cJSON *root = NULL;
    if (!strcmp(uri, ferry_schema_draft07_uri)) {
        root = cJSON_Parse(ferry_schema_draft07_text); /* owned by the schema's documents */
        if (!root) {
            cerr(c, "out of memory");
            return NULL;
        }
    } else {
        char *used = NULL;
        char *text = fetch_local(c, uri, &used); /* freed below */
        if (!text)
            return NULL;
        root = parse_json(c, text, used);
        free(text);
        free(used);
        if (!root)
            return NULL;
    }
    if (!register_document(c, uri, root, false))
        return NULL;
    return find_id(c, uri);
}

static struct snode *compile_node(struct compiler *c, const cJSON *j, const char *base,
                                  const char *path);

/* Resolve $ref REF (found where BASE applies) to a compiled node. */
static struct snode *compile_ref(struct compiler *c, const char *ref, const char *base,
                                 const char *path)
{
    char *abs = uri_resolve(base, ref); /* freed below */
    if (!abs) {
        cerr(c, "out of memory");
        return NULL;
    }
    char *hash = strchr(abs, '#');
    char *frag = hash ? percent_decode(hash + 1, strlen(hash + 1)) : xstrdup(""); /* freed below */
    struct snode *out = NULL;
    if (hash)
        *hash = '\0';
    if (!frag) {
        cerr(c, "out of memory");
        goto done;
    }
    if (frag[0] && frag[0] != '/') {
        /* location-independent identifier: look for the whole "uri#name" */
        *hash = '#';
        const struct id_entry *e = find_id(c, abs);
        *hash = '\0';
        if (!e)
            resource(c, abs); /* the document may define it */
        *hash = '#';
        e = c->failed ? NULL : find_id(c, abs);
        *hash = '\0';
        if (e)
            out = compile_node(c, e->node, e->outer, e->path);
        else
            cerr(c, "%s: cannot resolve $ref \"%s\"", path, ref);
        goto done;
    }
    const struct id_entry *e = resource(c, abs);
    if (!e) {
        cerr(c, "%s: cannot resolve $ref \"%s\"", path, ref);
        goto done;
    }
    const cJSON *node = e->node;
    char *nbase = xstrdup(e->base);  /* base inside NODE; freed below */
    char *obase = xstrdup(e->outer); /* base around NODE; freed below */
    struct sbuf np = {0};
    sb_add(&np, e->path);
    for (char *tok = frag[0] ? frag + 1 : NULL; tok && node && nbase && obase;) {
        char *slash = strchr(tok, '/');
        if (slash)
            *slash = '\0';
        /* unescape ~1 and ~0 in place */
        char *w = tok;
        for (char *r = tok; *r; r++) {
            if (r[0] == '~' && r[1] == '1') {
                *w++ = '/';
                r++;
            } else if (r[0] == '~' && r[1] == '0') {
                *w++ = '~';
                r++;
            } else
                *w++ = *r;
        }
        *w = '\0';
        if (cJSON_IsArray(node)) {
            char *endp;
            unsigned long idx = strtoul(tok, &endp, 10);
            node = (*tok && !*endp) ? cJSON_GetArrayItem(node, (int)(idx > INT_MAX ? INT_MAX : idx))
                                    : NULL;
        } else if (cJSON_IsObject(node))
            node = cJSON_GetObjectItemCaseSensitive(node, tok);
        else
            node = NULL;
        sb_add(&np, "/");
        sb_add_ptr_token(&np, tok);
        free(obase);
        obase = xstrdup(nbase); /* freed below */
        const char *id = node ? schema_id(node) : NULL;
        if (id) {
            char *b2 = strip_empty_fragment(uri_resolve(nbase, id)); /* becomes NBASE */
            char *h2 = b2 ? strchr(b2, '#') : NULL;
            if (h2)
                *h2 = '\0';
            free(nbase);
            nbase = b2;
        }
        tok = slash ? slash + 1 : NULL;
    }
    char *npath = sb_take(&np); /* freed below */
    if (!nbase || !obase || !npath)
        cerr(c, "out of memory");
    else if (!node)
        cerr(c, "%s: cannot resolve $ref \"%s\"", path, ref);
    else
        out = compile_node(c, node, obase, npath);
    free(nbase);
    free(obase);
    free(npath);
done:
    free(frag);
    free(abs);
    return out;
}

static bool get_number(struct compiler *c, const cJSON *j, const char *kw, const char *path,
                       double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, kw);
    if (!v)
        return false;
    if (!cJSON_IsNumber(v)) {
        cerr(c, "%s/%s: must be a number", path, kw);
        return false;
    }
    *out = v->valuedouble;
    return true;
}

static void get_count(struct compiler *c, const cJSON *j, const char *kw, const char *path,
                      size_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, kw);
    if (!v)
        return;
    if (!cJSON_IsNumber(v) || !is_integral(v->valuedouble) || v->valuedouble < 0) {
        cerr(c, "%s/%s: must be a non-negative integer", path, kw);
        return;
    }
    *out = v->valuedouble >= (double)SIZE_MAX ? SIZE_MAX : (size_t)v->valuedouble;
}

static struct snode *compile_sub(struct compiler *c, const cJSON *j, const char *base,
                                 const char *path, const char *kw, const char *key)
{
    char *p = child_path(path, kw, key); /* freed below */
    if (!p) {
        cerr(c, "out of memory");
        return NULL;
    }
    struct snode *n = compile_node(c, j, base, p);
    free(p);
    return n;
}

static struct snode *compile_kw(struct compiler *c, const cJSON *j, const char *kw,
                                const char *base, const char *path)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, kw);
    return v ? compile_sub(c, v, base, path, kw, NULL) : NULL;
}

static pcre2_code *compile_regex(struct compiler *c, const char *src, const char *path,
                                 const char *kw, const char *key)
{
    int ec;
    size_t eo;
    pcre2_code *re = ferry_schema_regex_compile(src, &ec, &eo); /* freed in ferry_schema_free() */
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        cerr(c, "%s/%s%s%s: invalid regular expression at offset %zu: %s", path, kw, key ? "/" : "",
             key ? key : "", (size_t)eo, (const char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter on failure */
    return re;
}

static struct snode **compile_list(struct compiler *c, const cJSON *j, const char *kw,
                                   const char *base, const char *path, size_t *n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, kw);
    *n = 0;
    if (!v)
        return NULL;
    if (!cJSON_IsArray(v) || !cJSON_GetArraySize(v)) {
        cerr(c, "%s/%s: must be a non-empty array of schemas", path, kw);
        return NULL;
    }
    size_t cnt = (size_t)cJSON_GetArraySize(v);
    struct snode **list = calloc(cnt, sizeof *list); /* freed in ferry_schema_free() */
    if (!list) {
        cerr(c, "out of memory");
        return NULL;
    }
    size_t i = 0;
    for (const cJSON *e = v->child; e && !c->failed; e = e->next, i++) {
        char num[24];
        snprintf(num, sizeof num, "%zu", i);
        list[i] = compile_sub(c, e, base, path, kw, num);
    }
    *n = cnt;
    return list;
}

static int prop_cmp(const void *a, const void *b)
{
    return strcmp(((const struct prop *)a)->name, ((const struct prop *)b)->name);
}

/* Index of property NAME in the sorted N->props, or N->n_props. */
static size_t find_prop(const struct snode *n, const char *name)
{
    size_t lo = 0, hi = n->n_props;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, n->props[mid].name);
        if (!c)
            return mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return n->n_props;
}

static void compile_object_keywords(struct compiler *c, struct snode *n, const cJSON *j,
                                    const char *base, const char *path)
{
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "type"))) {
        const cJSON *list = cJSON_IsArray(v) ? v->child : v;
        for (const cJSON *t = list; t; t = cJSON_IsArray(v) ? t->next : NULL) {
            unsigned bit = 0;
            for (size_t i = 0; cJSON_IsString(t) && i < sizeof type_names / sizeof *type_names; i++)
                if (!strcmp(t->valuestring, type_names[i].name))
                    bit = type_names[i].bit;
            if (!bit) {
                cerr(c, "%s/type: unknown type", path);
                return;
            }
            n->types |= bit;
        }
        if (!n->types) {
            cerr(c, "%s/type: must name at least one type", path);
            return;
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "enum"))) {
        if (!cJSON_IsArray(v)) {
            cerr(c, "%s/enum: must be an array", path);
            return;
        }
        n->enum_values = v;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "const"))) {
        n->const_value = v;
        n->flags |= HAS_CONST;
    }
    if (get_number(c, j, "multipleOf", path, &n->multiple)) {
        if (!(n->multiple > 0)) {
            cerr(c, "%s/multipleOf: must be greater than 0", path);
            return;
        }
        n->flags |= HAS_MULTIPLE;
        to_decimal(n->multiple, &n->multiple_dec);
    }
    if (get_number(c, j, "maximum", path, &n->maximum))
        n->flags |= HAS_MAXIMUM;
    if (get_number(c, j, "minimum", path, &n->minimum))
        n->flags |= HAS_MINIMUM;
    if (get_number(c, j, "exclusiveMaximum", path, &n->exmaximum))
        n->flags |= HAS_EXMAXIMUM;
    if (get_number(c, j, "exclusiveMinimum", path, &n->exminimum))
        n->flags |= HAS_EXMINIMUM;
    get_count(c, j, "maxLength", path, &n->max_length);
    get_count(c, j, "minLength", path, &n->min_length);
    get_count(c, j, "maxItems", path, &n->max_items);
    get_count(c, j, "minItems", path, &n->min_items);
    get_count(c, j, "maxProperties", path, &n->max_props);
    get_count(c, j, "minProperties", path, &n->min_props);
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "pattern"))) {
        if (!cJSON_IsString(v)) {
            cerr(c, "%s/pattern: must be a string", path);
            return;
        }
        n->pattern_source = v->valuestring;
        n->pattern = compile_regex(c, v->valuestring, path, "pattern", NULL);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "format")) && cJSON_IsString(v)) {
        n->format = ferry_schema_format_lookup(v->valuestring);
        n->format_name = v->valuestring;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "contentEncoding")) && cJSON_IsString(v) &&
        !strcmp(v->valuestring, "base64"))
        n->flags |= CONTENT_BASE64;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "contentMediaType")) && cJSON_IsString(v) &&
        !strcmp(v->valuestring, "application/json"))
        n->flags |= CONTENT_JSON;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "uniqueItems")) && cJSON_IsTrue(v))
        n->flags |= UNIQUE_ITEMS;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "items"))) {
        if (cJSON_IsArray(v)) {
            size_t cnt = (size_t)cJSON_GetArraySize(v);
            /* freed in ferry_schema_free() */
            n->items_list = calloc(cnt ? cnt : 1, sizeof *n->items_list);
            if (!n->items_list) {
                cerr(c, "out of memory");
                return;
            }
            size_t i = 0;
            for (const cJSON *e = v->child; e && !c->failed; e = e->next, i++) {
                char num[24];
                snprintf(num, sizeof num, "%zu", i);
                n->items_list[i] = compile_sub(c, e, base, path, "items", num);
            }
            n->n_items = cnt;
            n->additional_items = compile_kw(c, j, "additionalItems", base, path);
        } else
            n->items = compile_sub(c, v, base, path, "items", NULL);
    }
    n->contains = compile_kw(c, j, "contains", base, path);
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "required"))) {
        if (!cJSON_IsArray(v)) {
            cerr(c, "%s/required: must be an array of strings", path);
            return;
        }
        for (const cJSON *e = v->child; e; e = e->next)
            if (!cJSON_IsString(e)) {
                cerr(c, "%s/required: must be an array of strings", path);
                return;
            }
        n->required = v->child ? v : NULL;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "properties")) && cJSON_IsObject(v)) {
        size_t cnt = (size_t)cJSON_GetArraySize(v);
        n->props = calloc(cnt ? cnt : 1, sizeof *n->props); /* freed in ferry_schema_free() */
        if (!n->props) {
            cerr(c, "out of memory");
            return;
        }
        for (const cJSON *e = v->child; e && !c->failed; e = e->next) {
            n->props[n->n_props].name = e->string;
            n->props[n->n_props++].schema = compile_sub(c, e, base, path, "properties", e->string);
        }
        qsort(n->props, n->n_props, sizeof *n->props, prop_cmp);
    }
    if (n->required && n->n_props && n->n_props <= 64) {
        /* when every required name is also under "properties", seeing the
         * properties is enough to know that none is missing */
        uint64_t mask = 0;
        for (const cJSON *r = n->required->child; r && mask != UINT64_MAX; r = r->next) {
            size_t i = find_prop(n, r->valuestring);
            mask = i < n->n_props ? mask | (uint64_t)1 << i : UINT64_MAX;
        }
        n->required_mask = mask == UINT64_MAX ? 0 : mask;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "patternProperties")) && cJSON_IsObject(v)) {
        size_t cnt = (size_t)cJSON_GetArraySize(v);
        /* freed in ferry_schema_free() */
        n->pattern_props = calloc(cnt ? cnt : 1, sizeof *n->pattern_props);
        if (!n->pattern_props) {
            cerr(c, "out of memory");
            return;
        }
        for (const cJSON *e = v->child; e && !c->failed; e = e->next) {
            struct pattern_prop *pp = &n->pattern_props[n->n_pattern_props];
            pp->re = compile_regex(c, e->string, path, "patternProperties", e->string);
            if (!pp->re)
                return;
            n->n_pattern_props++;
            pp->source = e->string;
            pp->schema = compile_sub(c, e, base, path, "patternProperties", e->string);
        }
    }
    n->additional_props = compile_kw(c, j, "additionalProperties", base, path);
    n->property_names = compile_kw(c, j, "propertyNames", base, path);
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "dependencies")) && cJSON_IsObject(v)) {
        size_t cnt = (size_t)cJSON_GetArraySize(v);
        n->deps = calloc(cnt ? cnt : 1, sizeof *n->deps); /* freed in ferry_schema_free() */
        if (!n->deps) {
            cerr(c, "out of memory");
            return;
        }
        for (const cJSON *e = v->child; e && !c->failed; e = e->next) {
            struct dependency *d = &n->deps[n->n_deps++];
            d->name = e->string;
            if (cJSON_IsArray(e)) {
                for (const cJSON *r = e->child; r; r = r->next)
                    if (!cJSON_IsString(r)) {
                        cerr(c, "%s/dependencies: arrays must hold strings", path);
                        return;
                    }
                d->required = e;
            } else
                d->schema = compile_sub(c, e, base, path, "dependencies", e->string);
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "if"))) {
        n->if_ = compile_sub(c, v, base, path, "if", NULL);
        n->then_ = compile_kw(c, j, "then", base, path);
        n->else_ = compile_kw(c, j, "else", base, path);
    }
    n->not_ = compile_kw(c, j, "not", base, path);
    n->all_of = compile_list(c, j, "allOf", base, path, &n->n_all_of);
    n->any_of = compile_list(c, j, "anyOf", base, path, &n->n_any_of);
    n->one_of = compile_list(c, j, "oneOf", base, path, &n->n_one_of);
}

static struct snode *compile_node(struct compiler *c, const cJSON *j, const char *base,
                                  const char *path)
{
    if (c->failed)
        return NULL;
    struct snode *n = memo_get(c, j);
    if (n)
        return n;
    if (!cJSON_IsObject(j) && !cJSON_IsBool(j)) {
        cerr(c, "%s: a schema must be an object or a boolean", path);
        return NULL;
    }
    struct ferry_schema *s = c->s;
    struct snode **nodes = grow(s->nodes, &c->cap_nodes, s->n_nodes + 1, sizeof *nodes);
    if (!nodes) {
        cerr(c, "out of memory");
        return NULL;
    }
    s->nodes = nodes;
    n = calloc(1, sizeof *n); /* freed in ferry_schema_free() */
    /* N->path is freed in ferry_schema_free() */
    if (!n || !(n->path = xstrdup(path)) || !memo_put(c, j, n)) {
        if (n)
            free(n->path);
        free(n);
        cerr(c, "out of memory");
        return NULL;
    }
    s->nodes[s->n_nodes++] = n;
    n->max_length = n->max_items = n->max_props = SIZE_MAX;
    if (cJSON_IsBool(j)) {
        n->boolean = cJSON_IsTrue(j);
        return n;
    }
    n->boolean = -1;
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(j, "$ref");
    if (ref) {
        if (!cJSON_IsString(ref)) {
            cerr(c, "%s/$ref: must be a string", path);
            return NULL;
        }
        char *rp = child_path(path, "$ref", NULL); /* freed below */
        if (!rp) {
            cerr(c, "out of memory");
            return NULL;
        }
        n->ref = compile_ref(c, ref->valuestring, base, rp);
        free(rp);
        return n;
    }
    char *own = NULL; /* freed below */
    const char *id = schema_id(j);
    if (id) {
        own = strip_empty_fragment(uri_resolve(base, id)); /* freed below */
        char *hash = own ? strchr(own, '#') : NULL;
        if (hash)
            *hash = '\0';
        if (!own) {
            cerr(c, "out of memory");
            return NULL;
        }
        base = own;
    }
    compile_object_keywords(c, n, j, base, path);
    free(own);
    return n;
}

static void compiler_cleanup(struct compiler *c)
{
    for (size_t i = 0; i < c->n_ids; i++) {
        free(c->ids[i].uri);
        free(c->ids[i].base);
        free(c->ids[i].outer);
        free(c->ids[i].path);
    }
    free(c->ids);
    free(c->memo);
    free(c->root_dir);
}

static struct ferry_schema *compile_common(struct compiler *c, const char *text, const char *uri)
{
    struct ferry_schema *s = calloc(1, sizeof *s); /* owned by the caller: ferry_schema_free() */
    if (!s) {
        cerr(c, "out of memory");
        return NULL;
    }
    c->s = s;
    s->max_errors = c->opts && c->opts->max_errors ? c->opts->max_errors : FERRY_SCHEMA_MAX_ERRORS;
    char *u = strip_empty_fragment(xstrdup(uri ? uri : "")); /* freed below */
    cJSON *root = u ? parse_json(c, text, c->errname) : NULL;
    if (!u)
        cerr(c, "out of memory");
    if (root && register_document(c, u, root, true)) {
        s->root = compile_node(c, root, u, "#");
        /* point every $ref at the end of its chain; a chain that never ends
         * is a loop no instance could get through */
        for (size_t i = 0; s->root && !c->failed && i < s->n_nodes; i++) {
            struct snode *t = s->nodes[i]->ref;
            for (size_t steps = 0; t && t->ref; steps++) {
                if (steps > s->n_nodes) {
                    cerr(c, "%s: $ref refers to itself", s->nodes[i]->path);
                    break;
                }
                t = t->ref;
            }
            if (t)
                s->nodes[i]->ref = t;
        }
    }
    free(u);
    if (c->failed || !s->root) {
        cerr(c, "cannot compile schema");
        ferry_schema_free(s);
        return NULL;
    }
    return s;
}

struct ferry_schema *ferry_schema_compile(const char *json_text, const char *base_uri,
                                          const struct ferry_schema_opts *o, char *err,
                                          size_t errlen)
{
    struct compiler c = {.opts = o, .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    if (!json_text) {
        cerr(&c, "no schema text");
        return NULL;
    }
    struct ferry_schema *s = compile_common(&c, json_text, base_uri);
    compiler_cleanup(&c);
    return s;
}

struct ferry_schema *ferry_schema_load(const char *path, const struct ferry_schema_opts *o,
                                       char *err, size_t errlen)
{
    struct compiler c = {.opts = o, .err = err, .errlen = errlen, .errname = path};
    if (err && errlen)
        err[0] = '\0';
    if (!path) {
        cerr(&c, "no schema file");
        return NULL;
    }
    size_t len;
    char *text = read_file(path, &len); /* freed below */
    if (!text) {
        cerr(&c, "%s", strerror(errno));
        return NULL;
    }
    if (strlen(text) != len) {
        free(text);
        cerr(&c, "file contains a NUL byte");
        return NULL;
    }
    /* the file's absolute URI is the base for relative references */
    struct sbuf abs = {0};
    if (path[0] != '/') {
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd)) {
            sb_add(&abs, cwd);
            sb_add(&abs, "/");
        }
    }
    sb_add(&abs, path);
    char *abspath = sb_take(&abs); /* freed below */
    struct sbuf ub = {0};
    sb_add(&ub, "file://");
    static const char keep[] = "-._~/!$&'()*+,;=:@";
    for (const char *p = abspath ? abspath : ""; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr(keep, ch))
            sb_addn(&ub, p, 1);
        else {
            char hex[4];
            snprintf(hex, sizeof hex, "%%%02X", ch);
            sb_add(&ub, hex);
        }
    }
    char *uri = sb_take(&ub); /* freed below */
    const char *slash = abspath ? strrchr(abspath, '/') : NULL;
    c.root_dir = slash ? xstrndup(abspath, (size_t)(slash - abspath) + 1)
                       : NULL; /* freed in compiler_cleanup() */
    struct ferry_schema *s = NULL;
    if (!uri || !abspath || !c.root_dir)
        cerr(&c, "out of memory");
    else
        s = compile_common(&c, text, uri);
    free(uri);
    free(abspath);
    free(text);
    compiler_cleanup(&c);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Validation                                                                */

/* One step of the instance path, kept on the stack while descending. */
struct ipath {
    const struct ipath *up;
    const char *key; /* property name, or NULL for an array index */
    size_t index;
};

struct vctx {
    const struct ferry_schema *s;
    struct ferry_schema_result *out; /* NULL: yes/no check only */
    size_t cap;
    bool stop; /* error limit reached or out of memory */
    bool oom;
    pcre2_match_data *md; /* created on first regex use; freed after validation */
    unsigned depth;
};

static void render_ipath(struct sbuf *b, const struct ipath *ip)
{
    if (!ip)
        return;
    render_ipath(b, ip->up);
    if (!ip->up && !ip->key && ip->index == SIZE_MAX)
        return; /* root marker */
    sb_add(b, "/");
    if (ip->key)
        sb_add_ptr_token(b, ip->key);
    else {
        char num[24];
        snprintf(num, sizeof num, "%zu", ip->index);
        sb_add(b, num);
    }
}

static void report(struct vctx *v, const struct snode *n, const struct ipath *ip, const char *kw,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void report(struct vctx *v, const struct snode *n, const struct ipath *ip, const char *kw,
                   const char *fmt, ...)
{
    struct ferry_schema_result *r = v->out;
    if (!r || v->stop)
        return;
    if (r->n_errors >= v->s->max_errors) {
        r->truncated = true;
        v->stop = true;
        return;
    }
    if (r->n_errors == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 4;
        if (nc > v->s->max_errors)
            nc = v->s->max_errors;
        /* freed in ferry_schema_result_free() */
        struct ferry_schema_error *e = realloc(r->errors, nc * sizeof *e);
        if (!e) {
            v->oom = v->stop = true;
            return;
        }
        r->errors = e;
        v->cap = nc;
    }
    struct ferry_schema_error *e = &r->errors[r->n_errors];
    struct sbuf b = {0};
    render_ipath(&b, ip);
    e->instance_path = sb_take(&b); /* freed in ferry_schema_result_free() */
    sb_add(&b, n->path);
    if (kw[0] != '\0' && strcmp(kw, "false")) {
        sb_add(&b, "/");
        sb_add(&b, kw);
    }
    e->schema_path = sb_take(&b); /* freed in ferry_schema_result_free() */
    e->keyword = xstrdup(kw);     /* freed in ferry_schema_result_free() */
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    e->message = xstrdup(msg); /* freed in ferry_schema_result_free() */
    r->n_errors++;
    if (!e->instance_path || !e->schema_path || !e->keyword || !e->message)
        v->oom = v->stop = true;
}

static bool json_equal(const cJSON *a, const cJSON *b)
{
    int ta = a->type & 0xFF, tb = b->type & 0xFF;
    if (ta != tb)
        return false;
    switch (ta) {
    case cJSON_Number: return a->valuedouble == b->valuedouble;
    case cJSON_String:
    case cJSON_Raw: return !strcmp(a->valuestring, b->valuestring);
    case cJSON_Array: {
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next)
            if (!json_equal(x, y))
                return false;
        return !x && !y;
    }
    case cJSON_Object: {
        size_t na = 0, nb = 0;
        for (const cJSON *x = a->child; x; x = x->next)
            na++;
        for (const cJSON *y = b->child; y; y = y->next)
            nb++;
        if (na != nb)
            return false;
        for (const cJSON *x = a->child; x; x = x->next) {
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
            if (!y || !json_equal(x, y))
                return false;
        }
        return true;
    }
    default: return true; /* null, true, false */
    }
}

static unsigned type_of(const cJSON *x)
{
    switch (x->type & 0xFF) {
    case cJSON_NULL: return T_NULL;
    case cJSON_True:
    case cJSON_False: return T_BOOL;
    case cJSON_Object: return T_OBJECT;
    case cJSON_Array: return T_ARRAY;
    case cJSON_Number: return is_integral(x->valuedouble) ? T_NUMBER | T_INTEGER : T_NUMBER;
    case cJSON_String: return T_STRING;
    default: return 0;
    }
}

static void describe_types(unsigned types, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    unsigned count = 0, total = 0;
    for (size_t i = 0; i < sizeof type_names / sizeof *type_names; i++)
        total += (types & type_names[i].bit) != 0;
    for (size_t i = 0; i < sizeof type_names / sizeof *type_names && off < n; i++) {
        if (!(types & type_names[i].bit))
            continue;
        count++;
        const char *sep = count == 1 ? "" : count == total ? " or " : ", ";
        int w = snprintf(buf + off, n - off, "%s\"%s\"", sep, type_names[i].name);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

static bool regex_search(struct vctx *v, const pcre2_code *re, const char *s, size_t len)
{
    if (!v->md) {
        v->md = pcre2_match_data_create(1, NULL); /* freed at the end of validation */
        if (!v->md) {
            v->oom = v->stop = true;
            return false;
        }
    }
    int rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, v->md, NULL);
    return rc >= 0;
}

static bool base64_decode_ok(const char *s, char **decoded, size_t *outlen)
{
    size_t len = strlen(s);
    if (len % 4)
        return false;
    char *out = malloc(len / 4 * 3 + 1); /* owned by the caller when returned */
    if (!out)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        unsigned v = 0;
        int pad = 0;
        for (size_t k = 0; k < 4; k++) {
            char ch = s[i + k];
            int d;
            if (ch >= 'A' && ch <= 'Z')
                d = ch - 'A';
            else if (ch >= 'a' && ch <= 'z')
                d = ch - 'a' + 26;
            else if (ch >= '0' && ch <= '9')
                d = ch - '0' + 52;
            else if (ch == '+')
                d = 62;
            else if (ch == '/')
                d = 63;
            else if (ch == '=' && i + 4 == len && k >= 2) {
                d = 0;
                pad++;
            } else {
                free(out);
                return false;
            }
            if (pad && ch != '=') {
                free(out);
                return false;
            }
            v = v << 6 | (unsigned)d;
        }
        out[o++] = (char)(v >> 16);
        if (pad < 2)
            out[o++] = (char)(v >> 8 & 0xFF);
        if (pad < 1)
            out[o++] = (char)(v & 0xFF);
    }
    out[o] = '\0';
    *decoded = out;
    *outlen = o;
    return true;
}

static bool is_json_text(const char *s, size_t len)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, len, &end, 0); /* freed below */
    if (!j)
        return false;
    cJSON_Delete(j);
    while (end < s + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    return end == s + len;
}

static bool v_node(struct vctx *v, const struct snode *n, const cJSON *x, const struct ipath *ip,
                   bool collect);

/* Run a failing check: record the error (when collecting) and decide whether
 * to go on looking for more. */
#define FAIL(kw, ...)                                                                              \
    do {                                                                                           \
        ok = false;                                                                                \
        if (!collect)                                                                              \
            return false;                                                                          \
        report(v, n, ip, kw, __VA_ARGS__);                                                         \
        if (v->stop)                                                                               \
            return false;                                                                          \
    } while (0)

#define SUB(cond)                                                                                  \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            ok = false;                                                                            \
            if (!collect || v->stop)                                                               \
                return false;                                                                      \
        }                                                                                          \
    } while (0)

static bool v_string(struct vctx *v, const struct snode *n, const cJSON *x, const struct ipath *ip,
                     bool collect)
{
    bool ok = true;
    char d[96];
    const char *str = x->valuestring;
    if (n->max_length != SIZE_MAX || n->min_length) {
        size_t len = utf8_length(str);
        if (len > n->max_length) {
            describe_value(x, d, sizeof d);
            FAIL("maxLength", "%s is longer than the maximum length %zu", d, n->max_length);
        }
        if (len < n->min_length) {
            describe_value(x, d, sizeof d);
            FAIL("minLength", "%s is shorter than the minimum length %zu", d, n->min_length);
        }
    }
    if (n->pattern && !regex_search(v, n->pattern, str, strlen(str))) {
        describe_value(x, d, sizeof d);
        FAIL("pattern", "%s does not match the pattern \"%s\"", d, n->pattern_source);
    }
    if (n->format && !ferry_schema_format_check(n->format, str, strlen(str))) {
        describe_value(x, d, sizeof d);
        FAIL("format", "%s is not a valid \"%s\"", d, n->format_name);
    }
    if (n->flags & (CONTENT_BASE64 | CONTENT_JSON)) {
        char *dec = NULL; /* freed below */
        size_t dlen = strlen(str);
        bool good = true;
        if (n->flags & CONTENT_BASE64)
            good = base64_decode_ok(str, &dec, &dlen);
        if (!good) {
            describe_value(x, d, sizeof d);
            FAIL("contentEncoding", "%s is not valid base64", d);
        } else if ((n->flags & CONTENT_JSON) && !is_json_text(dec ? dec : str, dlen)) {
            free(dec);
            dec = NULL;
            describe_value(x, d, sizeof d);
            FAIL("contentMediaType", "%s is not valid application/json content", d);
        }
        free(dec);
    }
    return ok;
}

static bool v_number(struct vctx *v, const struct snode *n, const cJSON *x, const struct ipath *ip,
                     bool collect)
{
    bool ok = true;
    double val = x->valuedouble;
    char d[48], l[48];
    if ((n->flags & HAS_MAXIMUM) && val > n->maximum) {
        format_number(val, d, sizeof d);
        format_number(n->maximum, l, sizeof l);
        FAIL("maximum", "%s is greater than the maximum %s", d, l);
    }
    if ((n->flags & HAS_EXMAXIMUM) && val >= n->exmaximum) {
        format_number(val, d, sizeof d);
        format_number(n->exmaximum, l, sizeof l);
        FAIL("exclusiveMaximum", "%s is greater than or equal to the exclusive maximum %s", d, l);
    }
    if ((n->flags & HAS_MINIMUM) && val < n->minimum) {
        format_number(val, d, sizeof d);
        format_number(n->minimum, l, sizeof l);
        FAIL("minimum", "%s is less than the minimum %s", d, l);
    }
    if ((n->flags & HAS_EXMINIMUM) && val <= n->exminimum) {
        format_number(val, d, sizeof d);
        format_number(n->exminimum, l, sizeof l);
        FAIL("exclusiveMinimum", "%s is less than or equal to the exclusive minimum %s", d, l);
    }
    if (n->flags & HAS_MULTIPLE) {
        bool multiple;
        if (!isfinite(val))
            multiple = false;
        else if (is_integral(val) && is_integral(n->multiple) && fabs(val) < 9007199254740992.0)
            multiple = fmod(val, n->multiple) == 0;
        else {
            struct decimal dv;
            to_decimal(val, &dv);
            multiple = decimal_multiple(&dv, &n->multiple_dec);
        }
        if (!multiple) {
            format_number(val, d, sizeof d);
            format_number(n->multiple, l, sizeof l);
            FAIL("multipleOf", "%s is not a multiple of %s", d, l);
        }
    }
    return ok;
}

static bool v_array(struct vctx *v, const struct snode *n, const cJSON *x, const struct ipath *ip,
                    bool collect)
{
    bool ok = true;
    size_t count = 0;
    for (const cJSON *e = x->child; e; e = e->next)
        count++;
    if (count > n->max_items)
        FAIL("maxItems", "array has %zu items, more than the maximum %zu", count, n->max_items);
    if (count < n->min_items)
        FAIL("minItems", "array has %zu items, fewer than the minimum %zu", count, n->min_items);
    if (n->flags & UNIQUE_ITEMS) {
        size_t i = 0;
        bool dup = false;
        for (const cJSON *a = x->child; a && !dup; a = a->next, i++) {
            size_t k = i + 1;
            for (const cJSON *b = a->next; b; b = b->next, k++)
                if (json_equal(a, b)) {
                    FAIL("uniqueItems", "items at index %zu and %zu are equal", i, k);
                    dup = true;
                    break;
                }
        }
    }
    if (n->items || n->items_list) {
        size_t i = 0;
        for (const cJSON *e = x->child; e; e = e->next, i++) {
            struct ipath sub = {ip, NULL, i};
            const struct snode *sn = n->items         ? n->items
                                     : i < n->n_items ? n->items_list[i]
                                                      : n->additional_items;
            if (!sn)
                break;
            if (sn == n->additional_items && sn->boolean == 0) {
                FAIL("additionalItems",
                     "array has %zu items, more than the %zu allowed by \"items\"", count,
                     n->n_items);
                break;
            }
            SUB(v_node(v, sn, e, &sub, collect));
        }
    }
    if (n->contains) {
        bool found = false;
        for (const cJSON *e = x->child; e && !found; e = e->next) {
            struct ipath sub = {ip, NULL, 0};
            found = v_node(v, n->contains, e, &sub, false);
        }
        if (!found)
            FAIL("contains", "no item of the array matches the \"contains\" schema");
    }
    return ok;
}

static bool v_object(struct vctx *v, const struct snode *n, const cJSON *x, const struct ipath *ip,
                     bool collect)
{
    bool ok = true;
    if (n->max_props != SIZE_MAX || n->min_props) {
        size_t count = 0;
        for (const cJSON *e = x->child; e; e = e->next)
            count++;
        if (count > n->max_props)
            FAIL("maxProperties", "object has %zu properties, more than the maximum %zu", count,
                 n->max_props);
        if (count < n->min_props)
            FAIL("minProperties", "object has %zu properties, fewer than the minimum %zu", count,
                 n->min_props);
    }
    uint64_t seen = 0; /* bits of N->props present in X */
    if (n->n_props || n->n_pattern_props || n->additional_props) {
        for (const cJSON *e = x->child; e; e = e->next) {
            if (!e->string)
                continue;
            struct ipath sub = {ip, e->string, 0};
            bool matched = false;
            size_t pi = n->n_props ? find_prop(n, e->string) : 0;
            if (pi < n->n_props) {
                matched = true;
                if (pi < 64)
                    seen |= (uint64_t)1 << pi;
                SUB(v_node(v, n->props[pi].schema, e, &sub, collect));
            }
            for (size_t i = 0; i < n->n_pattern_props; i++) {
                const struct pattern_prop *pp = &n->pattern_props[i];
                if (regex_search(v, pp->re, e->string, strlen(e->string))) {
                    matched = true;
                    SUB(v_node(v, pp->schema, e, &sub, collect));
                }
            }
            if (!matched && n->additional_props) {
                if (n->additional_props->boolean == 0)
                    FAIL("additionalProperties", "additional property \"%s\" is not allowed",
                         e->string);
                else
                    SUB(v_node(v, n->additional_props, e, &sub, collect));
            }
        }
    }
    if (n->required && (!n->required_mask || (seen & n->required_mask) != n->required_mask)) {
        for (const cJSON *r = n->required->child; r; r = r->next)
            if (!cJSON_GetObjectItemCaseSensitive(x, r->valuestring))
                FAIL("required", "required property \"%s\" is missing", r->valuestring);
    }
    for (size_t i = 0; i < n->n_deps; i++) {
        const struct dependency *d = &n->deps[i];
        if (!cJSON_GetObjectItemCaseSensitive(x, d->name))
            continue;
        if (d->required) {
            for (const cJSON *r = d->required->child; r; r = r->next)
                if (!cJSON_GetObjectItemCaseSensitive(x, r->valuestring))
                    FAIL("dependencies", "property \"%s\" is required when \"%s\" is present",
                         r->valuestring, d->name);
        } else
            SUB(v_node(v, d->schema, x, ip, collect));
    }
    if (n->property_names) {
        for (const cJSON *e = x->child; e; e = e->next) {
            if (!e->string)
                continue;
            cJSON name;
            memset(&name, 0, sizeof name);
            name.type = cJSON_String;
            name.valuestring = e->string;
            if (!v_node(v, n->property_names, &name, ip, false))
                FAIL("propertyNames",
                     "property name \"%s\" does not match the \"propertyNames\" schema", e->string);
        }
    }
    return ok;
}

static bool v_keywords(struct vctx *v, const struct snode *n, const cJSON *x,
                       const struct ipath *ip, bool collect)
{
    bool ok = true;
    char d[96];
    unsigned t = type_of(x);
    if (n->types && !(n->types & t)) {
        char tn[96];
        describe_value(x, d, sizeof d);
        describe_types(n->types, tn, sizeof tn);
        FAIL("type", "%s is not of type %s", d, tn);
    }
    if (n->enum_values) {
        bool found = false;
        for (const cJSON *e = n->enum_values->child; e && !found; e = e->next)
            found = json_equal(x, e);
        if (!found) {
            char allowed[128];
            describe_value(x, d, sizeof d);
            describe_value(n->enum_values, allowed, sizeof allowed);
            FAIL("enum", "%s is not one of %s", d, allowed);
        }
    }
    if ((n->flags & HAS_CONST) && !json_equal(x, n->const_value)) {
        char want[96];
        describe_value(x, d, sizeof d);
        describe_value(n->const_value, want, sizeof want);
        FAIL("const", "%s is not equal to the constant %s", d, want);
    }
    bool sub_ok = true;
    if (t & T_STRING)
        sub_ok = v_string(v, n, x, ip, collect);
    else if (t & T_NUMBER)
        sub_ok = v_number(v, n, x, ip, collect);
    else if (t & T_ARRAY)
        sub_ok = v_array(v, n, x, ip, collect);
    else if (t & T_OBJECT)
        sub_ok = v_object(v, n, x, ip, collect);
    ok = ok && sub_ok;
    if (!ok && (!collect || v->stop))
        return false;
    for (size_t i = 0; i < n->n_all_of; i++) {
        if (!v_node(v, n->all_of[i], x, ip, collect)) {
            ok = false;
            if (!collect || v->stop)
                return false;
        }
    }
    if (n->n_any_of) {
        bool any = false;
        for (size_t i = 0; i < n->n_any_of && !any; i++)
            any = v_node(v, n->any_of[i], x, ip, false);
        if (!any) {
            ok = false;
            if (!collect)
                return false;
            describe_value(x, d, sizeof d);
            report(v, n, ip, "anyOf", "%s does not match any of the schemas in \"anyOf\"", d);
            if (v->stop)
                return false;
        }
    }
    if (n->n_one_of) {
        size_t first = SIZE_MAX, second = SIZE_MAX;
        for (size_t i = 0; i < n->n_one_of && second == SIZE_MAX; i++) {
            if (v_node(v, n->one_of[i], x, ip, false)) {
                if (first == SIZE_MAX)
                    first = i;
                else
                    second = i;
            }
        }
        if (first == SIZE_MAX || second != SIZE_MAX) {
            ok = false;
            if (!collect)
                return false;
            describe_value(x, d, sizeof d);
            if (first == SIZE_MAX)
                report(v, n, ip, "oneOf", "%s does not match any of the schemas in \"oneOf\"", d);
            else
                report(v, n, ip, "oneOf",
                       "%s matches more than one schema in \"oneOf\" (%zu and %zu)", d, first,
                       second);
            if (v->stop)
                return false;
        }
    }
    if (n->not_ && v_node(v, n->not_, x, ip, false)) {
        ok = false;
        if (!collect)
            return false;
        describe_value(x, d, sizeof d);
        report(v, n, ip, "not", "%s must not match the \"not\" schema", d);
        if (v->stop)
            return false;
    }
    if (n->if_) {
        const struct snode *branch = v_node(v, n->if_, x, ip, false) ? n->then_ : n->else_;
        if (branch && !v_node(v, branch, x, ip, collect))
            ok = false;
    }
    return ok;
}

static bool v_node(struct vctx *v, const struct snode *n, const cJSON *x, const struct ipath *ip,
                   bool collect)
{
    bool ok = true;
    if (n->ref)
        n = n->ref; /* chains were collapsed at compile time */
    if (n->boolean >= 0) {
        if (n->boolean)
            return true;
        FAIL("false", "no value is allowed here (the schema is false)");
        return false;
    }
    if (v->depth >= MAX_DEPTH) {
        FAIL("$ref", "schema nesting is too deep (a reference loop?)");
        return false;
    }
    v->depth++;
    ok = v_keywords(v, n, x, ip, collect);
    v->depth--;
    return ok;
}

static void clear_result(struct ferry_schema_result *r)
{
    memset(r, 0, sizeof *r);
}

int ferry_schema_validate(const struct ferry_schema *s, const cJSON *instance,
                          struct ferry_schema_result *out)
{
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    clear_result(out);
    if (!s || !instance) {
        errno = EINVAL;
        return -1;
    }
    struct vctx v = {.s = s, .out = out};
    struct ipath root = {NULL, NULL, SIZE_MAX};
    bool ok = v_node(&v, s->root, instance, &root, true);
    pcre2_match_data_free(v.md);
    if (v.oom) {
        ferry_schema_result_free(out);
        errno = ENOMEM;
        return -1;
    }
    out->valid = ok;
    if (!ok && out->n_errors == 0)
        report(&v, s->root, &root, "", "the value is not valid");
    return 0;
}

bool ferry_schema_is_valid(const struct ferry_schema *s, const cJSON *instance)
{
    if (!s || !instance)
        return false;
    struct vctx v = {.s = s};
    struct ipath root = {NULL, NULL, SIZE_MAX};
    bool ok = v_node(&v, s->root, instance, &root, false);
    pcre2_match_data_free(v.md);
    return ok && !v.oom;
}

int ferry_schema_validate_text(const struct ferry_schema *s, const char *text, size_t len,
                               struct ferry_schema_result *out)
{
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    clear_result(out);
    if (!s || (!text && len)) {
        errno = EINVAL;
        return -1;
    }
    const char *end = NULL;
    cJSON *j = len ? cJSON_ParseWithLengthOpts(text, len, &end, 0) : NULL; /* freed below */
    const char *why = "invalid JSON";
    if (j) {
        while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
            end++;
        if (end < text + len) {
            cJSON_Delete(j);
            j = NULL;
            why = "unexpected data after the JSON value";
        }
    } else if (!len)
        why = "empty message";
    /* what cJSON lets through: invalid UTF-8, and numbers beyond a double
	 * (cJSON makes them inf, which would be reported for the original) */
    char jerr[160];
    size_t joff = 0;
    if (j && ferry_json_check(text, len, 0, &joff, jerr, sizeof jerr)) {
        cJSON_Delete(j);
        j = NULL;
        why = jerr; /* names its own byte offset */
        end = text + joff;
    }
    if (!j) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        if (off > len)
            off = len;
        struct vctx v = {.s = s, .out = out};
        struct ipath root = {NULL, NULL, SIZE_MAX};
        struct snode pseudo = {.path = (char *)"#"};
        if (why == jerr)
            report(&v, &pseudo, &root, "json", "%s", why);
        else
            report(&v, &pseudo, &root, "json", "%s at byte offset %zu", why, off);
        if (v.oom) {
            ferry_schema_result_free(out);
            errno = ENOMEM;
            return -1;
        }
        out->valid = false;
        /* the keyword is not part of the schema: point at the schema root */
        if (out->n_errors) {
            free(out->errors[0].schema_path);
            out->errors[0].schema_path = xstrdup("#"); /* freed in ferry_schema_result_free() */
            if (!out->errors[0].schema_path) {
                ferry_schema_result_free(out);
                errno = ENOMEM;
                return -1;
            }
        }
        return 0;
    }
    int rc = ferry_schema_validate(s, j, out);
    cJSON_Delete(j);
    return rc;
}

void ferry_schema_result_free(struct ferry_schema_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_errors; i++) {
        free(r->errors[i].instance_path);
        free(r->errors[i].keyword);
        free(r->errors[i].schema_path);
        free(r->errors[i].message);
    }
    free(r->errors);
    clear_result(r);
}

char *ferry_schema_result_format(const struct ferry_schema_result *r)
{
    struct sbuf b = {0};
    for (size_t i = 0; r && i < r->n_errors; i++) {
        const struct ferry_schema_error *e = &r->errors[i];
        if (i)
            sb_add(&b, "; ");
        sb_add(&b, e->instance_path && e->instance_path[0] ? e->instance_path : "(root)");
        sb_add(&b, ": ");
        sb_add(&b, e->message ? e->message : "");
        sb_add(&b, " (");
        sb_add(&b, e->schema_path ? e->schema_path : "");
        sb_add(&b, ")");
    }
    if (r && r->truncated)
        sb_add(&b, r->n_errors ? "; ..." : "...");
    return sb_take(&b); /* owned by the caller */
}

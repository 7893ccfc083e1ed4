/* What cJSON does not check in the JSON text ferry accepts: the text is
 * valid UTF-8, numbers are finite doubles, and, where asked, no object
 * names a key twice and no string holds a NUL (cJSON keeps strings as C
 * strings and would cut them there). One walk over the text, no tree. */
#include "config.h"
#include "jsoncheck.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cJSON's own limit (CJSON_NESTING_LIMIT) */
#define JC_MAX_DEPTH 1000

size_t ferry_utf8_check(const void *text, size_t len)
{
    const unsigned char *s = text, *end = s + len;
    const unsigned char *p = s;
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            p++;
            /* ASCII runs eight bytes at a time */
            while (end - p >= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                if (w & 0x8080808080808080ULL)
                    break;
                p += 8;
            }
            continue;
        }
        size_t n;
        unsigned long cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return (size_t)(p - s);
        }
        if ((size_t)(end - p) <= n)
            return (size_t)(p - s);
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return (size_t)(p - s);
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        /* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return (size_t)(p - s);
        p += n + 1;
    }
    return len;
}

size_t ferry_utf8_scrub(char *text, size_t len)
{
    size_t fixed = 0, at = 0;
    while ((at += ferry_utf8_check(text + at, len - at)) < len) {
        text[at++] = '?';
        fixed++;
    }
    return fixed;
}

struct jc {
    const unsigned char *s, *end, *p;
    unsigned flags;
    char *err;
    size_t errlen;
    size_t *off;
    bool failed;
};

struct jc_key {
    char *text; /* decoded; owned by the object's key list */
    size_t len;
    size_t at; /* byte offset of its opening quote */
};

FERRY_JC_PRINTF(3, 4)
static bool jc_fail(struct jc *j, const unsigned char *at, const char *fmt, ...)
{
    if (j->failed)
        return false;
    j->failed = true;
    if (j->off)
        *j->off = (size_t)(at - j->s);
    if (j->err && j->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->err, j->errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

static void jc_ws(struct jc *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Printable form of a key for an error message: at most about 60 bytes,
 * control characters and quotes as '?', so the message stays one line. */
static void show_key(char *out, size_t outlen, const char *k, size_t len)
{
    size_t w = 0;
    for (size_t i = 0; i < len && w + 4 < outlen && w < 60; i++)
        out[w++] = (unsigned char)k[i] < 0x20 || k[i] == '"' || k[i] == '\\' ? '?' : k[i];
    if (w < len && w + 4 < outlen) {
        memcpy(out + w, "...", 3);
        w += 3;
    }
    out[w] = '\0';
}

static void put_utf8(char *w, size_t *n, unsigned long cp)
{
    if (cp < 0x80) {
        w[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        w[(*n)++] = (char)(0xC0 | (cp >> 6));
        w[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        w[(*n)++] = (char)(0xE0 | (cp >> 12));
        w[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        w[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        w[(*n)++] = (char)(0xF0 | (cp >> 18));
        w[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        w[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        w[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

/* A string at j->p (the opening quote). With key set, its decoded text
 * goes to *key (malloc'ed, the caller's) and its length to *keylen. */
static bool jc_string(struct jc *j, char **key, size_t *keylen)
{
    const unsigned char *open = j->p++;
    char *dec = NULL;
    size_t n = 0;
    if (key) {
        /* decoded text is never longer than the escaped text */
        size_t cap = (size_t)(j->end - j->p) + 1;
        if (!(dec = malloc(cap)))
            return jc_fail(j, open, "out of memory");
    }
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = *j->p;
        if (c == '\\') {
            if (j->end - j->p < 2)
                break;
            unsigned char e = j->p[1];
            if (e == 'u') {
                if (j->end - j->p < 6 || hex4(j->p + 2) < 0) {
                    free(dec);
                    return jc_fail(j, j->p, "invalid JSON at byte %zu: bad \\u escape",
                                   (size_t)(j->p - j->s));
                }
                unsigned long cp = (unsigned long)hex4(j->p + 2);
                const unsigned char *esc = j->p;
                j->p += 6;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    int lo = j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u'
                                 ? hex4(j->p + 2)
                                 : -1;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        free(dec);
                        return jc_fail(j, esc, "unpaired UTF-16 surrogate \\u%04lx at byte %zu", cp,
                                       (size_t)(esc - j->s));
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
                    j->p += 6;
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    free(dec);
                    return jc_fail(j, esc, "unpaired UTF-16 surrogate \\u%04lx at byte %zu", cp,
                                   (size_t)(esc - j->s));
                }
                if (cp == 0 && (j->flags & FERRY_JSON_NO_NUL)) {
                    free(dec);
                    return jc_fail(j, esc,
                                   "a string holds \\u0000 (NUL) at byte %zu; NUL "
                                   "characters are not accepted",
                                   (size_t)(esc - j->s));
                }
                if (dec)
                    put_utf8(dec, &n, cp);
                continue;
            }
            static const char simple[] = "\"\\/bfnrt", value[] = "\"\\/\b\f\n\r\t";
            const char *k = e ? strchr(simple, e) : NULL;
            if (!k) {
                free(dec);
                return jc_fail(j, j->p, "invalid JSON at byte %zu: bad escape",
                               (size_t)(j->p - j->s));
            }
            if (dec)
                dec[n++] = value[k - simple];
            j->p += 2;
            continue;
        }
        if (c == 0 && (j->flags & FERRY_JSON_NO_NUL)) {
            free(dec);
            return jc_fail(j, j->p,
                           "a string holds a NUL byte at byte %zu; NUL characters "
                           "are not accepted",
                           (size_t)(j->p - j->s));
        }
        if (c < 0x20) { /* RFC 8259: control characters are escaped in strings */
            free(dec);
            return jc_fail(j, j->p,
                           "a string holds control character 0x%02x at byte %zu; JSON "
                           "strings carry it escaped (\\u%04x)",
                           c, (size_t)(j->p - j->s), c);
        }
        if (c >= 0x80) {
            size_t ok = ferry_utf8_check(j->p, (size_t)(j->end - j->p));
            /* the length of this one character */
            size_t clen = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (ok < clen) {
                free(dec);
                return jc_fail(j, j->p, "invalid UTF-8 at byte %zu", (size_t)(j->p - j->s));
            }
            if (dec)
                memcpy(dec + n, j->p, clen);
            n += dec ? clen : 0;
            j->p += clen;
            continue;
        }
        if (dec)
            dec[n++] = (char)c;
        j->p++;
    }
    if (j->p >= j->end || *j->p != '"') {
        free(dec);
        return jc_fail(j, open, "invalid JSON at byte %zu: unterminated string",
                       (size_t)(open - j->s));
    }
    j->p++;
    if (key) {
        dec[n] = '\0';
        *key = dec;
        *keylen = n;
    }
    return true;
}

static bool jc_number(struct jc *j)
{
    const unsigned char *start = j->p;
    if (j->p < j->end && *j->p == '-')
        j->p++;
    size_t digits = 0;
    const unsigned char *first = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++, digits++;
    if (!digits || (digits > 1 && *first == '0')) /* RFC 8259: no leading zero */
        return jc_fail(j, start, "invalid JSON at byte %zu", (size_t)(start - j->s));
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        digits = 0;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++, digits++;
        if (!digits)
            return jc_fail(j, start, "invalid JSON at byte %zu", (size_t)(start - j->s));
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        digits = 0;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++, digits++;
        if (!digits)
            return jc_fail(j, start, "invalid JSON at byte %zu", (size_t)(start - j->s));
    }
    if (j->flags & FERRY_JSON_ANY_NUMBER)
        return true;
    size_t len = (size_t)(j->p - start);
    char small[128], *buf = len < sizeof small ? small : malloc(len + 1); /* freed below */
    if (!buf)
        return jc_fail(j, start, "out of memory");
    memcpy(buf, start, len);
    buf[len] = '\0';
    double d = strtod(buf, NULL);
    if (buf != small)
        free(buf);
    if (!isfinite(d))
        return jc_fail(j, start, "number %.*s%s at byte %zu is out of range (beyond a double)",
                       (int)(len > 40 ? 40 : len), (const char *)start, len > 40 ? "..." : "",
                       (size_t)(start - j->s));
    return true;
}

static int key_cmp(const void *a, const void *b)
{
    const struct jc_key *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, n);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

static bool jc_value(struct jc *j, int depth);

static bool jc_object(struct jc *j, int depth)
{
    const unsigned char *open = j->p++;
    bool dups = j->flags & FERRY_JSON_NO_DUP_KEYS;
    struct jc_key *keys = NULL; /* freed below */
    size_t nkeys = 0, cap = 0;
    bool ok = true;
    jc_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return true;
    }
    for (;;) {
        jc_ws(j);
        if (j->p >= j->end || *j->p != '"') {
            ok =
                jc_fail(j, j->p, "invalid JSON at byte %zu: a key expected", (size_t)(j->p - j->s));
            break;
        }
        struct jc_key k = {.at = (size_t)(j->p - j->s)};
        if (!jc_string(j, dups ? &k.text : NULL, &k.len)) {
            ok = false;
            break;
        }
        if (dups) {
            if (nkeys == cap) {
                size_t nc = cap ? cap * 2 : 8;
                struct jc_key *nk = realloc(keys, nc * sizeof *nk);
                if (!nk) {
                    free(k.text);
                    ok = jc_fail(j, open, "out of memory");
                    break;
                }
                keys = nk;
                cap = nc;
            }
            keys[nkeys++] = k;
        }
        jc_ws(j);
        if (j->p >= j->end || *j->p != ':') {
            ok = jc_fail(j, j->p, "invalid JSON at byte %zu: ':' expected", (size_t)(j->p - j->s));
            break;
        }
        j->p++;
        if (!jc_value(j, depth + 1)) {
            ok = false;
            break;
        }
        jc_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            break;
        }
        ok = jc_fail(j, j->p, "invalid JSON at byte %zu: ',' or '}' expected",
                     (size_t)(j->p - j->s));
        break;
    }
    if (ok && nkeys > 1) {
        qsort(keys, nkeys, sizeof *keys, key_cmp);
        for (size_t i = 1; i < nkeys; i++)
            if (keys[i].len == keys[i - 1].len &&
                !memcmp(keys[i].text, keys[i - 1].text, keys[i].len)) {
                char shown[80];
                show_key(shown, sizeof shown, keys[i].text, keys[i].len);
                ok = jc_fail(j, j->s + keys[i].at,
                             "duplicate key \"%s\" at byte %zu (first at "
                             "byte %zu)",
                             shown, keys[i].at, keys[i - 1].at);
                break;
            }
    }
    for (size_t i = 0; i < nkeys; i++)
        free(keys[i].text);
    free(keys);
    return ok;
}

static bool jc_value(struct jc *j, int depth)
{
    if (depth > JC_MAX_DEPTH)
        return jc_fail(j, j->p, "invalid JSON at byte %zu: nested more than %d deep",
                       (size_t)(j->p - j->s), JC_MAX_DEPTH);
    jc_ws(j);
    if (j->p >= j->end)
        return jc_fail(j, j->p, "invalid JSON at byte %zu: a value expected",
                       (size_t)(j->p - j->s));
    switch (*j->p) {
    case '{': return jc_object(j, depth);
    case '[':
        j->p++;
        jc_ws(j);
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            return true;
        }
        for (;;) {
            if (!jc_value(j, depth + 1))
                return false;
            jc_ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == ']') {
                j->p++;
                return true;
            }
            return jc_fail(j, j->p, "invalid JSON at byte %zu: ',' or ']' expected",
                           (size_t)(j->p - j->s));
        }
    case '"': return jc_string(j, NULL, NULL);
    case 't':
    case 'f':
    case 'n': {
        const char *word = *j->p == 't' ? "true" : *j->p == 'f' ? "false" : "null";
        size_t wl = strlen(word);
        if ((size_t)(j->end - j->p) < wl || memcmp(j->p, word, wl))
            return jc_fail(j, j->p, "invalid JSON at byte %zu", (size_t)(j->p - j->s));
        j->p += wl;
        return true;
    }
    default: return jc_number(j);
    }
}

int ferry_json_check(const void *text, size_t len, unsigned flags, size_t *off, char *err,
                     size_t errlen)
{
    struct jc j = {.s = text,
                   .end = (const unsigned char *)text + len,
                   .p = text,
                   .flags = flags,
                   .err = err,
                   .errlen = errlen,
                   .off = off};
    if (err && errlen)
        err[0] = '\0';
    /* invalid UTF-8 anywhere first: its offset is the most useful report */
    size_t bad = ferry_utf8_check(text, len);
    if (bad < len) {
        jc_fail(&j, j.s + bad, "invalid UTF-8 at byte %zu", bad);
        return -1;
    }
    if (!jc_value(&j, 0))
        return -1;
    jc_ws(&j);
    if (j.p < j.end) {
        jc_fail(&j, j.p, "invalid JSON at byte %zu: text after the value", (size_t)(j.p - j.s));
        return -1;
    }
    return 0;
}

/* ferry: checks for the JSON Schema "format" keyword (dates, e-mail addresses,
 * host names, IP addresses, URIs, URI templates, JSON Pointers, regular expressions). */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "schema_internal.h"

static const struct {
    const char *name;
    enum ferry_schema_format fmt;
} formats[] = {
    {"date-time", FERRY_FMT_DATE_TIME},
    {"date", FERRY_FMT_DATE},
    {"time", FERRY_FMT_TIME},
    {"email", FERRY_FMT_EMAIL},
    {"idn-email", FERRY_FMT_IDN_EMAIL},
    {"hostname", FERRY_FMT_HOSTNAME},
    {"idn-hostname", FERRY_FMT_IDN_HOSTNAME},
    {"ipv4", FERRY_FMT_IPV4},
    {"ipv6", FERRY_FMT_IPV6},
    {"uri", FERRY_FMT_URI},
    {"uri-reference", FERRY_FMT_URI_REFERENCE},
    {"iri", FERRY_FMT_IRI},
    {"iri-reference", FERRY_FMT_IRI_REFERENCE},
    {"uri-template", FERRY_FMT_URI_TEMPLATE},
    {"json-pointer", FERRY_FMT_JSON_POINTER},
    {"relative-json-pointer", FERRY_FMT_RELATIVE_JSON_POINTER},
    {"regex", FERRY_FMT_REGEX},
};

enum ferry_schema_format ferry_schema_format_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
        if (!strcmp(name, formats[i].name))
            return formats[i].fmt;
    return FERRY_FMT_NONE;
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Read exactly N digits at *P as a number; advances *P. */
static bool digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || !is_digit((unsigned char)**p))
            return false;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return true;
}

static bool parse_date(const char **p, const char *end)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d;
    if (!digits(p, end, 4, &y) || *p >= end || *(*p)++ != '-' || !digits(p, end, 2, &m) ||
        *p >= end || *(*p)++ != '-' || !digits(p, end, 2, &d))
        return false;
    if (m < 1 || m > 12 || d < 1)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int max = mdays[m - 1] + (m == 2 && leap);
    return d <= max;
}

/* full-time of RFC 3339: HH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
static bool parse_time(const char **p, const char *end)
{
    int h, m, s;
    if (!digits(p, end, 2, &h) || *p >= end || *(*p)++ != ':' || !digits(p, end, 2, &m) ||
        *p >= end || *(*p)++ != ':' || !digits(p, end, 2, &s))
        return false;
    if (h > 23 || m > 59 || s > 60)
        return false;
    if (*p < end && **p == '.') {
        (*p)++;
        if (*p >= end || !is_digit((unsigned char)**p))
            return false;
        while (*p < end && is_digit((unsigned char)**p))
            (*p)++;
    }
    if (*p >= end)
        return false;
    int oh = 0, om = 0, sign = 0;
    if (**p == 'Z' || **p == 'z')
        (*p)++;
    else if (**p == '+' || **p == '-') {
        sign = **p == '+' ? 1 : -1;
        (*p)++;
        if (!digits(p, end, 2, &oh) || *p >= end || *(*p)++ != ':' || !digits(p, end, 2, &om))
            return false;
        if (oh > 23 || om > 59)
            return false;
    } else
        return false;
    if (s == 60) {
        /* a leap second happens at 23:59:60 UTC */
        int utc = h * 60 + m - sign * (oh * 60 + om);
        utc = ((utc % 1440) + 1440) % 1440;
        if (utc != 23 * 60 + 59)
            return false;
    }
    return true;
}

static bool check_date_time(const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    if (!parse_date(&p, end) || p >= end || (*p != 'T' && *p != 't'))
        return false;
    p++;
    return parse_time(&p, end) && p == end;
}

static bool check_ipv4(const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    for (int part = 0; part < 4; part++) {
        if (part && (p >= end || *p++ != '.'))
            return false;
        const char *start = p;
        int v = 0;
        while (p < end && is_digit((unsigned char)*p) && p - start < 4)
            v = v * 10 + (*p++ - '0');
        size_t n = (size_t)(p - start);
        if (n == 0 || n > 3 || v > 255 || (n > 1 && *start == '0'))
            return false;
    }
    return p == end;
}

static bool check_ipv6(const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    int groups = 0;
    bool compressed = false;
    if (len >= 2 && p[0] == ':' && p[1] == ':') {
        compressed = true;
        p += 2;
    } else if (len && p[0] == ':')
        return false;
    while (p < end) {
        const char *start = p;
        while (p < end && is_hex((unsigned char)*p) && p - start < 5)
            p++;
        size_t n = (size_t)(p - start);
        if (p < end && *p == '.') {
            /* embedded IPv4 in the last 32 bits */
            if (!check_ipv4(start, (size_t)(end - start)))
                return false;
            groups += 2;
            p = end;
            break;
        }
        if (n == 0 || n > 4)
            return false;
        groups++;
        if (p == end)
            break;
        if (*p != ':')
            return false;
        p++;
        if (p < end && *p == ':') {
            if (compressed)
                return false;
            compressed = true;
            p++;
        } else if (p == end)
            return false;
    }
    return compressed ? groups <= 7 : groups == 8;
}

/* Decode one UTF-8 code point at *P (advancing); -1 when malformed. */
static long utf8_next(const unsigned char **p, const unsigned char *end)
{
    const unsigned char *s = *p;
    long cp;
    int extra;
    if (s[0] < 0x80) {
        *p = s + 1;
        return s[0];
    } else if ((s[0] & 0xE0) == 0xC0) {
        cp = s[0] & 0x1F;
        extra = 1;
    } else if ((s[0] & 0xF0) == 0xE0) {
        cp = s[0] & 0x0F;
        extra = 2;
    } else if ((s[0] & 0xF8) == 0xF0) {
        cp = s[0] & 0x07;
        extra = 3;
    } else
        return -1;
    if (end - s <= extra)
        return -1;
    for (int i = 1; i <= extra; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    *p = s + extra + 1;
    return cp;
}

static bool check_hostname(const char *s, size_t len, bool idn)
{
    if (len == 0 || len > 253)
        return false;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        size_t n = 0;
        bool first = true;
        long last = 0;
        while (p < end && *p != '.') {
            long cp = utf8_next(&p, end);
            if (cp < 0)
                return false;
            if (cp < 0x80) {
                if (!is_alpha((int)cp) && !is_digit((int)cp) && cp != '-')
                    return false;
                if (first && cp == '-')
                    return false;
            } else {
                if (!idn)
                    return false;
                /* combining marks cannot start a label; U+302E/302F are disallowed */
                if (cp == 0x302E || cp == 0x302F || (first && cp >= 0x0300 && cp <= 0x036F))
                    return false;
            }
            first = false;
            last = cp;
            n++;
        }
        if (n == 0 || n > 63 || last == '-')
            return false;
        if (p < end) {
            p++;
            if (p == end)
                return false; /* trailing dot */
        }
    }
    return true;
}

static bool check_email(const char *s, size_t len, bool idn)
{
    const char *at = memchr(s, '@', len);
    if (!at || at == s || memchr(at + 1, '@', len - (size_t)(at - s) - 1))
        return false;
    size_t ll = (size_t)(at - s);
    bool quoted = ll >= 2 && s[0] == '"' && s[ll - 1] == '"';
    for (size_t i = 1; quoted && i + 1 < ll; i++) {
        /* quoted-string: printable characters, '\\' escapes the next one */
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\\')
            i++;
        else if (ch == '"' || ch < 0x20 || ch == 0x7F || (!idn && ch >= 0x80))
            return false;
    }
    if (quoted && s[ll - 2] == '\\') {
        /* the closing quote must not be escaped: count the backslashes */
        size_t k = ll - 2, n = 0;
        while (k > 0 && s[k] == '\\') {
            n++;
            k--;
        }
        if (n % 2)
            return false;
    }
    if (!quoted && (s[0] == '.' || s[ll - 1] == '.'))
        return false;
    static const char special[] = "!#$%&'*+-/=?^_`{|}~.";
    for (size_t i = 0; !quoted && i < ll; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '.' && s[i + 1] == '.')
            return false;
        if (!is_alpha(ch) && !is_digit(ch) && !strchr(special, ch) && !(idn && ch >= 0x80))
            return false;
    }
    const char *dom = at + 1;
    size_t dl = len - ll - 1;
    if (dl > 2 && dom[0] == '[' && dom[dl - 1] == ']') {
        if (dl > 7 && !strncmp(dom + 1, "IPv6:", 5))
            return check_ipv6(dom + 6, dl - 7);
        return check_ipv4(dom + 1, dl - 2);
    }
    return check_hostname(dom, dl, idn);
}

/* ---- URIs and IRIs (RFC 3986 / 3987 syntax) ---- */

static bool is_unreserved(int c, bool iri)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
           (iri && c >= 0x80);
}

static bool is_sub_delim(int c)
{
    return c && strchr("!$&'()*+,;=", c) != NULL;
}

/* Skip characters of a component; EXTRA lists allowed delimiters. */
static const char *skip_chars(const char *p, const char *end, const char *extra, bool iri)
{
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '%') {
            if (end - p < 3 || !is_hex((unsigned char)p[1]) || !is_hex((unsigned char)p[2]))
                return p;
            p += 3;
        } else if (is_unreserved(c, iri) || is_sub_delim(c) || (c && strchr(extra, c)))
            p++;
        else
            return p;
    }
    return p;
}

static bool check_authority(const char *p, const char *end, bool iri)
{
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        if (skip_chars(p, at, ":", iri) != at)
            return false;
        p = at + 1;
    }
    if (p < end && *p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close)
            return false;
        const char *a = p + 1;
        if (a < close && (*a == 'v' || *a == 'V')) {
            if (skip_chars(a, close, ":", false) != close)
                return false;
        } else if (!check_ipv6(a, (size_t)(close - a)))
            return false;
        p = close + 1;
    } else
        p = skip_chars(p, end, "", iri);
    if (p < end && *p == ':') {
        p++;
        while (p < end && is_digit((unsigned char)*p))
            p++;
    }
    return p == end;
}

/* URI (ABSOLUTE required) or URI-reference; IRI allows non-ASCII characters. */
static bool check_uri(const char *s, size_t len, bool absolute, bool iri)
{
    const char *p = s, *end = s + len;
    const char *q = p;
    bool scheme = false;
    if (q < end && is_alpha((unsigned char)*q)) {
        while (q < end && (is_alpha((unsigned char)*q) || is_digit((unsigned char)*q) ||
                           *q == '+' || *q == '-' || *q == '.'))
            q++;
        if (q < end && *q == ':') {
            scheme = true;
            p = q + 1;
        }
    }
    if (absolute && !scheme)
        return false;
    if (end - p >= 2 && p[0] == '/' && p[1] == '/') {
        p += 2;
        const char *a = p;
        while (p < end && *p != '/' && *p != '?' && *p != '#')
            p++;
        if (!check_authority(a, p, iri))
            return false;
    } else if (!scheme) {
        /* path-noscheme: no ':' in the first segment */
        const char *seg = p;
        while (seg < end && *seg != '/' && *seg != '?' && *seg != '#') {
            if (*seg == ':')
                return false;
            seg++;
        }
    }
    p = skip_chars(p, end, ":@/", iri);
    if (p < end && *p == '?')
        p = skip_chars(p + 1, end, ":@/?", iri);
    if (p < end && *p == '#')
        p = skip_chars(p + 1, end, ":@/?", iri);
    return p == end;
}

static bool check_uri_template(const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '{') {
            p++;
            if (p < end && strchr("+#./;?&=,!@|", *p) && *p)
                p++;
            for (;;) {
                const char *v = p;
                while (p < end && (is_alpha((unsigned char)*p) || is_digit((unsigned char)*p) ||
                                   *p == '_' || *p == '.' || *p == '%')) {
                    if (*p == '%' && (end - p < 3 || !is_hex((unsigned char)p[1]) ||
                                      !is_hex((unsigned char)p[2])))
                        return false;
                    p += *p == '%' ? 3 : 1;
                }
                if (p == v)
                    return false;
                if (p < end && *p == ':') {
                    p++;
                    const char *d = p;
                    while (p < end && is_digit((unsigned char)*p))
                        p++;
                    if (p == d || p - d > 4 || *d == '0')
                        return false;
                } else if (p < end && *p == '*')
                    p++;
                if (p < end && *p == ',') {
                    p++;
                    continue;
                }
                break;
            }
            if (p >= end || *p != '}')
                return false;
            p++;
        } else if (c == '}' || c <= 0x20 || strchr("\"'<>\\^`|", c))
            return false;
        else if (c == '%') {
            if (end - p < 3 || !is_hex((unsigned char)p[1]) || !is_hex((unsigned char)p[2]))
                return false;
            p += 3;
        } else
            p++;
    }
    return true;
}

static bool check_json_pointer(const char *s, size_t len)
{
    if (len && s[0] != '/')
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '~' && (i + 1 >= len || (s[i + 1] != '0' && s[i + 1] != '1')))
            return false;
    return true;
}

static bool check_relative_json_pointer(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && is_digit((unsigned char)s[i]))
        i++;
    if (i == 0 || (i > 1 && s[0] == '0'))
        return false;
    if (i < len && s[i] == '#')
        return i + 1 == len;
    return check_json_pointer(s + i, len - i);
}

/* ECMA-262 white space and line terminators, for \s. */
#define ECMA_SPACE                                                                                 \
    "\\t\\n\\x0b\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"

void *ferry_schema_regex_compile(const char *pattern, int *ec, size_t *eo)
{
    size_t len = strlen(pattern);
    /* each two-byte escape grows by at most sizeof ECMA_SPACE + 3 */
    size_t cap = len / 2 * (sizeof ECMA_SPACE + 3) + len + 1;
    char *out = malloc(cap); /* freed below */
    if (!out) {
        *ec = PCRE2_ERROR_NOMEMORY;
        *eo = 0;
        return NULL;
    }
    size_t o = 0;
    bool in_class = false;
    for (size_t i = 0; i < len; i++) {
        char ch = pattern[i];
        if (ch == '\\' && i + 1 < len) {
            char e = pattern[++i];
            const char *rep = NULL;
            if (e == 's')
                rep = in_class ? ECMA_SPACE : "[" ECMA_SPACE "]";
            else if (e == 'S' && !in_class)
                rep = "[^" ECMA_SPACE "]";
            else if (e == 'v')
                rep = "\\x0b";
            if (rep) {
                size_t rl = strlen(rep);
                memcpy(out + o, rep, rl);
                o += rl;
            } else {
                out[o++] = '\\';
                out[o++] = e;
            }
            continue;
        }
        if (ch == '[' && !in_class) {
            in_class = true;
            out[o++] = ch;
            /* "[^" and a leading "]" ("[]" is the empty class in ECMA-262) */
            if (i + 1 < len && pattern[i + 1] == '^')
                out[o++] = pattern[++i];
            if (i + 1 < len && pattern[i + 1] == ']') {
                out[o++] = pattern[++i];
                in_class = false;
            }
            continue;
        }
        if (ch == ']')
            in_class = false;
        out[o++] = ch;
    }
    out[o] = '\0';
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL); /* freed below */
    if (cc)
        pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALT_BSUX);
    PCRE2_SIZE off = 0;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)out, o,
                      PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX | PCRE2_ALLOW_EMPTY_CLASS,
                      ec, &off, cc); /* owned by the caller */
    pcre2_compile_context_free(cc);
    free(out);
    *eo = off;
    return re;
}

bool ferry_schema_regex_valid(const char *pattern)
{
    /* PCRE2 accepts escapes that ECMA-262 does not (\A, \Z, \z, \a, \e, ...) */
    for (const char *p = pattern; *p; p++) {
        if (*p == '\\') {
            char e = p[1];
            if (!e || !strchr("dDwWsSbBfnrtv0cxuk123456789pP^$\\.*+?()[]{}|/-", e))
                return false;
            p++;
        }
    }
    int ec;
    size_t eo;
    pcre2_code *re = ferry_schema_regex_compile(pattern, &ec, &eo); /* freed below */
    if (!re)
        return false;
    pcre2_code_free(re);
    return true;
}

bool ferry_schema_format_check(enum ferry_schema_format fmt, const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    switch (fmt) {
    case FERRY_FMT_NONE: return true;
    case FERRY_FMT_DATE_TIME: return check_date_time(s, len);
    case FERRY_FMT_DATE: return parse_date(&p, end) && p == end;
    case FERRY_FMT_TIME: return parse_time(&p, end) && p == end;
    case FERRY_FMT_EMAIL: return check_email(s, len, false);
    case FERRY_FMT_IDN_EMAIL: return check_email(s, len, true);
    case FERRY_FMT_HOSTNAME: return check_hostname(s, len, false);
    case FERRY_FMT_IDN_HOSTNAME: return check_hostname(s, len, true);
    case FERRY_FMT_IPV4: return check_ipv4(s, len);
    case FERRY_FMT_IPV6: return check_ipv6(s, len);
    case FERRY_FMT_URI: return check_uri(s, len, true, false);
    case FERRY_FMT_URI_REFERENCE: return check_uri(s, len, false, false);
    case FERRY_FMT_IRI: return check_uri(s, len, true, true);
    case FERRY_FMT_IRI_REFERENCE: return check_uri(s, len, false, true);
    case FERRY_FMT_URI_TEMPLATE: return check_uri_template(s, len);
    case FERRY_FMT_JSON_POINTER: return check_json_pointer(s, len);
    case FERRY_FMT_RELATIVE_JSON_POINTER: return check_relative_json_pointer(s, len);
    case FERRY_FMT_REGEX: return strlen(s) == len && ferry_schema_regex_valid(s);
    }
    return true;
}

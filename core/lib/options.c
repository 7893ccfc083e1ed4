/* Typed option values: parsing ("5s", "1MiB", "yes"), table checks, and
 * freeing what a bind allocated. One table drives all of it. */
#include "config.h"
#include "internal.h"

#include <ctype.h>
#include <math.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_int(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

/* number with a unit suffix from units[] (multipliers); bare number uses bare_mult */
struct unit {
    const char *name;
    int64_t mult;
};

static int parse_with_unit(const char *s, const struct unit *units, int64_t bare_mult, int64_t *out)
{
    char *end;
    errno = 0;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '-')
        return -1;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v)) /* nan, inf */
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    int64_t mult = bare_mult;
    if (*end) {
        mult = 0;
        for (const struct unit *u = units; u->name; u++)
            if (strcasecmp(end, u->name) == 0) {
                mult = u->mult;
                break;
            }
        if (!mult)
            return -1;
    }
    double r = v * (double)mult;
    if (r > 9.2e18)
        return -1;
    *out = (int64_t)(r + 0.5);
    return 0;
}

static const struct unit duration_units[] = {{"ms", 1},       {"s", 1000},    {"sec", 1000},
                                             {"m", 60000},    {"min", 60000}, {"h", 3600000},
                                             {"d", 86400000}, {NULL, 0}};

static const struct unit size_units[] = {
    {"b", 1},           {"k", 1000},         {"kb", 1000},     {"kib", 1024},
    {"m", 1000000},     {"mb", 1000000},     {"mib", 1048576}, {"g", 1000000000},
    {"gb", 1000000000}, {"gib", 1073741824}, {NULL, 0}};

static int enum_index(const char *choices, const char *s)
{
    size_t n = strlen(s);
    int idx = 0;
    for (const char *p = choices; p && *p; idx++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncasecmp(p, s, n) == 0)
            return idx;
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

int ferry_option_parse(const struct ferry_option *o, const char *text, void *dst, char *err,
                       size_t errlen)
{
    char *base = dst;
    int64_t v = 0;
    switch (o->type) {
    case FERRY_OPT_STR: {
        char *copy = strdup(text); /* owned by dst; freed in ferry_options_free() */
        if (!copy) {
            ferry_fmt(err, errlen, "out of memory");
            return FERRY_E_CONFIG;
        }
        char **slot = (char **)(void *)(base + o->offset);
        free(*slot);
        *slot = copy;
        return FERRY_OK;
    }
    case FERRY_OPT_BOOL: {
        bool b;
        if (!strcasecmp(text, "true") || !strcasecmp(text, "yes") || !strcasecmp(text, "on") ||
            !strcmp(text, "1"))
            b = true;
        else if (!strcasecmp(text, "false") || !strcasecmp(text, "no") ||
                 !strcasecmp(text, "off") || !strcmp(text, "0"))
            b = false;
        else {
            ferry_fmt(err, errlen, "'%s' is not a boolean (use true or false)", text);
            return FERRY_E_CONFIG;
        }
        memcpy(base + o->offset, &b, sizeof b);
        return FERRY_OK;
    }
    case FERRY_OPT_INT:
        if (parse_int(text, &v)) {
            ferry_fmt(err, errlen, "'%s' is not an integer", text);
            return FERRY_E_CONFIG;
        }
        break;
    case FERRY_OPT_DURATION:
        if (parse_with_unit(text, duration_units, 1, &v)) {
            ferry_fmt(err, errlen, "'%s' is not a duration (e.g. 250ms, 5s, 2m)", text);
            return FERRY_E_CONFIG;
        }
        break;
    case FERRY_OPT_SIZE:
        if (parse_with_unit(text, size_units, 1, &v)) {
            ferry_fmt(err, errlen, "'%s' is not a size (e.g. 512, 64KiB, 1MiB)", text);
            return FERRY_E_CONFIG;
        }
        break;
    case FERRY_OPT_ENUM: {
        int idx = enum_index(o->choices, text);
        if (idx < 0) {
            ferry_fmt(err, errlen, "'%s' is not one of %s", text, o->choices);
            return FERRY_E_CONFIG;
        }
        memcpy(base + o->offset, &idx, sizeof idx);
        return FERRY_OK;
    }
    case FERRY_OPT_PREFIX:
    default: ferry_fmt(err, errlen, "option has no single value"); return FERRY_E_CONFIG;
    }
    if (o->min < o->max && (v < o->min || v > o->max)) {
        ferry_fmt(err, errlen, "%s is out of range [%" PRId64 ", %" PRId64 "]", text, o->min,
                  o->max);
        return FERRY_E_CONFIG;
    }
    memcpy(base + o->offset, &v, sizeof v);
    return FERRY_OK;
}

void ferry_options_free(const struct ferry_option *opts, void *dst)
{
    if (!opts || !dst)
        return;
    for (const struct ferry_option *o = opts; o->name; o++)
        if (o->type == FERRY_OPT_STR) {
            char **slot = (char **)(void *)((char *)dst + o->offset);
            free(*slot);
            *slot = NULL;
        }
}

void ferry_kv_free(struct ferry_kv *kv, size_t n)
{
    if (!kv)
        return;
    for (size_t i = 0; i < n; i++) {
        free((char *)kv[i].key);
        free((char *)kv[i].value);
    }
    free(kv);
}

static bool valid_key(const char *s, bool prefix)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' ||
              (prefix && *p == '.')))
            return false;
    return true;
}

static int table_error(char *err, size_t errlen, const char *fmt, ...) FERRY_PRINTF(3, 4);
static int table_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return FERRY_E_CONFIG;
}

int ferry_options_validate(const struct ferry_option *opts, char *err, size_t errlen)
{
    if (!opts) {
        ferry_fmt(err, errlen, "no option table");
        return FERRY_E_CONFIG;
    }
    size_t scratch_len = 0;
    for (const struct ferry_option *o = opts; o->name; o++)
        if (o->type != FERRY_OPT_PREFIX && o->offset + sizeof(int64_t) > scratch_len)
            scratch_len = o->offset + sizeof(int64_t);
    char *scratch = calloc(1, scratch_len + 1); /* freed below */
    if (!scratch) {
        ferry_fmt(err, errlen, "out of memory");
        return FERRY_E_CONFIG;
    }
    int st = FERRY_OK;
    for (const struct ferry_option *o = opts; o->name && st == FERRY_OK; o++) {
        bool prefix = o->type == FERRY_OPT_PREFIX;
        char why[256];
        if (!valid_key(o->name, prefix))
            st = table_error(err, errlen, "option '%s': name must be lower_snake_case", o->name);
        else if (o->type < FERRY_OPT_STR || o->type > FERRY_OPT_PREFIX)
            st = table_error(err, errlen, "option '%s': unknown type %d", o->name, (int)o->type);
        else if (!o->help || !*o->help || o->help[strlen(o->help) - 1] != '.')
            st = table_error(err, errlen,
                             "option '%s': help must be a sentence ending with a period", o->name);
        else if (o->type == FERRY_OPT_ENUM && (!o->choices || !*o->choices))
            st = table_error(err, errlen, "option '%s': enum without choices", o->name);
        else if (prefix && o->name[strlen(o->name) - 1] != '.')
            st = table_error(err, errlen, "option '%s': a prefix family ends with '.'", o->name);
        else if (!prefix && o->def && ferry_option_parse(o, o->def, scratch, why, sizeof why))
            st = table_error(err, errlen, "option '%s': default '%s': %s", o->name, o->def, why);
        for (const struct ferry_option *q = opts; st == FERRY_OK && q < o; q++)
            if (!strcmp(q->name, o->name))
                st = table_error(err, errlen, "option '%s' is declared twice", o->name);
    }
    for (const struct ferry_option *o = opts; o->name; o++)
        if (o->type == FERRY_OPT_STR)
            free(*(char **)(void *)(scratch + o->offset));
    free(scratch);
    return st;
}

/* The log envelope: one JSON object per message (DESIGN.md), levels and
 * routing keys, and the id lookup consumers use to drop duplicates. */
#include "config.h"
#include "internal.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const struct {
    enum ferry_level l;
    const char *name;
} levels[] = {{FERRY_DEBUG, "DEBUG"},
              {FERRY_INFO, "INFO"},
              {FERRY_WARNING, "WARNING"},
              {FERRY_ERROR, "ERROR"},
              {FERRY_CRITICAL, "CRITICAL"}};

const char *ferry_level_name(enum ferry_level l)
{
    for (size_t i = 0; i < FERRY_ARRAY_LEN(levels); i++)
        if (levels[i].l == l)
            return levels[i].name;
    return NULL;
}

int ferry_level_parse(const char *s)
{
    if (!s)
        return -1;
    for (size_t i = 0; i < FERRY_ARRAY_LEN(levels); i++)
        if (!strcasecmp(s, levels[i].name))
            return (int)levels[i].l;
    if (!strcasecmp(s, "warn"))
        return FERRY_WARNING;
    if (!strcasecmp(s, "fatal") || !strcasecmp(s, "crit"))
        return FERRY_CRITICAL;
    return -1;
}

const char *ferry_envelope_key(const char *service, enum ferry_level l, char *buf, size_t len)
{
    const char *n = ferry_level_name(l);
    snprintf(buf, len, "%s.%s", service ? service : "unknown", n ? n : "INFO");
    for (char *p = strchr(buf, '.'); p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return buf;
}

/* Escape s as a JSON string, quotes included, byte for byte as cJSON prints
 * it (control characters as \u00xx, other bytes as they are); dst needs
 * 6 * strlen(s) + 2 bytes. Returns the end. */
static char *json_string(char *dst, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    *dst++ = '"';
    const unsigned char *end = (const unsigned char *)s + strlen(s);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        /* copy the run of bytes that need no escape at once, eight at a
         * time while a word holds none of them (below 32, '"', '\\') */
        const unsigned char *run = c;
        while (end - c >= 8) {
            uint64_t w;
            memcpy(&w, c, 8);
            const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
            uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
            if (((w - ones * 32) & ~w & highs) | ((q - ones) & ~q & highs) |
                ((b - ones) & ~b & highs))
                break;
            c += 8;
        }
        while (*c >= 32 && *c != '"' && *c != '\\')
            c++;
        memcpy(dst, run, (size_t)(c - run));
        dst += c - run;
        if (!*c)
            break;
        *dst++ = '\\';
        switch (*c) {
        case '"': *dst++ = '"'; break;
        case '\\': *dst++ = '\\'; break;
        case '\b': *dst++ = 'b'; break;
        case '\f': *dst++ = 'f'; break;
        case '\n': *dst++ = 'n'; break;
        case '\r': *dst++ = 'r'; break;
        case '\t': *dst++ = 't'; break;
        default:
            memcpy(dst, "u00", 3);
            dst[3] = hex[*c >> 4];
            dst[4] = hex[*c & 15];
            dst += 5;
        }
    }
    *dst++ = '"';
    return dst;
}

static char *json_member(char *dst, const char *name, const char *value)
{
    size_t nl = strlen(name);
    *dst++ = '"';
    memcpy(dst, name, nl);
    dst += nl;
    memcpy(dst, "\":", 2);
    return json_string(dst + 2, value);
}

/* The envelope without extra as JSON text: the same bytes as the cJSON path
 * below prints, with no tree of allocated items per message. */
static char *encode_direct(const struct ferry_envelope *e, const char *id, const char *ts,
                           const char *host, const char *lvl, char *err, size_t errlen)
{
    const char *svc = e->service ? e->service : "unknown", *msg = e->message ? e->message : "";
    char *info = NULL; /* freed below */
    if (e->information && *e->information) {
        cJSON *o = cJSON_Parse(e->information); /* freed below */
        if (!o || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            ferry_fmt(err, errlen, "information is not a JSON object");
            return NULL;
        }
        info = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!info) {
            ferry_fmt(err, errlen, "out of memory");
            return NULL;
        }
    }
    const char *members = e->extra_members && *e->extra_members ? e->extra_members : NULL;
    size_t cap =
        6 * (strlen(id) + strlen(svc) + strlen(lvl) + strlen(msg) + strlen(ts) + strlen(host)) +
        (info ? strlen(info) : 2) + (members ? strlen(members) + 1 : 0) + 128;
    char *out = malloc(cap); /* caller frees */
    if (!out) {
        free(info);
        ferry_fmt(err, errlen, "out of memory");
        return NULL;
    }
    char *w = out;
    *w++ = '{';
    w = json_member(w, "id", id);
    *w++ = ',';
    w = json_member(w, "service", svc);
    *w++ = ',';
    w = json_member(w, "level", lvl);
    *w++ = ',';
    w = json_member(w, "message", msg);
    memcpy(w, ",\"information\":", 15);
    w += 15;
    size_t il = info ? strlen(info) : 2;
    memcpy(w, info ? info : "{}", il);
    w += il;
    free(info);
    *w++ = ',';
    w = json_member(w, "timestamp", ts);
    *w++ = ',';
    w = json_member(w, "host", host);
    if (members) {
        size_t ml = strlen(members);
        *w++ = ',';
        memcpy(w, members, ml);
        w += ml;
    }
    *w++ = '}';
    *w = '\0';
    return out;
}

char *ferry_envelope_encode(const struct ferry_envelope *e, char *err, size_t errlen)
{
    char id[37], ts[32], host[256];
    if (!e->id)
        ferry_make_id(id);
    ferry_format_time(e->time_ms ? e->time_ms : ferry_time_ms(), ts);
    if (!e->host && gethostname(host, sizeof host))
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    const char *lvl = ferry_level_name(e->level);
    if (!e->extra || !*e->extra)
        return encode_direct(e, e->id ? e->id : id, ts, e->host ? e->host : host,
                             lvl ? lvl : "INFO", err, errlen);

    /* extra members replace envelope fields of the same name: a cJSON tree */
    cJSON *info = NULL; /* handed to obj below */
    if (e->information && *e->information) {
        info = cJSON_Parse(e->information);
        if (!info || !cJSON_IsObject(info)) {
            cJSON_Delete(info);
            ferry_fmt(err, errlen, "information is not a JSON object");
            return NULL;
        }
    } else {
        info = cJSON_CreateObject();
    }

    cJSON *obj = cJSON_CreateObject(); /* freed below */
    if (!obj || !info) {
        cJSON_Delete(obj);
        cJSON_Delete(info);
        ferry_fmt(err, errlen, "out of memory");
        return NULL;
    }
    cJSON_AddStringToObject(obj, "id", e->id ? e->id : id);
    cJSON_AddStringToObject(obj, "service", e->service ? e->service : "unknown");
    cJSON_AddStringToObject(obj, "level", lvl ? lvl : "INFO");
    cJSON_AddStringToObject(obj, "message", e->message ? e->message : "");
    cJSON_AddItemToObject(obj, "information", info);
    cJSON_AddStringToObject(obj, "timestamp", ts);
    cJSON_AddStringToObject(obj, "host", e->host ? e->host : host);
    if (e->extra && *e->extra) {
        cJSON *x = cJSON_Parse(e->extra); /* freed below */
        if (!cJSON_IsObject(x)) {
            cJSON_Delete(x);
            cJSON_Delete(obj);
            ferry_fmt(err, errlen, "extra fields are not a JSON object");
            return NULL;
        }
        cJSON *it;
        while ((it = x->child)) {
            cJSON_DetachItemViaPointer(x, it);
            cJSON_DeleteItemFromObjectCaseSensitive(obj, it->string);
            cJSON_AddItemToObject(obj, it->string, it);
        }
        cJSON_Delete(x);
    }
    char *out = cJSON_PrintUnformatted(obj); /* caller frees */
    cJSON_Delete(obj);
    if (!out)
        ferry_fmt(err, errlen, "out of memory");
    return out;
}

/* A fast path for the common case, bodies that begin {"id":"...": no full
 * parse. Falls back to cJSON for anything else. */
bool ferry_body_id(const void *body, size_t len, const char *field, char *buf, size_t buflen)
{
    const char *s = body;
    /* the prefix {"field":" compared in place, not built first */
    size_t fl = strlen(field), pl = fl + 5;
    if (len > pl && s[0] == '{' && s[1] == '"' && !memcmp(s + 2, field, fl) &&
        !memcmp(s + 2 + fl, "\":\"", 3)) {
        const char *v = s + pl, *end = memchr(v, '"', len - pl);
        if (end && !memchr(v, '\\', (size_t)(end - v)) && (size_t)(end - v) < buflen && end > v) {
            memcpy(buf, v, (size_t)(end - v));
            buf[end - v] = '\0';
            return true;
        }
    }
    size_t i = 0;
    while (i < len && isspace((unsigned char)s[i]))
        i++;
    if (i == len || s[i] != '{')
        return false;
    cJSON *obj = cJSON_ParseWithLength(s, len); /* freed below */
    bool ok = false;
    if (obj) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, field);
        if (cJSON_IsString(id) && id->valuestring[0] && strlen(id->valuestring) < buflen) {
            snprintf(buf, buflen, "%s", id->valuestring);
            ok = true;
        } else if (cJSON_IsNumber(id)) {
            snprintf(buf, buflen, "%.17g", id->valuedouble);
            ok = true;
        }
    }
    cJSON_Delete(obj);
    return ok;
}

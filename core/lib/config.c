/* Configuration: INI files (read as inih reads them, every error naming
 * its line, lines of up to 64 KiB), environment overrides and flags. */
#include "config.h"
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct entry {
    char *section, *key, *value; /* owned by the entry */
    enum ferry_source src;
    int line; /* file line, 0 for flags */
};

struct section_mark {
    char *name; /* owned */
    int line;
};

struct ferry_config {
    struct entry *v; /* owned; grown by push() */
    size_t n, cap;
    struct section_mark *secs; /* [section] header lines seen in files; owned */
    size_t nsecs;
    char *path; /* last file loaded; owned */
};

struct ferry_config *ferry_config_new(void)
{
    return calloc(1, sizeof(struct ferry_config)); /* freed in ferry_config_free() */
}

void ferry_config_free(struct ferry_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n; i++) {
        free(cfg->v[i].section);
        free(cfg->v[i].key);
        free(cfg->v[i].value);
    }
    free(cfg->v);
    for (size_t i = 0; i < cfg->nsecs; i++)
        free(cfg->secs[i].name);
    free(cfg->secs);
    free(cfg->path);
    free(cfg);
}

const char *ferry_config_path(const struct ferry_config *cfg)
{
    return cfg->path;
}

static struct entry *find(const struct ferry_config *cfg, const char *section, const char *key,
                          enum ferry_source src)
{
    for (size_t i = cfg->n; i-- > 0;)
        if (cfg->v[i].src == src && !strcmp(cfg->v[i].section, section) &&
            !strcmp(cfg->v[i].key, key))
            return &cfg->v[i];
    return NULL;
}

static int push(struct ferry_config *cfg, const char *section, const char *key, const char *value,
                enum ferry_source src, int line)
{
    struct entry *e = find(cfg, section, key, src);
    if (e) { /* a later line (or flag) replaces an earlier one */
        char *nv = strdup(value);
        if (!nv)
            return -1;
        free(e->value);
        e->value = nv;
        e->line = line;
        return 0;
    }
    if (cfg->n == cfg->cap) {
        size_t cap = cfg->cap ? cfg->cap * 2 : 32;
        struct entry *nv = realloc(cfg->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        cfg->v = nv;
        cfg->cap = cap;
    }
    e = &cfg->v[cfg->n];
    e->section = strdup(section); /* all three freed in ferry_config_free() */
    e->key = strdup(key);
    e->value = strdup(value);
    e->src = src;
    e->line = line;
    if (!e->section || !e->key || !e->value) {
        free(e->section);
        free(e->key);
        free(e->value);
        return -1;
    }
    cfg->n++;
    return 0;
}

int ferry_config_set(struct ferry_config *cfg, const char *section, const char *key,
                     const char *value, enum ferry_source src)
{
    return push(cfg, section, key, value, src, 0) ? FERRY_E_CONFIG : FERRY_OK;
}

/* ---- INI parsing ------------------------------------------------------- */

/* The longest line a config file may hold (a failover list of URLs, a
 * CURVE allow-list): longer ones are refused with their line number. */
#define FERRY_CONFIG_MAX_LINE 65536

struct reader {
    struct ferry_config *cfg;
    const char *name;
    int line;     /* number of the line being parsed */
    size_t first; /* entries from this index on were made by this file */
    char *err;
    size_t errlen;
    bool failed;
};

/* remember where each [section] starts, so errors can point at it */
static void mark_section(struct reader *r, const char *name, size_t len)
{
    struct section_mark *ns = realloc(r->cfg->secs, (r->cfg->nsecs + 1) * sizeof *ns);
    if (ns) {
        r->cfg->secs = ns;
        ns[r->cfg->nsecs].name = strndup(name, len); /* freed in ferry_config_free() */
        ns[r->cfg->nsecs].line = r->line;
        if (ns[r->cfg->nsecs].name)
            r->cfg->nsecs++;
    }
}

static char *rstrip(char *s)
{
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static char *lskip(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    return s;
}

static int on_pair(void *user, const char *section, const char *name, const char *value);

/* INI as inih reads it by default: [section], key = value or key: value,
 * comments from ';' or '#' at the start of a line and from ';' after
 * whitespace within one, a UTF-8 byte order mark ignored. Lines of up to
 * FERRY_CONFIG_MAX_LINE bytes. Returns the number of the first line with
 * a syntax error, 0 when none. */
static int parse_ini(const char *text, struct reader *r)
{
    char section[256] = "";
    char *line = malloc(FERRY_CONFIG_MAX_LINE + 1); /* freed below */
    if (!line) {
        ferry_fmt(r->err, r->errlen, "%s: out of memory", r->name);
        r->failed = true;
        return 0;
    }
    if (!strncmp(text, "\xEF\xBB\xBF", 3))
        text += 3;
    int bad = 0;
    while (*text && !r->failed) {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) : strlen(text);
        r->line++;
        if (len > FERRY_CONFIG_MAX_LINE) {
            ferry_fmt(r->err, r->errlen,
                      "%s:%d: line of %zu bytes is longer than the limit of "
                      "%d bytes",
                      r->name, r->line, len, FERRY_CONFIG_MAX_LINE);
            r->failed = true;
            break;
        }
        memcpy(line, text, len);
        line[len] = '\0';
        text += len + (nl ? 1 : 0);
        char *p = lskip(rstrip(line));
        if (!*p || *p == ';' || *p == '#')
            continue;
        if (*p == '[') {
            char *close = strchr(p, ']');
            if (!close || close == p + 1 || (size_t)(close - p - 1) >= sizeof section) {
                if (!bad)
                    bad = r->line;
                continue;
            }
            memcpy(section, p + 1, (size_t)(close - p - 1));
            section[close - p - 1] = '\0';
            mark_section(r, section, strlen(section));
            continue;
        }
        char *sep = p + strcspn(p, "=:");
        if (!*sep) {
            if (!bad)
                bad = r->line;
            continue;
        }
        *sep = '\0';
        char *name = rstrip(p), *value = lskip(sep + 1);
        /* an inline comment: ';' after whitespace */
        for (char *c = value; *c; c++)
            if (*c == ';' && c > value && isspace((unsigned char)c[-1])) {
                *c = '\0';
                break;
            }
        rstrip(value);
        on_pair(r, section, name, value);
    }
    free(line);
    return bad;
}

static bool key_ok(const char *k)
{
    if (!*k)
        return false;
    for (; *k; k++)
        if (!(isalnum((unsigned char)*k) || *k == '_' || *k == '.' || *k == '-'))
            return false;
    return true;
}

static int on_pair(void *user, const char *section, const char *name, const char *value)
{
    struct reader *r = user;
    if (r->failed)
        return 1;
    if (!name) /* a section header alone: remember the section exists */
        return 1;
    if (!*section) {
        ferry_fmt(r->err, r->errlen, "%s:%d: key '%s' is outside any [section]", r->name, r->line,
                  name);
        r->failed = true;
        return 1;
    }
    if (!key_ok(name)) {
        ferry_fmt(r->err, r->errlen, "%s:%d: '%s' is not a valid key", r->name, r->line, name);
        r->failed = true;
        return 1;
    }
    /* a key given twice in one section of one file is a mistake (which
     * one was meant?), not a silent last-wins */
    for (size_t i = r->first; i < r->cfg->n; i++) {
        const struct entry *e = &r->cfg->v[i];
        if (e->src == FERRY_SRC_FILE && e->line > 0 && !strcmp(e->section, section) &&
            !strcmp(e->key, name)) {
            ferry_fmt(r->err, r->errlen,
                      "%s:%d: key '%s' in [%s] is given twice, on lines %d "
                      "and %d",
                      r->name, r->line, name, section, e->line, r->line);
            r->failed = true;
            return 1;
        }
    }
    /* values may be quoted to keep leading spaces or a ';' */
    size_t vl = strlen(value);
    char buf[FERRY_CONFIG_MAX_LINE];
    if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"' && vl - 2 < sizeof buf) {
        memcpy(buf, value + 1, vl - 2);
        buf[vl - 2] = '\0';
        value = buf;
    }
    if (push(r->cfg, section, name, value, FERRY_SRC_FILE, r->line)) {
        ferry_fmt(r->err, r->errlen, "%s:%d: out of memory", r->name, r->line);
        r->failed = true;
    }
    return 1;
}

int ferry_config_load_string(struct ferry_config *cfg, const char *name, const char *text,
                             char *err, size_t errlen)
{
    struct reader r = {.cfg = cfg, .name = name, .first = cfg->n, .err = err, .errlen = errlen};
    int rc = parse_ini(text, &r);
    if (r.failed)
        return FERRY_E_CONFIG;
    if (rc > 0) {
        ferry_fmt(err, errlen, "%s:%d: syntax error (expected [section], key = value or a comment)",
                  name, rc);
        return FERRY_E_CONFIG;
    }
    char *p = strdup(name); /* owned by cfg */
    if (p) {
        free(cfg->path);
        cfg->path = p;
    }
    return FERRY_OK;
}

int ferry_config_load(struct ferry_config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        ferry_fmt(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return FERRY_E_CONFIG;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        ferry_fmt(err, errlen, "%s: is a directory, not a config file", path);
        return FERRY_E_CONFIG;
    }
    char *text = NULL; /* freed below */
    size_t len = 0, cap = 0;
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got + 1 > cap) {
            cap = (len + got + 1) * 2;
            char *nt = realloc(text, cap);
            if (!nt) {
                free(text);
                fclose(f);
                ferry_fmt(err, errlen, "%s: out of memory", path);
                return FERRY_E_CONFIG;
            }
            text = nt;
        }
        memcpy(text + len, chunk, got);
        len += got;
    }
    bool ioerr = ferror(f);
    fclose(f);
    if (ioerr) {
        free(text);
        ferry_fmt(err, errlen, "%s: read error: %s", path, strerror(errno));
        return FERRY_E_CONFIG;
    }
    if (memchr(text ? text : "", '\0', len)) {
        free(text);
        ferry_fmt(err, errlen, "%s: contains a NUL byte; not a text file", path);
        return FERRY_E_CONFIG;
    }
    int st = ferry_config_load_string(cfg, path, text ? (text[len] = '\0', text) : "", err, errlen);
    free(text);
    return st;
}

/* ---- lookups ----------------------------------------------------------- */

/* FERRY_SECTION_KEY, upper-cased, '.' and '-' as '_' */
static void env_name(const char *section, const char *key, char *buf, size_t len)
{
    snprintf(buf, len, "FERRY_%s_%s", section, key);
    for (char *p = buf; *p; p++)
        *p = (*p == '.' || *p == '-') ? '_' : (char)toupper((unsigned char)*p);
}

/* Effective value with its origin. */
struct lookup {
    const char *value;
    enum ferry_source src;
    int line;
    char env[128];
};

static bool lookup(const struct ferry_config *cfg, const char *section, const char *key,
                   struct lookup *out)
{
    const struct entry *e = find(cfg, section, key, FERRY_SRC_FLAG);
    env_name(section, key, out->env, sizeof out->env);
    if (e) {
        *out = (struct lookup){.value = e->value, .src = FERRY_SRC_FLAG};
        return true;
    }
    const char *v = getenv(out->env);
    if (v) {
        out->value = v;
        out->src = FERRY_SRC_ENV;
        out->line = 0;
        return true;
    }
    e = find(cfg, section, key, FERRY_SRC_FILE);
    if (e) {
        out->value = e->value;
        out->src = FERRY_SRC_FILE;
        out->line = e->line;
        return true;
    }
    return false;
}

const char *ferry_config_get(const struct ferry_config *cfg, const char *section, const char *key)
{
    struct lookup l;
    return lookup(cfg, section, key, &l) ? l.value : NULL;
}

enum ferry_source ferry_config_source(const struct ferry_config *cfg, const char *section,
                                      const char *key)
{
    struct lookup l;
    return lookup(cfg, section, key, &l) ? l.src : FERRY_SRC_DEFAULT;
}

static const char *where(const struct ferry_config *cfg, const struct lookup *l, char *buf,
                         size_t len)
{
    switch (l->src) {
    case FERRY_SRC_FLAG: return "command line";
    case FERRY_SRC_ENV: return ferry_fmt(buf, len, "environment %s", l->env);
    case FERRY_SRC_FILE:
        return ferry_fmt(buf, len, "%s:%d", cfg->path ? cfg->path : "config", l->line);
    default: return "default";
    }
}

static const struct ferry_option *match(const struct ferry_option *opts, const char *key,
                                        bool *is_file_variant)
{
    *is_file_variant = false;
    for (const struct ferry_option *o = opts; o->name; o++) {
        if (o->type == FERRY_OPT_PREFIX) {
            if (!strncmp(key, o->name, strlen(o->name)) && key[strlen(o->name)])
                return o;
            continue;
        }
        if (!strcmp(key, o->name))
            return o;
        size_t n = strlen(o->name);
        if ((o->flags & FERRY_OPTF_SECRET) && !strncmp(key, o->name, n) &&
            !strcmp(key + n, "_file")) {
            *is_file_variant = true;
            return o;
        }
    }
    return NULL;
}

/* Read a secret from a file: the first line, without its newline. */
static char *read_secret(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        ferry_fmt(err, errlen, "cannot open secret file %s: %s", path, strerror(errno));
        return NULL;
    }
    char buf[4096];
    char *s = fgets(buf, sizeof buf, f) ? strdup(buf) : strdup(""); /* caller frees */
    fclose(f);
    if (s)
        s[strcspn(s, "\r\n")] = '\0';
    return s;
}

int ferry_config_bind(const struct ferry_config *cfg, const char *section,
                      const struct ferry_option *opts, void *dst, struct ferry_kv **passthru,
                      size_t *n_passthru, char *err, size_t errlen)
{
    char why[512], wbuf[256];
    struct ferry_kv *kv = NULL; /* handed to the caller, or freed on error */
    size_t nkv = 0;
    int st = FERRY_OK;

    /* 1. every key given for this section must be known */
    for (size_t i = 0; i < cfg->n && st == FERRY_OK; i++) {
        const struct entry *e = &cfg->v[i];
        if (strcmp(e->section, section))
            continue;
        bool filevar;
        const struct ferry_option *o = match(opts, e->key, &filevar);
        if (!o) {
            if (e->src == FERRY_SRC_FILE)
                ferry_fmt(err, errlen, "%s:%d: unknown key '%s' in [%s]",
                          cfg->path ? cfg->path : "config", e->line, e->key, section);
            else
                ferry_fmt(err, errlen, "unknown option '%s.%s'", section, e->key);
            st = FERRY_E_CONFIG;
        } else if (o->type == FERRY_OPT_PREFIX) {
            struct ferry_kv *nk = realloc(kv, (nkv + 1) * sizeof *nk);
            if (!nk) {
                st = FERRY_E_CONFIG;
                ferry_fmt(err, errlen, "out of memory");
                break;
            }
            kv = nk;
            kv[nkv].key = strdup(e->key); /* freed by ferry_kv_free() */
            kv[nkv].value = strdup(e->value);
            nkv++;
            if (!kv[nkv - 1].key || !kv[nkv - 1].value) {
                st = FERRY_E_CONFIG;
                ferry_fmt(err, errlen, "out of memory");
            }
        }
    }

    /* 2. every option gets its value: flag > env > file > (NAME_file) > default */
    for (const struct ferry_option *o = opts; o->name && st == FERRY_OK; o++) {
        if (o->type == FERRY_OPT_PREFIX)
            continue;
        struct lookup l;
        char *owned = NULL; /* a secret read from a file; freed below */
        const char *text = NULL;
        if (lookup(cfg, section, o->name, &l)) {
            text = l.value;
        } else if (o->flags & FERRY_OPTF_SECRET) {
            char fkey[128];
            ferry_fmt(fkey, sizeof fkey, "%s_file", o->name);
            if (lookup(cfg, section, fkey, &l)) {
                owned = read_secret(l.value, why, sizeof why);
                if (!owned) {
                    ferry_fmt(err, errlen, "%s: %s.%s: %s", where(cfg, &l, wbuf, sizeof wbuf),
                              section, fkey, why);
                    st = FERRY_E_CONFIG;
                    break;
                }
                text = owned;
            }
        }
        if (!text) {
            if (o->flags & FERRY_OPTF_REQUIRED) {
                char env[128];
                env_name(section, o->name, env, sizeof env);
                ferry_fmt(err, errlen, "%s: [%s] %s is required (set it in the file or %s)",
                          cfg->path ? cfg->path : "config", section, o->name, env);
                st = FERRY_E_CONFIG;
                break;
            }
            if (!o->def)
                continue;
            l.src = FERRY_SRC_DEFAULT;
            text = o->def;
        }
        if (ferry_option_parse(o, text, dst, why, sizeof why)) {
            ferry_fmt(err, errlen, "%s: [%s] %s: %s", where(cfg, &l, wbuf, sizeof wbuf), section,
                      o->name, why);
            st = FERRY_E_CONFIG;
        }
        free(owned);
    }
    if (st != FERRY_OK) {
        ferry_kv_free(kv, nkv);
        ferry_options_free(opts, dst);
        return st;
    }
    if (passthru) {
        *passthru = kv;
        *n_passthru = nkv;
    } else {
        ferry_kv_free(kv, nkv);
    }
    return FERRY_OK;
}

int ferry_config_check_sections(const struct ferry_config *cfg, const char *const *known, char *err,
                                size_t errlen)
{
    for (size_t i = 0; i < cfg->n; i++) {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = !strcmp(*k, cfg->v[i].section);
        if (!ok) {
            if (cfg->v[i].src == FERRY_SRC_FILE)
                ferry_fmt(err, errlen, "%s:%d: unknown section [%s]",
                          cfg->path ? cfg->path : "config",
                          ferry_config_section_line(cfg, cfg->v[i].section), cfg->v[i].section);
            else
                ferry_fmt(err, errlen, "unknown section [%s]", cfg->v[i].section);
            return FERRY_E_CONFIG;
        }
    }
    return FERRY_OK;
}

void ferry_config_dump(const struct ferry_config *cfg, const char *section,
                       const struct ferry_option *opts, FILE *f)
{
    char wbuf[256];
    fprintf(f, "[%s]\n", section);
    for (const struct ferry_option *o = opts; o->name; o++) {
        if (o->type == FERRY_OPT_PREFIX) {
            for (size_t i = 0; i < cfg->n; i++) {
                const struct entry *e = &cfg->v[i];
                if (!strcmp(e->section, section) && !strncmp(e->key, o->name, strlen(o->name))) {
                    bool secret = strstr(e->key, "password") || strstr(e->key, "secret") ||
                                  strstr(e->key, "key") || strstr(e->key, "token");
                    fprintf(f, "%s = %s  ; %s:%d\n", e->key, secret ? "(redacted)" : e->value,
                            cfg->path ? cfg->path : "config", e->line);
                }
            }
            continue;
        }
        struct lookup l = {.src = FERRY_SRC_DEFAULT};
        const char *v = lookup(cfg, section, o->name, &l) ? l.value : o->def;
        if (!v && (o->flags & FERRY_OPTF_SECRET)) {
            char fkey[128];
            ferry_fmt(fkey, sizeof fkey, "%s_file", o->name);
            if (lookup(cfg, section, fkey, &l)) {
                fprintf(f, "%s = (redacted, from %s)  ; %s\n", o->name, l.value,
                        where(cfg, &l, wbuf, sizeof wbuf));
                continue;
            }
        }
        if (!v)
            fprintf(f, "%s =  ; unset\n", o->name);
        else if (o->flags & FERRY_OPTF_SECRET)
            fprintf(f, "%s = (redacted)  ; %s\n", o->name, where(cfg, &l, wbuf, sizeof wbuf));
        else
            fprintf(f, "%s = %s  ; %s\n", o->name, v, where(cfg, &l, wbuf, sizeof wbuf));
    }
}

size_t ferry_config_file_secrets(const struct ferry_config *cfg, const char *section,
                                 const struct ferry_option *opts, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->n; i++) {
        const struct entry *e = &cfg->v[i];
        if (e->src != FERRY_SRC_FILE || strcmp(e->section, section))
            continue;
        bool filevar, secret = false;
        const struct ferry_option *o = match(opts, e->key, &filevar);
        if (o && o->type == FERRY_OPT_PREFIX)
            secret =
                strstr(e->key, "password") || strstr(e->key, "secret") || strstr(e->key, "token");
        else if (o)
            secret = (o->flags & FERRY_OPTF_SECRET) && !filevar;
        if (!secret)
            continue;
        size_t used = strlen(out);
        if (used + 1 < outlen)
            snprintf(out + used, outlen - used, "%s%s.%s", used ? "," : "", section, e->key);
        n++;
    }
    return n;
}

size_t ferry_config_sections(const struct ferry_config *cfg, const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strcmp(cfg->v[j].section, cfg->v[i].section);
        if (seen)
            continue;
        if (n < max)
            out[n] = cfg->v[i].section;
        n++;
    }
    return n;
}

int ferry_config_section_line(const struct ferry_config *cfg, const char *section)
{
    for (size_t i = 0; i < cfg->nsecs; i++)
        if (!strcmp(cfg->secs[i].name, section))
            return cfg->secs[i].line;
    for (size_t i = 0; i < cfg->n; i++)
        if (cfg->v[i].src == FERRY_SRC_FILE && !strcmp(cfg->v[i].section, section))
            return cfg->v[i].line;
    return 0;
}

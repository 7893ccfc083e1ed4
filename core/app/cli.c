/* Command line and configuration shared by the programs: the same option
 * tables drive flags (--name value), FERRY_SECTION_KEY, the file, --help
 * and --print-config. */
#include "config.h"
#include "app.h"
#include "private.h"

#include <ferry/retry.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag, hup_flag;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        hup_flag = 1;
    else
        stop_flag = 1;
}

void app_log(const struct app *a, int level, const char *fmt, ...)
{
    if (level > a->log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    char line[2048];
    int n =
        snprintf(line, sizeof line, "%s: %s [core] ", a->spec->prog, ferry_log_level_name(level));
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

int app_exit_code(int st)
{
    switch (st) {
    case FERRY_OK: return EX_OK;
    case FERRY_E_CONFIG:
    case FERRY_E_NOTSUP: return EX_CONFIG;
    case FERRY_E_TOOBIG:
    case FERRY_E_REJECTED: return EX_DATAERR;
    case FERRY_E_AGAIN:
    case FERRY_E_TIMEOUT:
    case FERRY_E_NOCONN: return EX_UNAVAILABLE;
    default: return EX_SOFTWARE;
    }
}

void app_sleep(const struct app *a, int64_t ms)
{
    while (ms > 0 && !*a->stop) {
        int64_t step = ms > 50 ? 50 : ms;
        ferry_sleep_ms(step);
        ms -= step;
    }
}

/* "--invalid-ratio" <-> "invalid_ratio" */
static void flag_name(const char *opt, char *buf, size_t len)
{
    snprintf(buf, len, "%s", opt);
    for (char *p = buf; *p; p++)
        if (*p == '_')
            *p = '-';
}

static const char *type_word(const struct ferry_option *o)
{
    switch (o->type) {
    case FERRY_OPT_STR: return "STRING";
    case FERRY_OPT_INT: return "N";
    case FERRY_OPT_BOOL: return "BOOL";
    case FERRY_OPT_DURATION: return "DURATION";
    case FERRY_OPT_SIZE: return "SIZE";
    case FERRY_OPT_ENUM: return o->choices;
    default: return "KEY=VALUE";
    }
}

static void print_table(FILE *f, const struct ferry_option *opts, bool as_flags)
{
    for (const struct ferry_option *o = opts; o->name; o++) {
        char name[96];
        flag_name(o->name, name, sizeof name);
        char head[200];
        if (as_flags)
            snprintf(head, sizeof head, "  --%s%s%s", name, o->type == FERRY_OPT_BOOL ? "" : " ",
                     o->type == FERRY_OPT_BOOL ? "" : type_word(o));
        else
            snprintf(head, sizeof head, "    %s%s (%s)", o->name,
                     o->type == FERRY_OPT_PREFIX ? "*" : "", type_word(o));
        fprintf(f, "%-34s %s", head, o->help);
        if (o->def)
            fprintf(f, " Default: %s.", (o->flags & FERRY_OPTF_SECRET) ? "(secret)" : o->def);
        if (o->flags & FERRY_OPTF_REQUIRED)
            fprintf(f, " Required.");
        fputc('\n', f);
    }
}

static void usage(const struct app_spec *s, FILE *f)
{
    fprintf(f, "Usage: %s %s\n\n%s\n\n", s->prog, s->usage, s->about);
    fprintf(f,
            "Common options:\n"
            "  -c, --config FILE                config file (INI); default $FERRY_CONFIG, else "
            "built-in defaults\n"
            "  -t, --transport NAME             transport plugin (amqp, kafka, zmq, ...): "
            "[transport] plugin\n"
            "  -o, --set SECTION.KEY=VALUE      set any config value (highest precedence)\n"
            "      --list-plugins               list the transport plugins found, their "
            "capabilities and options\n"
            "      --print-config               print the effective configuration (secrets "
            "redacted) and exit\n"
            "      --http ADDRESS:PORT          serve /health and /metrics there: [http] listen\n"
            "  -v, --verbose / -q, --quiet      more / less logging (also "
            "FERRY_LOG_LEVEL=debug|info|warn|error)\n"
            "      --help, --version\n\n");
    char upper[64];
    size_t i = 0;
    for (; s->section[i] && i + 1 < sizeof upper; i++)
        upper[i] = (char)toupper((unsigned char)s->section[i]);
    upper[i] = '\0';
    fprintf(f, "Options of [%s] (also FERRY_%s_NAME in the environment, or NAME in the file):\n",
            s->section, upper);
    print_table(f, s->options, true);
    fprintf(f, "\nExit status: 0 ok, 64 usage, 65 bad data, 69 broker unavailable, 74 I/O error, "
               "78 bad configuration.\n");
}

struct list_ctx {
    int n;
};

static void list_one(const struct ferry_transport *t, const char *file, const char *why, void *ctx)
{
    struct list_ctx *lc = ctx;
    if (!t) {
        printf("%s: not loadable: %s\n\n", file, why);
        return;
    }
    lc->n++;
    char caps[160];
    const char *v = t->lib_version ? t->lib_version() : "?";
    printf("%s - %s\n  file: %s\n  library: %s\n  capabilities: %s\n  options [%s]:\n", t->name,
           t->summary ? t->summary : "", file, v ? v : "?",
           ferry_caps_str(t->caps, caps, sizeof caps), t->name);
    print_table(stdout, t->options, false);
    printf("\n");
}

static int bad_usage(const struct app_spec *s, const char *what, const char *arg)
{
    fprintf(stderr, "%s: %s: '%s'\nTry '%s --help'.\n", s->prog, what, arg, s->prog);
    return EX_USAGE;
}

enum { OPT_LIST = 1000, OPT_PRINT, OPT_HELP, OPT_VERSION, OPT_HTTP, OPT_TABLE = 2000 };

/* Every section must be known; every known section is checked key by key
 * (also the other programs' sections and inactive plugins' sections, so a
 * typo is caught whichever program reads the file first). */
static int check_config(struct app *a, char *err, size_t errlen)
{
    const char *secs[64];
    size_t n = ferry_config_sections(a->config, secs, FERRY_ARRAY_LEN(secs));
    if (n > FERRY_ARRAY_LEN(secs))
        n = FERRY_ARRAY_LEN(secs);
    const char *plugin_path = ferry_config_get(a->config, "transport", "plugin_path");
    for (size_t i = 0; i < n; i++) {
        const struct ferry_option *opts = app_section_options(secs[i]);
        size_t size = 4096;
        const struct ferry_transport *t = NULL;
        if (!opts) {
            int st;
            char why[1024];
            t = ferry_plugin_load(secs[i], plugin_path, &st, why, sizeof why);
            if (!t) {
                if (!strcmp(secs[i], "amqp") || !strcmp(secs[i], "kafka") ||
                    !strcmp(secs[i], "zmq")) {
                    app_debug(a, "section not checked section=%s reason=\"%s\"", secs[i], why);
                    continue;
                }
                snprintf(err, errlen,
                         "%s:%d: unknown section [%s] (not a program section and "
                         "no plugin of that name)",
                         ferry_config_path(a->config) ? ferry_config_path(a->config) : "config",
                         ferry_config_section_line(a->config, secs[i]), secs[i]);
                return FERRY_E_CONFIG;
            }
            opts = t->options;
            size = t->cfg_size ? t->cfg_size : 1;
        }
        void *scratch = calloc(1, size); /* freed below */
        if (!scratch)
            return FERRY_E_CONFIG;
        int st = ferry_config_bind(a->config, secs[i], opts, scratch, NULL, NULL, err, errlen);
        ferry_options_free(opts, scratch);
        free(scratch);
        if (st)
            return st;
    }
    return FERRY_OK;
}

/* Build getopt's table from the common flags and the program's options. */
static struct option *long_options(const struct ferry_option *opts, char (*names)[96])
{
    static const struct option common[] = {{"config", required_argument, NULL, 'c'},
                                           {"transport", required_argument, NULL, 't'},
                                           {"set", required_argument, NULL, 'o'},
                                           {"verbose", no_argument, NULL, 'v'},
                                           {"quiet", no_argument, NULL, 'q'},
                                           {"list-plugins", no_argument, NULL, OPT_LIST},
                                           {"print-config", no_argument, NULL, OPT_PRINT},
                                           {"help", no_argument, NULL, OPT_HELP},
                                           {"version", no_argument, NULL, OPT_VERSION},
                                           {"http", required_argument, NULL, OPT_HTTP}};
    size_t nopt = 0;
    for (const struct ferry_option *o = opts; o->name; o++)
        nopt++;
    size_t nc = sizeof common / sizeof common[0];
    struct option *lo = calloc(nc + 2 * nopt + 1, sizeof *lo); /* freed in app_init() */
    if (!lo)
        return NULL;
    memcpy(lo, common, sizeof common);
    size_t k = nc;
    for (size_t i = 0; i < nopt; i++) {
        if (opts[i].type == FERRY_OPT_PREFIX)
            continue;
        flag_name(opts[i].name, names[2 * i], 96);
        lo[k++] = (struct option){names[2 * i],
                                  opts[i].type == FERRY_OPT_BOOL ? no_argument : required_argument,
                                  NULL, OPT_TABLE + (int)(2 * i)};
        if (opts[i].type == FERRY_OPT_BOOL) {
            snprintf(names[2 * i + 1], 96, "no-%s", names[2 * i]);
            lo[k++] =
                (struct option){names[2 * i + 1], no_argument, NULL, OPT_TABLE + (int)(2 * i + 1)};
        }
    }
    return lo;
}

/* A config file that others may read should not hold secrets itself: name
 * the file and the keys, and how to move them out. */
static void warn_file_secrets(struct app *a)
{
    const char *path = ferry_config_path(a->config);
    struct stat sb;
    if (!path || stat(path, &sb) != 0 || !(sb.st_mode & (S_IRGRP | S_IROTH)))
        return;
    char keys[512] = "";
    size_t n =
        ferry_config_file_secrets(a->config, a->spec->section, a->spec->options, keys, sizeof keys);
    n += ferry_config_file_secrets(a->config, "transport", ferry_transport_options, keys,
                                   sizeof keys);
    struct ferry_transport_cfg tc = {0};
    char err[256];
    int st;
    if (ferry_config_bind(a->config, "transport", ferry_transport_options, &tc, NULL, NULL, err,
                          sizeof err) == FERRY_OK) {
        const struct ferry_transport *t =
            ferry_plugin_load(tc.plugin, tc.plugin_path, &st, err, sizeof err);
        if (t)
            n += ferry_config_file_secrets(a->config, t->name, t->options, keys, sizeof keys);
        ferry_options_free(ferry_transport_options, &tc);
    }
    if (n)
        app_warn(a,
                 "config file readable by others holds secrets file=%s mode=%04o keys=%s "
                 "hint=\"chmod 600 it, or move them to KEY_file or FERRY_SECTION_KEY\"",
                 path, (unsigned)(sb.st_mode & 07777), keys);
}

int app_init(struct app *a, const struct app_spec *spec, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->spec = spec;
    a->stop = &stop_flag;
    a->hup = &hup_flag;
    a->log_level = ferry_env_log_level();
    a->config = ferry_config_new(); /* freed in app_fini() */
    if (!a->config)
        return EX_OSERR;

    size_t nopt = 0;
    for (const struct ferry_option *o = spec->options; o->name; o++)
        nopt++;
    char(*names)[96] = calloc(2 * nopt + 1, sizeof *names); /* freed below */
    struct option *lo = names ? long_options(spec->options, names) : NULL;
    if (!lo) {
        free(names);
        return EX_OSERR;
    }
    const char *config_file = getenv("FERRY_CONFIG");
    bool list = false, print = false;
    int rc = -1, c;
    optind = 1;
    while (rc < 0 && (c = getopt_long(argc, argv, "+c:t:o:vqh", lo, NULL)) != -1) {
        char sec[64], key[128];
        const char *eq;
        switch (c) {
        case 'c': config_file = optarg; break;
        case 't': ferry_config_set(a->config, "transport", "plugin", optarg, FERRY_SRC_FLAG); break;
        case 'o':
            eq = strchr(optarg, '=');
            if (!eq || sscanf(optarg, "%63[^.=].%127[^=]", sec, key) != 2) {
                rc = bad_usage(spec, "--set wants SECTION.KEY=VALUE", optarg);
                break;
            }
            ferry_config_set(a->config, sec, key, eq + 1, FERRY_SRC_FLAG);
            break;
        case OPT_HTTP: ferry_config_set(a->config, "http", "listen", optarg, FERRY_SRC_FLAG); break;
        case 'v':
            ferry_config_set(a->config, "transport", "log_level", "debug", FERRY_SRC_FLAG);
            break;
        case 'q':
            ferry_config_set(a->config, "transport", "log_level", "warn", FERRY_SRC_FLAG);
            break;
        case OPT_LIST: list = true; break;
        case OPT_PRINT: print = true; break;
        case 'h':
        case OPT_HELP:
            usage(spec, stdout);
            rc = EX_OK;
            break;
        case OPT_VERSION:
            printf("%s (ferry) %s, transport ABI %d\n", spec->prog, ferry_version(),
                   FERRY_TRANSPORT_ABI);
            rc = EX_OK;
            break;
        default:
            if (c >= OPT_TABLE && c < OPT_TABLE + (int)(2 * nopt)) {
                const struct ferry_option *o = &spec->options[(c - OPT_TABLE) / 2];
                const char *v =
                    o->type == FERRY_OPT_BOOL ? ((c - OPT_TABLE) % 2 ? "false" : "true") : optarg;
                ferry_config_set(a->config, spec->section, o->name, v, FERRY_SRC_FLAG);
            } else {
                rc = EX_USAGE; /* getopt already said why */
                fprintf(stderr, "Try '%s --help'.\n", spec->prog);
            }
        }
    }
    free(lo);
    free(names);
    if (rc >= 0)
        return rc;
    a->args = argv + optind;
    a->nargs = argc - optind;

    char err[1024];
    if (config_file && *config_file &&
        ferry_config_load(a->config, config_file, err, sizeof err) != FERRY_OK) {
        fprintf(stderr, "%s: error: %s\n", spec->prog, err);
        return EX_CONFIG;
    }
    if (list) {
        struct list_ctx lc = {0};
        ferry_plugin_foreach(ferry_config_get(a->config, "transport", "plugin_path"), list_one,
                             &lc);
        if (!lc.n) {
            fprintf(stderr, "%s: no transport plugins found (FERRY_PLUGIN_PATH, %s)\n", spec->prog,
                    FERRY_PLUGIN_DIR);
            return EX_CONFIG;
        }
        return EX_OK;
    }
    if (check_config(a, err, sizeof err) ||
        ferry_config_bind(a->config, spec->section, spec->options, spec->cfg, NULL, NULL, err,
                          sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", spec->prog, err);
        return EX_CONFIG;
    }
    /* one log level for the program and its plugin: flag > env > file */
    const char *lvl = ferry_config_get(a->config, "transport", "log_level");
    if (!lvl)
        lvl = getenv("FERRY_LOG_LEVEL");
    if (ferry_log_level_parse(lvl) >= 0)
        a->log_level = ferry_log_level_parse(lvl);
    warn_file_secrets(a);
    if (print) {
        int st;
        struct ferry_transport_cfg tc = {0};
        ferry_config_dump(a->config, "transport", ferry_transport_options, stdout);
        if (ferry_config_bind(a->config, "transport", ferry_transport_options, &tc, NULL, NULL, err,
                              sizeof err) == FERRY_OK) {
            const struct ferry_transport *t =
                ferry_plugin_load(tc.plugin, tc.plugin_path, &st, err, sizeof err);
            ferry_options_free(ferry_transport_options, &tc);
            if (!t) {
                fprintf(stderr, "%s: error: %s\n", spec->prog, err);
                return EX_CONFIG;
            }
            printf("\n");
            ferry_config_dump(a->config, t->name, t->options, stdout);
        }
        printf("\n");
        ferry_config_dump(a->config, spec->section, spec->options, stdout);
        printf("\n");
        ferry_config_dump(a->config, "http", app_section_options("http"), stdout);
        return EX_OK;
    }
    char host[256] = "localhost";
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    snprintf(a->client_id, sizeof a->client_id, "%s@%s:%d", spec->prog, host, (int)getpid());

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return -1;
}

void app_fini(struct app *a)
{
    ferry_options_free(a->spec->options, a->spec->cfg);
    ferry_config_free(a->config);
    a->config = NULL;
}

struct ferry_conn *app_connect(struct app *a, int64_t timeout_ms, int *exit_code)
{
    struct ferry_backoff b;
    ferry_backoff_init(&b, 100, 30000);
    int64_t start = ferry_mono_ms();
    bool warned = false;
    for (;;) {
        int st;
        char err[1024];
        struct ferry_conn *c = ferry_open(a->config, a->client_id, &st, err, sizeof err);
        if (c) {
            ferry_conn_set_log(c, a->spec->prog, a->log_level);
            const char *v = c->transport->lib_version ? c->transport->lib_version() : NULL;
            app_info(a, "connected transport=%s library=\"%s\"%s", c->transport->name, v ? v : "?",
                     warned ? " after retries" : "");
            return c;
        }
        if (!ferry_status_retriable(st)) {
            fprintf(stderr, "%s: error: %s\n", a->spec->prog, err);
            *exit_code = app_exit_code(st);
            return NULL;
        }
        int64_t waited = ferry_mono_ms() - start;
        if (*a->stop || (timeout_ms >= 0 && waited >= timeout_ms)) {
            fprintf(stderr, "%s: error: broker unavailable after %lld ms: %s\n", a->spec->prog,
                    (long long)waited, err);
            *exit_code = EX_UNAVAILABLE;
            return NULL;
        }
        int64_t d = ferry_backoff_next(&b);
        if (!warned)
            app_warn(a, "connect failed error=\"%s\" retry_in=%lldms", err, (long long)d);
        warned = true;
        app_sleep(a, d);
    }
}

struct ferry_retry *app_retry_new(struct app *a, struct ferry_conn *in, const char *dest,
                                  const char *group, const char *dead_letter, int64_t max_retries,
                                  int64_t backoff_min, int64_t backoff_max, int mode,
                                  int64_t publish_timeout, int *exit_code)
{
    *exit_code = -1;
    if (max_retries < 0)
        return NULL;
    struct ferry_retry_opts o = {.policy = {.max_retries = max_retries,
                                            .backoff_min_ms = backoff_min,
                                            .backoff_max_ms = backoff_max},
                                 .mode = (enum ferry_retry_mode)mode,
                                 .dest = dest,
                                 .group = group,
                                 .dead_letter = dead_letter,
                                 .publish_timeout_ms = publish_timeout};
    int st;
    char err[1024];
    struct ferry_retry *r = ferry_retry_new(a->config, a->client_id, in, &o, &st, err, sizeof err);
    if (!r) {
        fprintf(stderr, "%s: error: %s\n", a->spec->prog, err);
        *exit_code = app_exit_code(st);
        return NULL;
    }
    app_info(a, "retries on failure max_retries=%lld backoff=%lld..%lldms mode=%s dead_letter=%s",
             (long long)max_retries, (long long)backoff_min, (long long)backoff_max,
             ferry_retry_mode_name(ferry_retry_get_mode(r)), dead_letter);
    return r;
}

int app_require(struct app *a, const char *list)
{
    if (!list || !*list)
        return -1;
    struct ferry_transport_cfg tc = {0};
    char err[1024];
    int st = ferry_config_bind(a->config, "transport", ferry_transport_options, &tc, NULL, NULL,
                               err, sizeof err);
    const struct ferry_transport *t =
        st == FERRY_OK
            ? ferry_plugin_load(tc.plugin ? tc.plugin : "zmq", tc.plugin_path, &st, err, sizeof err)
            : NULL;
    ferry_options_free(ferry_transport_options, &tc);
    if (!t) {
        fprintf(stderr, "%s: error: %s\n", a->spec->prog, err);
        return app_exit_code(st);
    }
    char *copy = strdup(list); /* freed below */
    if (!copy)
        return EX_OSERR;
    int rc = -1;
    char *save = NULL;
    for (char *w = strtok_r(copy, ", ", &save); w && rc < 0; w = strtok_r(NULL, ", ", &save)) {
        uint32_t cap = 0;
        for (uint32_t bit = 1; bit && !cap; bit <<= 1)
            if (ferry_cap_name(bit) && !strcmp(ferry_cap_name(bit), w))
                cap = bit;
        char have[160];
        if (!cap) {
            fprintf(stderr, "%s: error: [%s] require: unknown capability '%s' (known: %s)\n",
                    a->spec->prog, a->spec->section, w, ferry_caps_str(~0u, have, sizeof have));
            rc = EX_CONFIG;
        } else if (!(t->caps & cap)) {
            fprintf(stderr,
                    "%s: error: [%s] require: transport %s lacks capability '%s' "
                    "(it has: %s)\n",
                    a->spec->prog, a->spec->section, t->name, w,
                    ferry_caps_str(t->caps, have, sizeof have));
            rc = EX_CONFIG;
        }
    }
    free(copy);
    return rc;
}

/* Plugin loader: finds NAME.la/NAME.so along the search path with libltdl,
 * checks the descriptor (ABI, size, name, ops against caps, option table)
 * and keeps the process-wide registry, the core's only mutable global. */
#include "config.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <ltdl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A loaded plugin. The core works on its own copy of the descriptor and of
 * the ops table, at the sizes this core was built with: members the plugin
 * was built without are zero (NULL operations), and an ABI 1 plugin's table
 * is converted, so the rest of the core never looks at sizes or ABIs. The
 * strings, options and functions still live in the module, which is never
 * unloaded. */
struct loaded {
    char *name;                     /* owned */
    char *file;                     /* owned */
    struct ferry_transport t;       /* handed out as const */
    struct ferry_transport_ops ops; /* t.ops points here */
    struct loaded *next;
};

/* ABI 1, as plugins built against it lay it out: the ops table has no size,
 * and defer was appended to the descriptor (within `size` when present). */
struct ferry_transport_ops_v1 {
    int (*open)(struct ferry_conn *c);
    void (*close)(struct ferry_conn *c);
    int (*publish)(struct ferry_conn *c, const struct ferry_msg *m);
    int (*flush)(struct ferry_conn *c, int timeout_ms);
    int (*subscribe)(struct ferry_conn *c, const char *dest, const char *group);
    int (*receive)(struct ferry_conn *c, struct ferry_msg **out, size_t max, size_t *n,
                   int timeout_ms);
    int (*ack)(struct ferry_conn *c, struct ferry_msg *m);
    int (*nack)(struct ferry_conn *c, struct ferry_msg *m, bool requeue, const char *reason);
    void (*release)(struct ferry_conn *c, struct ferry_msg *m);
    int (*health)(struct ferry_conn *c, struct ferry_health *out);
};
struct ferry_transport_v1 {
    uint32_t abi, size;
    const char *name, *summary;
    const char *(*lib_version)(void);
    uint32_t caps;
    const struct ferry_option *options;
    size_t cfg_size;
    const struct ferry_transport_ops_v1 *ops;
    ferry_defer_op defer;
};

/* The plugin registry: modules stay loaded until exit, so descriptors
 * handed out stay valid. Guarded by reg_lock. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct loaded *registry;
static bool ltdl_ready;

static const char *const cap_names[] = {"ack",       "groups",     "durable", "confirms",
                                        "key-order", "deadletter", "fanout"};

const char *ferry_cap_name(uint32_t cap)
{
    for (size_t i = 0; i < FERRY_ARRAY_LEN(cap_names); i++)
        if (cap == (1u << i))
            return cap_names[i];
    return NULL;
}

const char *ferry_caps_str(uint32_t caps, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < FERRY_ARRAY_LEN(cap_names); i++)
        if (caps & (1u << i)) {
            int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", cap_names[i]);
            if (n < 0 || (size_t)n >= len - used)
                break;
            used += (size_t)n;
        }
    if (!used)
        snprintf(buf, len, "none");
    return buf;
}

/* "dir/kafka.so" -> "kafka" */
static void module_name(const char *file, char *buf, size_t len)
{
    const char *b = strrchr(file, '/');
    b = b ? b + 1 : file;
    snprintf(buf, len, "%s", b);
    char *dot = strchr(buf, '.');
    if (dot)
        *dot = '\0';
}

/* Copy the module's descriptor d into l->t / l->ops at this core's sizes.
 * Refuses other ABIs and descriptors too small to hold what they must. */
static int import_descriptor(const void *d, const char *file, struct loaded *l, char *err,
                             size_t errlen)
{
    const struct ferry_transport *t2 = d;
    if (t2->abi == 1) {
        const struct ferry_transport_v1 *t1 = d;
        if (t1->size < offsetof(struct ferry_transport_v1, defer)) {
            ferry_fmt(err, errlen,
                      "%s: ABI 1 descriptor is %u bytes, ferry needs at least %zu; "
                      "rebuild the plugin",
                      file, t1->size, offsetof(struct ferry_transport_v1, defer));
            return FERRY_E_CONFIG;
        }
        l->t = (struct ferry_transport){.abi = 1,
                                        .size = sizeof l->t,
                                        .name = t1->name,
                                        .summary = t1->summary,
                                        .lib_version = t1->lib_version,
                                        .caps = t1->caps,
                                        .options = t1->options,
                                        .cfg_size = t1->cfg_size};
        if (t1->ops)
            l->ops = (struct ferry_transport_ops){.size = sizeof l->ops,
                                                  .open = t1->ops->open,
                                                  .close = t1->ops->close,
                                                  .publish = t1->ops->publish,
                                                  .flush = t1->ops->flush,
                                                  .subscribe = t1->ops->subscribe,
                                                  .receive = t1->ops->receive,
                                                  .ack = t1->ops->ack,
                                                  .nack = t1->ops->nack,
                                                  .release = t1->ops->release,
                                                  .health = t1->ops->health};
        if (t1->size >= offsetof(struct ferry_transport_v1, defer) + sizeof t1->defer)
            l->ops.defer = t1->defer;
        l->t.ops = t1->ops ? &l->ops : NULL;
        return FERRY_OK;
    }
    if (t2->abi != FERRY_TRANSPORT_ABI) {
        ferry_fmt(err, errlen,
                  "%s was built for transport ABI %u, this ferry uses ABI %u (and loads ABI 1); "
                  "rebuild the plugin against ferry %s's <ferry/transport.h>",
                  file, t2->abi, FERRY_TRANSPORT_ABI, ferry_version());
        return FERRY_E_CONFIG;
    }
    if (t2->size < FERRY_TRANSPORT_MIN_SIZE) {
        ferry_fmt(err, errlen,
                  "%s: descriptor is %u bytes, ferry needs at least %zu; rebuild the plugin", file,
                  t2->size, (size_t)FERRY_TRANSPORT_MIN_SIZE);
        return FERRY_E_CONFIG;
    }
    memcpy(&l->t, t2, t2->size < sizeof l->t ? t2->size : sizeof l->t);
    l->t.size = sizeof l->t;
    if (t2->ops) {
        if (t2->ops->size < FERRY_OPS_MIN_SIZE) {
            ferry_fmt(err, errlen,
                      "%s: operations table is %u bytes, ferry needs at least %zu "
                      "(is .size set?); rebuild the plugin",
                      file, t2->ops->size, (size_t)FERRY_OPS_MIN_SIZE);
            return FERRY_E_CONFIG;
        }
        memcpy(&l->ops, t2->ops, t2->ops->size < sizeof l->ops ? t2->ops->size : sizeof l->ops);
        l->ops.size = sizeof l->ops;
        l->t.ops = &l->ops;
    }
    return FERRY_OK;
}

/* Check the imported descriptor t (this core's layout). */
static int check_descriptor(const struct ferry_transport *t, const char *file, const char *want,
                            char *err, size_t errlen)
{
    if (!t->name || strcmp(t->name, want)) {
        ferry_fmt(err, errlen, "%s: the plugin calls itself '%s'; its file must be named %s.so",
                  file, t->name ? t->name : "(null)", t->name ? t->name : "NAME");
        return FERRY_E_CONFIG;
    }
    const struct ferry_transport_ops *o = t->ops;
    if (!o || !o->open || !o->close || !o->health) {
        ferry_fmt(err, errlen, "%s: open, close and health are mandatory operations", file);
        return FERRY_E_CONFIG;
    }
    if ((o->publish == NULL) != (o->flush == NULL)) {
        ferry_fmt(err, errlen, "%s: publish and flush come together", file);
        return FERRY_E_CONFIG;
    }
    if ((o->subscribe || o->receive) &&
        !(o->subscribe && o->receive && o->ack && o->nack && o->release)) {
        ferry_fmt(err, errlen, "%s: a consumer needs subscribe, receive, ack, nack and release",
                  file);
        return FERRY_E_CONFIG;
    }
    if ((t->caps & (FERRY_CAP_ACK | FERRY_CAP_GROUPS | FERRY_CAP_FANOUT | FERRY_CAP_DEADLETTER)) &&
        !o->receive) {
        ferry_fmt(err, errlen, "%s: claims consumer capabilities but has no receive operation",
                  file);
        return FERRY_E_CONFIG;
    }
    if ((t->caps & FERRY_CAP_CONFIRMS) && !o->publish) {
        ferry_fmt(err, errlen, "%s: claims publisher confirms but has no publish operation", file);
        return FERRY_E_CONFIG;
    }
    if (t->caps >> FERRY_ARRAY_LEN(cap_names)) {
        ferry_fmt(err, errlen, "%s: unknown capability bits 0x%x", file, t->caps);
        return FERRY_E_CONFIG;
    }
    char why[256];
    if (!t->options || ferry_options_validate(t->options, why, sizeof why)) {
        ferry_fmt(err, errlen, "%s: bad option table: %s", file, t->options ? why : "missing");
        return FERRY_E_CONFIG;
    }
    return FERRY_OK;
}

/* Open one file (path without or with extension). Caller holds reg_lock. */
static const struct ferry_transport *open_file(const char *path, const char *want, int *status,
                                               char *err, size_t errlen)
{
    lt_dlhandle h = lt_dlopenext(path);
    if (!h) {
        const char *e = lt_dlerror();
        ferry_fmt(err, errlen,
                  "%s: cannot load: %s (a missing client library shows with `ldd %s.so`)", path,
                  e ? e : "unknown error", path);
        *status = FERRY_E_CONFIG;
        return NULL;
    }
    char sym[160];
    const void *d = lt_dlsym(h, "ferry_descriptor");
    if (!d) /* distros delete .la files; then libltdl cannot strip the prefix */
        d = lt_dlsym(h, ferry_fmt(sym, sizeof sym, "%s_LTX_ferry_descriptor", want));
    if (!d) {
        ferry_fmt(err, errlen, "%s: not a ferry transport plugin (no ferry_descriptor symbol)",
                  path);
        lt_dlclose(h);
        *status = FERRY_E_CONFIG;
        return NULL;
    }
    struct loaded *l = calloc(1, sizeof *l); /* registry entry: lives until exit */
    if (!l) {
        ferry_fmt(err, errlen, "out of memory");
        lt_dlclose(h);
        *status = FERRY_E_CONFIG;
        return NULL;
    }
    if ((*status = import_descriptor(d, path, l, err, errlen)) != FERRY_OK ||
        (*status = check_descriptor(&l->t, path, want, err, errlen)) != FERRY_OK) {
        free(l);
        lt_dlclose(h);
        return NULL;
    }
    l->name = strdup(want);
    l->file = strdup(path);
    l->next = registry;
    registry = l;
    return &l->t;
}

static bool init_ltdl(char *err, size_t errlen)
{
    if (!ltdl_ready) {
        if (lt_dlinit()) {
            ferry_fmt(err, errlen, "libltdl: %s", lt_dlerror());
            return false;
        }
        ltdl_ready = true;
    }
    return true;
}

/* The search path as one colon-separated string; caller frees. */
static char *search_path(const char *plugin_path)
{
    const char *env = getenv("FERRY_PLUGIN_PATH");
    size_t n = (plugin_path ? strlen(plugin_path) : 0) + (env ? strlen(env) : 0) +
               strlen(FERRY_PLUGIN_DIR) + 3;
    char *s = malloc(n); /* freed by the caller */
    if (s)
        snprintf(s, n, "%s%s%s%s%s", plugin_path ? plugin_path : "",
                 plugin_path && *plugin_path ? ":" : "", env ? env : "", env && *env ? ":" : "",
                 FERRY_PLUGIN_DIR);
    return s;
}

static bool file_exists_with_ext(const char *base)
{
    static const char *const exts[] = {".la", ".so"};
    char p[4096];
    for (size_t i = 0; i < FERRY_ARRAY_LEN(exts); i++) {
        FILE *f = fopen(ferry_fmt(p, sizeof p, "%s%s", base, exts[i]), "r");
        if (f) {
            fclose(f);
            return true;
        }
    }
    return false;
}

/* A plugin name is a name: [a-z0-9_]+, at most 64 bytes. Never a path,
 * so nothing outside the plugin path's directories is ever loaded (a
 * module runs its constructors before ferry can look at it). */
static bool plugin_name_ok(const char *name)
{
    size_t n = 0;
    for (; name[n]; n++)
        if (!((name[n] >= 'a' && name[n] <= 'z') || (name[n] >= '0' && name[n] <= '9') ||
              name[n] == '_'))
            return false;
    return n > 0 && n <= 64;
}

/* by_file: name is DIR/NAME of a file found on the path (--list-plugins). */
static const struct ferry_transport *load_plugin(const char *name, const char *plugin_path,
                                                 bool by_file, int *status, char *err,
                                                 size_t errlen)
{
    int dummy;
    if (!status)
        status = &dummy;
    *status = FERRY_E_CONFIG;
    if (!name || !*name) {
        ferry_fmt(err, errlen, "no transport plugin named ([transport] plugin)");
        return NULL;
    }
    if (!by_file && !plugin_name_ok(name)) {
        ferry_fmt(err, errlen,
                  "plugin name '%s' is not a name ([a-z0-9_]+): plugins are loaded only from "
                  "the directories of plugin_path and FERRY_PLUGIN_PATH, never from a path",
                  name);
        return NULL;
    }
    char want[128];
    module_name(name, want, sizeof want);

    pthread_mutex_lock(&reg_lock);
    const struct ferry_transport *t = NULL;
    if (!init_ltdl(err, errlen))
        goto out;
    for (struct loaded *l = registry; l; l = l->next)
        if (l->name && !strcmp(l->name, want)) {
            t = &l->t;
            *status = FERRY_OK;
            goto out;
        }
    if (by_file) {
        t = open_file(name, want, status, err, errlen);
        goto out;
    }
    char *path = search_path(plugin_path);
    if (!path) {
        ferry_fmt(err, errlen, "out of memory");
        goto out;
    }
    bool found = false;
    char *save = NULL;
    for (char *dir = strtok_r(path, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char file[4096];
        ferry_fmt(file, sizeof file, "%s/%s", dir, name);
        if (!file_exists_with_ext(file))
            continue;
        found = true;
        t = open_file(file, want, status, err, errlen);
        break; /* the first one on the path decides, even when it is broken */
    }
    if (!found) {
        char *shown = search_path(plugin_path);
        ferry_fmt(err, errlen,
                  "unknown transport plugin '%s': no %s.so in %s (see --list-plugins; was it "
                  "disabled at configure time?)",
                  name, name, shown ? shown : "the plugin path");
        free(shown);
    }
    free(path);
out:
    if (t)
        *status = FERRY_OK;
    pthread_mutex_unlock(&reg_lock);
    return t;
}

const struct ferry_transport *ferry_plugin_load(const char *name, const char *plugin_path,
                                                int *status, char *err, size_t errlen)
{
    return load_plugin(name, plugin_path, false, status, err, errlen);
}

int ferry_plugin_foreach(const char *plugin_path,
                         void (*fn)(const struct ferry_transport *t, const char *file,
                                    const char *why, void *ctx),
                         void *ctx)
{
    char *path = search_path(plugin_path); /* freed below */
    if (!path)
        return 0;
    int count = 0;
    char seen[64][128];
    size_t nseen = 0;
    char *save = NULL;
    for (char *dir = strtok_r(path, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        DIR *d = opendir(dir);
        if (!d)
            continue;
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t len = strlen(de->d_name);
            bool la = len > 3 && !strcmp(de->d_name + len - 3, ".la");
            bool so = len > 3 && !strcmp(de->d_name + len - 3, ".so");
            if (!la && !so)
                continue;
            char name[128];
            module_name(de->d_name, name, sizeof name);
            bool dup = false;
            for (size_t i = 0; i < nseen && !dup; i++)
                dup = !strcmp(seen[i], name);
            if (dup || nseen == FERRY_ARRAY_LEN(seen))
                continue;
            snprintf(seen[nseen++], sizeof seen[0], "%s", name);
            char file[4096], err[1024];
            ferry_fmt(file, sizeof file, "%s/%s", dir, name);
            int st;
            const struct ferry_transport *t = load_plugin(file, NULL, true, &st, err, sizeof err);
            if (t)
                count++;
            fn(t, file, t ? NULL : err, ctx);
        }
        closedir(d);
    }
    free(path);
    return count;
}

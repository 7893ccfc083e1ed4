/* Plugin loader: finds NAME.la/NAME.so along the search path with libltdl,
 * checks the descriptor (ABI, size, name, ops against caps, option table)
 * and keeps the process-wide registry, the core's only mutable global. */
#include "config.h"
#include "internal.h"

#include <ferry/sink.h>

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ltdl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A loaded plugin. The core works on its own copy of the descriptor and of
 * the ops table, at the sizes this core was built with: members the plugin
 * was built without are zero (NULL operations), and an ABI 1 plugin's table
 * is converted, so the rest of the core never looks at sizes or ABIs. The
 * strings, options and functions still live in the module, which is never
 * unloaded. */
/* The two kinds of plugin share the path, the loader and the registry. */
enum kind { KIND_TRANSPORT = 0, KIND_SINK };

static const char *const kind_words[] = {"transport", "sink"};

struct loaded {
    char *name; /* owned */
    char *file; /* owned */
    enum kind kind;
    struct ferry_transport t;       /* transports: handed out as const */
    struct ferry_transport_ops ops; /* t.ops points here */
    const struct ferry_sink *sink;  /* sinks: inside the module (sizes checked on use) */
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

static const char *const sink_cap_names[] = {"transactional", "idempotent", "durable",
                                             "per-record"};

static const char *caps_words(const char *const *names, size_t nnames, uint32_t caps, char *buf,
                              size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < nnames; i++)
        if (caps & (1u << i)) {
            int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", names[i]);
            if (n < 0 || (size_t)n >= len - used)
                break;
            used += (size_t)n;
        }
    if (!used)
        snprintf(buf, len, "none");
    return buf;
}

const char *ferry_sink_cap_name(uint32_t cap)
{
    for (size_t i = 0; i < FERRY_ARRAY_LEN(sink_cap_names); i++)
        if (cap == (1u << i))
            return sink_cap_names[i];
    return NULL;
}

const char *ferry_sink_caps_str(uint32_t caps, char *buf, size_t len)
{
    return caps_words(sink_cap_names, FERRY_ARRAY_LEN(sink_cap_names), caps, buf, len);
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
        ferry_fmt(err, errlen,
                  "%s: the file name and the plugin's name differ: the file is named '%s' but its "
                  "descriptor names the plugin '%s'; rename the file to %s.so",
                  file, want, t->name ? t->name : "(null)", t->name ? t->name : "NAME");
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

/* The first exported NAME_LTX_ferry_descriptor in the ELF file at path,
 * copied to out: what a renamed plugin still carries under its old name.
 * Returns false when there is none or the file is not a 64-bit ELF. */
static bool ltx_descriptor_in(const char *path, char *out, size_t len)
{
    static const char suffix[] = "_LTX_ferry_descriptor";
    bool found = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return false;
    if (fstat(fd, &st) || (size_t)st.st_size < sizeof(Elf64_Ehdr)) {
        close(fd);
        return false;
    }
    size_t size = (size_t)st.st_size;
    const unsigned char *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return false;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)m;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > size)
        goto out;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(m + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum && !found; i++) {
        if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum)
            continue;
        const Elf64_Shdr *strs = &sh[sh[i].sh_link];
        if (sh[i].sh_offset + sh[i].sh_size > size || strs->sh_offset + strs->sh_size > size)
            continue;
        const Elf64_Sym *sym = (const Elf64_Sym *)(m + sh[i].sh_offset);
        const char *names = (const char *)(m + strs->sh_offset);
        for (size_t k = 0; k < sh[i].sh_size / sizeof *sym && !found; k++) {
            if (sym[k].st_name >= strs->sh_size || sym[k].st_shndx == SHN_UNDEF)
                continue;
            const char *n = names + sym[k].st_name;
            size_t nl = strnlen(n, strs->sh_size - sym[k].st_name);
            if (nl > sizeof suffix - 1 && nl < len && n[nl] == '\0' &&
                !strcmp(n + nl - (sizeof suffix - 1), suffix)) {
                memcpy(out, n, nl + 1);
                found = true;
            }
        }
    }
out:
    munmap((void *)m, size);
    return found;
}

/* Whether the option table's rows fit in a cfg struct of cfg_size bytes. */
static bool options_fit(const struct ferry_option *opts, size_t cfg_size, const char **bad)
{
    for (const struct ferry_option *o = opts; o->name; o++) {
        size_t w = o->type == FERRY_OPT_STR      ? sizeof(char *)
                   : o->type == FERRY_OPT_BOOL   ? sizeof(bool)
                   : o->type == FERRY_OPT_ENUM   ? sizeof(int)
                   : o->type == FERRY_OPT_PREFIX ? 0
                                                 : sizeof(int64_t);
        if (w && o->offset + w > cfg_size) {
            *bad = o->name;
            return false;
        }
    }
    return true;
}

static int check_sink(const struct ferry_sink *k, const char *file, const char *want, char *err,
                      size_t errlen)
{
    if (k->abi != FERRY_SINK_ABI) {
        ferry_fmt(err, errlen,
                  "%s was built for sink ABI %u, this ferry uses sink ABI %u; rebuild the plugin "
                  "against ferry %s's <ferry/sink.h>",
                  file, k->abi, FERRY_SINK_ABI, ferry_version());
        return FERRY_E_CONFIG;
    }
    if (k->size < sizeof(struct ferry_sink)) {
        ferry_fmt(err, errlen,
                  "%s: sink descriptor is %u bytes, ferry needs at least %zu; "
                  "rebuild the plugin",
                  file, k->size, sizeof(struct ferry_sink));
        return FERRY_E_CONFIG;
    }
    if (!k->name || strcmp(k->name, want)) {
        ferry_fmt(err, errlen, "%s: the sink calls itself '%s'; its file must be named %s.so", file,
                  k->name ? k->name : "(null)", k->name ? k->name : "NAME");
        return FERRY_E_CONFIG;
    }
    const struct ferry_sink_ops *o = k->ops;
    if (!o || o->size < FERRY_SINK_OPS_MIN_SIZE) {
        ferry_fmt(err, errlen,
                  "%s: sink operations table is %u bytes, ferry needs at least %zu; "
                  "rebuild the plugin",
                  file, o ? o->size : 0u, (size_t)FERRY_SINK_OPS_MIN_SIZE);
        return FERRY_E_CONFIG;
    }
    if (!o->open || !o->close || !o->write || !o->commit || !o->abort || !o->health) {
        ferry_fmt(err, errlen,
                  "%s: open, close, write, commit, abort and health are mandatory "
                  "sink operations",
                  file);
        return FERRY_E_CONFIG;
    }
    if (k->caps >> FERRY_ARRAY_LEN(sink_cap_names)) {
        ferry_fmt(err, errlen, "%s: unknown sink capability bits 0x%x", file, k->caps);
        return FERRY_E_CONFIG;
    }
    char why[256];
    const char *bad = NULL;
    if (!k->options || ferry_options_validate(k->options, why, sizeof why)) {
        ferry_fmt(err, errlen, "%s: bad option table: %s", file, k->options ? why : "missing");
        return FERRY_E_CONFIG;
    }
    if (!options_fit(k->options, k->cfg_size, &bad)) {
        ferry_fmt(err, errlen,
                  "%s: bad option table: option '%s' lies outside cfg_size (%zu bytes)", file, bad,
                  k->cfg_size);
        return FERRY_E_CONFIG;
    }
    return FERRY_OK;
}

/* The descriptor of kind in module h, or NULL. */
static const void *find_desc(lt_dlhandle h, enum kind kind, const char *want)
{
    static const char *const syms[] = {"ferry_descriptor", "ferry_sink_descriptor"};
    char sym[160];
    const void *d = lt_dlsym(h, syms[kind]);
    if (!d) /* distros delete .la files; then libltdl cannot strip the prefix */
        d = lt_dlsym(h, ferry_fmt(sym, sizeof sym, "%s_LTX_%s", want, syms[kind]));
    return d;
}

/* What a module that failed to load as one kind is. */
enum other { OTHER_NONE = 0, OTHER_KIND, OTHER_NODESC };

/* Open one file (path without or with extension) as a plugin of kind.
 * *other says when it is a plugin of the other kind or has no descriptor
 * at all. Caller holds reg_lock. */
static const void *open_file(const char *path, const char *want, enum kind kind, int *status,
                             enum other *other, char *err, size_t errlen)
{
    *other = OTHER_NONE;
    lt_dlhandle h = lt_dlopenext(path);
    if (!h) {
        const char *e = lt_dlerror();
        ferry_fmt(err, errlen,
                  "%s: cannot load: %s (a missing client library shows with `ldd %s.so`)", path,
                  e ? e : "unknown error", path);
        *status = FERRY_E_CONFIG;
        return NULL;
    }
    const void *d = find_desc(h, kind, want);
    if (!d) {
        *other = find_desc(h, kind == KIND_SINK ? KIND_TRANSPORT : KIND_SINK, want) ? OTHER_KIND
                                                                                    : OTHER_NODESC;
        const lt_dlinfo *info = lt_dlgetinfo(h);
        const char *shown = info && info->filename ? info->filename : path;
        char ltx[160];
        if (*other == OTHER_KIND) {
            ferry_fmt(err, errlen, "%s is a %s plugin, not a %s (%s)", path, kind_words[!kind],
                      kind_words[kind],
                      kind == KIND_SINK ? "transports are named in [transport] plugin"
                                        : "sinks are named in [aggregator] sink");
        } else if (kind == KIND_TRANSPORT && info && info->filename &&
                   ltx_descriptor_in(info->filename, ltx, sizeof ltx)) {
            /* A renamed file: libltdl looks for FILENAME_LTX_ferry_descriptor,
             * but the plugin exports ITSNAME_LTX_ferry_descriptor. */
            int n = (int)(strlen(ltx) - strlen("_LTX_ferry_descriptor"));
            ferry_fmt(err, errlen,
                      "%s: the file name and the plugin's name differ: the file is named '%s' "
                      "but its descriptor is %s, the plugin '%.*s'; rename the file to %.*s.so",
                      shown, want, ltx, n, ltx, n, ltx);
        } else if (kind == KIND_SINK) {
            ferry_fmt(err, errlen,
                      "%s: not a ferry sink plugin (it exports neither ferry_sink_descriptor "
                      "nor %s_LTX_ferry_sink_descriptor)",
                      shown, want);
        } else {
            ferry_fmt(err, errlen,
                      "%s: not a ferry transport plugin (it exports neither ferry_descriptor "
                      "nor %s_LTX_ferry_descriptor)",
                      shown, want);
        }
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
    if (kind == KIND_SINK) {
        l->sink = d;
        *status = check_sink(d, path, want, err, errlen);
    } else if ((*status = import_descriptor(d, path, l, err, errlen)) == FERRY_OK) {
        *status = check_descriptor(&l->t, path, want, err, errlen);
    }
    if (*status != FERRY_OK) {
        free(l);
        lt_dlclose(h);
        return NULL;
    }
    l->name = strdup(want);
    l->file = strdup(path);
    l->kind = kind;
    l->next = registry;
    registry = l;
    return kind == KIND_SINK ? (const void *)l->sink : (const void *)&l->t;
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
static const void *load(const char *name, const char *plugin_path, enum kind kind, bool by_file,
                        int *status, enum other *other, char *err, size_t errlen)
{
    *status = FERRY_E_CONFIG;
    *other = OTHER_NONE;
    if (!name || !*name) {
        ferry_fmt(err, errlen,
                  kind == KIND_SINK ? "no sink named ([aggregator] sink)"
                                    : "no transport plugin named ([transport] plugin)");
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
    const void *d = NULL;
    if (!init_ltdl(err, errlen))
        goto out;
    for (struct loaded *l = registry; l; l = l->next)
        if (l->kind == kind && l->name && !strcmp(l->name, want)) {
            d = kind == KIND_SINK ? (const void *)l->sink : (const void *)&l->t;
            goto out;
        }
    if (by_file) {
        d = open_file(name, want, kind, status, other, err, errlen);
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
        d = open_file(file, want, kind, status, other, err, errlen);
        break; /* the first one on the path decides, even when it is broken */
    }
    if (!found) {
        const char *env = getenv("FERRY_PLUGIN_PATH");
        char from_cfg[1024] = "";
        if (plugin_path && *plugin_path)
            ferry_fmt(from_cfg, sizeof from_cfg, "[transport] plugin_path (%s), ", plugin_path);
        ferry_fmt(err, errlen,
                  "unknown %s%s '%s': no %s.so or %s.la in %sFERRY_PLUGIN_PATH (%s) "
                  "or the install directory (%s); add the directory that holds it to "
                  "FERRY_PLUGIN_PATH (colon-separated, searched before the install directory), "
                  "or see --list-plugins (was it disabled at configure time?)",
                  kind_words[kind], kind == KIND_SINK ? "" : " plugin", name, name, name, from_cfg,
                  env && *env ? env : "unset", FERRY_PLUGIN_DIR);
    }
    free(path);
out:
    if (d)
        *status = FERRY_OK;
    pthread_mutex_unlock(&reg_lock);
    return d;
}

const struct ferry_transport *ferry_plugin_load(const char *name, const char *plugin_path,
                                                int *status, char *err, size_t errlen)
{
    int dummy;
    enum other other;
    return load(name, plugin_path, KIND_TRANSPORT, false, status ? status : &dummy, &other, err,
                errlen);
}

const struct ferry_sink *ferry_sink_load(const char *name, const char *plugin_path, int *status,
                                         char *err, size_t errlen)
{
    int dummy;
    enum other other;
    return load(name, plugin_path, KIND_SINK, false, status ? status : &dummy, &other, err, errlen);
}

/* Every module on the path, deduplicated by name, loaded as kind; modules
 * of the other kind are skipped without a word. */
static int foreach_kind(const char *plugin_path, enum kind kind,
                        void (*fn)(const void *d, const char *file, const char *why, void *ctx),
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
        DIR *dh = opendir(dir);
        if (!dh)
            continue;
        struct dirent *de;
        while ((de = readdir(dh))) {
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
            enum other other;
            const void *d = load(file, NULL, kind, true, &st, &other, err, sizeof err);
            /* a module with no descriptor at all is reported once, as a transport */
            if (other == OTHER_KIND || (other == OTHER_NODESC && kind == KIND_SINK))
                continue;
            if (d)
                count++;
            fn(d, file, d ? NULL : err, ctx);
        }
        closedir(dh);
    }
    free(path);
    return count;
}

struct foreach_t {
    void (*fn)(const struct ferry_transport *t, const char *file, const char *why, void *ctx);
    void *ctx;
};

static void each_transport(const void *d, const char *file, const char *why, void *ctx)
{
    struct foreach_t *f = ctx;
    f->fn(d, file, why, f->ctx);
}

int ferry_plugin_foreach(const char *plugin_path,
                         void (*fn)(const struct ferry_transport *t, const char *file,
                                    const char *why, void *ctx),
                         void *ctx)
{
    struct foreach_t f = {fn, ctx};
    return foreach_kind(plugin_path, KIND_TRANSPORT, each_transport, &f);
}

struct foreach_s {
    void (*fn)(const struct ferry_sink *k, const char *file, const char *why, void *ctx);
    void *ctx;
};

static void each_sink(const void *d, const char *file, const char *why, void *ctx)
{
    struct foreach_s *f = ctx;
    f->fn(d, file, why, f->ctx);
}

int ferry_sink_foreach(const char *plugin_path,
                       void (*fn)(const struct ferry_sink *k, const char *file, const char *why,
                                  void *ctx),
                       void *ctx)
{
    struct foreach_s f = {fn, ctx};
    return foreach_kind(plugin_path, KIND_SINK, each_sink, &f);
}

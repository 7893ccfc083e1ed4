/* Sinks: load the named sink plugin, bind its [NAME] section, open it, and
 * check every call against its operations and the batch protocol (write,
 * then commit or abort). */
#include "config.h"
#include "internal.h"

#include <ferry/sink.h>

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* What the core keeps beside the public handle (which comes first). */
struct sink_impl {
    struct ferry_sink_conn pub;
    struct ferry_host host;
    void *cfg;           /* the sink's option struct; freed in ferry_sink_close() */
    struct ferry_kv *kv; /* passthru options; freed in ferry_sink_close() */
    size_t nkv;
    char *client_id;                  /* owned */
    char *prog;                       /* client_id up to '@', the log prefix; owned */
    struct ferry_sink_record *staged; /* the batch between write and commit/abort; borrowed */
    size_t nstaged;
    bool staging;
};

static void impl_free(struct sink_impl *si, const struct ferry_sink *k)
{
    ferry_kv_free(si->kv, si->nkv);
    if (k)
        ferry_options_free(k->options, si->cfg);
    free(si->cfg);
    free(si->client_id);
    free(si->prog);
    free(si);
}

struct ferry_sink_conn *ferry_sink_open(const struct ferry_config *cfg, const char *name,
                                        const char *client_id, int *status, char *err,
                                        size_t errlen)
{
    int dummy;
    if (!status)
        status = &dummy;
    struct ferry_transport_cfg tc = {0};
    if ((*status = ferry_config_bind(cfg, "transport", ferry_transport_options, &tc, NULL, NULL,
                                     err, errlen)))
        return NULL;
    const struct ferry_sink *k =
        ferry_sink_load(name && *name ? name : "file", tc.plugin_path, status, err, errlen);
    int log_level =
        ferry_config_get(cfg, "transport", "log_level") ? tc.log_level : ferry_env_log_level();
    ferry_options_free(ferry_transport_options, &tc);
    if (!k)
        return NULL;

    struct sink_impl *si = calloc(1, sizeof *si); /* freed in ferry_sink_close() */
    if (si) {
        si->cfg = calloc(1, k->cfg_size ? k->cfg_size : 1);
        si->client_id = strdup(client_id ? client_id : "ferry");
        si->prog = si->client_id ? strndup(si->client_id, strcspn(si->client_id, "@")) : NULL;
    }
    if (!si || !si->cfg || !si->client_id || !si->prog) {
        if (si)
            impl_free(si, NULL);
        *status = FERRY_E_FATAL;
        ferry_fmt(err, errlen, "out of memory");
        return NULL;
    }
    if ((*status = ferry_config_bind(cfg, k->name, k->options, si->cfg, &si->kv, &si->nkv, err,
                                     errlen))) {
        impl_free(si, NULL);
        return NULL;
    }
    si->host = (struct ferry_host){.size = sizeof(struct ferry_host),
                                   .vlog = ferry_stderr_vlog,
                                   .log_ctx = si->prog,
                                   .log_level = log_level};
    si->pub = (struct ferry_sink_conn){.size = sizeof(struct ferry_sink_conn),
                                       .sink = k,
                                       .cfg = si->cfg,
                                       .passthru = si->kv,
                                       .n_passthru = si->nkv,
                                       .host = &si->host,
                                       .client_id = si->client_id,
                                       .caps = k->caps};
    if ((*status = k->ops->open(&si->pub)) != FERRY_OK) {
        ferry_fmt(err, errlen, "%s: %s", k->name,
                  si->pub.err[0] ? si->pub.err : ferry_strerror(*status));
        impl_free(si, k);
        return NULL;
    }
    si->pub.caps &= k->caps; /* a sink may narrow its caps, never widen them */
    return &si->pub;
}

void ferry_sink_close(struct ferry_sink_conn *s)
{
    if (!s)
        return;
    struct sink_impl *si = (struct sink_impl *)s;
    const struct ferry_sink *k = s->sink;
    k->ops->close(s);
    impl_free(si, k);
}

void ferry_sink_set_log(struct ferry_sink_conn *s, const char *prog, int level)
{
    struct sink_impl *si = (struct sink_impl *)s;
    si->host.log_ctx = (void *)prog;
    si->host.log_level = level;
}

const char *ferry_sink_error(const struct ferry_sink_conn *s)
{
    return s->err;
}

int ferry_sink_write(struct ferry_sink_conn *s, struct ferry_sink_record *recs, size_t n)
{
    struct sink_impl *si = (struct sink_impl *)s;
    if (si->staging)
        return ferry_sink_fail(s, FERRY_E_FATAL,
                               "write while a batch is staged (commit or abort it first)");
    for (size_t i = 0; i < n; i++) {
        recs[i].size = sizeof(struct ferry_sink_record);
        recs[i].status = FERRY_OK;
        recs[i].reason = NULL;
    }
    s->err[0] = '\0';
    s->retry_after_ms = 0; /* the sink sets it again with a retriable status */
    int st = s->sink->ops->write(s, recs, n);
    si->staging = true; /* even on error: the caller aborts */
    si->staged = recs;
    si->nstaged = n;
    return st;
}

int ferry_sink_commit(struct ferry_sink_conn *s)
{
    struct sink_impl *si = (struct sink_impl *)s;
    if (!si->staging)
        return FERRY_OK;
    s->err[0] = '\0';
    int st = s->sink->ops->commit(s);
    if (st != FERRY_OK) {
        char keep[sizeof s->err];
        memcpy(keep, s->err, sizeof keep);
        s->sink->ops->abort(s); /* the batch is written again from scratch */
        memcpy(s->err, keep, sizeof keep);
        if (!s->err[0])
            ferry_sink_fail(s, st, "%s", ferry_strerror(st));
    } else {
        /* a record status the ABI does not know counts as a refusal */
        for (size_t i = 0; i < si->nstaged; i++)
            if (si->staged[i].status != FERRY_OK) {
                si->staged[i].status = FERRY_E_REJECTED;
                if (!si->staged[i].reason || !*si->staged[i].reason)
                    si->staged[i].reason = "refused by the sink";
            }
    }
    si->staging = false;
    si->staged = NULL;
    si->nstaged = 0;
    return st;
}

void ferry_sink_abort(struct ferry_sink_conn *s)
{
    struct sink_impl *si = (struct sink_impl *)s;
    s->sink->ops->abort(s);
    si->staging = false;
    si->staged = NULL;
    si->nstaged = 0;
}

int ferry_sink_health(struct ferry_sink_conn *s, struct ferry_sink_health *out)
{
    memset(out, 0, sizeof *out);
    out->size = sizeof *out;
    return s->sink->ops->health(s, out);
}

/* an optional op is read only when the plugin's ops table is large enough */
#define SINK_OP(s, m)                                                                              \
    ((s)->sink->ops->size >= offsetof(struct ferry_sink_ops, m) + sizeof((s)->sink->ops->m)        \
         ? (s)->sink->ops->m                                                                       \
         : NULL)

int ferry_sink_reopen(struct ferry_sink_conn *s)
{
    struct sink_impl *si = (struct sink_impl *)s;
    if (!SINK_OP(s, reopen))
        return ferry_sink_fail(s, FERRY_E_NOTSUP, "the %s sink cannot reopen", s->sink->name);
    if (si->staging)
        return ferry_sink_fail(s, FERRY_E_AGAIN, "reopen while a batch is staged");
    s->err[0] = '\0';
    return SINK_OP(s, reopen)(s);
}

int ferry_sink_count(struct ferry_sink_conn *s, const char *id, uint64_t *out)
{
    struct sink_impl *si = (struct sink_impl *)s;
    *out = 0;
    if (!SINK_OP(s, count))
        return ferry_sink_fail(s, FERRY_E_NOTSUP, "the %s sink cannot read back", s->sink->name);
    if (si->staging)
        return ferry_sink_fail(s, FERRY_E_AGAIN, "count while a batch is staged");
    s->err[0] = '\0';
    return SINK_OP(s, count)(s, id, out);
}

bool ferry_sink_can_count(const struct ferry_sink_conn *s)
{
    return SINK_OP(s, count) != NULL;
}

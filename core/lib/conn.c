/* Connections: load the configured plugin, bind its section, open it, and
 * check every call against the plugin's operations and capabilities. */
#include "config.h"
#include "internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* What the core keeps beside the public handle (which comes first). */
struct conn_impl {
    struct ferry_conn pub;
    struct ferry_host host;
    void *cfg;           /* the plugin's option struct; freed in ferry_close() */
    struct ferry_kv *kv; /* passthru options; freed in ferry_close() */
    size_t nkv;
    char *client_id; /* owned */
    char *prog;      /* client_id up to '@', the log prefix; owned */
};

const struct ferry_option ferry_transport_options[] = {
    {.name = "plugin",
     .type = FERRY_OPT_STR,
     .def = "zmq",
     .offset = offsetof(struct ferry_transport_cfg, plugin),
     .help = "Transport plugin to load: amqp, kafka, zmq, or any NAME.so on the plugin path."},
    {.name = "plugin_path",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct ferry_transport_cfg, plugin_path),
     .help = "Colon-separated directories searched for plugins before FERRY_PLUGIN_PATH and the "
             "install directory."},
    {.name = "log_level",
     .type = FERRY_OPT_ENUM,
     .def = "info",
     .choices = "error|warn|info|debug",
     .offset = offsetof(struct ferry_transport_cfg, log_level),
     .help = "Least severe log line a program and its plugin print (-q is warn, -v is debug)."},
    {0}};

struct ferry_conn *ferry_open(const struct ferry_config *cfg, const char *client_id, int *status,
                              char *err, size_t errlen)
{
    int dummy;
    if (!status)
        status = &dummy;
    struct ferry_transport_cfg tc = {0};
    if ((*status = ferry_config_bind(cfg, "transport", ferry_transport_options, &tc, NULL, NULL,
                                     err, errlen)))
        return NULL;
    const struct ferry_transport *t =
        ferry_plugin_load(tc.plugin, tc.plugin_path, status, err, errlen);
    /* FERRY_LOG_LEVEL still works when nothing more specific says */
    int log_level =
        ferry_config_get(cfg, "transport", "log_level") ? tc.log_level : ferry_env_log_level();
    ferry_options_free(ferry_transport_options, &tc);
    if (!t)
        return NULL;

    struct conn_impl *ci = calloc(1, sizeof *ci); /* freed in ferry_close() */
    if (!ci) {
        *status = FERRY_E_FATAL;
        ferry_fmt(err, errlen, "out of memory");
        return NULL;
    }
    ci->cfg = calloc(1, t->cfg_size ? t->cfg_size : 1);
    ci->client_id = strdup(client_id ? client_id : "ferry");
    ci->prog = ci->client_id ? strndup(ci->client_id, strcspn(ci->client_id, "@")) : NULL;
    if (!ci->cfg || !ci->client_id || !ci->prog) {
        free(ci->cfg);
        free(ci->client_id);
        free(ci->prog);
        free(ci);
        *status = FERRY_E_FATAL;
        ferry_fmt(err, errlen, "out of memory");
        return NULL;
    }
    if ((*status = ferry_config_bind(cfg, t->name, t->options, ci->cfg, &ci->kv, &ci->nkv, err,
                                     errlen))) {
        free(ci->cfg);
        free(ci->client_id);
        free(ci->prog);
        free(ci);
        return NULL;
    }
    ci->host = (struct ferry_host){.size = sizeof(struct ferry_host),
                                   .vlog = ferry_stderr_vlog,
                                   .log_ctx = ci->prog,
                                   .log_level = log_level};
    ci->pub = (struct ferry_conn){.size = sizeof(struct ferry_conn),
                                  .transport = t,
                                  .cfg = ci->cfg,
                                  .passthru = ci->kv,
                                  .n_passthru = ci->nkv,
                                  .host = &ci->host,
                                  .client_id = ci->client_id,
                                  .caps = t->caps};
    if ((*status = t->ops->open(&ci->pub)) != FERRY_OK) {
        ferry_fmt(err, errlen, "%s: %s", t->name,
                  ci->pub.err[0] ? ci->pub.err : ferry_strerror(*status));
        ferry_kv_free(ci->kv, ci->nkv);
        ferry_options_free(t->options, ci->cfg);
        free(ci->cfg);
        free(ci->client_id);
        free(ci->prog);
        free(ci);
        return NULL;
    }
    ci->pub.caps &= t->caps; /* a plugin may narrow its caps, never widen them */
    return &ci->pub;
}

void ferry_close(struct ferry_conn *c)
{
    if (!c)
        return;
    struct conn_impl *ci = (struct conn_impl *)c;
    c->transport->ops->close(c);
    ferry_kv_free(ci->kv, ci->nkv);
    ferry_options_free(c->transport->options, ci->cfg);
    free(ci->cfg);
    free(ci->client_id);
    free(ci->prog);
    free(ci);
}

void ferry_conn_set_log(struct ferry_conn *c, const char *prog, int level)
{
    struct conn_impl *ci = (struct conn_impl *)c;
    ci->host.log_ctx = (void *)prog;
    ci->host.log_level = level;
}

void ferry_set_delivery(struct ferry_conn *c, ferry_delivery_fn fn, void *ctx)
{
    c->on_delivery = fn;
    c->delivery_ctx = ctx;
}

const char *ferry_conn_error(const struct ferry_conn *c)
{
    return c->err;
}

static int unsupported(struct ferry_conn *c, const char *what)
{
    return ferry_conn_fail(c, FERRY_E_NOTSUP, "the %s transport cannot %s", c->transport->name,
                           what);
}

int ferry_publish(struct ferry_conn *c, const struct ferry_msg *m)
{
    if (!c->transport->ops->publish)
        return unsupported(c, "publish");
    c->err[0] = '\0';
    return c->transport->ops->publish(c, m);
}

int ferry_flush(struct ferry_conn *c, int timeout_ms)
{
    if (!c->transport->ops->flush)
        return FERRY_OK;
    c->err[0] = '\0';
    return c->transport->ops->flush(c, timeout_ms);
}

int ferry_subscribe(struct ferry_conn *c, const char *dest, const char *group)
{
    if (!c->transport->ops->subscribe)
        return unsupported(c, "consume");
    c->err[0] = '\0';
    return c->transport->ops->subscribe(c, dest, group);
}

int ferry_receive(struct ferry_conn *c, struct ferry_msg **out, size_t max, size_t *n,
                  int timeout_ms)
{
    *n = 0;
    if (!c->transport->ops->receive)
        return unsupported(c, "consume");
    if (max == 0)
        return FERRY_OK;
    return c->transport->ops->receive(c, out, max, n, timeout_ms);
}

/* ack, nack and release end a loan that receive made, so a plugin without
 * receive has none of them (the loader checks that they come together). */
int ferry_ack(struct ferry_conn *c, struct ferry_msg *m)
{
    if (!c->transport->ops->ack)
        return unsupported(c, "acknowledge messages");
    c->err[0] = '\0';
    return c->transport->ops->ack(c, m);
}

int ferry_nack(struct ferry_conn *c, struct ferry_msg *m, bool requeue, const char *reason)
{
    if (!c->transport->ops->nack)
        return unsupported(c, "reject messages");
    c->err[0] = '\0';
    return c->transport->ops->nack(c, m, requeue, reason);
}

void ferry_release(struct ferry_conn *c, struct ferry_msg *m)
{
    if (c->transport->ops->release)
        c->transport->ops->release(c, m);
}

/* The loader gives every descriptor this core's ops layout (absent
 * operations are NULL), so defer needs no size check here. */
bool ferry_can_defer(const struct ferry_conn *c)
{
    return c->transport->ops->defer != NULL && c->transport->ops->receive != NULL;
}

int ferry_defer(struct ferry_conn *c, struct ferry_msg *m, int64_t delay_ms,
                const struct ferry_header *set, size_t n_set)
{
    if (!ferry_can_defer(c)) {
        ferry_release(c, m);
        return unsupported(c, "defer a message");
    }
    c->err[0] = '\0';
    return c->transport->ops->defer(c, m, delay_ms < 0 ? 0 : delay_ms, set, n_set);
}

int ferry_stats(struct ferry_conn *c, struct ferry_stats *out)
{
    memset(out, 0, sizeof *out);
    out->size = sizeof *out;
    out->dest_messages = out->consumer_lag = out->lend_limit = -1;
    const struct ferry_transport_ops *o = c->transport->ops;
    /* asked every refresh: no error text, which would replace a real one;
     * the loader gave the table this core's layout, so no size check */
    if (!o->stats)
        return FERRY_E_NOTSUP;
    return o->stats(c, out);
}

int ferry_health(struct ferry_conn *c, struct ferry_health *out)
{
    memset(out, 0, sizeof *out);
    return c->transport->ops->health(c, out);
}

const struct ferry_header *ferry_msg_header(const struct ferry_msg *m, const char *name)
{
    for (size_t i = 0; i < m->n_headers; i++)
        if (!strcmp(m->headers[i].name, name))
            return &m->headers[i];
    return NULL;
}

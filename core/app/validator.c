/* ferry-validator: consume --input, forward valid messages to --output and
 * invalid ones to --reject with the reason; ack the input only once the
 * onward publish is confirmed. */
#include "config.h"
#include "app.h"
#include "private.h"
#include "jsoncheck.h"
#include "http.h"

#include <ferry/retry.h>
#include <ferry/schema.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct val {
    struct app app;
    struct validator_cfg cfg;
    struct ferry_conn *in, *out;
    struct ferry_pub *pub;
    struct ferry_schema *schema; /* compiled once ("true" without --schema); owned */
    signed char *result;         /* per batch slot: 1 pending, 0 forwarded, -1 failed; owned */
    bool *valid;                 /* per batch slot: the verdict; owned */
    uint64_t tag_base;           /* publisher tag of slot 0 of the current batch */
    struct ferry_header *hs;     /* headers of the message being forwarded; owned */
    size_t hs_cap;
    struct app_validator_stats st;
    struct ferry_metrics *metrics;                      /* owned */
    struct ferry_metrics_dest *s_in, *s_out, *s_reject; /* in metrics */
    struct app_http *http;                              /* owned; NULL without [http] listen */
    int64_t last_refresh;
    struct ferry_retry *retry; /* owned; NULL: failed forwards come back at once */
    uint64_t deferred, dead_lettered;
};

int app_validate_body(const struct ferry_schema *schema, const void *body, size_t len, char *why,
                      size_t whylen)
{
    struct ferry_schema_result r;
    if (ferry_schema_validate_text(schema, body, len, &r) != 0)
        return -1;
    int ok = r.valid;
    if (!ok) {
        char *text = ferry_schema_result_format(&r); /* freed below */
        if (text) {
            /* the reason may quote the message and is cut to whylen: it
             * goes into a header and the log as UTF-8 all the same */
            snprintf(why, whylen, "%s", text);
            ferry_utf8_scrub(why, strlen(why));
        } else
            ok = -1;
        free(text);
    }
    ferry_schema_result_free(&r);
    return ok;
}

static void on_done(void *ctx, uint64_t tag, int status, const char *reason)
{
    struct val *v = ctx;
    if (status != FERRY_OK) {
        v->st.errors++;
        if (!v->retry)
            app_warn(&v->app, "forward failed error=\"%s\" (%s)",
                     reason ? reason : ferry_strerror(status),
                     v->in->caps & FERRY_CAP_ACK ? "the input message will come back"
                                                 : "it is forwarded again");
        else
            app_debug(&v->app, "forward failed error=\"%s\" (counted as a failed attempt)",
                      reason ? reason : ferry_strerror(status));
    }
    /* a confirm from a batch already given back is late news: that message
     * is redelivered and forwarded again */
    if (tag >= v->tag_base && tag - v->tag_base < (uint64_t)v->cfg.batch)
        /* -2: the broker refused the copy for good as too big: sending it
         * again cannot help (a rejection, e.g. unroutable, may pass once
         * the setup is fixed, and is retried) */
        v->result[tag - v->tag_base] = status == FERRY_OK ? 0 : status == FERRY_E_TOOBIG ? -2 : -1;
}

/* Headers that describe a message's past here, not the forwarded copy. */
static bool own_header(const char *name)
{
    static const char *const own[] = {FERRY_HDR_ERROR,    FERRY_HDR_SOURCE,
                                      FERRY_HDR_ATTEMPTS, FERRY_HDR_ORIGINAL_DEST,
                                      FERRY_HDR_DUE,      FERRY_HDR_RETRY_GROUP};
    for (size_t i = 0; i < sizeof own / sizeof *own; i++)
        if (!strcmp(name, own[i]))
            return true;
    return false;
}

/* The forwarded message: the original with x-ferry-error and x-ferry-source
 * set when it is rejected (any earlier values, and retry headers, dropped). */
static int forward(struct val *v, struct ferry_msg *m, size_t slot, const char *why,
                   const char *src)
{
    if (m->n_headers + 2 > v->hs_cap) {
        size_t cap = m->n_headers + 16;
        struct ferry_header *nh =
            realloc(v->hs, cap * sizeof *nh); /* freed in ferry_validator_main() */
        if (!nh)
            return FERRY_E_AGAIN;
        v->hs = nh;
        v->hs_cap = cap;
    }
    size_t n = 0;
    for (size_t i = 0; i < m->n_headers; i++)
        if (!own_header(m->headers[i].name))
            v->hs[n++] = m->headers[i];
    if (why) {
        v->hs[n++] = (struct ferry_header){"x-ferry-error", why, strlen(why)};
        v->hs[n++] = (struct ferry_header){"x-ferry-source", src, strlen(src)};
    }
    struct ferry_msg out = {.dest = why ? v->cfg.reject : v->cfg.output,
                            .key = m->key,
                            .key_len = m->key_len,
                            .headers = v->hs,
                            .n_headers = n,
                            .body = m->body,
                            .body_len = m->body_len,
                            .tag = v->tag_base + slot};
    v->result[slot] = 1;
    return ferry_pub_send(v->pub, &out, (int)v->cfg.publish_timeout);
}

/* Validate items[i] and forward it (to the output, or to the reject
 * destination with why); sets v->valid[i] and, when the forward is refused
 * at once, v->result[i]. */
static void validate_forward(struct val *v, struct consume_item *items, size_t i)
{
    struct ferry_msg *m = items[i].it.msg;
    char why[4096];
    int ok = app_validate_body(v->schema, m->body, m->body_len, why, sizeof why), fr;
    /* retries come back on the retrier's connection or under DEST.retry */
    const char *src = items[i].it.conn == v->in && m->dest && *m->dest ? m->dest : v->cfg.input;
    v->valid[i] = ok == 1;
    if (ok < 0) {
        v->result[i] = -1;
        v->st.errors++;
        app_error(&v->app, "out of memory validating a message (it will come back)");
    } else if ((fr = forward(v, m, i, ok ? NULL : why, src)) != FERRY_OK) {
        v->result[i] = fr == FERRY_E_TOOBIG ? -2 : -1;
        v->st.errors++;
        app_error(&v->app, "forward refused error=\"%s\"", ferry_pub_error(v->pub));
    }
}

/* The handler: validate and forward the batch (fresh messages and retries
 * that are due), wait for the forwards to be confirmed, then ack what was
 * forwarded; a forward that failed is one failed attempt of its message.
 * An input that cannot redeliver (no acks, e.g. MQTT) and no retrier: a
 * message given back would be lost, so what failed is forwarded again here,
 * with a backoff, until it is confirmed or the program stops. */
static int val_handle(void *ctx, struct consume_item *items, size_t n)
{
    struct val *v = ctx;
    bool comes_back = (v->in->caps & FERRY_CAP_ACK) || v->retry;
    struct ferry_backoff b;
    ferry_backoff_init(&b, 100, 5000);
    size_t failed = 0;
    for (int round = 0;; round++) {
        v->tag_base += (uint64_t)v->cfg.batch; /* fresh tags: late confirms cannot hit this round */
        for (size_t i = 0; i < n; i++)
            if (!round || (v->result[i] != 0 && v->result[i] != -2))
                validate_forward(v, items, i);
        if (ferry_pub_flush(v->pub, (int)v->cfg.publish_timeout) != FERRY_OK)
            app_warn(&v->app, "forwarding not confirmed in time error=\"%s\"",
                     ferry_pub_error(v->pub));
        failed = 0;
        for (size_t i = 0; i < n; i++)
            if (v->result[i] != 0 && v->result[i] != -2)
                failed++;
        if (!failed || comes_back)
            break;
        if (*v->app.stop) {
            app_error(&v->app,
                      "forward failed error=\"%s\" lost=%zu (stopping, and transport=%s "
                      "cannot redeliver)",
                      ferry_pub_error(v->pub), failed, v->in->transport->name);
            break;
        }
        int64_t d = ferry_backoff_next(&b);
        app_warn(&v->app,
                 "forward failed error=\"%s\" failed=%zu retry_in=%" PRId64
                 "ms (transport=%s cannot redeliver: sent again from here)",
                 ferry_pub_error(v->pub), failed, d, v->in->transport->name);
        app_sleep(&v->app, d);
    }
    failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (v->result[i] == 0) {
            items[i].verdict = CONSUME_ACK;
            continue;
        }
        /* a permanent refusal (too big for the broker) is dead-lettered now,
         * not given back to loop forever */
        items[i].verdict = v->result[i] == -2 ? CONSUME_REJECT : CONSUME_FAIL;
        snprintf(items[i].why, sizeof items[i].why, "cannot forward to %s: %s",
                 v->valid[i] ? v->cfg.output : v->cfg.reject,
                 ferry_pub_error(v->pub)[0] ? ferry_pub_error(v->pub) : "not confirmed");
        failed++;
    }
    if (failed && v->retry)
        app_warn(&v->app, "forward failed error=\"%s\" failed=%zu reject=%s",
                 ferry_pub_error(v->pub), failed, v->cfg.reject);
    return FERRY_OK;
}

/* After a batch: count what was forwarded where. */
static void val_settled(void *ctx, const struct consume_item *items, size_t n)
{
    struct val *v = ctx;
    for (size_t i = 0; i < n; i++) {
        if (items[i].verdict != CONSUME_ACK)
            continue;
        v->valid[i] ? v->st.valid++ : v->st.invalid++;
        ferry_metrics_count(v->valid[i] ? v->s_out : v->s_reject, FERRY_CTR_PRODUCED, 1);
        if (!v->valid[i])
            ferry_metrics_count(v->s_in, FERRY_CTR_REJECTED, 1);
    }
}

static void val_idle(void *ctx)
{
    struct val *v = ctx;
    ferry_pub_poll(v->pub);
}

static int run(struct val *v)
{
    size_t max = (size_t)v->cfg.batch;
    v->result = calloc(max, sizeof *v->result); /* freed in ferry_validator_main() */
    v->valid = calloc(max, sizeof *v->valid);   /* freed in ferry_validator_main() */
    struct consume c = {.app = &v->app,
                        .in = v->in,
                        .retry = v->retry,
                        .batch = max,
                        .batch_wait = 200,
                        .idle_exit = v->cfg.idle_exit,
                        .count = v->cfg.count,
                        .pause_after_release = 1000,
                        .handle = val_handle,
                        .on_idle = val_idle,
                        .on_settled = val_settled,
                        .ctx = v,
                        .metrics = v->metrics,
                        .series = v->s_in,
                        .health_conn = v->out,
                        .health_pub = v->pub};
    if (!v->result || !v->valid || consume_init(&c)) {
        consume_fini(&c);
        return EX_OSERR;
    }
    int rc = consume_run(&c);
    v->deferred = c.deferred;
    v->dead_lettered = c.dead_lettered;
    consume_fini(&c);
    return rc;
}

/* --check: validate files (or stdin) locally, no broker. */
static int check_files(struct val *v)
{
    int bad = 0;
    int n = v->app.nargs ? v->app.nargs : 1;
    for (int i = 0; i < n; i++) {
        const char *name = v->app.nargs ? v->app.args[i] : "-";
        FILE *f = strcmp(name, "-") ? fopen(name, "rb") : stdin;
        if (!f) {
            fprintf(stderr, "ferry-validator: %s: %s\n", name, strerror(errno));
            return EX_NOINPUT;
        }
        char *text = NULL; /* freed below */
        size_t len = 0, cap = 0, got;
        char chunk[8192];
        while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
            if (len + got > cap) {
                cap = (len + got) * 2;
                char *nt = realloc(text, cap);
                if (!nt) {
                    free(text);
                    return EX_OSERR;
                }
                text = nt;
            }
            memcpy(text + len, chunk, got);
            len += got;
        }
        if (f != stdin)
            fclose(f);
        char why[4096];
        int ok = app_validate_body(v->schema, text ? text : "", len, why, sizeof why);
        free(text);
        if (ok < 0)
            return EX_OSERR;
        if (ok) {
            printf("%s: valid\n", name);
        } else {
            fprintf(stderr, "%s: invalid: %s\n", name, why);
            bad++;
        }
    }
    return bad ? EX_DATAERR : EX_OK;
}

int ferry_validator_main(int argc, char **argv)
{
    struct val v = {0};
    static const struct app_spec spec_tmpl = {
        .prog = "ferry-validator",
        .section = "validator",
        .usage = "[options] [--check [FILE...]]",
        .about = "Consume --input, forward each valid message to --output and each invalid one\n"
                 "(bad JSON, or failing --schema) to --reject with the reason in the\n"
                 "x-ferry-error header. Input is acked only after the forward is confirmed.\n"
                 "With --check, validate FILEs (or stdin) locally and exit: 0 valid, 65 invalid.",
        .options = app_validator_options};
    struct app_spec spec = spec_tmpl;
    spec.cfg = &v.cfg;
    int rc = app_init(&v.app, &spec, argc, argv);
    if (rc >= 0) {
        app_fini(&v.app);
        return rc;
    }
    char err[1024];
    struct ferry_schema_opts so = {.search_path = v.cfg.schema_path};
    /* without --schema any JSON passes: the schema "true" */
    v.schema = v.cfg.schema
                   ? ferry_schema_load(v.cfg.schema, &so, err, sizeof err)
                   : ferry_schema_compile("true", NULL, &so, err, sizeof err); /* freed below */
    if (!v.schema) {
        fprintf(stderr, "ferry-validator: error: schema %s\n", err);
        app_fini(&v.app);
        return EX_CONFIG;
    }
    if (v.cfg.check) {
        rc = check_files(&v);
        ferry_schema_free(v.schema);
        app_fini(&v.app);
        return rc;
    }
    if (v.app.nargs) {
        fprintf(stderr,
                "ferry-validator: unexpected argument '%s'\nTry 'ferry-validator --help'.\n",
                v.app.args[0]);
        ferry_schema_free(v.schema);
        app_fini(&v.app);
        return EX_USAGE;
    }
    const char *tname = ferry_config_get(v.app.config, "transport", "plugin");
    v.metrics = ferry_metrics_new(tname ? tname : "zmq"); /* freed below */
    v.s_in = ferry_metrics_dest(v.metrics, v.cfg.input);
    v.s_out = ferry_metrics_dest(v.metrics, v.cfg.output);
    v.s_reject = ferry_metrics_dest(v.metrics, v.cfg.reject);
    rc = v.metrics ? app_http_start(&v.app, v.metrics, NULL, &v.http) : EX_OSERR;
    if (rc < 0)
        v.in = app_connect(&v.app, v.cfg.connect_timeout, &rc);
    if (v.in)
        v.out = app_connect(&v.app, v.cfg.connect_timeout, &rc);
    if (!v.in || !v.out) {
        app_http_stop(v.http);
        ferry_metrics_free(v.metrics);
        ferry_close(v.in);
        ferry_schema_free(v.schema);
        app_fini(&v.app);
        return rc;
    }
    if (!(v.in->caps & FERRY_CAP_ACK))
        app_warn(&v.app,
                 "transport cannot redeliver transport=%s: messages in flight when this "
                 "process dies are lost",
                 v.in->transport->name);
    struct ferry_pub_opts po = {.give_up_ms = v.cfg.publish_timeout};
    v.pub = ferry_pub_new(v.out, &po, on_done, &v); /* freed below */
    int st = v.pub ? ferry_subscribe(v.in, v.cfg.input, v.cfg.group) : FERRY_E_FATAL;
    if (st != FERRY_OK) {
        app_error(&v.app, "subscribe failed input=%s error=\"%s\"", v.cfg.input,
                  ferry_conn_error(v.in));
        rc = app_exit_code(st);
    } else if (v.cfg.max_retries >= 0 &&
               !(v.retry = app_retry_new(&v.app, v.in, v.cfg.input, v.cfg.group, v.cfg.reject,
                                         v.cfg.max_retries, v.cfg.retry_backoff_min,
                                         v.cfg.retry_backoff_max, v.cfg.retry_mode,
                                         v.cfg.publish_timeout, &rc))) {
        rc = rc >= 0 ? rc : EX_OSERR; /* app_retry_new() said why */
    } else {
        app_info(&v.app, "validating input=%s output=%s reject=%s", v.cfg.input, v.cfg.output,
                 v.cfg.reject);
        rc = run(&v);
        ferry_pub_flush(v.pub, 10000);
        app_info(&v.app,
                 "stopped valid=%" PRIu64 " invalid=%" PRIu64 " errors=%" PRIu64
                 " deferred=%" PRIu64 " dead_lettered=%" PRIu64,
                 v.st.valid, v.st.invalid, v.st.errors, v.deferred, v.dead_lettered);
    }
    app_http_stop(v.http);
    ferry_retry_free(v.retry);
    ferry_pub_free(v.pub);
    ferry_close(v.out);
    ferry_close(v.in);
    ferry_metrics_free(v.metrics);
    free(v.result);
    free(v.valid);
    free(v.hs);
    ferry_schema_free(v.schema);
    app_fini(&v.app);
    return rc;
}

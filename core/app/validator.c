/* ferry-validator: consume --input, forward valid messages to --output and
 * invalid ones to --reject with the reason; ack the input only once the
 * onward publish is confirmed. */
#include "config.h"
#include "app.h"
#include "http.h"

#include <cjson/cJSON.h>
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
    struct ferry_schema *schema; /* compiled once, NULL without --schema; owned */
    int *result;           /* per batch slot: 1 pending, 0 ok, <0 failed; owned */
    uint64_t valid, invalid, errors;
    bool *ok;              /* per batch slot: the message was valid; owned */
    struct ferry_metrics *metrics;       /* owned */
    struct ferry_metrics_dest *s_in, *s_out, *s_reject; /* in metrics */
    struct app_http *http;               /* owned; NULL without [http] listen */
    int64_t last_refresh;
};

/* Check one body. Returns true when valid; otherwise writes the reason. */
static bool check_body(struct val *v, const void *body, size_t len, char *why, size_t whylen)
{
    if (v->schema) {
        struct ferry_schema_result r;
        if (ferry_schema_validate_text(v->schema, body, len, &r) != 0) {
            snprintf(why, whylen, "validator out of memory");
            return false;
        }
        bool ok = r.valid;
        if (!ok) {
            char *text = ferry_schema_result_format(&r); /* freed below */
            snprintf(why, whylen, "%s", text ? text : "invalid");
            free(text);
        }
        ferry_schema_result_free(&r);
        return ok;
    }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(body, len, &end, false); /* freed below */
    if (!doc) {
        size_t pos = end ? (size_t)(end - (const char *)body) : 0;
        snprintf(why, whylen, "invalid JSON at byte %zu", pos);
        return false;
    }
    cJSON_Delete(doc);
    return true;
}

static void on_done(void *ctx, uint64_t tag, int status, const char *reason)
{
    struct val *v = ctx;
    v->result[tag] = status == FERRY_OK ? 0 : -1;
    if (status != FERRY_OK) {
        v->errors++;
        app_warn(&v->app, "forward failed error=\"%s\" (the input message will come back)",
                 reason ? reason : ferry_strerror(status));
    }
}

static int forward(struct val *v, struct ferry_msg *m, size_t slot, bool ok, const char *why)
{
    struct ferry_header hs[64];
    size_t nh = 0;
    for (size_t i = 0; i < m->n_headers && nh < 61; i++)
        if (strcmp(m->headers[i].name, "x-ferry-error") && strcmp(m->headers[i].name, "x-ferry-source"))
            hs[nh++] = m->headers[i];
    if (!ok) {
        hs[nh++] = (struct ferry_header){"x-ferry-error", why, strlen(why)};
        hs[nh++] = (struct ferry_header){"x-ferry-source", v->cfg.input, strlen(v->cfg.input)};
    }
    struct ferry_msg out = {.dest = ok ? v->cfg.output : v->cfg.reject, .key = m->key,
                            .key_len = m->key_len, .headers = hs, .n_headers = nh,
                            .body = m->body, .body_len = m->body_len, .tag = slot};
    v->result[slot] = 1;
    return ferry_pub_send(v->pub, &out, (int)v->cfg.publish_timeout);
}

static int run(struct val *v)
{
    size_t max = (size_t)v->cfg.batch;
    struct ferry_msg **batch = calloc(max, sizeof *batch); /* freed below */
    v->result = calloc(max, sizeof *v->result);            /* freed in ferry_validator_main() */
    v->ok = calloc(max, sizeof *v->ok);                    /* freed in ferry_validator_main() */
    if (!batch || !v->result || !v->ok) {
        free(batch);
        return EX_OSERR;
    }
    int exit_code = EX_OK;
    int64_t last = app_mono_ms(), backoff = 100;
    uint64_t handled = 0;
    while (!*v->app.stop) {
        app_http_refresh(v->metrics, v->out, v->pub, true, NULL, &v->last_refresh, false);
        size_t want = max, n = 0;
        if (v->cfg.count && v->cfg.count - (int64_t)handled < (int64_t)want)
            want = (size_t)(v->cfg.count - (int64_t)handled);
        int rc = ferry_receive(v->in, batch, want, &n, 200);
        if (rc == FERRY_E_TIMEOUT || (rc == FERRY_OK && !n)) {
            ferry_pub_poll(v->pub);
            if (v->cfg.idle_exit && app_mono_ms() - last >= v->cfg.idle_exit)
                break;
            continue;
        }
        if (rc != FERRY_OK) {
            if (!ferry_status_retriable(rc)) {
                app_error(&v->app, "receive failed error=\"%s\"", ferry_conn_error(v->in));
                exit_code = app_exit_code(rc);
                break;
            }
            app_warn(&v->app, "receive failed error=\"%s\" retry_in=%" PRId64 "ms",
                     ferry_conn_error(v->in), backoff);
            app_sleep(&v->app, backoff);
            backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
            continue;
        }
        backoff = 100;
        last = app_mono_ms();
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        uint64_t nvalid = 0, ninvalid = 0;
        for (size_t i = 0; i < n; i++) {
            char why[1024];
            bool ok = check_body(v, batch[i]->body, batch[i]->body_len, why, sizeof why);
            v->ok[i] = ok;
            ok ? nvalid++ : ninvalid++;
            if (forward(v, batch[i], i, ok, why) != FERRY_OK) {
                v->result[i] = -1;
                app_error(&v->app, "forward refused error=\"%s\"", ferry_pub_error(v->pub));
            }
        }
        int fl = ferry_pub_flush(v->pub, (int)v->cfg.publish_timeout);
        if (fl != FERRY_OK)
            app_warn(&v->app, "forwarding not confirmed in time error=\"%s\"", ferry_pub_error(v->pub));
        size_t acked = 0;
        for (size_t i = 0; i < n; i++) {
            if (v->result[i] == 0) {
                ferry_ack(v->in, batch[i]);
                acked++;
                ferry_metrics_count(v->ok[i] ? v->s_out : v->s_reject, FERRY_CTR_PRODUCED, 1);
                if (!v->ok[i])
                    ferry_metrics_count(v->s_in, FERRY_CTR_REJECTED, 1);
            } else {
                ferry_metrics_count(v->s_in, FERRY_CTR_PROC_ERRORS, 1);
                /* not forwarded: give it back (with acks it is redelivered) */
                ferry_release(v->in, batch[i]);
            }
        }
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        ferry_metrics_count(v->s_in, FERRY_CTR_CONSUMED, acked);
        for (size_t i = 0; i < acked; i++) /* each message waited for its whole batch */
            ferry_metrics_observe(v->s_in, took);
        if (acked == n) {
            v->valid += nvalid;
            v->invalid += ninvalid;
            handled += n;
        } else {
            /* a batch that was not forwarded whole is counted again when it comes back */
            handled += acked;
            app_sleep(&v->app, backoff);
        }
        if (v->cfg.count && (int64_t)handled >= v->cfg.count)
            break;
    }
    free(batch);
    return exit_code;
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
        char why[1024];
        if (check_body(v, text ? text : "", len, why, sizeof why)) {
            printf("%s: valid\n", name);
        } else {
            fprintf(stderr, "%s: invalid: %s\n", name, why);
            bad++;
        }
        free(text);
    }
    return bad ? EX_DATAERR : EX_OK;
}

int ferry_validator_main(int argc, char **argv)
{
    struct val v = {0};
    static const struct app_spec spec_tmpl = {
        .prog = "ferry-validator", .section = "validator", .usage = "[options] [--check [FILE...]]",
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
    if (v.cfg.schema) {
        char err[1024];
        struct ferry_schema_opts so = {.search_path = v.cfg.schema_path};
        v.schema = ferry_schema_load(v.cfg.schema, &so, err, sizeof err);
        if (!v.schema) {
            fprintf(stderr, "ferry-validator: error: schema %s\n", err);
            app_fini(&v.app);
            return EX_CONFIG;
        }
    }
    if (v.cfg.check) {
        rc = check_files(&v);
        ferry_schema_free(v.schema);
        app_fini(&v.app);
        return rc;
    }
    if (v.app.nargs) {
        fprintf(stderr, "ferry-validator: unexpected argument '%s'\nTry 'ferry-validator --help'.\n",
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
    v.pub = ferry_pub_new(v.out, NULL, on_done, &v); /* freed below */
    int st = v.pub ? ferry_subscribe(v.in, v.cfg.input, v.cfg.group) : FERRY_E_FATAL;
    if (st != FERRY_OK) {
        app_error(&v.app, "subscribe failed input=%s error=\"%s\"", v.cfg.input, ferry_conn_error(v.in));
        rc = app_exit_code(st);
    } else {
        app_info(&v.app, "validating input=%s output=%s reject=%s", v.cfg.input, v.cfg.output,
                 v.cfg.reject);
        rc = run(&v);
        ferry_pub_flush(v.pub, 10000);
        app_info(&v.app, "stopped valid=%" PRIu64 " invalid=%" PRIu64 " errors=%" PRIu64, v.valid,
                 v.invalid, v.errors);
    }
    app_http_stop(v.http);
    ferry_pub_free(v.pub);
    ferry_close(v.out);
    ferry_close(v.in);
    ferry_metrics_free(v.metrics);
    free(v.result);
    free(v.ok);
    ferry_schema_free(v.schema);
    app_fini(&v.app);
    return rc;
}

/* ferry-aggregator: consume a destination into a sink (by default the
 * file sink), acking a batch only after the sink has committed it.
 * De-duplication by id is the sink's (the file sink reads the ids back from
 * its file at start; a database uses its key); the aggregator gives each
 * record its id and keeps a ledger of the producers' sequence numbers it
 * committed in this run. */
#include "config.h"
#include "app.h"
#include "private.h"
#include "http.h"
#include "idset.h"

#include <ferry/ledger.h>
#include <ferry/retry.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The default batch where the transport lends without a limit (kafka, zmq,
 * mqtt): with fsync on, each fsync then covers up to this many messages
 * (2 ms an fsync held the default 500 to about 250 k msgs/s). */
#define AGG_BATCH 5000

struct agg {
    struct app app;
    struct aggregator_cfg cfg;
    struct ferry_conn *conn;
    struct ferry_sink_conn *sink;      /* owned */
    struct ferry_ledger *ledger;       /* seqs committed per producer in this run; owned */
    struct ferry_metrics *metrics;     /* owned */
    struct ferry_metrics_dest *series; /* of cfg.destination, in metrics */
    struct app_http *http;             /* owned; NULL without [http] listen */
    struct ferry_retry *retry;         /* owned; NULL: sink failures retried in place */
    char *dead_letter;                 /* owned: cfg.dead_letter or DESTINATION.dead-letter */
    struct consume loop;
    int64_t delay_lo, delay_hi; /* [aggregator] delay in ms; 0, 0: none */
    uint64_t rng;               /* for the delay's jitter */
    struct agg_stamp {          /* per batch slot: the producer's stamp */
        bool stamped;
        uint64_t seq;
        char prod[256];
    } * stamps; /* owned */
};

/* Whether body holds needle (nl bytes), looking for its rare byte
 * needle[k] with memchr (vectorised) where memmem would step through every
 * byte. BODY_HAS() passes a literal's length. */
static inline bool body_has(const void *body, size_t n, const char *needle, size_t nl, size_t k)
{
    if (n < nl)
        return false;
    const char *b = body;
    size_t from = k, last = n - nl + k; /* where needle[k] can sit */
    while (from <= last) {
        const char *q = memchr(b + from, needle[k], last - from + 1);
        if (!q)
            return false;
        size_t at = (size_t)(q - b);
        if (!memcmp(b + at - k, needle, nl))
            return true;
        from = at + 1;
    }
    return false;
}
#define BODY_HAS(m, lit, k) body_has((m)->body, (m)->body_len, lit, sizeof lit - 1, k)

/* The producer's ledger stamp, from the headers (cheap) or else from the
 * body's "producer" and "seq" members. */
static bool msg_stamp(const struct ferry_msg *m, char *prod, size_t plen, uint64_t *seq)
{
    const struct ferry_header *hp = ferry_msg_header(m, FERRY_HDR_PRODUCER);
    const struct ferry_header *hs = ferry_msg_header(m, FERRY_HDR_SEQ);
    if (hp && hs && hp->value_len && hp->value_len < plen &&
        ferry_ledger_parse_seq(hs->value, hs->value_len, seq)) {
        memcpy(prod, hp->value, hp->value_len);
        prod[hp->value_len] = '\0';
        return true;
    }
    char num[32];
    if (!BODY_HAS(m, "\"seq\"", 3) ||
        !ferry_body_id(m->body, m->body_len, "producer", prod, plen) ||
        !ferry_body_id(m->body, m->body_len, "seq", num, sizeof num))
        return false;
    return ferry_ledger_parse_seq(num, strlen(num), seq);
}

static bool json_stamp(const cJSON *prod, const cJSON *seq, char *buf, size_t len, uint64_t *out)
{
    if (!cJSON_IsString(prod) || !prod->valuestring[0] || strlen(prod->valuestring) >= len)
        return false;
    if (cJSON_IsNumber(seq) && seq->valuedouble >= 1 && seq->valuedouble < 9007199254740992.0)
        *out = (uint64_t)seq->valuedouble;
    else if (!cJSON_IsString(seq) ||
             !ferry_ledger_parse_seq(seq->valuestring, strlen(seq->valuestring), out))
        return false;
    snprintf(buf, len, "%s", prod->valuestring);
    return true;
}

/* The stamp of one line of an output file in either format: a body with
 * "producer" and "seq", or a record whose headers or body carry them. */
static bool line_stamp(const cJSON *o, char *prod, size_t plen, uint64_t *seq)
{
    if (json_stamp(cJSON_GetObjectItemCaseSensitive(o, "producer"),
                   cJSON_GetObjectItemCaseSensitive(o, "seq"), prod, plen, seq))
        return true;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "headers");
    if (json_stamp(cJSON_GetObjectItemCaseSensitive(h, FERRY_HDR_PRODUCER),
                   cJSON_GetObjectItemCaseSensitive(h, FERRY_HDR_SEQ), prod, plen, seq))
        return true;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "body");
    return json_stamp(cJSON_GetObjectItemCaseSensitive(b, "producer"),
                      cJSON_GetObjectItemCaseSensitive(b, "seq"), prod, plen, seq);
}

/* The message id: the id_field of a JSON object body, else the x-ferry-id
 * header (the HTTP API's non-object payloads carry it there). */
static bool msg_id(const struct agg *g, const struct ferry_msg *m, char *id, size_t len)
{
    if (ferry_body_id(m->body, m->body_len, g->cfg.id_field, id, len))
        return true;
    const struct ferry_header *h = ferry_msg_header(m, FERRY_HDR_ID);
    if (!h || !h->value_len || h->value_len >= len)
        return false;
    memcpy(id, h->value, h->value_len);
    id[h->value_len] = '\0';
    return true;
}

/* The id of one line of an output file: the id_field of a body line, or of
 * a record's body, or a record's x-ferry-id header. */
static const char *line_id(const cJSON *o, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!cJSON_IsString(v)) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "body");
        v = cJSON_GetObjectItemCaseSensitive(b, field);
    }
    if (!cJSON_IsString(v)) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "headers");
        v = cJSON_GetObjectItemCaseSensitive(h, FERRY_HDR_ID);
    }
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* Simulated work: a numeric "processing_time" (seconds) in the body, or
 * in the x-ferry-processing-time header. */
static void simulate_work(struct agg *g, const struct ferry_msg *m)
{
    const struct ferry_header *h = ferry_msg_header(m, FERRY_HDR_PROCESSING_TIME);
    if (h && h->value_len && h->value_len < 32) {
        char t[32], *end;
        memcpy(t, h->value, h->value_len);
        t[h->value_len] = '\0';
        double s = strtod(t, &end);
        if (!*end && s > 0 && s < 3600)
            app_sleep(&g->app, (int64_t)(s * 1000));
        return;
    }
    if (!BODY_HAS(m, "processing_time", 10))
        return;
    cJSON *o = cJSON_ParseWithLength(m->body, m->body_len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "processing_time");
    if (cJSON_IsNumber(t) && t->valuedouble > 0 && t->valuedouble < 3600)
        app_sleep(&g->app, (int64_t)(t->valuedouble * 1000));
    cJSON_Delete(o);
}

int app_parse_delay(const char *s, int64_t *lo, int64_t *hi, char *err, size_t errlen)
{
    *lo = *hi = 0;
    if (!s || !*s)
        return 0;
    const struct ferry_option o = {
        .name = "delay", .type = FERRY_OPT_DURATION, .min = 0, .max = 3600000};
    char a[64], e2[128];
    const char *dash = strchr(s, '-');
    size_t al = dash ? (size_t)(dash - s) : strlen(s);
    if (al >= sizeof a)
        al = sizeof a - 1;
    memcpy(a, s, al);
    a[al] = '\0';
    if (ferry_option_parse(&o, a, lo, e2, sizeof e2) != FERRY_OK ||
        ferry_option_parse(&o, dash ? dash + 1 : a, hi, e2, sizeof e2) != FERRY_OK || *hi < *lo) {
        snprintf(err, errlen,
                 "[aggregator] delay: '%s' is not a duration (50ms) or a range "
                 "MIN-MAX (20ms-200ms)",
                 s);
        return -1;
    }
    return 0;
}

/* [aggregator] delay: sleep a fixed time, or a uniform pick in the range. */
static void delay_work(struct agg *g)
{
    if (!g->delay_hi)
        return;
    int64_t d = g->delay_lo;
    if (g->delay_hi > g->delay_lo) {
        uint64_t r = g->rng;
        r ^= r >> 12;
        r ^= r << 25;
        r ^= r >> 27;
        g->rng = r;
        d += (int64_t)((r * 0x2545F4914F6CDD1DULL) % (uint64_t)(g->delay_hi - g->delay_lo + 1));
    }
    app_sleep(&g->app, d);
}

/* The handler: each message goes to the sink with its id (the body's
 * id_field or x-ferry-id header, else the producer's stamp "PRODUCER#SEQ"),
 * after any simulated work it asks for and the configured delay. */
static int agg_handle(void *ctx, struct consume_item *items, size_t n)
{
    struct agg *g = ctx;
    int64_t now = ferry_time_ms();
    for (size_t i = 0; i < n; i++) {
        struct consume_item *x = &items[i];
        const struct ferry_msg *m = x->it.msg;
        struct agg_stamp *st = &g->stamps[i];
        st->stamped = msg_stamp(m, st->prod, sizeof st->prod, &st->seq);
        x->rec.id = NULL;
        if (msg_id(g, m, x->id, sizeof x->id) ||
            (st->stamped &&
             snprintf(x->id, sizeof x->id, "%s#%" PRIu64, st->prod, st->seq) < (int)sizeof x->id))
            x->rec.id = x->id;
        x->rec.received_ms = now;
        simulate_work(g, m);
        delay_work(g);
        x->verdict = CONSUME_WRITE;
    }
    return FERRY_OK;
}

/* The batch size: [aggregator] batch, or by default AGG_BATCH, or half the
 * transport's lend limit (amqp prefetch) when that is smaller: a batch as
 * large as the limit would hold every message the broker will lend, and
 * nothing would arrive while it is fsync'ed (the group commit would not
 * overlap). Called before subscribing: the lend limit is known from the
 * configuration. */
static size_t agg_batch(struct agg *g)
{
    if (g->cfg.batch > 0)
        return (size_t)g->cfg.batch;
    int64_t b = AGG_BATCH;
    struct ferry_stats fs;
    if (ferry_stats(g->conn, &fs) == FERRY_OK && fs.lend_limit > 0 && fs.lend_limit / 2 < b)
        b = fs.lend_limit > 1 ? fs.lend_limit / 2 : 1;
    return (size_t)b;
}

/* After a batch: what landed goes into the ledger. */
static void agg_settled(void *ctx, const struct consume_item *items, size_t n)
{
    struct agg *g = ctx;
    for (size_t i = 0; i < n; i++)
        if (items[i].verdict == CONSUME_ACK && g->stamps[i].stamped &&
            ferry_ledger_add(g->ledger, g->stamps[i].prod, g->stamps[i].seq) < 0)
            app_warn(&g->app, "ledger out of memory producer=%s seq=%" PRIu64, g->stamps[i].prod,
                     g->stamps[i].seq);
}

void app_aggregator_e2e(const struct agg *g, struct ferry_ledger_totals *out)
{
    ferry_ledger_totals(g->ledger, out);
}

/* --verify FILE: the ledger of an output file, printed on stdout.
 * 0 when every producer's seqs are all there exactly once, 65 otherwise. */
static int verify_file(struct agg *g)
{
    FILE *f = fopen(g->cfg.verify, "r");
    if (!f) {
        fprintf(stderr, "ferry-aggregator: error: cannot open %s: %s\n", g->cfg.verify,
                strerror(errno));
        return EX_NOINPUT;
    }
    /* exact whatever the disorder (many partitions, a stalled one): memory
     * grows with the gaps open at once, 16 bytes each */
    struct ferry_ledger *l = ferry_ledger_new(SIZE_MAX, 0); /* freed below */
    if (!l) {
        fclose(f);
        return EX_OSERR;
    }
    ferry_ledger_expect(l, (uint64_t)g->cfg.expect);
    char *line = NULL; /* freed below */
    size_t cap = 0;
    ssize_t n;
    int rerr = 0;
    uint64_t lines = 0, unstamped = 0, ids = 0, dup_ids = 0;
    /* every id of the file, to count the ones written twice */
    struct idset_gen seen = {0}; /* freed below */
    while ((n = getline(&line, &cap, f)) > 0) {
        lines++;
        char prod[256];
        uint64_t seq;
        cJSON *o = cJSON_ParseWithLength(line, (size_t)n); /* freed below */
        if (!o || !line_stamp(o, prod, sizeof prod, &seq) || ferry_ledger_add(l, prod, seq) < 0)
            unstamped++;
        const char *id = o ? line_id(o, g->cfg.id_field) : NULL;
        if (id) {
            if (seen.n * 2 >= seen.cap) {
                struct idset_gen bigger = {0};
                if (idset_batch_init(&bigger, seen.cap ? seen.cap : 1024)) {
                    cJSON_Delete(o);
                    rerr = -1;
                    break;
                }
                for (size_t i = 0; i < seen.cap; i++)
                    if (seen.v[i])
                        idset_batch_put(&bigger, seen.v[i]);
                free(seen.v);
                seen = bigger;
            }
            ids++;
            if (!idset_batch_put(&seen, idset_hash(id, strlen(id))))
                dup_ids++;
        }
        cJSON_Delete(o);
    }
    free(seen.v);
    free(line);
    if (!rerr)
        rerr = ferror(f);
    fclose(f);
    struct ferry_ledger_totals t;
    ferry_ledger_totals(l, &t);
    printf("file=%s lines=%" PRIu64 " unstamped=%" PRIu64 " producers=%" PRIu64 " ids=%" PRIu64
           " duplicate_ids=%" PRIu64 "\n",
           g->cfg.verify, lines, unstamped, t.producers, ids, dup_ids);
    ferry_ledger_report(l, stdout, 50);
    bool ok = !rerr && t.missing == 0 && t.duplicates == 0 && dup_ids == 0 &&
              (t.producers > 0 || !g->cfg.expect);
    printf("result=%s received=%" PRIu64 " unique=%" PRIu64 " missing=%" PRIu64
           " duplicates=%" PRIu64 "\n",
           ok ? "complete" : "incomplete", t.received, t.unique, t.missing, t.duplicates);
    ferry_ledger_free(l);
    if (rerr) {
        fprintf(stderr, "ferry-aggregator: error: cannot read %s\n", g->cfg.verify);
        return EX_IOERR;
    }
    return ok ? EX_OK : EX_DATAERR;
}

/* The retrier, dead-lettering to cfg.dead_letter or DESTINATION.dead-letter.
 * Without retries (max_retries -1) a sink that refuses single records still
 * needs somewhere to send them: a retrier that only dead-letters. */
static struct ferry_retry *agg_retry(struct agg *g, int *rc)
{
    const char *dest = g->cfg.destination;
    size_t len =
        g->cfg.dead_letter ? strlen(g->cfg.dead_letter) + 1 : strlen(dest) + sizeof ".dead-letter";
    g->dead_letter = malloc(len); /* freed at the end of ferry_aggregator_main() */
    *rc = EX_OSERR;
    if (!g->dead_letter)
        return NULL;
    *rc = -1;
    if (g->cfg.dead_letter)
        memcpy(g->dead_letter, g->cfg.dead_letter, len);
    else
        snprintf(g->dead_letter, len, "%s.dead-letter", dest);
    if (g->cfg.max_retries < 0) {
        if (!(g->sink->caps & FERRY_SINK_CAP_PER_RECORD))
            return NULL;
        struct ferry_retry_opts o = {.policy = {.max_retries = -1},
                                     .mode = FERRY_RETRY_LOCAL,
                                     .dest = dest,
                                     .group = g->cfg.group,
                                     .dead_letter = g->dead_letter};
        int st;
        char err[1024];
        struct ferry_retry *r =
            ferry_retry_new(g->app.config, g->app.client_id, g->conn, &o, &st, err, sizeof err);
        if (!r) {
            fprintf(stderr, "ferry-aggregator: error: %s\n", err);
            *rc = app_exit_code(st);
        }
        return r;
    }
    return app_retry_new(&g->app, g->conn, dest, g->cfg.group, g->dead_letter, g->cfg.max_retries,
                         g->cfg.retry_backoff_min, g->cfg.retry_backoff_max, g->cfg.retry_mode, 0,
                         rc);
}

/* [aggregator] output, format, fsync, dedup, dedup_window and id_field
 * were the file output's options before sinks: with sink = file they still
 * work, set [file]'s keys unless [file] sets them from a stronger source
 * (command line > environment > file). */
static int agg_map_config(struct ferry_config *cfg, char *err, size_t errlen)
{
    static const char *const moved[] = {"output", "format",       "fsync",
                                        "dedup",  "dedup_window", "id_field"};
    const char *sink = ferry_config_get(cfg, "aggregator", "sink");
    if (sink && strcmp(sink, "file"))
        return FERRY_OK;
    for (size_t i = 0; i < sizeof moved / sizeof *moved; i++) {
        enum ferry_source a = ferry_config_source(cfg, "aggregator", moved[i]);
        if (a == FERRY_SRC_DEFAULT || a <= ferry_config_source(cfg, "file", moved[i]))
            continue;
        if (ferry_config_set(cfg, "file", moved[i], ferry_config_get(cfg, "aggregator", moved[i]),
                             FERRY_SRC_FLAG) != FERRY_OK) {
            snprintf(err, errlen, "out of memory");
            return FERRY_E_CONFIG;
        }
    }
    return FERRY_OK;
}

/* Open the sink, retrying while its server is unreachable, like the
 * transport. @return the sink or NULL with *rc set. */
static struct ferry_sink_conn *agg_sink(struct agg *g, int *rc)
{
    struct ferry_backoff b;
    ferry_backoff_init(&b, 100, 30000);
    int64_t start = ferry_mono_ms();
    bool warned = false;
    for (;;) {
        int st;
        char err[1024];
        struct ferry_sink_conn *s =
            ferry_sink_open(g->app.config, g->cfg.sink, g->app.client_id, &st, err, sizeof err);
        if (s) {
            ferry_sink_set_log(s, g->app.spec->prog, g->app.log_level);
            char caps[128];
            app_info(&g->app, "sink open sink=%s capabilities=%s", s->sink->name,
                     ferry_sink_caps_str(s->caps, caps, sizeof caps));
            return s;
        }
        if (!ferry_status_retriable(st)) {
            fprintf(stderr, "ferry-aggregator: error: %s\n", err);
            *rc = st == FERRY_E_CONFIG ? EX_CONFIG : app_exit_code(st);
            return NULL;
        }
        int64_t waited = ferry_mono_ms() - start;
        if (*g->app.stop || waited >= g->cfg.connect_timeout) {
            fprintf(stderr, "ferry-aggregator: error: sink unavailable after %lld ms: %s\n",
                    (long long)waited, err);
            *rc = EX_UNAVAILABLE;
            return NULL;
        }
        int64_t d = ferry_backoff_next(&b);
        if (!warned)
            app_warn(&g->app, "sink open failed error=\"%s\" retry_in=%lldms", err, (long long)d);
        warned = true;
        app_sleep(&g->app, d);
    }
}

int ferry_aggregator_main(int argc, char **argv)
{
    struct agg g = {0};
    static const struct app_spec spec_tmpl = {
        .prog = "ferry-aggregator",
        .section = "aggregator",
        .usage = "[options]",
        .about = "Consume a destination into a sink: by default the file sink, which appends\n"
                 "every message to a file (or standard output with --output -), one per line.\n"
                 "Each batch is acked only after the sink has committed it (the file: written\n"
                 "and fsync'ed). Messages whose id is already in the file are skipped. SIGHUP\n"
                 "reopens the sink (logrotate); SIGTERM finishes the current batch and exits 0.\n"
                 "--sink NAME picks another sink, configured in its [NAME] section.\n"
                 "--verify FILE reports the producers' sequence numbers missing from or\n"
                 "repeated in FILE (exit 0 or 65).",
        .options = app_aggregator_options,
        .map_config = agg_map_config};
    struct app_spec spec = spec_tmpl;
    spec.cfg = &g.cfg;
    int rc = app_init(&g.app, &spec, argc, argv);
    if (rc >= 0) {
        app_fini(&g.app);
        return rc;
    }
    if (g.app.nargs) {
        fprintf(stderr,
                "ferry-aggregator: unexpected argument '%s'\nTry 'ferry-aggregator --help'.\n",
                g.app.args[0]);
        app_fini(&g.app);
        return EX_USAGE;
    }
    if (g.cfg.verify) {
        rc = verify_file(&g);
        app_fini(&g.app);
        return rc;
    }
    char derr[256];
    if (app_parse_delay(g.cfg.delay, &g.delay_lo, &g.delay_hi, derr, sizeof derr)) {
        fprintf(stderr, "ferry-aggregator: error: %s\n", derr);
        app_fini(&g.app);
        return EX_CONFIG;
    }
    g.rng = (uint64_t)ferry_time_ms() | 1;
    rc = app_require(&g.app, g.cfg.require);
    if (rc >= 0) {
        app_fini(&g.app);
        return rc;
    }
    g.ledger = ferry_ledger_new(0, 0); /* freed at the end of ferry_aggregator_main() */
    if (!g.ledger) {
        app_fini(&g.app);
        return EX_OSERR;
    }
    g.sink = agg_sink(&g, &rc);
    if (!g.sink) {
        ferry_ledger_free(g.ledger);
        app_fini(&g.app);
        return rc;
    }
    const char *tname = ferry_config_get(g.app.config, "transport", "plugin");
    g.metrics = ferry_metrics_new(tname ? tname : "zmq"); /* freed below */
    g.series = ferry_metrics_dest(g.metrics, g.cfg.destination);
    rc = g.metrics ? app_http_start(&g.app, g.metrics, NULL, &g.http) : EX_OSERR;
    if (rc < 0)
        g.conn = app_connect(&g.app, g.cfg.connect_timeout, &rc);
    if (!g.conn) {
        app_http_stop(g.http);
        ferry_metrics_free(g.metrics);
        ferry_sink_close(g.sink);
        ferry_ledger_free(g.ledger);
        app_fini(&g.app);
        return rc;
    }
    if (!(g.conn->caps & FERRY_CAP_ACK))
        app_warn(&g.app,
                 "transport cannot redeliver transport=%s: messages in flight when this "
                 "process dies are lost",
                 g.conn->transport->name);
    if (!(g.sink->caps & FERRY_SINK_CAP_DURABLE))
        app_warn(&g.app,
                 "sink is not durable sink=%s: what it has committed may be lost in a "
                 "crash",
                 g.sink->sink->name);
    g.loop = (struct consume){.app = &g.app,
                              .in = g.conn,
                              .sink = g.sink,
                              .batch_bytes = g.cfg.batch_bytes,
                              .batch_wait = g.cfg.batch_wait,
                              .idle_exit = g.cfg.idle_exit,
                              .count = g.cfg.count,
                              .backoff_min = g.cfg.retry_backoff_min,
                              .backoff_max = g.cfg.retry_backoff_max,
                              .retry_in_place = g.cfg.max_retries < 0,
                              .handle = agg_handle,
                              .on_settled = agg_settled,
                              .ctx = &g,
                              .metrics = g.metrics,
                              .series = g.series};
    /* before the subscription: a plugin's stats may ask the broker once
     * subscribed, which costs a round trip while deliveries pile up */
    g.loop.batch = agg_batch(&g);
    int st = ferry_subscribe(g.conn, g.cfg.destination, g.cfg.group);
    if (st != FERRY_OK) {
        app_error(&g.app, "subscribe failed destination=%s error=\"%s\"", g.cfg.destination,
                  ferry_conn_error(g.conn));
        rc = app_exit_code(st);
    } else if (!(g.retry = agg_retry(&g, &rc)) && rc >= 0) {
        /* agg_retry() said why */
    } else if (!(g.stamps = calloc(g.loop.batch, sizeof *g.stamps)) || /* freed below */
               consume_init(&g.loop)) {
        rc = EX_OSERR;
    } else {
        g.loop.retry = g.retry;
        g.loop.dead_letter = g.dead_letter;
        app_info(&g.app, "consuming destination=%s group=%s sink=%s batch=%zu", g.cfg.destination,
                 g.cfg.group, g.sink->sink->name, g.loop.batch);
        rc = consume_run(&g.loop);
        app_info(&g.app,
                 "stopped received=%" PRIu64 " written=%" PRIu64 " duplicates=%" PRIu64
                 " deferred=%" PRIu64 " dead_lettered=%" PRIu64 " rejected=%" PRIu64,
                 g.loop.received, g.loop.written, g.loop.duplicates, g.loop.deferred,
                 g.loop.dead_lettered, g.loop.rejected);
        struct ferry_ledger_totals t;
        app_aggregator_e2e(&g, &t);
        /* missing: seqs below a producer's highest that this run never
         * wrote; after a restart it counts what the earlier run wrote too */
        app_log(&g.app, t.missing || t.duplicates ? FERRY_LOG_WARN : FERRY_LOG_INFO,
                "ledger of this run producers=%" PRIu64 " unique=%" PRIu64 " missing=%" PRIu64
                " redelivered=%" PRIu64,
                t.producers, t.unique, t.missing, t.duplicates);
    }
    consume_fini(&g.loop);
    app_http_stop(g.http);
    ferry_retry_free(g.retry);
    free(g.dead_letter);
    ferry_close(g.conn);
    ferry_metrics_free(g.metrics);
    ferry_sink_close(g.sink);
    free(g.stamps);
    ferry_ledger_free(g.ledger);
    app_fini(&g.app);
    return rc;
}

/* ferry-conformance, the cases that prove delivery rather than structure:
 * volume with a slow consumer, durability across a broker restart,
 * connection loss, the size limit, private subscriptions and loans left
 * open at close. Every message is counted by id. */
#include "config.h"

#include "conformance.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHOW_MAX 5 /* ids quoted in a failure */

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Run a hook of the command line through the shell; it must exit 0. */
static void run_hook(const char *what, const char *cmd)
{
    fflush(NULL);
    int64_t t0 = now_ms();
    int rc = system(cmd);
    ck_assert_msg(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
                  "%s command failed (status %d): %s", what, rc == -1 ? -1 : WEXITSTATUS(rc), cmd);
    fprintf(stderr, "conformance: %s command took %.1f s\n", what,
            (double)(now_ms() - t0) / 1000.0);
}

static void cut_connections(void)
{
    if (conf_cut_cmd)
        run_hook("cut", conf_cut_cmd);
    else
        ck_assert_msg(kill(conf_proxy_pid, SIGUSR1) == 0, "the proxy is gone");
}

/* Open a connection while the broker may still be coming back. */
static struct ferry_conn *conn_open_retry(int64_t ms)
{
    char err[1024], id[64];
    int st = FERRY_OK;
    snprintf(id, sizeof id, "ferry-conformance:%d", (int)getpid());
    int64_t deadline = now_ms() + scaled(ms);
    for (;;) {
        struct ferry_conn *c = ferry_open(conf_cfg, id, &st, err, sizeof err);
        if (c)
            return c;
        ck_assert_msg(ferry_status_retriable(st) && now_ms() < deadline, "open failed: %s", err);
        pause_ms(200);
    }
}

static const char *conf_missing_restart(void)
{
    return conf_restart_cmd ? NULL : "no --restart-cmd CMD: the broker was never restarted";
}

static const char *conf_missing_cut(void)
{
    return conf_cut_cmd || conf_proxy_pid > 0
               ? NULL
               : "no --cut-cmd CMD or --proxy LISTEN:TARGET: no connection was ever cut";
}

static const char *conf_missing_max_size(void)
{
    return conf_max_size > 0 ? NULL
                             : "the plugin has no max_message_size option and no "
                               "--max-message-size BYTES was given";
}

/* ---------------------------------------------------------------------- */
/* A stream of messages "v-ID" published by a thread of its own while the
 * test's thread consumes them. */

struct stream {
    size_t n;
    const char *dest;
    struct ferry_conn *prod;
    unsigned rate;      /* messages per second, 0 = as fast as it goes */
    uint8_t *confirmed; /* per id: reported FERRY_OK */
    uint8_t *resent;    /* per id: published again after a failure report */
    size_t *retry;      /* ids reported failed, to publish again; owned */
    size_t nretry, cap_retry;
    uint64_t failed_reports;
    atomic_size_t accepted; /* first publishes accepted so far */
    atomic_bool done;
    char err[700]; /* why the producer gave up; "" when it did not */
};

struct tally {
    uint8_t *hits;    /* per id: copies received (saturating) */
    uint8_t *excused; /* per id: copies marked redelivered, or whose ack failed */
    size_t distinct, received, max_behind;
    int64_t first_ms, last_ms;
};

static void stream_report(void *ctx, uint64_t tag, int status, const char *reason)
{
    (void)reason;
    struct stream *s = ctx;
    if (tag == 0 || tag > s->n)
        return; /* a probe's */
    size_t id = (size_t)(tag - 1);
    if (status == FERRY_OK) {
        s->confirmed[id] = 1;
        return;
    }
    s->failed_reports++;
    if (s->nretry == s->cap_retry) {
        size_t cap = s->cap_retry ? s->cap_retry * 2 : 1024;
        size_t *r = realloc(s->retry, cap * sizeof *r);
        if (!r) {
            snprintf(s->err, sizeof s->err, "out of memory keeping failed messages");
            return;
        }
        s->retry = r;
        s->cap_retry = cap;
    }
    s->retry[s->nretry++] = id;
}

static int stream_send(struct stream *s, size_t id, bool again)
{
    char body[32], key[8];
    snprintf(body, sizeof body, "v-%zu", id);
    snprintf(key, sizeof key, "k%zu", id % 8);
    struct ferry_msg m = {.dest = s->dest,
                          .key = key,
                          .key_len = strlen(key),
                          .body = body,
                          .body_len = strlen(body),
                          .tag = id + 1};
    int64_t deadline = now_ms() + scaled(60000);
    int rc;
    while (ferry_status_retriable(rc = ferry_publish(s->prod, &m)) && now_ms() < deadline) {
        /* a full queue or no connection: let the broker catch up, do not spin */
        if (ferry_flush(s->prod, 50) == FERRY_OK)
            pause_ms(rc == FERRY_E_NOCONN ? 20 : 1);
    }
    if (rc != FERRY_OK) {
        snprintf(s->err, sizeof s->err, "publish of message %zu: %s (%s)", id, ferry_strerror(rc),
                 ferry_conn_error(s->prod));
        return -1;
    }
    if (again && s->resent[id] < UINT8_MAX)
        s->resent[id]++;
    return 0;
}

/* Publish again what was reported failed, as a reliable producer does. */
static int stream_resend(struct stream *s)
{
    while (s->nretry && !s->err[0])
        if (stream_send(s, s->retry[--s->nretry], true))
            return -1;
    return s->err[0] ? -1 : 0;
}

static void *stream_producer(void *arg)
{
    struct stream *s = arg;
    ferry_set_delivery(s->prod, stream_report, s);
    int64_t t0 = now_ms();
    for (size_t i = 0; i < s->n; i++) {
        if (s->rate && (int64_t)(i * 1000 / s->rate) > now_ms() - t0)
            pause_ms(5);
        if (stream_send(s, i, false) || stream_resend(s))
            goto out;
        atomic_store(&s->accepted, i + 1);
    }
    int64_t deadline = now_ms() + scaled(120000);
    for (;;) {
        if (stream_resend(s))
            break;
        int rc = ferry_flush(s->prod, 200);
        if (rc == FERRY_OK && s->nretry == 0)
            break;
        if (now_ms() > deadline) {
            snprintf(s->err, sizeof s->err,
                     "messages still unsettled 120 s after the last "
                     "publish (flush: %s)",
                     ferry_strerror(rc));
            break;
        }
    }
out:
    ferry_set_delivery(s->prod, NULL, NULL);
    atomic_store(&s->done, true);
    return NULL;
}

static void stream_init(struct stream *s, struct ferry_conn *prod, const char *dest, size_t n,
                        struct tally *t)
{
    *s = (struct stream){.n = n, .dest = dest, .prod = prod};
    s->confirmed = calloc(n, 1); /* freed in stream_free() */
    s->resent = calloc(n, 1);
    *t = (struct tally){0};
    t->hits = calloc(n, 1);
    t->excused = calloc(n, 1);
    ck_assert(s->confirmed && s->resent && t->hits && t->excused);
}

static void stream_free(struct stream *s, struct tally *t)
{
    free(s->confirmed);
    free(s->resent);
    free(s->retry);
    free(t->hits);
    free(t->excused);
}

/* Count one batch of received messages by id, then ack each. */
static void tally_batch(struct ferry_conn *c, struct tally *t, size_t n, struct ferry_msg **m,
                        size_t k)
{
    for (size_t i = 0; i < k; i++) {
        char text[32];
        size_t len = m[i]->body_len < sizeof text - 1 ? m[i]->body_len : sizeof text - 1;
        memcpy(text, m[i]->body, len);
        text[len] = '\0';
        char *end = NULL;
        unsigned long long id = strncmp(text, "v-", 2) ? n : strtoull(text + 2, &end, 10);
        bool ours = id < n && end && *end == '\0';
        if (ours) {
            if (t->hits[id] == 0)
                t->distinct++;
            if (t->hits[id] < UINT8_MAX)
                t->hits[id]++;
            if (m[i]->redelivered && t->excused[id] < UINT8_MAX)
                t->excused[id]++;
        }
        t->received++;
        int rc = ferry_ack(c, m[i]);
        /* an ack that did not reach the broker brings the message back */
        if (rc != FERRY_OK && ours && (conf_caps & FERRY_CAP_ACK) && t->excused[id] < UINT8_MAX)
            t->excused[id]++;
    }
}

/* Consume the stream until every id arrived (then a little longer, to see
 * copies that follow) or nothing more comes. The consumer is slow for its
 * first slow_ms; at cut_at accepted messages the connections are cut. */
static void consume(struct ferry_conn *c, struct stream *s, struct tally *t, int64_t slow_ms,
                    size_t cut_at, size_t *cut_received)
{
    int64_t t0 = now_ms(), last = t0, grace_end = 0;
    bool cut = cut_at == 0;
    t->first_ms = t0;
    for (;;) {
        int64_t now = now_ms();
        bool slow = now - t0 < slow_ms;
        if (!cut && atomic_load(&s->accepted) >= cut_at) {
            *cut_received = t->distinct;
            cut_connections();
            cut = true;
        }
        struct ferry_msg *m[256];
        size_t k = 0;
        int rc = recv_msgs(c, m, slow ? 4 : 256, &k, 100);
        ck_assert_msg(rc == FERRY_OK || ferry_status_retriable(rc), "receive: %s (%s)",
                      ferry_strerror(rc), ferry_conn_error(c));
        tally_batch(c, t, s->n, m, k);
        now = now_ms();
        if (k)
            last = now;
        size_t acc = atomic_load(&s->accepted);
        if (acc > t->distinct && acc - t->distinct > t->max_behind)
            t->max_behind = acc - t->distinct;
        if (slow)
            pause_ms(2);
        bool done = atomic_load(&s->done);
        if (done && t->distinct == s->n && cut) {
            if (!grace_end)
                grace_end = now + 300;
            if (now >= grace_end)
                break;
        }
        if (done && now - last > scaled(3000))
            break; /* everything is settled and nothing has come for 3 s */
        if (now - last > scaled(90000))
            break; /* nothing for 90 s, producer or not */
    }
    t->last_ms = now_ms();
}

struct verdict {
    size_t lost, lost_confirmed, doubled, resent, unconfirmed;
    size_t show_lost[SHOW_MAX], show_doubled[SHOW_MAX];
};

static void judge(const struct stream *s, const struct tally *t, struct verdict *v)
{
    *v = (struct verdict){0};
    for (size_t id = 0; id < s->n; id++) {
        if (!s->confirmed[id])
            v->unconfirmed++;
        v->resent += s->resent[id];
        if (t->hits[id] == 0) {
            if (v->lost < SHOW_MAX)
                v->show_lost[v->lost] = id;
            v->lost++;
            if (s->confirmed[id])
                v->lost_confirmed++;
        } else if ((size_t)t->hits[id] > 1u + s->resent[id] + t->excused[id]) {
            if (v->doubled < SHOW_MAX)
                v->show_doubled[v->doubled] = id;
            v->doubled++;
        }
    }
}

static const char *ids_text(const size_t *ids, size_t n, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && i < SHOW_MAX && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%zu", i ? ", " : "", ids[i]);
    if (n > SHOW_MAX && off < len)
        snprintf(buf + off, len - off, ", ...");
    return buf;
}

/* The failures every stream case shares. */
static void assert_stream(const char *what, const struct stream *s, const struct verdict *v,
                          bool losses_fail)
{
    char ids[128];
    if (losses_fail)
        ck_assert_msg(
            v->lost == 0, "%s: %zu of %zu messages never arrived (%zu of them %s); ids %s", what,
            v->lost, s->n, v->lost_confirmed,
            conf_caps & FERRY_CAP_CONFIRMS ? "confirmed by the broker" : "reported delivered",
            ids_text(v->show_lost, v->lost, ids, sizeof ids));
    ck_assert_msg(v->lost_confirmed == 0, "%s: %zu confirmed messages never arrived; ids %s", what,
                  v->lost_confirmed, ids_text(v->show_lost, v->lost, ids, sizeof ids));
    ck_assert_msg(v->doubled == 0,
                  "%s: %zu messages arrived more than once although never re-sent nor marked "
                  "redelivered; ids %s",
                  what, v->doubled, ids_text(v->show_doubled, v->doubled, ids, sizeof ids));
    ck_assert_msg(!s->err[0], "%s: the producer gave up: %s", what, s->err);
    if (conf_caps & FERRY_CAP_CONFIRMS)
        ck_assert_msg(v->unconfirmed == 0, "%s: %zu of %zu messages never confirmed", what,
                      v->unconfirmed, s->n);
}

START_TEST(test_volume_every_message_arrives)
{
    char dest[128], group[64];
    unique(dest, sizeof dest, "volume");
    snprintf(group, sizeof group, "vol%d", (int)getpid());
    struct ferry_conn *prod = conn_open(), *cons = conn_open();
    ck_assert_msg(ferry_subscribe(cons, dest, group) == FERRY_OK, "subscribe: %s",
                  ferry_conn_error(cons));
    warm_up(prod, dest, &cons, 1);
    struct stream s;
    struct tally t;
    stream_init(&s, prod, dest, conf_volume, &t);
    pthread_t th;
    ck_assert(pthread_create(&th, NULL, stream_producer, &s) == 0);
    /* slow for the first second: the producer gets well ahead */
    consume(cons, &s, &t, 1000, 0, NULL);
    pthread_join(th, NULL);
    struct verdict v;
    judge(&s, &t, &v);
    fprintf(stderr,
            "conformance: volume: %zu messages in %.1f s, consumer behind by up to %zu, "
            "%zu lost (%zu confirmed), %zu doubled, %zu re-sent after a failure report\n",
            s.n, (double)(t.last_ms - t.first_ms) / 1000.0, t.max_behind, v.lost, v.lost_confirmed,
            v.doubled, v.resent);
    assert_stream("volume", &s, &v, true);
    ferry_close(cons);
    ferry_close(prod);
    stream_free(&s, &t);
}
END_TEST

START_TEST(test_connection_loss)
{
    char dest[128], group[64];
    unique(dest, sizeof dest, "cut");
    snprintf(group, sizeof group, "cut%d", (int)getpid());
    struct ferry_conn *prod = conn_open(), *cons = conn_open();
    ck_assert_msg(ferry_subscribe(cons, dest, group) == FERRY_OK, "subscribe: %s",
                  ferry_conn_error(cons));
    warm_up(prod, dest, &cons, 1);
    size_t n = conf_volume < 20000 ? conf_volume : 20000;
    struct stream s;
    struct tally t;
    stream_init(&s, prod, dest, n, &t);
    s.rate = 10000; /* two seconds: the cut finds messages in flight both ways */
    pthread_t th;
    size_t at_cut = 0;
    ck_assert(pthread_create(&th, NULL, stream_producer, &s) == 0);
    consume(cons, &s, &t, 0, n / 3, &at_cut);
    pthread_join(th, NULL);
    struct ferry_health hp = {0}, hc = {0};
    ferry_health(prod, &hp);
    ferry_health(cons, &hc);
    struct verdict v;
    judge(&s, &t, &v);
    fprintf(stderr,
            "conformance: connection loss: cut after %zu of %zu published (%zu received); "
            "%llu failure reports, %zu re-sent, %zu lost (%zu confirmed), %zu doubled; "
            "reconnects: producer %llu, consumer %llu\n",
            n / 3, n, at_cut, (unsigned long long)s.failed_reports, v.resent, v.lost,
            v.lost_confirmed, v.doubled, (unsigned long long)hp.reconnects,
            (unsigned long long)hc.reconnects);
    /* Without confirms nothing was promised about messages in flight at
     * the cut, but what is published after it must arrive. */
    assert_stream("connection loss", &s, &v, (conf_caps & FERRY_CAP_CONFIRMS) != 0);
    size_t late = 0;
    for (size_t id = n - n / 4; id < n; id++)
        late += t.hits[id] != 0;
    ck_assert_msg(late > 0, "connection loss: none of the last %zu messages arrived: no recovery",
                  n / 4);
    ferry_close(cons);
    ferry_close(prod);
    stream_free(&s, &t);
}
END_TEST

START_TEST(test_durable_survives_restart)
{
    char dest[128], group[64];
    unique(dest, sizeof dest, "durable");
    snprintf(group, sizeof group, "dur%d", (int)getpid());
    struct ferry_conn *prod = conn_open(), *cons = conn_open();
    ck_assert_msg(ferry_subscribe(cons, dest, group) == FERRY_OK, "subscribe: %s",
                  ferry_conn_error(cons));
    warm_up(prod, dest, &cons, 1);
    ferry_close(cons); /* the group's queue exists; nobody reads it now */
    enum { N = 1000 };
    publish_bodies(prod, dest, "d", N, NULL); /* asserts every one confirmed */
    ferry_close(prod);
    run_hook("restart", conf_restart_cmd);
    cons = conn_open_retry(120000);
    int64_t deadline = now_ms() + scaled(120000);
    int rc;
    while ((rc = ferry_subscribe(cons, dest, group)) != FERRY_OK) {
        ck_assert_msg(ferry_status_retriable(rc) && now_ms() < deadline,
                      "subscribe after the restart: %s", ferry_conn_error(cons));
        pause_ms(200);
    }
    /* A marker published after the restart shows the broker is back and
     * delivering; what has not come 3 s after it (and after the last
     * message) is gone. */
    struct ferry_conn *late = conn_open_retry(120000);
    struct ferry_msg mark = {
        .dest = dest, .key = "k", .key_len = 1, .body = "marker", .body_len = 6};
    publish_all(late, &mark, 1);
    int hits[N] = {0};
    size_t got = 0;
    bool marked = false;
    int64_t last = now_ms();
    deadline = last + scaled(120000);
    while (now_ms() < deadline && !(marked && got == N) &&
           !(marked && now_ms() - last > scaled(3000))) {
        struct ferry_msg *r[64];
        size_t k = 0;
        recv_msgs(cons, r, 64, &k, 200);
        for (size_t i = 0; i < k; i++) {
            if (r[i]->body_len == 6 && !memcmp(r[i]->body, "marker", 6)) {
                marked = true;
            } else if (r[i]->body_len > 2 && r[i]->body_len < 16 && !memcmp(r[i]->body, "d-", 2)) {
                char text[16];
                memcpy(text, r[i]->body, r[i]->body_len);
                text[r[i]->body_len] = '\0';
                size_t id = strtoul(text + 2, NULL, 10);
                if (id < N && !hits[id]++)
                    got++;
            }
            ferry_ack(cons, r[i]);
            last = now_ms();
        }
    }
    ferry_close(late);
    ck_assert_msg(marked, "durable: a message published after the restart never arrived");
    size_t missing = 0, show[SHOW_MAX];
    for (size_t i = 0; i < N; i++)
        if (!hits[i] && missing++ < SHOW_MAX)
            show[missing - 1] = i;
    char ids[128];
    fprintf(stderr, "conformance: durable: %zu of %d confirmed messages there after the restart\n",
            (size_t)N - missing, N);
    ck_assert_msg(missing == 0,
                  "durable: %zu of %d confirmed messages were gone after the broker restarted "
                  "(%zu received); ids %s",
                  missing, N, got, ids_text(show, missing, ids, sizeof ids));
    ferry_close(cons);
}
END_TEST

static int reports_after;
static void count_report(void *ctx, uint64_t tag, int status, const char *reason)
{
    (void)ctx, (void)status, (void)reason;
    if (tag == 77)
        reports_after++;
}

START_TEST(test_oversized_refused_before_sending)
{
    char dest[128], group[64];
    unique(dest, sizeof dest, "toobig");
    snprintf(group, sizeof group, "big%d", (int)getpid());
    struct ferry_conn *prod = conn_open(), *cons = conn_open();
    ck_assert(ferry_subscribe(cons, dest, group) == FERRY_OK);
    warm_up(prod, dest, &cons, 1);
    struct ferry_health before, after;
    ck_assert_int_eq(ferry_health(prod, &before), FERRY_OK);
    size_t len = (size_t)conf_max_size + 1;
    char *big = malloc(len); /* freed below */
    ck_assert(big);
    memset(big, 'x', len);
    struct ferry_msg m = {
        .dest = dest, .key = "k", .key_len = 1, .body = big, .body_len = len, .tag = 77};
    ferry_set_delivery(prod, count_report, NULL);
    int64_t t0 = now_ms();
    int rc = ferry_publish(prod, &m);
    int64_t took = now_ms() - t0;
    ck_assert_msg(rc == FERRY_E_TOOBIG,
                  "publish of %zu bytes (limit %lld) returned %s (%s), not "
                  "FERRY_E_TOOBIG",
                  len, (long long)conf_max_size, ferry_strerror(rc), ferry_conn_error(prod));
    ck_assert_msg(took < scaled(2000), "refusing the oversized message took %lld ms",
                  (long long)took);
    ferry_flush(prod, (int)scaled(1000));
    ck_assert_msg(reports_after == 0, "a refused message got a delivery report");
    ferry_set_delivery(prod, NULL, NULL);
    free(big);
    /* the connection is as good as before: no reconnect, the next message passes */
    publish_bodies(prod, dest, "after", 1, "k");
    struct ferry_msg *r[1];
    size_t n = 0;
    int64_t deadline = now_ms() + scaled(30000);
    while (n == 0 && now_ms() < deadline)
        recv_msgs(cons, r, 1, &n, 200);
    ck_assert_msg(n == 1, "the message after the oversized one never arrived");
    ck_assert_msg(r[0]->body_len == 7 && !memcmp(r[0]->body, "after-0", 7),
                  "a message of %zu bytes arrived instead of the one after the oversized one",
                  r[0]->body_len);
    ferry_ack(cons, r[0]);
    ck_assert_int_eq(ferry_health(prod, &after), FERRY_OK);
    ck_assert_msg(after.reconnects == before.reconnects,
                  "the oversized message cost %llu reconnects",
                  (unsigned long long)(after.reconnects - before.reconnects));
    ck_assert_msg(after.state == FERRY_HEALTH_CONNECTED, "state %d after the oversized message: %s",
                  (int)after.state, after.reason);
    ferry_close(prod);
    ferry_close(cons);
}
END_TEST

/* Each subscriber of subs[n] (group NULL or "") gets every message once. */
static void private_round(bool fan_out)
{
    char dest[128];
    unique(dest, sizeof dest, fan_out ? "privfan" : "private");
    struct ferry_conn *prod = conn_open(), *a = conn_open(), *b = fan_out ? conn_open() : NULL;
    ck_assert_msg(ferry_subscribe(a, dest, NULL) == FERRY_OK, "subscribe with group NULL: %s",
                  ferry_conn_error(a));
    if (b)
        ck_assert_msg(ferry_subscribe(b, dest, "") == FERRY_OK, "subscribe with group \"\": %s",
                      ferry_conn_error(b));
    struct ferry_conn *subs[2] = {a, b};
    size_t ns = b ? 2 : 1;
    warm_up(prod, dest, subs, ns);
    enum { N = 50 };
    publish_bodies(prod, dest, "p", N, NULL);
    for (size_t i = 0; i < ns; i++) {
        int hits[N] = {0};
        size_t got = drain(subs[i], N, hits, N, true, 30000);
        ck_assert_msg(got == N, "private subscriber %zu got %zu of %d", i + 1, got, N);
        for (int k = 0; k < N; k++)
            ck_assert_msg(hits[k] == 1, "private subscriber %zu: message %d came %d times", i + 1,
                          k, hits[k]);
    }
    ferry_close(prod);
    ferry_close(a);
    if (b)
        ferry_close(b);
}

START_TEST(test_private_subscription)
{
    private_round(false);
}
END_TEST

START_TEST(test_private_subscriptions_fan_out)
{
    private_round(true);
}
END_TEST

START_TEST(test_loans_open_at_close_come_back)
{
    char dest[128], group[64];
    unique(dest, sizeof dest, "loans");
    snprintf(group, sizeof group, "loan%d", (int)getpid());
    struct ferry_conn *prod = conn_open(), *a = conn_open();
    ck_assert(ferry_subscribe(a, dest, group) == FERRY_OK);
    warm_up(prod, dest, &a, 1);
    enum { N = 10 };
    publish_bodies(prod, dest, "l", N, "one.key");
    size_t got = 0;
    int64_t deadline = now_ms() + scaled(30000);
    while (got < N && now_ms() < deadline) {
        struct ferry_msg *r[N];
        size_t n = 0;
        recv_msgs(a, r, N - got, &n, 200);
        for (size_t i = 0; i < n; i++, got++) {
            /* ack the odd ones; the even ones stay lent when a closes.
             * Bodies are not NUL-terminated: parse a bounded copy (digits
             * left in the receive buffer by an earlier case once made
             * "l-4" read as 41, acked, and never back) */
            char text[16] = "";
            if (r[i]->body_len > 2 && r[i]->body_len < sizeof text)
                memcpy(text, r[i]->body, r[i]->body_len);
            size_t id = strtoul(text + 2, NULL, 10);
            if (id % 2)
                ck_assert_int_eq(ferry_ack(a, r[i]), FERRY_OK);
        }
    }
    ck_assert_msg(got == N, "received %zu of %d", got, N);
    ferry_close(a); /* five loans still open */
    struct ferry_conn *b = conn_open();
    ck_assert(ferry_subscribe(b, dest, group) == FERRY_OK);
    int hits[N] = {0};
    deadline = now_ms() + scaled(60000);
    bool all = false;
    while (!all && now_ms() < deadline) {
        drain(b, 1, hits, N, true, 200);
        all = true;
        for (int i = 0; i < N; i += 2)
            all = all && hits[i] > 0;
    }
    for (int i = 0; i < N; i += 2)
        ck_assert_msg(hits[i] > 0, "message %d, lent when the connection closed, never came back",
                      i);
    ferry_close(b);
    ferry_close(prod);
}
END_TEST

size_t delivery_cases(struct conf_case *out, size_t max)
{
    const struct conf_case cases[] = {
        {"volume", 0, 0, test_volume_every_message_arrives, NULL, 600},
        {"connection loss", 0, FERRY_CAP_CONFIRMS, test_connection_loss, conf_missing_cut, 600},
        {"durable", FERRY_CAP_DURABLE, FERRY_CAP_DURABLE, test_durable_survives_restart,
         conf_missing_restart, 600},
        {"oversized message", 0, 0, test_oversized_refused_before_sending, conf_missing_max_size,
         0},
        {"private subscription", 0, 0, test_private_subscription, NULL, 0},
        {"private fan-out", FERRY_CAP_FANOUT, FERRY_CAP_FANOUT, test_private_subscriptions_fan_out,
         NULL, 0},
        {"loans at close", FERRY_CAP_ACK, FERRY_CAP_ACK, test_loans_open_at_close_come_back, NULL,
         0},
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases && n < max; i++)
        out[n++] = cases[i];
    return n;
}

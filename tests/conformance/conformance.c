/* ferry-conformance: one suite that states what each capability promises
 * and checks it against any transport plugin, honouring its caps. Plugin
 * authors run it as `ferry-conformance --plugin NAME_OR_PATH -c FILE`;
 * sink authors as `ferry-conformance --sink NAME -c FILE` (sink.c). */
#include "config.h"

#include "conformance.h"

#include <check.h>
#include <ferry/ferry.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Settings from the command line, read by every (forked) test. */
struct ferry_config *conf_cfg;
const char *conf_reject;
double conf_scale = 1.0;
uint32_t conf_caps;
const char *conf_restart_cmd;
const char *conf_cut_cmd;
pid_t conf_proxy_pid;
int64_t conf_max_size;
size_t conf_volume = 100000;
bool conf_consumer_confirms;
static unsigned conf_seq;
/* --consumer-confirms: the producer of the last publish_all(). A
 * brokerless producer resends only while it is called, so every receive
 * gives it a turn (tests of that mode close it last). */
static struct ferry_conn *conf_pumped;

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t scaled(int64_t ms)
{
    return (int64_t)((double)ms * conf_scale);
}

struct ferry_conn *conn_open(void)
{
    char err[1024];
    int st;
    char id[64];
    snprintf(id, sizeof id, "ferry-conformance:%d", (int)getpid());
    struct ferry_conn *c = ferry_open(conf_cfg, id, &st, err, sizeof err);
    ck_assert_msg(c != NULL, "open failed: %s", err);
    return c;
}

void unique(char *buf, size_t len, const char *what)
{
    snprintf(buf, len, "ferry-conf-%s-%d-%u-%lld", what, (int)getpid(), ++conf_seq,
             (long long)(time(NULL) % 100000));
}

/* Probes: messages the suite sends until every consumer has seen one, so a
 * test starts only when all its consumers are really receiving (a Kafka
 * member has its partitions, a ZeroMQ peer has connected). Consumers ack
 * and skip probes wherever they show up. */
#define PROBE "ferry-conformance-probe"

bool is_probe(const struct ferry_msg *m)
{
    return m->body_len == sizeof PROBE - 1 && !memcmp(m->body, PROBE, sizeof PROBE - 1);
}

/* ferry_receive without the probes. */
int recv_msgs(struct ferry_conn *c, struct ferry_msg **out, size_t max, size_t *n, int timeout_ms)
{
    if (conf_pumped)
        ferry_flush(conf_pumped, 0);
    int rc = ferry_receive(c, out, max, n, timeout_ms);
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        if (is_probe(out[i]))
            ferry_ack(c, out[i]);
        else
            out[k++] = out[i];
    }
    *n = k;
    return rc == FERRY_OK && k == 0 ? FERRY_E_TIMEOUT : rc;
}

/* Publish one message, retrying while a transient condition lasts (no peer
 * yet, queue full), as the core's reliable publisher would. */
int publish_retry(struct ferry_conn *p, const struct ferry_msg *m, int64_t ms)
{
    int64_t deadline = now_ms() + scaled(ms);
    int rc;
    while (ferry_status_retriable(rc = ferry_publish(p, m)) && now_ms() < deadline)
        ferry_flush(p, 50);
    return rc;
}

/* Send probes on dest until each of the n consumers has received one. */
void warm_up(struct ferry_conn *prod, const char *dest, struct ferry_conn **cons, size_t n)
{
    bool ready[8] = {false};
    size_t nready = 0;
    unsigned k = 0;
    int64_t deadline = now_ms() + scaled(60000);
    while (nready < n) {
        ck_assert_msg(now_ms() < deadline, "%zu of %zu consumers ready after 60 s", nready, n);
        char key[32];
        snprintf(key, sizeof key, "probe%u", k++);
        struct ferry_msg m = {.dest = dest,
                              .key = key,
                              .key_len = strlen(key),
                              .body = PROBE,
                              .body_len = sizeof PROBE - 1};
        int rc = publish_retry(prod, &m, 1000);
        ck_assert_msg(rc == FERRY_OK || ferry_status_retriable(rc), "probe: %s",
                      ferry_conn_error(prod));
        ferry_flush(prod, 200);
        /* rotate who polls first, one message each, so a shared queue
         * cannot hand every probe to the same member */
        for (size_t j0 = 0; j0 < n; j0++) {
            size_t i = (j0 + k) % n;
            struct ferry_msg *r[1];
            size_t got = 0;
            ferry_receive(cons[i], r, 1, &got, 100);
            for (size_t j = 0; j < got; j++) {
                ck_assert_msg(is_probe(r[j]), "a message arrived on a fresh destination");
                ferry_ack(cons[i], r[j]);
                if (!ready[i]) {
                    ready[i] = true;
                    nready++;
                }
            }
        }
    }
    /* settle the probes' confirms now, so they are not counted later */
    int64_t settle = now_ms() + scaled(30000);
    while (ferry_flush(prod, 200) == FERRY_E_TIMEOUT && now_ms() < settle)
        ;
}

/* Subscribe; readiness comes from warm_up(). */
static void subscribe_ready(struct ferry_conn *c, const char *dest, const char *group,
                            struct ferry_conn *other)
{
    (void)other;
    ck_assert_msg(ferry_subscribe(c, dest, group) == FERRY_OK, "subscribe %s: %s", dest,
                  ferry_conn_error(c));
}

struct report {
    uint64_t expect; /* tags 1..expect are the messages being published */
    uint64_t ok, failed;
    uint64_t seen[4096]; /* tags reported, to catch duplicates */
    size_t nseen;
};

static void on_report(void *ctx, uint64_t tag, int status, const char *reason)
{
    (void)reason;
    struct report *r = ctx;
    if (tag == 0 || tag > r->expect)
        return; /* not one of ours: a late probe confirm */
    for (size_t i = 0; i < r->nseen; i++)
        ck_assert_msg(r->seen[i] != tag, "tag %llu reported twice", (unsigned long long)tag);
    if (r->nseen < 4096)
        r->seen[r->nseen++] = tag;
    status == FERRY_OK ? r->ok++ : r->failed++;
}

void publish_all(struct ferry_conn *p, struct ferry_msg *msgs, size_t n)
{
    struct report *r = calloc(1, sizeof *r); /* freed below */
    r->expect = n;
    ferry_set_delivery(p, on_report, r);
    for (size_t i = 0; i < n; i++) {
        msgs[i].tag = i + 1;
        int rc = publish_retry(p, &msgs[i], 30000);
        ck_assert_msg(rc == FERRY_OK, "publish %zu: %s", i, ferry_conn_error(p));
    }
    if (conf_consumer_confirms) {
        /* The confirm is the consumer's ack, and the consumer has not
         * received anything yet; the stream cases check every confirm. */
        ck_assert_msg(ferry_flush(p, 0) != FERRY_OK || r->ok == n,
                      "flush said all confirmed before any consumer had them");
        ck_assert_msg(r->failed == 0, "%llu messages failed", (unsigned long long)r->failed);
        ferry_set_delivery(p, NULL, NULL);
        free(r);
        conf_pumped = p;
        return;
    }
    int64_t deadline = now_ms() + scaled(60000);
    int rc;
    while ((rc = ferry_flush(p, 1000)) == FERRY_E_TIMEOUT && now_ms() < deadline)
        ;
    ck_assert_msg(rc == FERRY_OK, "flush: %s (%s)", ferry_strerror(rc), ferry_conn_error(p));
    ck_assert_msg(r->failed == 0, "%llu messages failed", (unsigned long long)r->failed);
    if (conf_caps & FERRY_CAP_CONFIRMS)
        ck_assert_msg(r->ok == n, "confirmed %llu of %zu", (unsigned long long)r->ok, n);
    ferry_set_delivery(p, NULL, NULL);
    free(r);
}

void publish_bodies(struct ferry_conn *p, const char *dest, const char *prefix, size_t n,
                    const char *key)
{
    struct ferry_msg *msgs = calloc(n, sizeof *msgs); /* freed below */
    char(*bodies)[64] = calloc(n, sizeof *bodies);
    for (size_t i = 0; i < n; i++) {
        snprintf(bodies[i], sizeof bodies[i], "%s-%zu", prefix, i);
        char kb[32];
        snprintf(kb, sizeof kb, "k%zu", i % 7);
        const char *k = key ? key : kb;
        msgs[i] = (struct ferry_msg){.dest = dest,
                                     .key = strdup(k),
                                     .key_len = strlen(k),
                                     .body = bodies[i],
                                     .body_len = strlen(bodies[i])};
    }
    publish_all(p, msgs, n);
    for (size_t i = 0; i < n; i++)
        free((void *)msgs[i].key);
    free(msgs);
    free(bodies);
}

/* Receive until n messages arrived or the deadline; returns the count.
 * Bodies of the form PREFIX-INDEX are recorded in hits[]. */
size_t drain(struct ferry_conn *c, size_t n, int *hits, size_t nhits, bool ack, int64_t ms)
{
    size_t got = 0;
    int64_t deadline = now_ms() + scaled(ms);
    while (got < n && now_ms() < deadline) {
        struct ferry_msg *m[64];
        size_t k = 0;
        size_t want = n - got < 64 ? n - got : 64;
        int rc = recv_msgs(c, m, want, &k, 200);
        ck_assert_msg(rc == FERRY_OK || rc == FERRY_E_TIMEOUT, "receive: %s", ferry_conn_error(c));
        for (size_t i = 0; i < k; i++) {
            /* bodies are not NUL-terminated: parse a bounded copy */
            char text[64];
            int tl = m[i]->body_len < sizeof text ? (int)m[i]->body_len : (int)sizeof text - 1;
            snprintf(text, sizeof text, "%.*s", tl, (const char *)m[i]->body);
            const char *dash = strchr(text, '-');
            if (hits && dash) {
                size_t idx = (size_t)strtoul(dash + 1, NULL, 10);
                if (idx < nhits)
                    hits[idx]++;
            }
            if (ack)
                ck_assert_msg(ferry_ack(c, m[i]) == FERRY_OK || !(conf_caps & FERRY_CAP_ACK),
                              "ack: %s", ferry_conn_error(c));
            else
                ferry_release(c, m[i]);
            got++;
        }
    }
    return got;
}

static const char *conf_missing_reject(void)
{
    return conf_reject ? NULL : "no --reject DEST given";
}

START_TEST(test_round_trip_body_key_headers)
{
    char dest[128], group[64];
    unique(dest, sizeof dest, "rt");
    snprintf(group, sizeof group, "g%d", (int)getpid());
    struct ferry_conn *prod = conn_open(), *cons = conn_open();
    subscribe_ready(cons, dest, group, NULL);
    warm_up(prod, dest, &cons, 1);
    static const char bin[] = {'a', 0, 'b', 1};
    struct ferry_header hs[] = {{"x-test", "hello", 5}, {"x-bin", bin, sizeof bin}};
    struct ferry_msg m = {.dest = dest,
                          .key = "svc.info",
                          .key_len = 8,
                          .headers = hs,
                          .n_headers = 2,
                          .body = "{\"id\":\"1\"}",
                          .body_len = 10};
    publish_all(prod, &m, 1);
    struct ferry_msg *r[1];
    size_t n = 0;
    int64_t deadline = now_ms() + scaled(30000);
    while (n == 0 && now_ms() < deadline)
        recv_msgs(cons, r, 1, &n, 500);
    ck_assert_msg(n == 1, "message not received within 30 s");
    ck_assert_uint_eq(r[0]->body_len, 10);
    ck_assert(memcmp(r[0]->body, "{\"id\":\"1\"}", 10) == 0);
    ck_assert_msg(r[0]->key_len == 8 && memcmp(r[0]->key, "svc.info", 8) == 0, "key lost");
    const struct ferry_header *h1 = ferry_msg_header(r[0], "x-test");
    const struct ferry_header *h2 = ferry_msg_header(r[0], "x-bin");
    ck_assert_msg(h1 && h1->value_len == 5 && !memcmp(h1->value, "hello", 5), "header x-test lost");
    ck_assert_msg(h2 && h2->value_len == sizeof bin && !memcmp(h2->value, bin, sizeof bin),
                  "binary header value changed");
    ck_assert_str_eq(r[0]->dest, dest);
    ck_assert_int_eq(ferry_ack(cons, r[0]), FERRY_OK);
    ferry_close(prod);
    ferry_close(cons);
}
END_TEST

START_TEST(test_empty_binary_and_large_bodies)
{
    char dest[128], group[64];
    unique(dest, sizeof dest, "bodies");
    snprintf(group, sizeof group, "g%d", (int)getpid());
    struct ferry_conn *prod = conn_open(), *cons = conn_open();
    subscribe_ready(cons, dest, group, NULL);
    warm_up(prod, dest, &cons, 1);
    size_t big = 1u << 20;
    unsigned char *large = malloc(big), binary[256];
    for (size_t i = 0; i < big; i++)
        large[i] = (unsigned char)(i * 31 + 7);
    for (int i = 0; i < 256; i++)
        binary[i] = (unsigned char)i;
    struct ferry_msg ms[3] = {
        {.dest = dest, .key = "k", .key_len = 1, .body = "", .body_len = 0},
        {.dest = dest, .key = "k", .key_len = 1, .body = binary, .body_len = sizeof binary},
        {.dest = dest, .key = "k", .key_len = 1, .body = large, .body_len = big}};
    publish_all(prod, ms, 3);
    bool seen[3] = {false, false, false};
    int64_t deadline = now_ms() + scaled(30000);
    size_t got = 0;
    while (got < 3 && now_ms() < deadline) {
        struct ferry_msg *r[3];
        size_t n = 0;
        recv_msgs(cons, r, 3, &n, 500);
        for (size_t i = 0; i < n; i++, got++) {
            if (r[i]->body_len == 0)
                seen[0] = true;
            else if (r[i]->body_len == sizeof binary && !memcmp(r[i]->body, binary, sizeof binary))
                seen[1] = true;
            else if (r[i]->body_len == big && !memcmp(r[i]->body, large, big))
                seen[2] = true;
            else
                ck_abort_msg("a body of %zu bytes came back changed", r[i]->body_len);
            ferry_ack(cons, r[i]);
        }
    }
    ck_assert_msg(seen[0], "empty body lost");
    ck_assert_msg(seen[1], "binary body lost");
    ck_assert_msg(seen[2], "1 MiB body lost");
    free(large);
    ferry_close(prod);
    ferry_close(cons);
}
END_TEST

START_TEST(test_order_kept_per_key)
{
    char dest[128], group[64];
    unique(dest, sizeof dest, "order");
    snprintf(group, sizeof group, "g%d", (int)getpid());
    struct ferry_conn *prod = conn_open(), *cons = conn_open();
    subscribe_ready(cons, dest, group, NULL);
    warm_up(prod, dest, &cons, 1);
    enum { N = 300 };
    publish_bodies(prod, dest, "o", N, "same.key");
    size_t next = 0;
    int64_t deadline = now_ms() + scaled(30000);
    while (next < N && now_ms() < deadline) {
        struct ferry_msg *r[64];
        size_t n = 0;
        recv_msgs(cons, r, 64, &n, 200);
        for (size_t i = 0; i < n; i++) {
            char want[32];
            snprintf(want, sizeof want, "o-%zu", next);
            ck_assert_msg(r[i]->body_len == strlen(want) && !memcmp(r[i]->body, want, strlen(want)),
                          "message %zu out of order", next);
            next++;
            ferry_ack(cons, r[i]);
        }
    }
    ck_assert_msg(next == N, "received %zu of %d", next, N);
    ferry_close(prod);
    ferry_close(cons);
}
END_TEST

START_TEST(test_group_members_share_work)
{
    char dest[128], group[64];
    unique(dest, sizeof dest, "share");
    snprintf(group, sizeof group, "g%d", (int)getpid());
    struct ferry_conn *prod = conn_open(), *a = conn_open(), *b = conn_open();
    subscribe_ready(a, dest, group, NULL);
    subscribe_ready(b, dest, group, a);
    warm_up(prod, dest, (struct ferry_conn *[]){a, b}, 2);
    enum { N = 400 };
    publish_bodies(prod, dest, "s", N, NULL);
    int hits[N] = {0};
    size_t ga = 0, gb = 0;
    int64_t deadline = now_ms() + scaled(60000);
    /* take a few at a time from each member, as two live consumers would */
    while (ga + gb < N && now_ms() < deadline) {
        ga += drain(a, 8, hits, N, true, 50);
        gb += drain(b, 8, hits, N, true, 50);
    }
    for (int i = 0; i < N; i++)
        ck_assert_msg(hits[i] == 1, "message %d delivered %d times", i, hits[i]);
    ck_assert_msg(ga > 0 && gb > 0, "no sharing: %zu and %zu", ga, gb);
    ferry_close(prod);
    ferry_close(a);
    ferry_close(b);
}
END_TEST

START_TEST(test_each_group_gets_everything)
{
    char dest[128], g1[64], g2[64];
    unique(dest, sizeof dest, "fanout");
    snprintf(g1, sizeof g1, "g1-%d", (int)getpid());
    snprintf(g2, sizeof g2, "g2-%d", (int)getpid());
    struct ferry_conn *prod = conn_open(), *a = conn_open(), *b = conn_open();
    subscribe_ready(a, dest, g1, NULL);
    subscribe_ready(b, dest, g2, a);
    warm_up(prod, dest, (struct ferry_conn *[]){a, b}, 2);
    enum { N = 100 };
    publish_bodies(prod, dest, "f", N, NULL);
    int ha[N] = {0}, hb[N] = {0};
    size_t ga = drain(a, N, ha, N, true, 30000);
    size_t gb = drain(b, N, hb, N, true, 30000);
    ck_assert_msg(ga == N && gb == N, "group 1 got %zu, group 2 got %zu of %d", ga, gb, N);
    for (int i = 0; i < N; i++)
        ck_assert_msg(ha[i] == 1 && hb[i] == 1, "message %d: %d and %d copies", i, ha[i], hb[i]);
    ferry_close(prod);
    ferry_close(a);
    ferry_close(b);
}
END_TEST

START_TEST(test_unacked_messages_come_back_after_close)
{
    char dest[128], group[64];
    unique(dest, sizeof dest, "redeliver");
    snprintf(group, sizeof group, "g%d", (int)getpid());
    struct ferry_conn *prod = conn_open(), *a = conn_open();
    subscribe_ready(a, dest, group, NULL);
    warm_up(prod, dest, &a, 1);
    enum { N = 20 };
    publish_bodies(prod, dest, "r", N, NULL);
    /* take them all, decide nothing, and go away */
    struct ferry_msg *held[N];
    size_t got = 0;
    int64_t deadline = now_ms() + scaled(30000);
    while (got < N && now_ms() < deadline) {
        size_t n = 0;
        recv_msgs(a, held + got, N - got, &n, 200);
        got += n;
    }
    ck_assert_msg(got == N, "first consumer got %zu of %d", got, N);
    ferry_close(a); /* loans end implicitly: no ack */
    struct ferry_conn *b = conn_open();
    ck_assert(ferry_subscribe(b, dest, group) == FERRY_OK);
    int hits[N] = {0};
    size_t again = drain(b, N, hits, N, true, 60000);
    ck_assert_msg(again >= N, "only %zu of %d came back", again, N);
    for (int i = 0; i < N; i++)
        ck_assert_msg(hits[i] >= 1, "message %d never came back", i);
    ferry_close(b);
    ferry_close(prod);
}
END_TEST

START_TEST(test_nack_requeue_and_release_redeliver)
{
    char dest[128], group[64];
    unique(dest, sizeof dest, "nack");
    snprintf(group, sizeof group, "g%d", (int)getpid());
    struct ferry_conn *prod = conn_open(), *c = conn_open();
    subscribe_ready(c, dest, group, NULL);
    warm_up(prod, dest, &c, 1);
    publish_bodies(prod, dest, "n", 1, "one");
    int hits[1] = {0};
    for (int round = 0; round < 3; round++) {
        struct ferry_msg *r[1];
        size_t n = 0;
        int64_t deadline = now_ms() + scaled(30000);
        while (n == 0 && now_ms() < deadline)
            recv_msgs(c, r, 1, &n, 200);
        ck_assert_msg(n == 1, "round %d: message did not come back", round);
        ck_assert(r[0]->body_len == 3 && !memcmp(r[0]->body, "n-0", 3));
        hits[0]++;
        if (round == 0)
            ck_assert_int_eq(ferry_nack(c, r[0], true, "try again"), FERRY_OK);
        else if (round == 1)
            ferry_release(c, r[0]);
        else
            ck_assert_int_eq(ferry_ack(c, r[0]), FERRY_OK);
    }
    ck_assert_int_eq(hits[0], 3);
    ferry_close(prod);
    ferry_close(c);
}
END_TEST

START_TEST(test_nack_without_requeue_goes_to_reject)
{
    char dest[128], group[64];
    unique(dest, sizeof dest, "reject");
    snprintf(group, sizeof group, "g%d", (int)getpid());
    struct ferry_conn *prod = conn_open(), *rej = conn_open(), *c = conn_open();
    subscribe_ready(rej, conf_reject, "conformance-reject", NULL);
    subscribe_ready(c, dest, group, rej);
    warm_up(prod, conf_reject, &rej, 1);
    warm_up(prod, dest, &c, 1);
    char body[64];
    snprintf(body, sizeof body, "x-%d", (int)getpid());
    struct ferry_msg m = {
        .dest = dest, .key = "k", .key_len = 1, .body = body, .body_len = strlen(body)};
    publish_all(prod, &m, 1);
    struct ferry_msg *r[1];
    size_t n = 0;
    int64_t deadline = now_ms() + scaled(30000);
    while (n == 0 && now_ms() < deadline)
        recv_msgs(c, r, 1, &n, 200);
    ck_assert_msg(n == 1, "message not received");
    ck_assert_int_eq(ferry_nack(c, r[0], false, "field x is wrong"), FERRY_OK);
    bool found = false;
    deadline = now_ms() + scaled(30000);
    while (!found && now_ms() < deadline) {
        n = 0;
        recv_msgs(rej, r, 1, &n, 200);
        if (n && r[0]->body_len == strlen(body) && !memcmp(r[0]->body, body, strlen(body))) {
            const struct ferry_header *h = ferry_msg_header(r[0], "x-ferry-error");
            ck_assert_msg(h && memmem(h->value, h->value_len, "field x is wrong", 16),
                          "reject carries no x-ferry-error with the reason");
            found = true;
        }
        if (n)
            ferry_ack(rej, r[0]);
    }
    ck_assert_msg(found, "rejected message not at %s", conf_reject);
    ferry_close(prod);
    ferry_close(c);
    ferry_close(rej);
}
END_TEST

START_TEST(test_health_reports_connected)
{
    struct ferry_conn *c = conn_open(), *cons = conn_open();
    char dest[128];
    unique(dest, sizeof dest, "health");
    subscribe_ready(cons, dest, "health", NULL);
    warm_up(c, dest, &cons, 1);
    publish_bodies(c, dest, "h", 1, NULL);
    if (conf_consumer_confirms) { /* settled once the consumer acks it */
        ck_assert_uint_eq(drain(cons, 1, NULL, 0, true, 30000), 1);
        int64_t deadline = now_ms() + scaled(30000);
        while (ferry_flush(c, 200) == FERRY_E_TIMEOUT && now_ms() < deadline)
            ;
    }
    struct ferry_health h;
    ck_assert_int_eq(ferry_health(c, &h), FERRY_OK);
    ck_assert_msg(h.state == FERRY_HEALTH_CONNECTED, "state %d: %s", (int)h.state, h.reason);
    ck_assert_uint_eq(h.inflight, 0);
    ferry_close(cons);
    ferry_close(c);
}
END_TEST

/* Every case the suite knows, in the order it runs them. */
static size_t all_cases(struct conf_case *out, size_t max)
{
    const struct conf_case structural[] = {
        {"round trip", 0, 0, test_round_trip_body_key_headers, NULL, 0},
        {"bodies", 0, 0, test_empty_binary_and_large_bodies, NULL, 0},
        {"health", 0, 0, test_health_reports_connected, NULL, 0},
        {"order per key", FERRY_CAP_KEY_ORDER, FERRY_CAP_KEY_ORDER, test_order_kept_per_key, NULL,
         0},
        {"groups", FERRY_CAP_GROUPS, FERRY_CAP_GROUPS, test_group_members_share_work, NULL, 0},
        {"fan-out", FERRY_CAP_FANOUT, FERRY_CAP_FANOUT, test_each_group_gets_everything, NULL, 0},
        {"redelivery", FERRY_CAP_ACK, FERRY_CAP_ACK, test_unacked_messages_come_back_after_close,
         NULL, 0},
        {"nack requeue", FERRY_CAP_ACK, FERRY_CAP_ACK, test_nack_requeue_and_release_redeliver,
         NULL, 0},
        {"dead-letter", FERRY_CAP_DEADLETTER, FERRY_CAP_DEADLETTER,
         test_nack_without_requeue_goes_to_reject, conf_missing_reject, 0},
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof structural / sizeof *structural && n < max; i++)
        out[n++] = structural[i];
    return n + delivery_cases(out + n, max - n);
}

/* Is case `what` among the comma-separated names of --only (NULL: all)? */
static bool selected(const char *only, const char *what)
{
    if (!only)
        return true;
    size_t wl = strlen(what);
    for (const char *p = only; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == wl && !strncmp(p, what, l))
            return true;
        p += l + (e ? 1 : 0);
    }
    return false;
}

enum { MAX_CASES = 32 };
struct plan {
    struct conf_case cases[MAX_CASES];
    size_t n;
    bool run[MAX_CASES];
    const char *why_not[MAX_CASES]; /* why a case did not run */
};

/* One Check test case per suite case, named after it, so the verdict can
 * tell which passed. */
static Suite *conformance_suite(const char *name, uint32_t caps, const char *only, struct plan *pl,
                                FILE *notes)
{
    Suite *s = suite_create(name);
    pl->n = all_cases(pl->cases, MAX_CASES);
    for (size_t i = 0; i < pl->n; i++) {
        const struct conf_case *k = &pl->cases[i];
        const char *why = NULL;
        if ((caps & k->need) != k->need)
            continue; /* said once per capability in the verdict */
        if (!selected(only, k->what)) {
            pl->why_not[i] = "not selected by --only";
            continue;
        }
        if (k->missing)
            why = k->missing();
        if (why) {
            pl->why_not[i] = why;
            fprintf(notes, "conformance[%s]: not run: %s (%s)\n", name, k->what, why);
            continue;
        }
        TCase *tc = tcase_create(k->what);
        tcase_set_timeout(tc, (k->timeout_s ? k->timeout_s : 180) * conf_scale);
        tcase_add_test(tc, k->t);
        suite_add_tcase(s, tc);
        pl->run[i] = true;
    }
    return s;
}

/* Which claimed capabilities the run proved. Returns the number of
 * claimed capabilities nothing verified; prints one line for each. */
static int verdict(const char *name, uint32_t caps, struct plan *pl, SRunner *sr)
{
    bool passed[MAX_CASES] = {false};
    TestResult **res = srunner_results(sr);
    int nres = srunner_ntests_run(sr);
    for (size_t i = 0; i < pl->n; i++) {
        if (!pl->run[i])
            continue;
        bool ok = false;
        for (int r = 0; r < nres; r++)
            if (!strcmp(tr_tcname(res[r]), pl->cases[i].what))
                ok = tr_rtype(res[r]) == CK_PASS;
        passed[i] = ok;
    }
    free(res);
    char cases_failed[512] = "";
    for (size_t i = 0; i < pl->n; i++)
        if (pl->run[i] && !passed[i]) {
            size_t l = strlen(cases_failed);
            snprintf(cases_failed + l, sizeof cases_failed - l, "%s%s", l ? ", " : "",
                     pl->cases[i].what);
        }
    if (*cases_failed)
        fprintf(stderr, "conformance[%s]: failed cases: %s\n", name, cases_failed);
    char verified[256] = "", failed[256] = "";
    int unverified = 0;
    for (uint32_t bit = 1; bit && bit <= FERRY_CAP_FANOUT; bit <<= 1) {
        const char *cap = ferry_cap_name(bit);
        if (!cap)
            continue;
        if (!(caps & bit)) {
            fprintf(stderr,
                    "conformance[%s]: not run: cases of %s (the plugin does not claim it)\n", name,
                    cap);
            continue;
        }
        bool any_pass = false, any_fail = false;
        char why[512] = "";
        for (size_t i = 0; i < pl->n; i++) {
            if (!(pl->cases[i].verifies & bit))
                continue;
            if (pl->run[i]) {
                any_pass |= passed[i];
                any_fail |= !passed[i];
            } else if (pl->why_not[i] && !strstr(why, pl->why_not[i])) {
                size_t l = strlen(why);
                snprintf(why + l, sizeof why - l, "%s%s: %s", l ? "; " : "", pl->cases[i].what,
                         pl->why_not[i]);
            }
        }
        char *list = any_fail ? failed : any_pass ? verified : NULL;
        if (list) {
            size_t l = strlen(list);
            snprintf(list + l, 256 - l, "%s%s", l ? ", " : "", cap);
        } else {
            fprintf(stderr, "conformance[%s]: not verified: %s (%s)\n", name, cap,
                    *why ? why : "no case proves it");
            unverified++;
        }
    }
    fprintf(stderr, "conformance[%s]: verified: %s\n", name, *verified ? verified : "(none)");
    if (*failed)
        fprintf(stderr, "conformance[%s]: FAILED capabilities: %s\n", name, failed);
    return unverified;
}

/* The size limit to test: --max-message-size, else the plugin's own
 * max_message_size option as this configuration sets it. */
static int64_t plugin_max_size(const struct ferry_transport *t)
{
    for (const struct ferry_option *o = t->options; o && o->name; o++) {
        if (strcmp(o->name, "max_message_size") || o->type != FERRY_OPT_SIZE)
            continue;
        const char *text = ferry_config_get(conf_cfg, t->name, o->name);
        int64_t v = 0;
        char err[256];
        if (!text)
            text = o->def;
        /* the parser writes at o->offset of a cfg struct */
        char *cfg = calloc(1, o->offset + sizeof v); /* freed below */
        if (cfg && text && ferry_option_parse(o, text, cfg, err, sizeof err) == FERRY_OK)
            memcpy(&v, cfg + o->offset, sizeof v);
        free(cfg);
        return v;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(
        f, "Usage: ferry-conformance --plugin NAME_OR_PATH [-c FILE] [OPTION...]\n"
           "       ferry-conformance --sink NAME_OR_PATH [-c FILE] [--verify-cmd CMD]\n"
           "                         [--reject-body BODY]\n\n"
           "Run the transport conformance suite against a plugin. Structural cases run\n"
           "for every plugin: round trip of body, key and headers; empty, binary and\n"
           "1 MiB bodies; health; a volume of --volume messages through one subscription\n"
           "with a consumer slower than the producer for the first second, counted by id;\n"
           "the size limit; private subscriptions (group NULL and \"\"). Each capability\n"
           "the plugin claims adds its cases: order per key, groups, fan-out (also with\n"
           "private subscriptions), ack (redelivery after close, nack/requeue, loans open\n"
           "at close), dead-letter (--reject), confirms (connection loss: --cut-cmd or\n"
           "--proxy), durable (--restart-cmd). A claimed capability that no case verified\n"
           "is printed as \"not verified: CAP (why)\".\n\n"
           "With --consumer-confirms (a brokerless transport whose confirm is the\n"
           "consumer's ack, like zmq with reliable = true), structural cases do not wait\n"
           "for confirms before consuming; every receive gives the producer a turn to\n"
           "resend, and the volume and connection-loss cases check every confirm.\n\n"
           "With --sink, run the sink suite instead: a batch lands once, health, and one\n"
           "case for each capability the sink claims (idempotent: a batch written twice\n"
           "lands once; transactional: nothing lands after abort; durable: it survives\n"
           "close and reopen; per-record: BODY is refused alone, with a reason). What\n"
           "landed is read back with the sink's count operation, or from CMD, a shell\n"
           "command printing every landed id on a line. A claimed capability that cannot\n"
           "be checked is printed and fails the run (exit 1).\n\n"
           "  -p, --plugin NAME_OR_PATH   the transport plugin to test\n"
           "  -c, --config FILE           the config file the plugin's section is read from\n"
           "  -r, --reject DEST           the reject destination the config sets up (dead-letter)\n"
           "      --restart-cmd CMD       restarts the broker, keeping its data; run with\n"
           "                              /bin/sh -c, must exit 0 once the broker is back or\n"
           "                              coming back (durable)\n"
           "      --cut-cmd CMD           cuts every connection of the plugin to its broker\n"
           "                              mid-stream (connection loss)\n"
           "      --proxy LISTEN:TARGET   start a TCP proxy from LISTEN (HOST:PORT) to TARGET\n"
           "                              (HOST:PORT) and cut through it when no --cut-cmd is\n"
           "                              given; point the config at LISTEN\n"
           "      --max-message-size N    the largest body the plugin accepts, as configured\n"
           "                              (default: the plugin's max_message_size option)\n"
           "      --volume N              messages of the volume case (default 100000)\n"
           "      --consumer-confirms     confirms come from the consumer's acks (see above)\n"
           "      --only CASE[,CASE...]   run only these cases (names as printed)\n"
           "      --allow-unverified      exit 77 instead of 2 when only verification is missing\n"
           "  -s, --sink NAME_OR_PATH     the sink plugin to test (instead of --plugin)\n"
           "      --verify-cmd CMD        with --sink: prints the landed ids, one per line\n"
           "      --reject-body BODY      with --sink: a body the sink refuses for good\n"
           "  -h, --help                  this text\n\n"
           "FERRY_TEST_TIMEOUT_SCALE stretches every deadline (e.g. 4 on a busy machine).\n\n"
           "Exit status:\n"
           "   0  every case passed and every claimed capability was verified\n"
           "   1  a case failed\n"
           "   2  every case passed, but a claimed capability was not verified\n"
           "  64  usage error\n"
           "  69  the broker is unavailable (the first connection failed and may be retried)\n"
           "  70  internal error (the proxy could not start)\n"
           "  77  as 2, with --allow-unverified\n"
           "  78  the plugin or the config is unusable\n");
}

int main(int argc, char **argv)
{
    enum {
        OPT_RESTART = 256,
        OPT_CUT,
        OPT_PROXY,
        OPT_MAX,
        OPT_VOLUME,
        OPT_ONLY,
        OPT_ALLOW,
        OPT_CONSUMER_CONFIRMS
    };
    static const struct option lo[] = {
        {"plugin", required_argument, NULL, 'p'},
        {"config", required_argument, NULL, 'c'},
        {"reject", required_argument, NULL, 'r'},
        {"restart-cmd", required_argument, NULL, OPT_RESTART},
        {"cut-cmd", required_argument, NULL, OPT_CUT},
        {"proxy", required_argument, NULL, OPT_PROXY},
        {"max-message-size", required_argument, NULL, OPT_MAX},
        {"volume", required_argument, NULL, OPT_VOLUME},
        {"only", required_argument, NULL, OPT_ONLY},
        {"allow-unverified", no_argument, NULL, OPT_ALLOW},
        {"consumer-confirms", no_argument, NULL, OPT_CONSUMER_CONFIRMS},
        {"sink", required_argument, NULL, 's'},
        {"verify-cmd", required_argument, NULL, 'V'},
        {"reject-body", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *plugin = NULL, *file = NULL, *proxy = NULL, *only = NULL, *sink = NULL,
               *verify_cmd = NULL, *reject_body = NULL;
    bool allow_unverified = false;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "p:c:r:s:h", lo, NULL)) != -1) {
        switch (c) {
        case 'p': plugin = optarg; break;
        case 'c': file = optarg; break;
        case 'r': conf_reject = optarg; break;
        case OPT_RESTART: conf_restart_cmd = optarg; break;
        case OPT_CUT: conf_cut_cmd = optarg; break;
        case OPT_PROXY: proxy = optarg; break;
        case OPT_ONLY: only = optarg; break;
        case OPT_ALLOW: allow_unverified = true; break;
        case OPT_CONSUMER_CONFIRMS: conf_consumer_confirms = true; break;
        case OPT_MAX:
            conf_max_size = strtoll(optarg, &end, 10);
            if (*end || conf_max_size <= 0) {
                fprintf(stderr, "ferry-conformance: --max-message-size wants bytes, not %s\n",
                        optarg);
                return 64;
            }
            break;
        case OPT_VOLUME:
            conf_volume = strtoul(optarg, &end, 10);
            if (*end || conf_volume < 100 || conf_volume > 100000000) {
                fprintf(stderr, "ferry-conformance: --volume wants 100 to 100000000, not %s\n",
                        optarg);
                return 64;
            }
            break;
        case 's': sink = optarg; break;
        case 'V': verify_cmd = optarg; break;
        case 'B': reject_body = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 64;
        }
    }
    if (!plugin == !sink || optind < argc) {
        usage(stderr);
        return 64;
    }
    const char *scale = getenv("FERRY_TEST_TIMEOUT_SCALE");
    if (scale && atof(scale) > 0)
        conf_scale = atof(scale);
    char err[1024];
    if (proxy) {
        /* LISTEN:TARGET, each HOST:PORT: the second colon separates them */
        const char *mid = strchr(proxy, ':');
        mid = mid ? strchr(mid + 1, ':') : NULL;
        if (!mid) {
            fprintf(stderr, "ferry-conformance: --proxy wants LISTEN_HOST:PORT:TARGET_HOST:PORT\n");
            return 64;
        }
        char listen_spec[256];
        snprintf(listen_spec, sizeof listen_spec, "%.*s", (int)(mid - proxy), proxy);
        conf_proxy_pid = conf_proxy_start(listen_spec, mid + 1, err, sizeof err);
        if (conf_proxy_pid < 0) {
            fprintf(stderr, "ferry-conformance: %s\n", err);
            return 70;
        }
    }
    conf_cfg = ferry_config_new();
    if (file && ferry_config_load(conf_cfg, file, err, sizeof err)) {
        fprintf(stderr, "ferry-conformance: %s\n", err);
        return 78;
    }
    if (sink) {
        int rc = sink_conformance(sink, conf_cfg, verify_cmd, reject_body, conf_scale);
        ferry_config_free(conf_cfg);
        return rc;
    }
    ferry_config_set(conf_cfg, "transport", "plugin", plugin, FERRY_SRC_FLAG);
    /* learn the effective caps from one real connection */
    int st;
    struct ferry_conn *probe = ferry_open(conf_cfg, "ferry-conformance", &st, err, sizeof err);
    if (!probe) {
        fprintf(stderr, "ferry-conformance: cannot open %s: %s\n", plugin, err);
        return ferry_status_retriable(st) ? 69 : 78;
    }
    conf_caps = probe->caps;
    if (!conf_max_size)
        conf_max_size = plugin_max_size(probe->transport);
    char name[64], capn[160];
    snprintf(name, sizeof name, "%s", probe->transport->name);
    fprintf(stderr, "conformance[%s]: capabilities %s\n", name,
            ferry_caps_str(conf_caps, capn, sizeof capn));
    ferry_close(probe);

    struct plan pl = {.n = 0};
    SRunner *sr = srunner_create(conformance_suite(name, conf_caps, only, &pl, stderr));
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    int unverified = verdict(name, conf_caps, &pl, sr);
    srunner_free(sr);
    ferry_config_free(conf_cfg);
    if (conf_proxy_pid > 0) {
        kill(conf_proxy_pid, SIGTERM);
        waitpid(conf_proxy_pid, NULL, 0);
    }
    if (failed)
        return 1;
    if (unverified)
        return allow_unverified ? 77 : 2;
    return 0;
}

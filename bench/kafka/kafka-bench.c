/* Throughput of plain librdkafka against the same work through kafka.so
 * (loaded by libferry): produce with delivery reports, then consume as a
 * group member committing offsets. Alternates ROUNDS times, prints medians.
 * Usage: kafka-bench [-b BROKERS] [-n COUNT] [-s BYTES] [-r ROUNDS] [-p PLUGIN_DIR] */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ferry/ferry.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define BENCH_PARTITIONS 6
#define BENCH_BATCH 500

static const char *bench_brokers;
static rd_kafka_mock_cluster_t *bench_mock;
static long bench_reports, bench_failed;

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_topic(char *buf, size_t len, const char *what, int round)
{
    snprintf(buf, len, "bench-%s-%d-%d", what, (int)getpid(), round);
    if (bench_mock)
        rd_kafka_mock_topic_create(bench_mock, buf, BENCH_PARTITIONS, 1);
}

static void bench_key(char *buf, size_t len, long i)
{
    /* enough keys to spread over every partition */
    snprintf(buf, len, "service%ld.info", i % 64);
}

/* ---- plain librdkafka ---------------------------------------------------- */

static void bench_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    bench_reports++;
    if (m->err)
        bench_failed++;
}

static rd_kafka_conf_t *bench_conf(void)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new(); /* owned by the handle made from it */
    rd_kafka_conf_set(conf, "bootstrap.servers", bench_brokers, err, sizeof err);
    return conf;
}

static double bench_plain_produce(const char *topic, long n, size_t size)
{
    char err[256];
    rd_kafka_conf_t *conf = bench_conf();
    rd_kafka_conf_set(conf, "acks", "all", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err);
    rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof err);
    rd_kafka_conf_set_dr_msg_cb(conf, bench_dr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err); /* destroyed below */
    if (!rk)
        return -1;
    char *body = malloc(size); /* freed below */
    memset(body, 'x', size);
    bench_reports = bench_failed = 0;
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        char key[32];
        bench_key(key, sizeof key, i);
        for (;;) {
            rd_kafka_resp_err_t e =
                rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                  RD_KAFKA_V_VALUE(body, size),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            rd_kafka_poll(rk, 10);
        }
        rd_kafka_poll(rk, 0);
    }
    while (bench_reports < n)
        rd_kafka_poll(rk, 100);
    double t1 = bench_now();
    free(body);
    rd_kafka_destroy(rk);
    return bench_failed == 0 ? (double)n / (t1 - t0) : -1;
}

static double bench_plain_consume(const char *topic, long n)
{
    char err[256], group[128];
    snprintf(group, sizeof group, "%s-plain", topic);
    rd_kafka_conf_t *conf = bench_conf();
    rd_kafka_conf_set(conf, "group.id", group, err, sizeof err);
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err);
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "100", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err); /* destroyed below */
    if (!rk)
        return -1;
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    long got = 0;
    double t0 = 0, deadline = bench_now() + 120;
    while (got < n && bench_now() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m)
            continue;
        if (!m->err) {
            if (got++ == 0)
                t0 = bench_now();
        }
        rd_kafka_message_destroy(m);
    }
    double t1 = bench_now();
    rd_kafka_commit(rk, NULL, 0);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    /* the first message starts the clock: the group join is not throughput */
    return got == n ? (double)(n - 1) / (t1 - t0) : -1;
}

/* ---- through kafka.so ---------------------------------------------------- */

static void bench_delivered(void *ctx, uint64_t tag, int status, const char *reason)
{
    (void)ctx;
    (void)tag;
    (void)reason;
    bench_reports++;
    if (status != FERRY_OK)
        bench_failed++;
}

static struct ferry_conn *bench_open(const char *plugin_dir)
{
    char err[512];
    int st;
    struct ferry_config *cfg = ferry_config_new(); /* freed below */
    if (!cfg)
        return NULL;
    ferry_config_set(cfg, "transport", "plugin", "kafka", FERRY_SRC_FLAG);
    if (plugin_dir)
        ferry_config_set(cfg, "transport", "plugin_path", plugin_dir, FERRY_SRC_FLAG);
    ferry_config_set(cfg, "kafka", "brokers", bench_brokers, FERRY_SRC_FLAG);
    ferry_config_set(cfg, "kafka", "session_timeout", "6s", FERRY_SRC_FLAG);
    struct ferry_conn *c = ferry_open(cfg, "kafka-bench", &st, err, sizeof err);
    if (!c)
        fprintf(stderr, "kafka-bench: open: %s\n", err);
    ferry_config_free(cfg);
    return c;
}

static double bench_ferry_produce(const char *dir, const char *topic, long n, size_t size)
{
    struct ferry_conn *c = bench_open(dir);
    if (!c)
        return -1;
    ferry_set_delivery(c, bench_delivered, NULL);
    char *body = malloc(size); /* freed below */
    memset(body, 'x', size);
    bench_reports = bench_failed = 0;
    bool ok = true;
    double t0 = bench_now();
    for (long i = 0; i < n && ok; i++) {
        char key[32];
        bench_key(key, sizeof key, i);
        struct ferry_msg m = {.dest = topic,
                              .key = key,
                              .key_len = strlen(key),
                              .body = body,
                              .body_len = size,
                              .tag = (uint64_t)i};
        int st;
        while ((st = ferry_publish(c, &m)) == FERRY_E_AGAIN)
            ferry_flush(c, 10);
        ok = st == FERRY_OK;
    }
    ok = ok && ferry_flush(c, 120000) == FERRY_OK;
    double t1 = bench_now();
    if (!ok)
        fprintf(stderr, "kafka-bench: ferry publish: %s\n", ferry_conn_error(c));
    free(body);
    ferry_close(c);
    return ok && bench_reports == n && bench_failed == 0 ? (double)n / (t1 - t0) : -1;
}

static double bench_ferry_consume(const char *dir, const char *topic, long n)
{
    struct ferry_conn *c = bench_open(dir);
    if (!c)
        return -1;
    char group[128];
    snprintf(group, sizeof group, "%s-ferry", topic);
    if (ferry_subscribe(c, topic, group) != FERRY_OK) {
        fprintf(stderr, "kafka-bench: subscribe: %s\n", ferry_conn_error(c));
        ferry_close(c);
        return -1;
    }
    long got = 0;
    double t0 = 0, deadline = bench_now() + 120;
    while (got < n && bench_now() < deadline) {
        struct ferry_msg *m[BENCH_BATCH];
        size_t k = 0;
        if (ferry_receive(c, m, BENCH_BATCH, &k, 1000) != FERRY_OK)
            continue;
        if (got == 0)
            t0 = bench_now();
        for (size_t i = 0; i < k; i++)
            ferry_ack(c, m[i]);
        got += (long)k;
    }
    double t1 = bench_now();
    ferry_close(c);
    return got == n ? (double)(n - 1) / (t1 - t0) : -1;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    /* the mock keeps about 5 MiB per partition: stay well below */
    long n = 100000;
    size_t size = 100;
    int rounds = 3, opt;
    const char *dir = NULL;
    while ((opt = getopt(argc, argv, "b:n:s:r:p:h")) != -1) {
        switch (opt) {
        case 'b': bench_brokers = optarg; break;
        case 'n': n = atol(optarg); break;
        case 's': size = (size_t)atol(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        case 'p': dir = optarg; break;
        default:
            fprintf(stderr, "usage: kafka-bench [-b BROKERS] [-n COUNT] [-s BYTES] [-r ROUNDS] "
                            "[-p PLUGIN_DIR]\nWithout -b it hosts librdkafka's mock cluster "
                            "in-process.\n");
            return opt == 'h' ? 0 : 64;
        }
    }
    if (n < 2 || rounds < 1 || rounds > 15 || size < 1)
        return 64;

    rd_kafka_t *host = NULL;
    if (!bench_brokers) {
        char err[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new(); /* owned by host */
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
        host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        bench_mock = host ? rd_kafka_mock_cluster_new(host, 1) : NULL;
        if (!bench_mock) {
            fprintf(stderr, "kafka-bench: cannot start the mock cluster\n");
            return 69;
        }
        bench_brokers = rd_kafka_mock_cluster_bootstraps(bench_mock);
    }

    double pp[15], fp[15], pc[15], fc[15];
    int rc = 0;
    for (int r = 0; r < rounds && rc == 0; r++) {
        char t1[96], t2[96];
        bench_topic(t1, sizeof t1, "plain", r);
        bench_topic(t2, sizeof t2, "ferry", r);
        pp[r] = bench_plain_produce(t1, n, size);
        fp[r] = bench_ferry_produce(dir, t2, n, size);
        pc[r] = bench_plain_consume(t1, n);
        fc[r] = bench_ferry_consume(dir, t2, n);
        fprintf(stderr, "round %d: produce %.0f / %.0f  consume %.0f / %.0f msgs/s\n", r + 1, pp[r],
                fp[r], pc[r], fc[r]);
        if (pp[r] < 0 || fp[r] < 0 || pc[r] < 0 || fc[r] < 0)
            rc = 1;
    }
    if (rc == 0) {
        double mpp = bench_median(pp, rounds), mfp = bench_median(fp, rounds);
        double mpc = bench_median(pc, rounds), mfc = bench_median(fc, rounds);
        printf("kafka-bench: %ld messages of %zu bytes, median of %d rounds, brokers %s%s\n", n,
               size, rounds, bench_brokers, bench_mock ? " (in-process mock)" : "");
        printf("  produce (acks=all, idempotent, delivery reports)\n");
        printf("    plain librdkafka:   %10.0f msgs/s\n", mpp);
        printf("    kafka.so:           %10.0f msgs/s   ratio %.2f\n", mfp, mfp / mpp);
        printf("  consume (group member, offsets committed)\n");
        printf("    plain librdkafka:   %10.0f msgs/s\n", mpc);
        printf("    kafka.so (ack each):%10.0f msgs/s   ratio %.2f\n", mfc, mfc / mpc);
    }
    if (bench_mock)
        rd_kafka_mock_cluster_destroy(bench_mock);
    if (host)
        rd_kafka_destroy(host);
    return rc;
}

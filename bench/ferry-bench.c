/* Benchmark driver program for `make bench`: publish, consume and latency
 * runs over one transport, either with the plain client library (raw) or
 * through libferry (ferry_open + ferry_pub_send / ferry_receive).
 * Prints one line of figures on stdout; bench/run-bench.sh collects them. */
#include "config.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <ferry/ferry.h>

enum bench_transport { BENCH_ZMQ, BENCH_AMQP, BENCH_KAFKA };

struct bench {
    const char *mode; /* pub, sub, lat, watch, drop */
    bool raw;         /* plain library instead of libferry */
    enum bench_transport t;
    const char *addr; /* zmq endpoint, AMQP URL or Kafka bootstrap servers */
    const char *conf; /* ferry configuration file (libferry runs) */
    const char *dest; /* queue, topic or ferry destination */
    const char *file; /* watch: the aggregator's output file; count: made once counting starts */
    const char *exchange; /* count -x: AMQP: declare the queue and bind it there first */
    long n;
    size_t size;
    long rate;
    bool warmup; /* -w: one message settled before the clock starts */
    /* latency run: shared by the two threads */
    atomic_bool warm; /* the consumer has seen a warm-up message */
    atomic_bool done;
    double *lat; /* microseconds, one per measured message */
    long n_lat;
    int status;
};

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t bench_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void bench_sleep(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Body of exactly size bytes (at least the header): a JSON object with an
 * id, the send time in ns (latency) and padding. warm marks warm-up ones. */
static size_t bench_body(char *buf, size_t size, const char *dest, long i, bool warm)
{
    int n = snprintf(buf, size + 1, "{\"id\":\"%s-%ld\",\"w\":%d,\"t\":%" PRId64 ",\"p\":\"", dest,
                     i, warm ? 1 : 0, bench_wall_ns());
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len + 2 > size) {
        len = (size_t)n;
    } else {
        memset(buf + len, 'x', size - len - 2);
        len = size - 2;
    }
    memcpy(buf + len, "\"}", 3);
    return len + 2;
}

/* Latency of a received body, or a negative value for a warm-up message. */
static double bench_body_latency(const void *body, size_t len)
{
    char tmp[96];
    size_t k = len < sizeof tmp - 1 ? len : sizeof tmp - 1;
    memcpy(tmp, body, k);
    tmp[k] = '\0';
    const char *w = strstr(tmp, "\"w\":");
    const char *t = strstr(tmp, "\"t\":");
    if (!w || !t)
        return -2;
    if (w[4] == '1')
        return -1;
    int64_t sent = strtoll(t + 4, NULL, 10);
    return (double)(bench_wall_ns() - sent) / 1e3;
}

/* Record one received message in a latency run; true once all are in. */
static bool bench_lat_seen(struct bench *b, const void *body, size_t len)
{
    double l = bench_body_latency(body, len);
    if (l == -1) {
        atomic_store(&b->warm, true);
        return false;
    }
    if (l >= 0 && b->n_lat < b->n)
        b->lat[b->n_lat++] = l;
    return b->n_lat >= b->n;
}

/* ---- plain libzmq ------------------------------------------------------- */

static void *zraw_ctx;

static int zraw_pub(struct bench *b, bool lat)
{
    void *s = zmq_socket(zraw_ctx, ZMQ_PUSH);
    int linger = -1;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(s, b->addr) != 0)
        return -1;
    char *body = malloc(b->size + 128); /* freed below */
    long warm = 0;
    while (lat && !atomic_load(&b->warm)) { /* warm-up until the consumer hears us */
        size_t len = bench_body(body, b->size, b->dest, warm++, true);
        zmq_send(s, body, len, 0);
        bench_sleep(0.01);
    }
    double t0 = bench_now(); /* after the warm-up: the schedule starts now */
    for (long i = 0; i < b->n; i++) {
        if (lat)
            bench_sleep(t0 + (double)i / (double)b->rate - bench_now());
        size_t len = bench_body(body, b->size, b->dest, i, false);
        if (zmq_send(s, body, len, 0) < 0) {
            free(body);
            return -1;
        }
    }
    zmq_close(s);
    if (!lat)
        zmq_ctx_term(zraw_ctx); /* returns once every message is handed over */
    double t1 = bench_now();
    free(body);
    if (!lat)
        printf("%.1f\n", (double)b->n / (t1 - t0));
    return 0;
}

static int zraw_sub(struct bench *b, bool lat)
{
    void *s = zmq_socket(zraw_ctx, ZMQ_PULL);
    int to = 200;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &to, sizeof to);
    if (zmq_bind(s, b->addr) != 0)
        return -1;
    long got = 0;
    double t0 = 0, deadline = bench_now() + 120;
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (bench_now() < deadline) {
        if (zmq_msg_recv(&m, s, 0) < 0)
            continue;
        if (zmq_msg_more(&m))
            continue; /* a ferry message: destination and key frames first */
        if (lat) {
            if (bench_lat_seen(b, zmq_msg_data(&m), zmq_msg_size(&m)))
                break;
            continue;
        }
        if (got++ == 0)
            t0 = bench_now();
        if (got == b->n)
            break;
    }
    double t1 = bench_now();
    zmq_msg_close(&m);
    zmq_close(s);
    if (!lat) {
        if (got != b->n)
            return -1;
        printf("%.1f\n", (double)(b->n - 1) / (t1 - t0));
    }
    return 0;
}

/* ---- plain rabbitmq-c --------------------------------------------------- */

static amqp_connection_state_t araw_open(const char *url)
{
    struct amqp_connection_info info;
    char *u = strdup(url); /* freed below */
    if (!u || amqp_parse_url(u, &info) != AMQP_STATUS_OK) {
        free(u);
        return NULL;
    }
    amqp_connection_state_t c = amqp_new_connection(); /* destroyed by the caller */
    amqp_socket_t *sock = amqp_tcp_socket_new(c);
    if (amqp_socket_open(sock, info.host, info.port) != AMQP_STATUS_OK ||
        amqp_login(c, info.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, info.user, info.password)
                .reply_type != AMQP_RESPONSE_NORMAL) {
        amqp_destroy_connection(c);
        free(u);
        return NULL;
    }
    free(u);
    amqp_channel_open(c, 1);
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL) {
        amqp_destroy_connection(c);
        return NULL;
    }
    return c;
}

static void araw_close(amqp_connection_state_t c)
{
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/* Read confirms until acked reaches want or timeout_s passes. */
static int araw_confirms(amqp_connection_state_t c, uint64_t *acked, uint64_t want,
                         double timeout_s)
{
    double end = bench_now() + timeout_s;
    while (*acked < want) {
        double left = end - bench_now();
        if (left <= 0)
            return 0;
        struct timeval tv = {.tv_sec = (long)left,
                             .tv_usec = (long)((left - (double)(long)left) * 1e6)};
        amqp_frame_t f;
        amqp_maybe_release_buffers(c);
        int rc = amqp_simple_wait_frame_noblock(c, &f, &tv);
        if (rc == AMQP_STATUS_TIMEOUT)
            return 0;
        if (rc != AMQP_STATUS_OK)
            return -1;
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            const amqp_basic_ack_t *a = f.payload.method.decoded;
            *acked = a->multiple ? a->delivery_tag : *acked + 1;
        } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD ||
                   f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
            return -1;
        }
    }
    return 0;
}

/* Persistent messages with publisher confirms waited every 1000 (throughput)
 * or read between sends (latency). */
static int araw_pub(struct bench *b, bool lat)
{
    amqp_connection_state_t c = araw_open(b->addr);
    if (!c)
        return -1;
    amqp_queue_declare(c, 1, amqp_cstring_bytes(b->dest), 0, 1, 0, 0, amqp_empty_table);
    amqp_confirm_select(c, 1);
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
        return -1;
    char *body = malloc(b->size + 128); /* freed below */
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 2};
    uint64_t sent = 0, acked = 0;
    long warm = 0;
    int rc = 0;
    if (b->warmup) { /* the queue's first message */
        size_t len = bench_body(body, b->size, b->dest, -1, true);
        amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(b->dest), 0, 0, &props,
                           (amqp_bytes_t){.len = len, .bytes = body});
        sent++;
        rc = araw_confirms(c, &acked, sent, 60);
    }
    while (lat && rc == 0 && !atomic_load(&b->warm)) {
        size_t len = bench_body(body, b->size, b->dest, warm++, true);
        amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(b->dest), 0, 0, &props,
                           (amqp_bytes_t){.len = len, .bytes = body});
        sent++;
        rc = araw_confirms(c, &acked, sent, 0.01);
    }
    double t0 = bench_now(); /* after any warm-up: the schedule starts now */
    for (long i = 0; rc == 0 && i < b->n; i++) {
        if (lat) {
            double due = t0 + (double)i / (double)b->rate;
            rc = araw_confirms(c, &acked, sent, due - bench_now());
            bench_sleep(due - bench_now());
        }
        size_t len = bench_body(body, b->size, b->dest, i, false);
        if (amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(b->dest), 0, 0, &props,
                               (amqp_bytes_t){.len = len, .bytes = body}) != 0)
            rc = -1;
        sent++;
        if (!lat && (long)(i + 1) % 1000 == 0 && rc == 0)
            rc = araw_confirms(c, &acked, sent, 60);
    }
    if (rc == 0)
        rc = araw_confirms(c, &acked, sent, 60);
    double t1 = bench_now();
    free(body);
    araw_close(c);
    if (rc != 0 || acked != sent)
        return -1;
    if (!lat)
        printf("%.1f\n", (double)b->n / (t1 - t0));
    return 0;
}

/* Prefetch 1000, acks (multiple) every 100: the fast plain consumer. */
static int araw_sub(struct bench *b, bool lat)
{
    amqp_connection_state_t c = araw_open(b->addr);
    if (!c)
        return -1;
    /* passive when the queue was filled by a ferry publisher (its arguments) */
    amqp_queue_declare(c, 1, amqp_cstring_bytes(b->dest), lat ? 0 : 1, 1, 0, 0, amqp_empty_table);
    amqp_basic_qos(c, 1, 0, 1000, 0);
    amqp_basic_consume(c, 1, amqp_cstring_bytes(b->dest), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL) {
        amqp_destroy_connection(c);
        return -1;
    }
    long got = 0;
    double t0 = 0, deadline = bench_now() + 120;
    uint64_t last = 0;
    while (bench_now() < deadline) {
        amqp_envelope_t env;
        amqp_maybe_release_buffers(c);
        struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
        amqp_rpc_reply_t r = amqp_consume_message(c, &env, &tv, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                r.library_error == AMQP_STATUS_TIMEOUT)
                continue;
            break;
        }
        bool end = false;
        if (lat) {
            end = bench_lat_seen(b, env.message.body.bytes, env.message.body.len);
        } else {
            if (got++ == 0)
                t0 = bench_now();
            end = got == b->n;
        }
        last = env.delivery_tag;
        if (end || last % 100 == 0)
            amqp_basic_ack(c, 1, last, 1);
        amqp_destroy_envelope(&env);
        if (end)
            break;
    }
    double t1 = bench_now();
    araw_close(c);
    if (!lat) {
        if (got != b->n)
            return -1;
        printf("%.1f\n", (double)(b->n - 1) / (t1 - t0));
    }
    return 0;
}

/* Messages in an AMQP queue (passive declare), or -1 while it does not
 * exist yet. A failed declare closes its channel: *ch moves to a new one. */
static long araw_queue_len(amqp_connection_state_t c, int *ch, const char *q)
{
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(c, (amqp_channel_t)*ch, amqp_cstring_bytes(q),
                                                     1, 0, 0, 0, amqp_empty_table);
    if (ok)
        return (long)ok->message_count;
    amqp_maybe_release_buffers(c);
    ++*ch;
    amqp_channel_open(c, (amqp_channel_t)*ch);
    return amqp_get_rpc_reply(c).reply_type == AMQP_RESPONSE_NORMAL ? -1 : -2;
}

static int araw_drop(struct bench *b)
{
    amqp_connection_state_t c = araw_open(b->addr);
    if (!c)
        return -1;
    amqp_queue_delete(c, 1, amqp_cstring_bytes(b->dest), 0, 0);
    araw_close(c);
    return 0;
}

/* ---- plain librdkafka ---------------------------------------------------- */

static long kraw_reports, kraw_failed;

static void kraw_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    kraw_reports++;
    if (m->err)
        kraw_failed++;
}

/* acks=all, idempotent, linger.ms 5 (the librdkafka default). */
static int kraw_pub(struct bench *b, bool lat)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new(); /* owned by the handle made from it */
    rd_kafka_conf_set(conf, "bootstrap.servers", b->addr, err, sizeof err);
    rd_kafka_conf_set(conf, "acks", "all", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err);
    rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof err);
    rd_kafka_conf_set_dr_msg_cb(conf, kraw_dr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err); /* destroyed below */
    if (!rk)
        return -1;
    char *body = malloc(b->size + 128); /* freed below */
    long warm = 0, produced = 0;
    if (b->warmup) { /* connection, topic creation, producer id */
        size_t len = bench_body(body, b->size, b->dest, -1, true);
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(b->dest), RD_KAFKA_V_VALUE(body, len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        produced++;
        double end = bench_now() + 60;
        while (kraw_reports < produced && bench_now() < end)
            rd_kafka_poll(rk, 10);
    }
    while (lat && !atomic_load(&b->warm)) {
        size_t len = bench_body(body, b->size, b->dest, warm++, true);
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(b->dest), RD_KAFKA_V_VALUE(body, len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        produced++;
        rd_kafka_poll(rk, 10);
    }
    double t0 = bench_now(); /* after any warm-up: the schedule starts now */
    for (long i = 0; i < b->n; i++) {
        char key[32];
        if (lat) {
            double due = t0 + (double)i / (double)b->rate;
            while (bench_now() < due)
                rd_kafka_poll(rk, (int)((due - bench_now()) * 1000) + 1 > 10 ? 10 : 1);
        }
        snprintf(key, sizeof key, "k%ld", i % 64);
        size_t len = bench_body(body, b->size, b->dest, i, false);
        for (;;) {
            rd_kafka_resp_err_t e =
                rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(b->dest), RD_KAFKA_V_KEY(key, strlen(key)),
                                  RD_KAFKA_V_VALUE(body, len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            rd_kafka_poll(rk, 10);
        }
        produced++;
        rd_kafka_poll(rk, 0);
    }
    double deadline = bench_now() + 120;
    while (kraw_reports < produced && bench_now() < deadline)
        rd_kafka_poll(rk, 50);
    double t1 = bench_now();
    free(body);
    rd_kafka_destroy(rk);
    if (kraw_reports != produced || kraw_failed)
        return -1;
    if (!lat)
        printf("%.1f\n", (double)b->n / (t1 - t0));
    return 0;
}

static int kraw_sub(struct bench *b, bool lat)
{
    char err[256], group[160];
    snprintf(group, sizeof group, "%s-raw", b->dest);
    rd_kafka_conf_t *conf = rd_kafka_conf_new(); /* owned by the handle made from it */
    rd_kafka_conf_set(conf, "bootstrap.servers", b->addr, err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", group, err, sizeof err);
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err);
    /* the same fetch wait as ferry's kafka.so: 100 ms, 5 ms for latency */
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", lat ? "5" : "100", err, sizeof err);
    rd_kafka_conf_set(conf, "session.timeout.ms", "6000", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err); /* destroyed below */
    if (!rk)
        return -1;
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, b->dest, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    long got = 0;
    double t0 = 0, deadline = bench_now() + 120;
    while (bench_now() < deadline && !atomic_load(&b->done)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        bool end = false;
        if (!m->err) {
            if (lat) {
                end = bench_lat_seen(b, m->payload, m->len);
            } else {
                if (got++ == 0)
                    t0 = bench_now();
                end = got == b->n;
            }
        }
        rd_kafka_message_destroy(m);
        if (end)
            break;
    }
    double t1 = bench_now();
    rd_kafka_commit(rk, NULL, 0);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (!lat) {
        if (got != b->n)
            return -1;
        printf("%.1f\n", (double)(b->n - 1) / (t1 - t0));
    }
    return 0;
}

/* Messages in a Kafka topic: the sum of its partitions' high watermarks,
 * or -1 while the topic does not exist (all topics' metadata is asked for,
 * so asking does not create it). */
static long kraw_topic_len(rd_kafka_t *rk, const char *topic)
{
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(rk, 1, NULL, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    long total = -1;
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) || md->topics[i].err)
            continue;
        total = 0;
        for (int j = 0; j < md->topics[i].partition_cnt; j++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(rk, topic, md->topics[i].partitions[j].id, &lo,
                                                 &hi, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                total = -1;
                break;
            }
            total += (long)hi;
        }
    }
    rd_kafka_metadata_destroy(md);
    return total;
}

/* Completion counted at the broker: from the moment FILE is made (the
 * caller starts the shipper then) until the queue or topic holds n
 * messages; prints msgs/s. With -x (AMQP), the durable queue is declared
 * and bound to that exchange with its own name as the key first. */
static int bench_count(struct bench *b)
{
    amqp_connection_state_t c = NULL;
    rd_kafka_t *rk = NULL;
    int ch = 1;
    char err[256];
    if (b->t == BENCH_AMQP) {
        if (!(c = araw_open(b->addr)))
            return -1;
        if (b->exchange) {
            amqp_queue_declare(c, 1, amqp_cstring_bytes(b->dest), 0, 1, 0, 0, amqp_empty_table);
            amqp_queue_bind(c, 1, amqp_cstring_bytes(b->dest), amqp_cstring_bytes(b->exchange),
                            amqp_cstring_bytes(b->dest), amqp_empty_table);
            if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL) {
                amqp_destroy_connection(c);
                return -1;
            }
        }
    } else if (b->t == BENCH_KAFKA) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new(); /* owned by the handle made from it */
        rd_kafka_conf_set(conf, "bootstrap.servers", b->addr, err, sizeof err);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err); /* destroyed below */
        if (!rk)
            return -1;
        kraw_topic_len(rk, b->dest); /* connected before the clock starts */
    } else {
        return -1;
    }
    FILE *f = fopen(b->file, "w");
    if (f)
        fclose(f);
    double t0 = bench_now(), deadline = t0 + 600;
    long got = -1;
    while (bench_now() < deadline) {
        got = c ? araw_queue_len(c, &ch, b->dest) : kraw_topic_len(rk, b->dest);
        if (got == -2 || got >= b->n)
            break;
        bench_sleep(0.01);
    }
    double t1 = bench_now();
    if (c)
        araw_close(c);
    if (rk)
        rd_kafka_destroy(rk);
    if (got < b->n) {
        fprintf(stderr, "ferry-bench: count: %ld of %ld at the broker\n", got, b->n);
        return -1;
    }
    printf("%.1f\n", (double)b->n / (t1 - t0));
    return 0;
}

/* ---- libferry ------------------------------------------------------------ */

static struct ferry_conn *fer_open(const struct bench *b, const char *id)
{
    char err[512];
    int st;
    struct ferry_config *cfg = ferry_config_new(); /* freed below */
    if (!cfg || ferry_config_load(cfg, b->conf, err, sizeof err) != FERRY_OK) {
        fprintf(stderr, "ferry-bench: %s\n", cfg ? err : "out of memory");
        ferry_config_free(cfg);
        return NULL;
    }
    /* zmq: the one-frame wire format (wire_version = 2) unless the file or
     * the environment picks one; the default (1) stays for old peers. */
    if (b->t == BENCH_ZMQ && !ferry_config_get(cfg, "zmq", "wire_version"))
        ferry_config_set(cfg, "zmq", "wire_version", "2", FERRY_SRC_FLAG);
    struct ferry_conn *c = ferry_open(cfg, id, &st, err, sizeof err); /* closed by the caller */
    if (!c)
        fprintf(stderr, "ferry-bench: open: %s\n", err);
    else
        ferry_conn_set_log(c, "ferry-bench", FERRY_LOG_WARN);
    ferry_config_free(cfg);
    return c;
}

/* What ferry-producer does per message, without the envelope. */
static int fer_pub(struct bench *b, bool lat)
{
    struct ferry_conn *c = fer_open(b, "bench-pub");
    if (!c)
        return -1;
    struct ferry_pub *p = ferry_pub_new(c, NULL, NULL, NULL); /* freed below */
    if (!p) {
        ferry_close(c);
        return -1;
    }
    char *body = malloc(b->size + 128); /* freed below */
    int rc = FERRY_OK;
    long warm = 0;
    if (b->warmup) { /* connection, topic creation, first handshake */
        size_t len = bench_body(body, b->size, b->dest, -1, true);
        struct ferry_msg m = {.dest = b->dest, .body = body, .body_len = len};
        rc = ferry_pub_send(p, &m, -1);
        if (rc == FERRY_OK)
            rc = ferry_pub_flush(p, 60000);
    }
    while (lat && rc == FERRY_OK && !atomic_load(&b->warm)) {
        size_t len = bench_body(body, b->size, b->dest, warm++, true);
        struct ferry_msg m = {.dest = b->dest, .body = body, .body_len = len};
        rc = ferry_pub_send(p, &m, -1);
        ferry_pub_flush(p, 10);
    }
    double t0 = bench_now(); /* after any warm-up: the schedule starts now */
    for (long i = 0; rc == FERRY_OK && i < b->n; i++) {
        char key[32];
        if (lat) {
            double due = t0 + (double)i / (double)b->rate;
            while (bench_now() < due) {
                ferry_pub_poll(p);
                bench_sleep(due - bench_now() > 0.001 ? 0.001 : due - bench_now());
            }
        }
        /* a key where the plain program sends one (Kafka: spreads partitions) */
        bool keyed = b->t == BENCH_KAFKA;
        if (keyed)
            snprintf(key, sizeof key, "k%ld", i % 64);
        size_t len = bench_body(body, b->size, b->dest, i, false);
        struct ferry_msg m = {.dest = b->dest,
                              .key = keyed ? key : NULL,
                              .key_len = keyed ? strlen(key) : 0,
                              .body = body,
                              .body_len = len,
                              .tag = (uint64_t)i};
        rc = ferry_pub_send(p, &m, -1);
    }
    if (rc == FERRY_OK)
        rc = ferry_pub_flush(p, 120000);
    struct ferry_pub_stats st;
    ferry_pub_stats(p, &st);
    if (rc != FERRY_OK || st.failed)
        fprintf(stderr, "ferry-bench: publish: %s\n", ferry_pub_error(p));
    if (st.retries)
        fprintf(stderr, "ferry-bench: %" PRIu64 " retries (%s)\n", st.retries, ferry_pub_error(p));
    ferry_pub_free(p);
    ferry_close(c); /* the zmq plugin hands over what it queued here */
    double t1 = bench_now();
    free(body);
    if (rc != FERRY_OK || st.failed)
        return -1;
    if (!lat)
        printf("%.1f\n", (double)b->n / (t1 - t0));
    return 0;
}

static int fer_sub(struct bench *b, bool lat)
{
    struct ferry_conn *c = fer_open(b, "bench-sub");
    if (!c)
        return -1;
    if (ferry_subscribe(c, b->dest, "bench") != FERRY_OK) {
        fprintf(stderr, "ferry-bench: subscribe: %s\n", ferry_conn_error(c));
        ferry_close(c);
        return -1;
    }
    long got = 0;
    double t0 = 0, deadline = bench_now() + 120;
    bool end = false;
    while (!end && bench_now() < deadline) {
        struct ferry_msg *ms[256];
        size_t k = 0;
        int rc = ferry_receive(c, ms, 256, &k, 100);
        if (rc != FERRY_OK && rc != FERRY_E_TIMEOUT && rc != FERRY_E_AGAIN)
            break;
        for (size_t j = 0; j < k; j++) {
            if (!end) {
                if (lat) {
                    end = bench_lat_seen(b, ms[j]->body, ms[j]->body_len);
                } else {
                    if (got++ == 0)
                        t0 = bench_now();
                    end = got == b->n;
                }
            }
            ferry_ack(c, ms[j]); /* the message is settled and gone */
        }
    }
    double t1 = bench_now();
    ferry_close(c);
    if (!lat) {
        if (got != b->n)
            return -1;
        printf("%.1f\n", (double)(b->n - 1) / (t1 - t0));
    }
    return 0;
}

/* ---- runs ---------------------------------------------------------------- */

static int bench_pub(struct bench *b, bool lat)
{
    if (!b->raw)
        return fer_pub(b, lat);
    switch (b->t) {
    case BENCH_ZMQ: return zraw_pub(b, lat);
    case BENCH_AMQP: return araw_pub(b, lat);
    default: return kraw_pub(b, lat);
    }
}

static int bench_sub(struct bench *b, bool lat)
{
    if (!b->raw)
        return fer_sub(b, lat);
    switch (b->t) {
    case BENCH_ZMQ: return zraw_sub(b, lat);
    case BENCH_AMQP: return araw_sub(b, lat);
    default: return kraw_sub(b, lat);
    }
}

static void *bench_lat_consumer(void *arg)
{
    struct bench *b = arg;
    b->status = bench_sub(b, true);
    atomic_store(&b->done, true);
    return NULL;
}

static int bench_cmp(const void *x, const void *y)
{
    double a = *(const double *)x, c = *(const double *)y;
    return a < c ? -1 : a > c;
}

/* Consumer thread and producer at a fixed rate in one process: prints the
 * p50, p99 and p99.9 latency in microseconds. */
static int bench_latency(struct bench *b)
{
    b->lat = calloc((size_t)b->n, sizeof *b->lat); /* freed below */
    if (!b->lat)
        return -1;
    if (!b->raw) {
        static const char *const names[] = {"zmq", "amqp", "kafka"};
        char err[512];
        int st;
        if (!ferry_plugin_load(names[b->t], NULL, &st, err, sizeof err)) {
            fprintf(stderr, "ferry-bench: %s\n", err);
            free(b->lat);
            return -1;
        }
    }
    pthread_t th;
    if (pthread_create(&th, NULL, bench_lat_consumer, b) != 0)
        return -1;
    if (b->t == BENCH_ZMQ)
        bench_sleep(0.2); /* the consumer binds first */
    int rc = bench_pub(b, true);
    double deadline = bench_now() + 60;
    while (!atomic_load(&b->done) && bench_now() < deadline)
        bench_sleep(0.01);
    atomic_store(&b->done, true);
    pthread_join(th, NULL);
    if (rc == 0 && b->status == 0 && b->n_lat == b->n) {
        qsort(b->lat, (size_t)b->n, sizeof *b->lat, bench_cmp);
        long n = b->n;
        printf("%.1f %.1f %.1f\n", b->lat[n * 50 / 100], b->lat[n * 99 / 100],
               b->lat[n * 999 / 1000]);
    } else {
        fprintf(stderr, "ferry-bench: latency run got %ld of %ld\n", b->n_lat, b->n);
        rc = -1;
    }
    free(b->lat);
    return rc;
}

/* Time an aggregator from its first written line until the file holds n
 * lines of size + 1 bytes: prints msgs/s. */
static int bench_watch(struct bench *b)
{
    off_t want = (off_t)b->n * (off_t)(b->size + 1);
    double deadline = bench_now() + 120, t0 = 0;
    off_t first = 0;
    struct stat st;
    while (bench_now() < deadline) {
        if (stat(b->file, &st) == 0 && st.st_size > 0) {
            if (t0 == 0) {
                t0 = bench_now();
                first = st.st_size;
            }
            if (st.st_size >= want)
                break;
        }
        bench_sleep(0.0005);
    }
    double t1 = bench_now();
    if (t0 == 0 || st.st_size < want || st.st_size == first)
        return -1;
    printf("%.1f\n", (double)(want - first) / (double)(b->size + 1) / (t1 - t0));
    return 0;
}

static int bench_usage(void)
{
    fprintf(
        stderr,
        "usage: ferry-bench -m pub|sub|lat|watch|count|drop [-R] [-w] -t zmq|amqp|kafka\n"
        "       [-a ADDRESS] [-c FERRY_CONF] -d DEST [-n COUNT] [-s BYTES] [-r RATE] [-f FILE]\n"
        "       [-x EXCHANGE]\n");
    return 64;
}

int main(int argc, char **argv)
{
    struct bench b = {.n = 10000, .size = 100, .rate = 1000, .t = BENCH_ZMQ};
    int o;
    while ((o = getopt(argc, argv, "m:Rwt:a:c:d:f:n:s:r:x:")) != -1) {
        switch (o) {
        case 'm': b.mode = optarg; break;
        case 'R': b.raw = true; break;
        case 'w': b.warmup = true; break;
        case 't':
            b.t = !strcmp(optarg, "amqp")    ? BENCH_AMQP
                  : !strcmp(optarg, "kafka") ? BENCH_KAFKA
                                             : BENCH_ZMQ;
            break;
        case 'a': b.addr = optarg; break;
        case 'c': b.conf = optarg; break;
        case 'd': b.dest = optarg; break;
        case 'f': b.file = optarg; break;
        case 'n': b.n = atol(optarg); break;
        case 's': b.size = (size_t)atol(optarg); break;
        case 'r': b.rate = atol(optarg); break;
        case 'x': b.exchange = optarg; break;
        default: return bench_usage();
        }
    }
    if (!b.mode || (!b.dest && strcmp(b.mode, "watch")) || b.n < 2 || b.size < 64 || b.rate < 1 ||
        (b.raw && !b.addr) || (!b.raw && !b.conf && strcmp(b.mode, "watch")))
        return bench_usage();
    zraw_ctx = zmq_ctx_new();
    int rc;
    if (!strcmp(b.mode, "pub"))
        rc = bench_pub(&b, false);
    else if (!strcmp(b.mode, "sub"))
        rc = bench_sub(&b, false);
    else if (!strcmp(b.mode, "lat"))
        rc = bench_latency(&b);
    else if (!strcmp(b.mode, "watch"))
        rc = b.file ? bench_watch(&b) : bench_usage();
    else if (!strcmp(b.mode, "count"))
        rc = b.file && b.addr ? bench_count(&b) : bench_usage();
    else if (!strcmp(b.mode, "drop"))
        rc = b.t == BENCH_AMQP && b.addr ? araw_drop(&b) : 0;
    else
        rc = bench_usage();
    if (rc < 0)
        fprintf(stderr, "ferry-bench: %s run failed\n", b.mode);
    return rc < 0 ? 1 : rc;
}

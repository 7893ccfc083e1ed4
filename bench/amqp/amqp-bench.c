/* Publish throughput: plain rabbitmq-c (persistent, confirms waited every
 * 1000 messages) against the same work through amqp.so, loaded with libltdl.
 * Runs alternate ROUNDS times and reports the medians.
 * Usage: amqp-bench [-u URL] [-n COUNT] [-s BYTES] [-r ROUNDS] [-p PLUGIN_DIR] */
#include "config.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <ltdl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ferry/transport.h>

#define BENCH_BATCH 1000

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_die(const char *what, const char *why)
{
    fprintf(stderr, "amqp-bench: %s: %s\n", what, why);
    return 1;
}

/* Plain rabbitmq-c: returns msgs/s or a negative value on error. */
static double bench_plain(const char *url, const char *queue, long n, size_t size)
{
    struct amqp_connection_info info;
    char *u = strdup(url); /* freed below */
    if (!u || amqp_parse_url(u, &info) != AMQP_STATUS_OK) {
        free(u);
        return -1;
    }
    amqp_connection_state_t conn = amqp_new_connection(); /* destroyed below */
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (amqp_socket_open(sock, info.host, info.port) != AMQP_STATUS_OK ||
        amqp_login(conn, info.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, info.user, info.password)
                .reply_type != AMQP_RESPONSE_NORMAL) {
        amqp_destroy_connection(conn);
        free(u);
        return -1;
    }
    free(u);
    amqp_channel_open(conn, 1);
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
    amqp_confirm_select(conn, 1);
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) {
        amqp_destroy_connection(conn);
        return -1;
    }
    char *body = malloc(size); /* freed below */
    memset(body, 'x', size);
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 2};
    double t0 = bench_now();
    uint64_t sent = 0, acked = 0;
    bool ok = true;
    while (ok && (long)acked < n) {
        for (int i = 0; i < BENCH_BATCH && (long)sent < n; i++, sent++)
            if (amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0,
                                   &props, (amqp_bytes_t){.len = size, .bytes = body}) != 0)
                ok = false;
        while (ok && acked < sent) {
            amqp_frame_t f;
            amqp_maybe_release_buffers(conn);
            if (amqp_simple_wait_frame(conn, &f) != AMQP_STATUS_OK) {
                ok = false;
                break;
            }
            if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
                const amqp_basic_ack_t *a = f.payload.method.decoded;
                acked = a->delivery_tag;
            }
        }
    }
    double t1 = bench_now();
    free(body);
    amqp_queue_purge(conn, 1, amqp_cstring_bytes(queue));
    amqp_queue_delete(conn, 1, amqp_cstring_bytes(queue), 0, 0);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    return ok ? (double)n / (t1 - t0) : -1;
}

static long bench_reports, bench_failed;

static void bench_delivered(void *ctx, uint64_t tag, int st, const char *reason)
{
    (void)ctx;
    (void)tag;
    (void)reason;
    bench_reports++;
    bench_failed += st != FERRY_OK;
}

/* Fill the option struct from the table defaults (the core does this in
 * ferry; the bench only needs strings, booleans and plain numbers). */
static int bench_fill(const struct ferry_transport *t, void *cfg, const char *url)
{
    for (const struct ferry_option *o = t->options; o->name; o++) {
        char *field = (char *)cfg + o->offset;
        const char *v = strcmp(o->name, "url") == 0 ? url : o->def;
        if (o->type == FERRY_OPT_PREFIX)
            continue;
        if (o->type == FERRY_OPT_STR) {
            *(const char **)(void *)field = v;
        } else if (o->type == FERRY_OPT_BOOL) {
            *(bool *)field = v && strcmp(v, "true") == 0;
        } else if (o->type == FERRY_OPT_ENUM) {
            *(int *)(void *)field = 0;
        } else if (v) {
            char *end;
            double d = strtod(v, &end);
            if (strcmp(end, "s") == 0)
                d *= 1000;
            else if (strcmp(end, "KiB") == 0)
                d *= 1024;
            else if (strcmp(end, "MiB") == 0)
                d *= 1048576;
            *(int64_t *)(void *)field = (int64_t)d;
        }
    }
    return 0;
}

static double bench_plugin(const char *dir, const char *url, const char *queue, long n, size_t size)
{
    bench_reports = bench_failed = 0;
    if (lt_dlinit() != 0 || lt_dlsetsearchpath(dir) != 0)
        return -1;
    lt_dlhandle h = lt_dlopenext("amqp");
    if (!h) {
        fprintf(stderr, "amqp-bench: load amqp from %s: %s\n", dir, lt_dlerror());
        return -1;
    }
    const struct ferry_transport *t = lt_dlsym(h, "ferry_descriptor");
    if (!t)
        t = lt_dlsym(h, "amqp_LTX_ferry_descriptor");
    if (!t)
        return -1;
    void *cfg = calloc(1, t->cfg_size); /* freed below */
    bench_fill(t, cfg, url);
    struct ferry_conn c = {.size = sizeof c,
                           .transport = t,
                           .cfg = cfg,
                           .caps = t->caps,
                           .on_delivery = bench_delivered,
                           .client_id = "amqp-bench"};
    if (t->ops->open(&c) != FERRY_OK) {
        fprintf(stderr, "amqp-bench: open: %s\n", c.err);
        free(cfg);
        return -1;
    }
    char *body = malloc(size); /* freed below */
    memset(body, 'x', size);
    struct ferry_msg m = {.dest = queue, .body = body, .body_len = size};
    double t0 = bench_now();
    bool ok = true;
    for (long i = 0; i < n && ok; i++) {
        m.tag = (uint64_t)i;
        ok = t->ops->publish(&c, &m) == FERRY_OK;
    }
    ok = ok && t->ops->flush(&c, 60000) == FERRY_OK;
    double t1 = bench_now();
    if (!ok)
        fprintf(stderr, "amqp-bench: ferry publish: %s\n", c.err);
    t->ops->close(&c);
    free(body);
    free(cfg);
    lt_dlclose(h);
    lt_dlexit();
    return ok && bench_reports == n && bench_failed == 0 ? (double)n / (t1 - t0) : -1;
}

/* Remove what bench_plugin() left in its queue. */
static void bench_cleanup(const char *url, const char *queue)
{
    struct amqp_connection_info info;
    char *u = strdup(url); /* freed below */
    if (!u || amqp_parse_url(u, &info) != AMQP_STATUS_OK) {
        free(u);
        return;
    }
    amqp_connection_state_t conn = amqp_new_connection(); /* destroyed below */
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (amqp_socket_open(sock, info.host, info.port) == AMQP_STATUS_OK &&
        amqp_login(conn, info.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, info.user, info.password)
                .reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_channel_open(conn, 1);
        amqp_queue_delete(conn, 1, amqp_cstring_bytes(queue), 0, 0);
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn);
    free(u);
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *url = getenv("FERRY_TEST_AMQP_URL");
    const char *dir = "plugins/amqp/.libs";
    long n = 50000;
    size_t size = 100;
    int rounds = 3;
    int opt;
    while ((opt = getopt(argc, argv, "u:n:s:p:r:")) != -1) {
        switch (opt) {
        case 'u': url = optarg; break;
        case 'n': n = atol(optarg); break;
        case 's': size = (size_t)atol(optarg); break;
        case 'p': dir = optarg; break;
        case 'r': rounds = atoi(optarg); break;
        default:
            fprintf(
                stderr,
                "usage: amqp-bench [-u URL] [-n COUNT] [-s BYTES] [-r ROUNDS] [-p PLUGIN_DIR]\n");
            return 64;
        }
    }
    if (!url)
        url = "amqp://guest:guest@127.0.0.1:5672";
    char q1[64], q2[64];
    snprintf(q1, sizeof q1, "bench-plain-%d", (int)getpid());
    snprintf(q2, sizeof q2, "bench-ferry-%d", (int)getpid());
    if (rounds < 1 || rounds > 99)
        rounds = 3;
    double plain[99], ferry[99];
    for (int r = 0; r < rounds; r++) {
        plain[r] = bench_plain(url, q1, n, size);
        if (plain[r] < 0)
            return bench_die("plain rabbitmq-c run failed", url);
        ferry[r] = bench_plugin(dir, url, q2, n, size);
        bench_cleanup(url, q2);
        if (ferry[r] < 0)
            return bench_die("ferry run failed", dir);
        fprintf(stderr, "round %d: plain %.0f msgs/s, ferry %.0f msgs/s\n", r + 1, plain[r],
                ferry[r]);
    }
    qsort(plain, (size_t)rounds, sizeof plain[0], bench_cmp);
    qsort(ferry, (size_t)rounds, sizeof ferry[0], bench_cmp);
    double pm = plain[rounds / 2], fm = ferry[rounds / 2];
    printf("amqp publish, persistent + confirms, %ld x %zu B, median of %d rounds\n", n, size,
           rounds);
    printf("  plain rabbitmq-c (confirms every %d): %8.0f msgs/s\n", BENCH_BATCH, pm);
    printf("  ferry amqp.so:                         %8.0f msgs/s\n", fm);
    printf("  ratio ferry/plain:                     %8.2f\n", fm / pm);
    return 0;
}

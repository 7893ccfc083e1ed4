/* logger-bench: what one ferry_log() call costs the caller (median, p99,
 * p99.9 from 1 and 8 threads), what encoding an envelope would cost it
 * instead, and sustained delivered messages/s through the configured
 * transport. Run: bench/logger-bench CONFIG [CALLS_PER_THREAD] [SUSTAINED] */
#include "config.h"

#include <ferry/ferry.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

struct job {
    struct ferry_logger *lg;
    long n;
    int64_t *ns; /* per-call cost; NULL: just log */
    pthread_barrier_t *go;
    long refused;
    int64_t gap_ns; /* paced: one call every gap_ns (0: as fast as possible) */
};

static void sleep_until(int64_t t)
{
    struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

static void *run(void *arg)
{
    struct job *j = arg;
    char info[64];
    pthread_barrier_wait(j->go);
    int64_t next = now_ns();
    for (long i = 0; i < j->n; i++) {
        if (j->gap_ns) {
            next += j->gap_ns;
            sleep_until(next);
        }
        snprintf(info, sizeof info, "{\"user_id\":\"%ld\"}", i);
        int64_t t0 = j->ns ? now_ns() : 0;
        int rc = ferry_log(j->lg, FERRY_INFO, "User logged in", info);
        if (j->ns)
            j->ns[i] = now_ns() - t0;
        if (rc != FERRY_OK)
            j->refused++;
    }
    return NULL;
}

static struct ferry_logger *open_bench(const char *path, const char *policy, long queue,
                                       struct ferry_config **cfgp)
{
    char err[512], q[32];
    int st;
    struct ferry_config *cfg =
        ferry_config_new(); /* freed by the caller after closing the logger */
    if (ferry_config_load(cfg, path, err, sizeof err)) {
        fprintf(stderr, "logger-bench: %s\n", err);
        exit(78);
    }
    snprintf(q, sizeof q, "%ld", queue);
    ferry_config_set(cfg, "logger", "queue_size", q, FERRY_SRC_FLAG);
    ferry_config_set(cfg, "logger", "full_policy", policy, FERRY_SRC_FLAG);
    ferry_config_set(cfg, "logger", "block_timeout", "1h", FERRY_SRC_FLAG);
    ferry_config_set(cfg, "logger", "service", "bench", FERRY_SRC_FLAG);
    struct ferry_logger *lg = ferry_logger_open_config(NULL, cfg, &st, err, sizeof err);
    if (!lg) {
        fprintf(stderr, "logger-bench: %s\n", err);
        exit(st == FERRY_E_CONFIG ? 78 : 69);
    }
    *cfgp = cfg; /* the logger borrows it until it is closed */
    return lg;
}

static int64_t timer_floor(void)
{
    int64_t best = INT64_MAX;
    for (int i = 0; i < 100000; i++) {
        int64_t t0 = now_ns(), d = now_ns() - t0;
        if (d < best)
            best = d;
    }
    return best;
}

/* rate: calls per second per thread, 0 for as fast as possible (a burst
 * far beyond what the sender ships: the queue grows into fresh memory) */
static void latency(const char *path, int threads, long n, long rate, int64_t floor_ns)
{
    /* a queue large enough that no call finds it full: this is the call itself */
    struct ferry_config *cfg;
    struct ferry_logger *lg = open_bench(path, "drop_newest", 1L << 22, &cfg);
    pthread_t th[8];
    struct job j[8];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)threads);
    int64_t *all = malloc(sizeof *all * (size_t)n * (size_t)threads); /* freed below */
    for (int i = 0; i < threads; i++) {
        j[i] = (struct job){lg,  n, all + (size_t)i * (size_t)n,
                            &go, 0, rate > 0 ? 1000000000 / rate : 0};
        pthread_create(&th[i], NULL, run, &j[i]);
    }
    long refused = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        refused += j[i].refused;
    }
    size_t total = (size_t)n * (size_t)threads;
    qsort(all, total, sizeof *all, cmp64);
    char paced[64] = "";
    if (rate > 0)
        snprintf(paced, sizeof paced, " paced at %ld/s each", rate);
    printf("ferry_log call, %d thread%s%s, %zu calls: median %" PRId64 " ns, p99 %" PRId64
           " ns, p99.9 %" PRId64 " ns (timer overhead %" PRId64 " ns subtracted), refused %ld\n",
           threads, threads > 1 ? "s" : "", paced, total, all[total / 2] - floor_ns,
           all[total * 99 / 100] - floor_ns, all[total * 999 / 1000] - floor_ns, floor_ns, refused);
    free(all);
    pthread_barrier_destroy(&go);
    /* delivery is measured by the sustained run; do not wait for it here */
    ferry_logger_close(lg, 0, NULL);
    ferry_config_free(cfg);
}

static void encode_cost(long n, int64_t floor_ns)
{
    int64_t *ns = malloc(sizeof *ns * (size_t)n); /* freed below */
    char err[128], host[] = "benchhost";
    for (long i = 0; i < n; i++) {
        char info[64];
        snprintf(info, sizeof info, "{\"user_id\":\"%ld\"}", i);
        struct ferry_envelope e = {.service = "bench",
                                   .level = FERRY_INFO,
                                   .message = "User logged in",
                                   .information = info,
                                   .host = host};
        int64_t t0 = now_ns();
        char *b = ferry_envelope_encode(&e, err, sizeof err);
        ns[i] = now_ns() - t0;
        free(b);
    }
    qsort(ns, (size_t)n, sizeof *ns, cmp64);
    printf("envelope encoding (what the caller would pay if it encoded): median %" PRId64
           " ns, p99 %" PRId64 " ns\n",
           ns[n / 2] - floor_ns, ns[n * 99 / 100] - floor_ns);
    free(ns);
}

static void sustained(const char *path, long total)
{
    struct ferry_config *cfg;
    struct ferry_logger *lg = open_bench(path, "block", 65536, &cfg);
    pthread_t th[8];
    struct job j[8];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 8);
    int64_t t0 = now_ns();
    for (int i = 0; i < 8; i++) {
        j[i] = (struct job){lg, total / 8, NULL, &go, 0, 0};
        pthread_create(&th[i], NULL, run, &j[i]);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    int64_t logged = now_ns();
    int rc = ferry_logger_flush(lg, 600000);
    int64_t done = now_ns();
    struct ferry_logger_stats s;
    ferry_logger_stats(lg, &s);
    printf("sustained, 8 threads, %" PRIu64 " messages: logged in %.2f s, all delivered in %.2f s"
           " = %.0f msgs/s delivered (flush %s, dropped %" PRIu64 ")\n",
           s.logged, (double)(logged - t0) / 1e9, (double)(done - t0) / 1e9,
           (double)s.delivered / ((double)(done - t0) / 1e9), ferry_strerror(rc), s.dropped);
    ferry_logger_close(lg, 60000, NULL);
    ferry_config_free(cfg);
    pthread_barrier_destroy(&go);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: logger-bench CONFIG [CALLS_PER_THREAD] [SUSTAINED_TOTAL]\n");
        return 64;
    }
    long calls = argc > 2 ? atol(argv[2]) : 200000;
    long total = argc > 3 ? atol(argv[3]) : 200000;
    int64_t floor_ns = timer_floor();
    latency(argv[1], 1, calls, 0, floor_ns);
    latency(argv[1], 8, calls, 0, floor_ns);
    /* an application's logging: 8 threads at 5,000 calls/s each, which the
     * sender keeps up with, so records reuse memory it has freed */
    latency(argv[1], 8, calls / 10, 5000, floor_ns);
    encode_cost(calls < 100000 ? calls : 100000, floor_ns);
    if (total > 0)
        sustained(argv[1], total);
    return 0;
}

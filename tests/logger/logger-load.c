/* logger-load: THREADS threads each log COUNT messages through one logger
 * (information {"t":thread,"n":seq}, levels DEBUG..CRITICAL in turn),
 * optionally paced, then close it.
 * Progress (messages logged so far) is rewritten to PROGRESS_FILE every
 * 100 ms so a test can act in the middle of the run. MESSAGE_BYTES (optional)
 * pads each message text to that length.
 * Exit: 0 all delivered, 1 some ferry_log call failed, 2 close reported
 * undelivered messages (final counters on stdout either way), 78/69 open. */
#include "config.h"

#include <ferry/ferry.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct job {
    struct ferry_logger *lg;
    int id;
    long count, rate;
    _Atomic long *logged;
    long refused;
    const char *text;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *run(void *arg)
{
    struct job *j = arg;
    int64_t start = mono_ms();
    for (long i = 0; i < j->count; i++) {
        if (j->rate > 0 && i % 64 == 0) {
            int64_t due = start + i * 1000 / j->rate;
            int64_t now = mono_ms();
            if (due > now) {
                struct timespec ts = {(due - now) / 1000, (long)((due - now) % 1000) * 1000000};
                nanosleep(&ts, NULL);
            }
        }
        char info[64];
        snprintf(info, sizeof info, "{\"t\":%d,\"n\":%ld}", j->id, i);
        /* all five levels: five routing keys, so Kafka spreads them over partitions */
        enum ferry_level lvl = (enum ferry_level)(((j->id + i) % 5 + 1) * 10);
        if (ferry_log(j->lg, lvl, j->text, info) != FERRY_OK)
            j->refused++;
        if (i % 1024 == 1023)
            atomic_fetch_add(j->logged, 1024);
    }
    atomic_fetch_add(j->logged, j->count % 1024);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: logger-load CONFIG THREADS COUNT RATE_PER_THREAD CLOSE_TIMEOUT_MS "
                        "PROGRESS_FILE [MESSAGE_BYTES]\n");
        return 64;
    }
    int threads = atoi(argv[2]);
    long count = atol(argv[3]), rate = atol(argv[4]);
    int close_ms = atoi(argv[5]);
    const char *progress = argv[6];
    long text_len = argc == 8 ? atol(argv[7]) : 0;
    if (threads < 1 || threads > 64 || count < 0 || text_len < 0 || text_len > (1L << 24)) {
        fprintf(stderr, "logger-load: bad THREADS, COUNT or MESSAGE_BYTES\n");
        return 64;
    }
    static const char base[] = "load test message";
    char *text = NULL; /* freed at the end of main() */
    if (text_len > 0) {
        text = malloc((size_t)text_len + 1);
        if (!text) {
            fprintf(stderr, "logger-load: out of memory\n");
            return 69;
        }
        for (long i = 0; i < text_len; i++)
            text[i] = i < (long)sizeof base - 1 ? base[i] : 'x';
        text[text_len] = '\0';
    }
    char err[512];
    int st;
    struct ferry_logger *lg = ferry_logger_open("loadtest", argv[1], &st, err, sizeof err);
    if (!lg) {
        fprintf(stderr, "logger-load: %s\n", err);
        free(text);
        return st == FERRY_E_CONFIG ? 78 : 69;
    }
    _Atomic long logged = 0;
    pthread_t th[64];
    struct job jobs[64];
    for (int i = 0; i < threads; i++) {
        jobs[i] = (struct job){lg, i, count, rate, &logged, 0, text ? text : base};
        pthread_create(&th[i], NULL, run, &jobs[i]);
    }
    for (;;) {
        long n = atomic_load(&logged);
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", progress);
        FILE *f = fopen(tmp, "w"); /* renamed so readers never see it half written */
        if (f) {
            fprintf(f, "%ld\n", n);
            if (fclose(f) == 0)
                rename(tmp, progress);
        }
        if (n >= count * threads)
            break;
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    long refused = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        refused += jobs[i].refused;
    }
    int64_t t0 = mono_ms();
    struct ferry_logger_stats s;
    st = ferry_logger_close(lg, close_ms, &s);
    printf("logged=%" PRIu64 " delivered=%" PRIu64 " dropped=%" PRIu64 " failed=%" PRIu64
           " pending=%" PRIu64 " spooled=%" PRIu64 " reconnects=%" PRIu64
           " refused=%ld close_ms=%lld\n",
           s.logged, s.delivered, s.dropped, s.failed, s.pending, s.spooled, s.reconnects, refused,
           (long long)(mono_ms() - t0));
    free(text);
    if (refused)
        return 1;
    return st == FERRY_OK ? 0 : 2;
}

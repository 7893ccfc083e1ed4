/* Small shared helpers: clocks, backoff with jitter, ids, the stderr logger. */
#include "config.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

const char *ferry_version(void)
{
    return PACKAGE_VERSION;
}

const char *ferry_strerror(int st)
{
    switch (st) {
    case FERRY_OK: return "ok";
    case FERRY_E_AGAIN: return "temporarily unavailable";
    case FERRY_E_TIMEOUT: return "timed out";
    case FERRY_E_NOCONN: return "not connected";
    case FERRY_E_CONFIG: return "configuration error";
    case FERRY_E_NOTSUP: return "not supported by this transport";
    case FERRY_E_TOOBIG: return "message too big";
    case FERRY_E_FATAL: return "connection unusable";
    case FERRY_E_REJECTED: return "rejected by the broker";
    default: return "unknown status";
    }
}

const char *ferry_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return buf;
}

int64_t ferry_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ferry_mono_deadline(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

int64_t ferry_time_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t ferry_rand_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

uint64_t ferry_rand_seed(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v || v == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        v = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
    }
    return v ? v : 0x9E3779B97F4A7C15ULL;
}

void ferry_backoff_init(struct ferry_backoff *b, int64_t min_ms, int64_t max_ms)
{
    b->min_ms = min_ms > 0 ? min_ms : 100;
    b->max_ms = max_ms >= b->min_ms ? max_ms : b->min_ms;
    b->cur_ms = b->min_ms;
    b->rng = ferry_rand_seed();
}

int64_t ferry_backoff_next(struct ferry_backoff *b)
{
    /* "equal jitter": half fixed, half random, so retries from many clients
     * spread out but a single client still backs off steadily */
    int64_t half = b->cur_ms / 2;
    int64_t d = half + (int64_t)(ferry_rand_next(&b->rng) % (uint64_t)(half + 1));
    b->cur_ms = b->cur_ms >= b->max_ms / 2 ? b->max_ms : b->cur_ms * 2;
    return d;
}

void ferry_backoff_reset(struct ferry_backoff *b)
{
    b->cur_ms = b->min_ms;
}

void ferry_make_id(char buf[37])
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* getrandom cannot fail for 16 bytes once the pool is ready; fall
         * back to a time/pid mix rather than refusing to log */
        uint64_t s = ferry_rand_seed();
        for (size_t i = 0; i < sizeof r; i++)
            r[i] = (unsigned char)(ferry_rand_next(&s) >> 56);
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    char *p = buf;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[r[i] >> 4];
        *p++ = hex[r[i] & 15];
    }
    *p = '\0';
}

void ferry_format_time(int64_t ms, char buf[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    int y = tm.tm_year + 1900, msec = (int)(ms % 1000);
    if (y >= 0 && y <= 9999 && msec >= 0) { /* by hand: snprintf was most of the cost */
        int f[] = {y / 100, y % 100, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec};
        static const char sep[] = {0, 0, '-', '-', 'T', ':', ':'}; /* before each field */
        char *w = buf;
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
            if (sep[i])
                *w++ = sep[i];
            *w++ = (char)('0' + f[i] / 10);
            *w++ = (char)('0' + f[i] % 10);
        }
        w[0] = '.';
        w[1] = (char)('0' + msec / 100);
        w[2] = (char)('0' + msec / 10 % 10);
        w[3] = (char)('0' + msec % 10);
        memcpy(w + 4, "Z", 2);
        return;
    }
    char tmp[96]; /* wide enough for any int fields, so no truncation is possible */
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    memcpy(buf, tmp, 31);
    buf[31] = '\0';
}

void ferry_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int ferry_log_level_parse(const char *word)
{
    for (int i = 0; word && i < (int)FERRY_ARRAY_LEN(level_names); i++)
        if (strcasecmp(word, level_names[i]) == 0)
            return i;
    return -1;
}

const char *ferry_log_level_name(int level)
{
    return level_names[level < 0 ? 0 : level > FERRY_LOG_DEBUG ? FERRY_LOG_DEBUG : level];
}

int ferry_env_log_level(void)
{
    int lvl = ferry_log_level_parse(getenv("FERRY_LOG_LEVEL"));
    return lvl < 0 ? FERRY_LOG_INFO : lvl;
}

void ferry_stderr_vlog(void *ctx, enum ferry_log_level lvl, const char *plugin, const char *fmt,
                       va_list ap)
{
    const char *prog = ctx;
    char line[2048];
    int n = snprintf(line, sizeof line, "%s%s%s [%s] ", prog ? prog : "", prog ? ": " : "",
                     ferry_log_level_name((int)lvl), plugin ? plugin : "ferry");
    if (n < 0)
        return;
    if ((size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    /* one write per line so lines from several threads do not interleave */
    size_t len = strlen(line);
    if (len + 1 < sizeof line) {
        line[len++] = '\n';
        line[len] = '\0';
    }
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

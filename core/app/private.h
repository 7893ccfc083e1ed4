/* The internals of libferry that the programs and the unit tests use.
 *
 * They are defined in libferry_core.la (core/lib), which the programs link
 * through libferryapp.la; the shared libferry does not export them, so an
 * application cannot come to depend on them. core/lib/internal.h includes
 * this header, so the library and its users see one declaration of each. */
#ifndef FERRY_APP_PRIVATE_H
#define FERRY_APP_PRIVATE_H

#include <ferry/ferry.h>
#include <stdarg.h>
#include <stdint.h>
#include <time.h>

/* Number of elements of an array (not a pointer). */
#define FERRY_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* printf into a fixed buffer, never overflowing; returns buf */
const char *ferry_fmt(char *buf, size_t len, const char *fmt, ...) FERRY_PRINTF(3, 4);

/* Monotonic clock in milliseconds. */
int64_t ferry_mono_ms(void);
/* ms from now on the monotonic clock, as pthread_cond_timedwait takes it
 * (conditions made with pthread_condattr_setclock CLOCK_MONOTONIC). */
void ferry_mono_deadline(struct timespec *ts, int64_t ms);

/* Exponential backoff with full jitter. State lives in the caller. */
struct ferry_backoff {
    int64_t min_ms, max_ms, cur_ms;
    uint64_t rng;
};
void ferry_backoff_init(struct ferry_backoff *b, int64_t min_ms, int64_t max_ms);
/* Next delay: uniform in [cur/2, cur], then cur doubles up to max. */
int64_t ferry_backoff_next(struct ferry_backoff *b);
void ferry_backoff_reset(struct ferry_backoff *b);

/* xorshift64*; seed must be nonzero */
uint64_t ferry_rand_next(uint64_t *state);
uint64_t ferry_rand_seed(void);

/* Sleep ms milliseconds (nothing when ms <= 0); a signal may end it early. */
void ferry_sleep_ms(int64_t ms);

/* The one reading of a log level word, wherever it comes from
 * ([transport] log_level, FERRY_LOG_LEVEL): "error", "warn", "info" or
 * "debug", in any case. Returns the FERRY_LOG_* level, or -1 for NULL or
 * any other word. */
int ferry_log_level_parse(const char *word);
/* "error", "warn", "info" or "debug" (levels beyond are "debug"). */
const char *ferry_log_level_name(int level);

/* Default stderr logger used as the host log hook. */
void ferry_stderr_vlog(void *ctx, enum ferry_log_level lvl, const char *plugin, const char *fmt,
                       va_list ap);
/* Log level from $FERRY_LOG_LEVEL (ferry_log_level_parse), default info. */
int ferry_env_log_level(void);

#endif

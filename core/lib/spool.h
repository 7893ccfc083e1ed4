/* The on-disk spool: a crash-safe FIFO of (key, body) records in numbered
 * segment files plus a commit file. Internal: used by libferry's logger and
 * by the zmq plugin's reliable mode (libferry_spool.la, linked into both;
 * never exported). One thread at a time per spool. */
#ifndef FERRY_SPOOL_H
#define FERRY_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define FERRY_SPOOL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FERRY_SPOOL_PRINTF(a, b)
#endif

/* fsync_mode values: the same numbers as enum ferry_spool_fsync in
 * <ferry/ferry.h> (checked in logger.c), which a plugin need not include. */
enum ferry_spool_sync_mode {
    FERRY_SPOOL_SYNC_ALWAYS = 0, /* after every write */
    FERRY_SPOOL_SYNC_BATCH,      /* at most every fsync_interval_ms */
    FERRY_SPOOL_SYNC_NEVER,      /* left to the kernel */
};

struct ferry_spool;

/* A place in the spool: the end of one record. */
struct ferry_spool_pos {
    uint64_t seg;
    int64_t off;
};

/* Open (creating) dir, recovering records an earlier run left unconfirmed;
 * *recovered gets their number. fsync_mode is enum ferry_spool_fsync.
 * Returns NULL with err set (another process holds the spool, I/O error). */
struct ferry_spool *ferry_spool_open(const char *dir, int64_t max_bytes, int fsync_mode,
                                     int64_t fsync_interval_ms, uint64_t *recovered, char *err,
                                     size_t errlen);
/* Buffer one record. Returns 0, 1 when the spool is full (spool_max),
 * -1 on an I/O error (err set). Nothing is readable before ferry_spool_sync. */
int ferry_spool_append(struct ferry_spool *s, const void *key, size_t klen, const void *body,
                       size_t blen, char *err, size_t errlen);
/* Write buffered records; fsync per the policy (force: now, whatever it is,
 * unless the policy is never). Returns 0 or -1 with err set. */
int ferry_spool_sync(struct ferry_spool *s, bool force, char *err, size_t errlen);
/* Next unread record. Returns 1 with the pointers (valid until the next
 * call) and the record's end in *pos, 0 when none, -1 on an I/O error. */
int ferry_spool_next(struct ferry_spool *s, const char **key, size_t *klen, const char **body,
                     size_t *blen, struct ferry_spool_pos *pos, char *err, size_t errlen);
/* Everything up to pos (n more records) is delivered: drop whole segments behind it and
 * record it in the commit file (fsync per the policy, at most every
 * fsync interval unless force). */
void ferry_spool_confirm(struct ferry_spool *s, struct ferry_spool_pos pos, uint64_t n, bool force);
/* Read again from the last confirmed position (after a lost connection). */
void ferry_spool_rewind(struct ferry_spool *s);
/* Records written and not yet confirmed; bytes they take. */
uint64_t ferry_spool_records(const struct ferry_spool *s);
int64_t ferry_spool_bytes(const struct ferry_spool *s);
/* Write what is buffered, record the commit position and free s. */
void ferry_spool_close(struct ferry_spool *s);

#endif

/* Per-partition bookkeeping of lent (unacked) offsets for kafka.so: which
 * offset may be committed so that no unacked message is ever skipped. */
#ifndef FKAFKA_OFFSETS_H
#define FKAFKA_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One topic partition as this consumer has seen it. Kept until the tracker
 * is freed, so a lent message may point at it; gen tells whether the
 * partition is still the assignment the message came from. */
struct fkafka_tp {
    char *topic; /* freed in fkafka_track_free() */
    int32_t partition;
    uint32_t gen; /* bumped by every assign; 0 = never assigned */
    bool assigned;
    bool awaiting; /* after a seek: next stays at seek_to until it is lent again */
    int64_t seek_to;
    int64_t next;      /* offset after the last one lent; -1 = none lent yet */
    int64_t max_lent;  /* highest offset ever lent in this assignment; -1 = none */
    int64_t committed; /* last position handed to a commit; -1 = none */
    int64_t *out;      /* sorted multiset of lent offsets in out[lo..n) */
    size_t lo, n, cap; /* out freed in fkafka_track_free() */
};

struct fkafka_track {
    struct fkafka_tp **tps; /* freed in fkafka_track_free() */
    size_t n, cap;
    uint32_t gen;
};

/** Find the partition, or NULL when this consumer never saw it. */
struct fkafka_tp *fkafka_track_find(struct fkafka_track *t, const char *topic, int32_t partition);
/** Start a new assignment of the partition: forget its lent offsets and
 *  bump its generation. Returns NULL when out of memory. */
struct fkafka_tp *fkafka_track_assign(struct fkafka_track *t, const char *topic, int32_t partition);
/** The partition is no longer ours: loans from it become stale. */
void fkafka_tp_revoke(struct fkafka_tp *tp);
/** Free every partition. */
void fkafka_track_free(struct fkafka_track *t);

/** Record that offset off was lent out. Returns 0, 1 when it was lent
 *  before in this assignment (a redelivery), -1 when out of memory. */
int fkafka_tp_lend(struct fkafka_tp *tp, int64_t off);
/** The loan of off ended with a decision (ack, or nack without requeue).
 *  Returns false when off was not lent. */
bool fkafka_tp_done(struct fkafka_tp *tp, int64_t off);
/** The loan of off ended and consumption must restart at off (nack
 *  requeue): nothing from there on is committed until it is lent again.
 *  Returns the offset to seek the partition to (off, or a lower one still
 *  awaited from an earlier rewind), or -1 when off was not lent. */
int64_t fkafka_tp_rewind(struct fkafka_tp *tp, int64_t off);
/** The offset to commit: the lowest lent offset, else the one after the
 *  last lent; -1 when there is nothing to commit. */
int64_t fkafka_tp_position(const struct fkafka_tp *tp);
/** True when the position moved past the last committed one. */
bool fkafka_tp_dirty(const struct fkafka_tp *tp);

#endif

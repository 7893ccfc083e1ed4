/* Retry with backoff, then dead-letter: the policy (attempt counting, delays,
 * header stamping) and a retrier that defers failed messages the way the
 * transport does best and sends exhausted ones to a dead-letter destination. */
#ifndef FERRY_RETRY_H
#define FERRY_RETRY_H

#include <ferry/ferry.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Headers of deferred and dead-lettered messages. */
#define FERRY_HDR_ERROR "x-ferry-error"                 /* why the last attempt failed */
#define FERRY_HDR_SOURCE "x-ferry-source"               /* validator rejects: where it was read */
#define FERRY_HDR_ATTEMPTS "x-ferry-attempts"           /* failed attempts so far, decimal */
#define FERRY_HDR_ORIGINAL_DEST "x-ferry-original-dest" /* the destination it was consumed from */
#define FERRY_HDR_DUE "x-ferry-due"                     /* topic mode: epoch ms it is due again */
#define FERRY_HDR_RETRY_GROUP "x-ferry-retry-group"     /* topic mode: the group that deferred it */

struct ferry_retry_policy {
    int64_t max_retries;    /* retries after the first attempt; negative: retry in
                               place forever and never dead-letter */
    int64_t backoff_min_ms; /* delay before the first retry; 0 = 100 */
    int64_t backoff_max_ms; /* cap of the doubling delays; 0 = 10000 */
};

/** Failed attempts recorded on m (its x-ferry-attempts header); 0 when the
 *  header is missing or not a decimal number. */
uint32_t ferry_retry_attempts(const struct ferry_msg *m);
/** Delay before the retry that follows failed attempt number attempts (1,
 *  2, ...): backoff_min doubled per earlier failure, capped at backoff_max.
 *  No jitter, so the delays form a short fixed ladder (RabbitMQ keeps one
 *  queue per step). */
int64_t ferry_retry_delay(const struct ferry_retry_policy *p, uint32_t attempts);
/** True when a message that has now failed attempts times must be
 *  dead-lettered rather than retried (attempts > max_retries >= 0). */
bool ferry_retry_exhausted(const struct ferry_retry_policy *p, uint32_t attempts);
/** The headers of m with each of set[0..n_set) replacing any header of the
 *  same name (in place; new names appended), and every header named in
 *  drop (NULL-terminated list, may be NULL) removed, into out[cap]. Names
 *  and values point into m and set. @return the number of headers, which
 *  may exceed cap (then only cap were written). */
size_t ferry_retry_stamp(const struct ferry_msg *m, const struct ferry_header *set, size_t n_set,
                         const char *const *drop, struct ferry_header *out, size_t cap);

/* How failed messages wait for their next attempt. */
enum ferry_retry_mode {
    FERRY_RETRY_AUTO = 0, /* broker if the plugin can defer, else topic if durable
                             with acks, else local */
    FERRY_RETRY_BROKER,   /* the plugin's defer operation (RabbitMQ: TTL queues
                             dead-lettering back to the consumer's queue) */
    FERRY_RETRY_TOPIC,    /* a retry destination DEST.retry this retrier also
                             consumes, handing messages back when due (Kafka) */
    FERRY_RETRY_LOCAL,    /* held in this process until due (ZeroMQ) */
};

struct ferry_retry_opts {
    struct ferry_retry_policy policy;
    enum ferry_retry_mode mode;
    const char *dest;           /* the destination consumed: x-ferry-original-dest */
    const char *group;          /* the consumer group ("" or NULL: private) */
    const char *dead_letter;    /* where exhausted messages go; required */
    int64_t publish_timeout_ms; /* longest wait for a dead-letter or retry copy
                                   to be confirmed; 0 = 30000 */
    size_t max_held;            /* local and topic modes: messages held waiting; 0 = 10000 */
};

/* One message to handle: the connection that lent it and the failed
 * attempts before this one. */
struct ferry_retry_item {
    struct ferry_conn *conn;
    struct ferry_msg *msg;
    uint32_t attempts;
};

struct ferry_retry_stats {
    uint64_t deferred;      /* failures sent to wait for another attempt */
    uint64_t dead_lettered; /* exhausted: copied to the dead-letter destination, then acked */
    uint64_t held;          /* waiting in this process now (local and topic modes) */
    uint64_t errors;        /* defer or dead-letter attempts that failed (message released) */
};

struct ferry_retry;

/** A retrier for messages consumed on in (borrowed; must outlive it). It
 *  opens its own connection from cfg (client_id copied) to publish
 *  dead-letter copies and, in topic mode, to consume DEST.retry.
 *  @return the retrier (caller frees with ferry_retry_free()), or NULL with
 *  *status and err set (FERRY_E_CONFIG: a mode the transport cannot do, or
 *  no dead-letter destination; a transport status when the connection or
 *  the subscription to DEST.retry fails). */
struct ferry_retry *ferry_retry_new(const struct ferry_config *cfg, const char *client_id,
                                    struct ferry_conn *in, const struct ferry_retry_opts *o,
                                    int *status, char *err, size_t errlen);
/** Release every held message (they come back where the transport can
 *  redeliver) and free r (NULL is fine). */
void ferry_retry_free(struct ferry_retry *r);
/** The mode chosen (never FERRY_RETRY_AUTO). */
enum ferry_retry_mode ferry_retry_get_mode(const struct ferry_retry *r);
/** "broker", "topic" or "local". */
const char *ferry_retry_mode_name(enum ferry_retry_mode m);

/** Messages whose delay has passed (topic and local modes; none in broker
 *  mode, where the broker redelivers them on in). Fills up to max items;
 *  each loan is the caller's, ended with ferry_ack()/ferry_release() on
 *  item.conn or with ferry_retry_fail(). Never blocks for long.
 *  @return how many were filled. */
size_t ferry_retry_poll(struct ferry_retry *r, struct ferry_retry_item *out, size_t max);
/** Milliseconds until the next held message is due (-1 when none). */
int64_t ferry_retry_next_due(const struct ferry_retry *r);

/** Handling it->msg failed with reason: count the attempt, then defer the
 *  message for another attempt, or, once the policy is exhausted, copy it to
 *  the dead-letter destination (headers x-ferry-error, x-ferry-attempts,
 *  x-ferry-original-dest added; headers, key and body kept) and ack the
 *  original only once the copy is confirmed. Blocks up to
 *  publish_timeout_ms. *dead_lettered tells which happened.
 *  @return FERRY_OK when the loan has ended that way; otherwise the status,
 *  the message released (it comes back) and the reason in
 *  ferry_retry_error(). */
int ferry_retry_fail(struct ferry_retry *r, const struct ferry_retry_item *it, const char *reason,
                     bool *dead_lettered);
/** Last error text ("" when none). */
const char *ferry_retry_error(const struct ferry_retry *r);
void ferry_retry_stats(const struct ferry_retry *r, struct ferry_retry_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* FERRY_RETRY_H */

/* End-to-end delivery ledger: which sequence numbers of each producer have
 * been seen, as interval sets, so gaps (losses) and duplicates can be told. */
#ifndef FERRY_LEDGER_H
#define FERRY_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Header names and envelope members the producer stamps each message with. */
#define FERRY_HDR_PRODUCER "x-ferry-producer"
#define FERRY_HDR_SEQ "x-ferry-seq"
/* The message id, sent with every message of the HTTP API: the only place
 * it travels when the body is not a JSON object (a string payload). */
#define FERRY_HDR_ID "x-ferry-id"
/* Seconds of simulated work for the consumer (processing_time) when the
 * body cannot carry it. */
#define FERRY_HDR_PROCESSING_TIME "x-ferry-processing-time"

struct ferry_ledger;

/* Totals over every producer seen (including those no longer tracked). */
struct ferry_ledger_totals {
    uint64_t producers;  /* distinct producer ids seen */
    uint64_t received;   /* add calls accepted (unique + duplicates, + any uncertain) */
    uint64_t unique;     /* distinct (producer, seq) pairs */
    uint64_t missing;    /* seqs below a producer's highest (or expected) never seen */
    uint64_t duplicates; /* add calls for a pair already seen */
};

/**
 * New empty ledger. max_ranges bounds the intervals kept per producer (0 =
 * 65536, SIZE_MAX = no bound: memory then grows with the disorder of the
 * stream, 16 bytes per gap): past it the two lowest ranges are joined, the
 * seqs between them stay counted as missing, and a seq that arrives later
 * at or below that point is counted in received only (a late arrival and a
 * repeat can no longer be told apart; ferry_ledger_report() says so).
 * max_producers bounds the producers tracked (0 = 65536): past it the least
 * recently updated one is retired (its counts stay in the totals). Caller
 * owns the result: ferry_ledger_free(). NULL on ENOMEM.
 */
struct ferry_ledger *ferry_ledger_new(size_t max_ranges, size_t max_producers);
void ferry_ledger_free(struct ferry_ledger *l);

/**
 * Record that seq (1, 2, ...) of producer (copied) was seen.
 * @return 1 when new, 0 when a duplicate, -1 on ENOMEM or seq 0 / NULL
 * producer (nothing recorded).
 */
int ferry_ledger_add(struct ferry_ledger *l, const char *producer, uint64_t seq);
/** Whether seq of producer has been recorded. */
bool ferry_ledger_has(const struct ferry_ledger *l, const char *producer, uint64_t seq);
/** Every producer is expected to have sent seqs 1..n (0 = unknown: only gaps
 *  below each producer's highest seq count as missing). */
void ferry_ledger_expect(struct ferry_ledger *l, uint64_t n);
/** Totals so far; cheap enough to call from a metrics scrape (no
 *  allocation; O(producers)). Not thread-safe against a concurrent add. */
void ferry_ledger_totals(const struct ferry_ledger *l, struct ferry_ledger_totals *out);
/** Write one line per producer ("producer=ID received=... missing=...
 *  duplicates=..."), then its missing ranges and duplicated ranges (at most
 *  max_lines of each per producer; 0 = 20), to f. */
void ferry_ledger_report(const struct ferry_ledger *l, FILE *f, size_t max_lines);

/** Parse a seq value ("123"): @return true when s is a positive decimal
 *  number that fits 64 bits (len bytes, not NUL-terminated). */
bool ferry_ledger_parse_seq(const void *s, size_t len, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif /* FERRY_LEDGER_H */

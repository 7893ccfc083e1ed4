/* A bounded set of message ids (64-bit hashes) in two generations: the
 * newest ids are always remembered, the oldest are forgotten first. */
#ifndef FERRY_IDSET_H
#define FERRY_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct idset_gen {
    uint64_t *v; /* open addressing, 0 = empty; owned */
    size_t cap, n;
};

struct idset {
    struct idset_gen cur, old;
    size_t window; /* at least window/2 most recent ids are remembered */
};

uint64_t idset_hash(const char *s, size_t len);
int idset_init(struct idset *s, size_t window);
void idset_free(struct idset *s);
bool idset_has(const struct idset *s, uint64_t h);
/* Add h; returns -1 on ENOMEM. */
int idset_add(struct idset *s, uint64_t h);

/* The ids of one batch of at most max messages, for duplicates within it:
 * a table sized once, emptied between batches. */
int idset_batch_init(struct idset_gen *g, size_t max);
/* Add h; false when h was already there. */
bool idset_batch_put(struct idset_gen *g, uint64_t h);
void idset_batch_clear(struct idset_gen *g);
/* Empty g by taking out the ids h[0..n) put in that order (0 entries
 * skipped): costs n probes instead of clearing the whole table, which stays
 * as large as the largest batch. Ids put but not in h are cleared with the
 * whole table. Returns how many of h were found and taken out. */
size_t idset_batch_forget(struct idset_gen *g, const uint64_t *h, size_t n);

#endif

/* End-to-end delivery ledger: per producer, the seqs seen as a sorted set
 * of closed intervals; losses are the holes, duplicates the repeats. */
#include "config.h"
#include <ferry/ledger.h>

#include <stdlib.h>
#include <string.h>

struct lrange {
    uint64_t lo, hi;
};

struct rset {
    struct lrange *r; /* sorted, disjoint, not adjacent; owned */
    size_t n, cap;
};

struct lprod {
    struct lprod *next; /* hash chain */
    char *id;           /* owned */
    struct rset seen;
    struct rset dups; /* seqs seen more than once (for the report) */
    uint64_t received, unique, duplicates, max_seq, touched;
    /* Past max_ranges the lowest gaps are given up (joined into seen): a
     * later seq at or below floor may be late or a repeat, which can no
     * longer be told, so it is counted as uncertain. */
    uint64_t floor, uncertain;
};

struct ferry_ledger {
    struct lprod **bucket; /* owned, as is every producer in the chains */
    size_t nbuckets, nprod;
    size_t max_ranges, max_producers;
    uint64_t expect, clock;
    struct ferry_ledger_totals retired; /* producers no longer tracked */
    uint64_t producers_seen;
};

static uint64_t lhash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Index of the first range with hi >= seq (n when none). */
static size_t rset_find(const struct rset *s, uint64_t seq)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->r[mid].hi < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool rset_has(const struct rset *s, uint64_t seq)
{
    size_t i = rset_find(s, seq);
    return i < s->n && s->r[i].lo <= seq;
}

/* Add seq (not present). Beyond max ranges the two lowest are joined and
 * *floor becomes the top of the joined range (floor may be NULL).
 * @return 0, or -1 on ENOMEM. */
static int rset_add(struct rset *s, uint64_t seq, size_t max, uint64_t *floor)
{
    size_t i = rset_find(s, seq);
    bool join_prev = i > 0 && s->r[i - 1].hi + 1 == seq;
    bool join_next = i < s->n && s->r[i].lo - 1 == seq;
    if (join_prev && join_next) {
        s->r[i - 1].hi = s->r[i].hi;
        memmove(&s->r[i], &s->r[i + 1], (s->n - i - 1) * sizeof *s->r);
        s->n--;
        return 0;
    }
    if (join_prev) {
        s->r[i - 1].hi = seq;
        return 0;
    }
    if (join_next) {
        s->r[i].lo = seq;
        return 0;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        struct lrange *nr = realloc(s->r, cap * sizeof *nr); /* freed in prod_free() */
        if (!nr)
            return -1;
        s->r = nr;
        s->cap = cap;
    }
    memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof *s->r);
    s->r[i].lo = s->r[i].hi = seq;
    s->n++;
    if (s->n > max && s->n >= 2) { /* bounded memory: give up on the oldest gap */
        s->r[0].hi = s->r[1].hi;
        memmove(&s->r[1], &s->r[2], (s->n - 2) * sizeof *s->r);
        s->n--;
        if (floor)
            *floor = s->r[0].hi;
    }
    return 0;
}

static void prod_free(struct lprod *p)
{
    free(p->id);
    free(p->seen.r);
    free(p->dups.r);
    free(p);
}

static uint64_t prod_missing(const struct lprod *p, uint64_t expect)
{
    uint64_t top = p->max_seq > expect ? p->max_seq : expect;
    return top > p->unique ? top - p->unique : 0;
}

struct ferry_ledger *ferry_ledger_new(size_t max_ranges, size_t max_producers)
{
    struct ferry_ledger *l = calloc(1, sizeof *l); /* freed in ferry_ledger_free() */
    if (!l)
        return NULL;
    l->nbuckets = 64;
    l->bucket = calloc(l->nbuckets, sizeof *l->bucket); /* freed in ferry_ledger_free() */
    if (!l->bucket) {
        free(l);
        return NULL;
    }
    l->max_ranges = max_ranges ? max_ranges : 65536;
    l->max_producers = max_producers ? max_producers : 65536;
    return l;
}

void ferry_ledger_free(struct ferry_ledger *l)
{
    if (!l)
        return;
    for (size_t b = 0; b < l->nbuckets; b++)
        for (struct lprod *p = l->bucket[b], *nx; p; p = nx) {
            nx = p->next;
            prod_free(p);
        }
    free(l->bucket);
    free(l);
}

static struct lprod *find(const struct ferry_ledger *l, const char *id)
{
    for (struct lprod *p = l->bucket[lhash(id) % l->nbuckets]; p; p = p->next)
        if (!strcmp(p->id, id))
            return p;
    return NULL;
}

static void retire_oldest(struct ferry_ledger *l)
{
    struct lprod **oldest = NULL;
    for (size_t b = 0; b < l->nbuckets; b++)
        for (struct lprod **pp = &l->bucket[b]; *pp; pp = &(*pp)->next)
            if (!oldest || (*pp)->touched < (*oldest)->touched)
                oldest = pp;
    if (!oldest)
        return;
    struct lprod *p = *oldest;
    *oldest = p->next;
    l->retired.received += p->received;
    l->retired.unique += p->unique;
    l->retired.duplicates += p->duplicates;
    l->retired.missing += prod_missing(p, l->expect);
    l->nprod--;
    prod_free(p);
}

static void grow(struct ferry_ledger *l)
{
    size_t nb = l->nbuckets * 4;
    struct lprod **nbk = calloc(nb, sizeof *nbk); /* freed in ferry_ledger_free() */
    if (!nbk)
        return; /* longer chains, still correct */
    for (size_t b = 0; b < l->nbuckets; b++)
        for (struct lprod *p = l->bucket[b], *nx; p; p = nx) {
            nx = p->next;
            size_t h = lhash(p->id) % nb;
            p->next = nbk[h];
            nbk[h] = p;
        }
    free(l->bucket);
    l->bucket = nbk;
    l->nbuckets = nb;
}

static struct lprod *get(struct ferry_ledger *l, const char *id)
{
    struct lprod *p = find(l, id);
    if (p)
        return p;
    if (l->nprod >= l->max_producers)
        retire_oldest(l);
    p = calloc(1, sizeof *p); /* freed in prod_free() */
    if (!p || !(p->id = strdup(id))) {
        free(p);
        return NULL;
    }
    if (l->nprod >= l->nbuckets)
        grow(l);
    size_t h = lhash(id) % l->nbuckets;
    p->next = l->bucket[h];
    l->bucket[h] = p;
    l->nprod++;
    l->producers_seen++;
    return p;
}

int ferry_ledger_add(struct ferry_ledger *l, const char *producer, uint64_t seq)
{
    if (!producer || seq == 0)
        return -1;
    struct lprod *p = get(l, producer);
    if (!p)
        return -1;
    p->touched = ++l->clock;
    if (rset_has(&p->seen, seq)) {
        if (seq <= p->floor) { /* late or repeated: no longer known */
            p->received++;
            p->uncertain++;
            return 0;
        }
        if (!rset_has(&p->dups, seq) && rset_add(&p->dups, seq, l->max_ranges, NULL))
            return -1;
        p->received++;
        p->duplicates++;
        return 0;
    }
    if (rset_add(&p->seen, seq, l->max_ranges, &p->floor))
        return -1;
    p->received++;
    p->unique++;
    if (seq > p->max_seq)
        p->max_seq = seq;
    return 1;
}

bool ferry_ledger_has(const struct ferry_ledger *l, const char *producer, uint64_t seq)
{
    const struct lprod *p = producer ? find(l, producer) : NULL;
    return p && rset_has(&p->seen, seq);
}

void ferry_ledger_expect(struct ferry_ledger *l, uint64_t n)
{
    l->expect = n;
}

void ferry_ledger_totals(const struct ferry_ledger *l, struct ferry_ledger_totals *out)
{
    *out = l->retired;
    out->producers = l->producers_seen;
    for (size_t b = 0; b < l->nbuckets; b++)
        for (const struct lprod *p = l->bucket[b]; p; p = p->next) {
            out->received += p->received;
            out->unique += p->unique;
            out->duplicates += p->duplicates;
            out->missing += prod_missing(p, l->expect);
        }
}

static int by_id(const void *a, const void *b)
{
    return strcmp((*(const struct lprod *const *)a)->id, (*(const struct lprod *const *)b)->id);
}

static void put_range(FILE *f, const char *what, uint64_t lo, uint64_t hi)
{
    if (lo == hi)
        fprintf(f, "  %s %llu\n", what, (unsigned long long)lo);
    else
        fprintf(f, "  %s %llu-%llu\n", what, (unsigned long long)lo, (unsigned long long)hi);
}

void ferry_ledger_report(const struct ferry_ledger *l, FILE *f, size_t max_lines)
{
    if (!max_lines)
        max_lines = 20;
    const struct lprod **v = calloc(l->nprod ? l->nprod : 1, sizeof *v); /* freed below */
    size_t n = 0;
    for (size_t b = 0; v && b < l->nbuckets; b++)
        for (const struct lprod *p = l->bucket[b]; p; p = p->next)
            v[n++] = p;
    if (v)
        qsort(v, n, sizeof *v, by_id);
    for (size_t i = 0; i < n; i++) {
        const struct lprod *p = v[i];
        fprintf(f,
                "producer=%s received=%llu unique=%llu max_seq=%llu missing=%llu duplicates=%llu\n",
                p->id, (unsigned long long)p->received, (unsigned long long)p->unique,
                (unsigned long long)p->max_seq, (unsigned long long)prod_missing(p, l->expect),
                (unsigned long long)p->duplicates);
        if (p->floor)
            fprintf(f,
                    "  approximate up to seq %llu: more than %zu gaps at once, the lowest were "
                    "given up; %llu seqs arrived there later (late or repeated, not told apart) "
                    "and missing counts them\n",
                    (unsigned long long)p->floor, l->max_ranges, (unsigned long long)p->uncertain);
        /* holes: before the first range, between ranges, after the last */
        size_t shown = 0;
        uint64_t next = 1;
        uint64_t top = p->max_seq > l->expect ? p->max_seq : l->expect;
        for (size_t r = 0; r <= p->seen.n && shown < max_lines; r++) {
            uint64_t lo = next, hi = r < p->seen.n ? p->seen.r[r].lo - 1 : top;
            if (lo <= hi && hi >= 1) {
                put_range(f, "missing", lo, hi);
                shown++;
            }
            if (r < p->seen.n)
                next = p->seen.r[r].hi + 1;
        }
        for (size_t r = 0; r < p->dups.n && r < max_lines; r++)
            put_range(f, "duplicate", p->dups.r[r].lo, p->dups.r[r].hi);
    }
    if (l->retired.received)
        fprintf(f, "retired producers: received=%llu missing=%llu duplicates=%llu\n",
                (unsigned long long)l->retired.received, (unsigned long long)l->retired.missing,
                (unsigned long long)l->retired.duplicates);
    free(v);
}

bool ferry_ledger_parse_seq(const void *s, size_t len, uint64_t *out)
{
    const char *c = s;
    uint64_t v = 0;
    if (len == 0 || len > 20)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (c[i] < '0' || c[i] > '9')
            return false;
        uint64_t d = (uint64_t)(c[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v == 0)
        return false;
    *out = v;
    return true;
}

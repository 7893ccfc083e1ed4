/* Bounded two-generation id set used for de-duplication. */
#include "config.h"
#include "idset.h"

#include <stdlib.h>
#include <string.h>

/* Eight bytes a round (xxHash64's round), the length mixed in, then
 * MurmurHash3's finaliser: 64 well-mixed bits, so two ids in a window of
 * millions share a hash with a chance of about 1e-7. In memory only (the
 * file sink reads its ids back at start): free to change. */
uint64_t idset_hash(const char *s, size_t len)
{
    const uint64_t p1 = 0x9e3779b185ebca87ULL, p2 = 0xc2b2ae3d27d4eb4fULL;
    uint64_t h = 0x27d4eb2f165667c5ULL ^ (len * p1);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h ^= w * p2;
        h = ((h << 31) | (h >> 33)) * p1;
    }
    if (i < len) {
        uint64_t w = 0;
        memcpy(&w, s + i, len - i);
        h ^= w * p2;
        h = ((h << 31) | (h >> 33)) * p1;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h ? h : 1;
}

static int gen_init(struct idset_gen *g, size_t cap)
{
    g->v = calloc(cap, sizeof *g->v); /* freed in idset_free() / on rotation */
    g->cap = cap;
    g->n = 0;
    return g->v ? 0 : -1;
}

int idset_init(struct idset *s, size_t window)
{
    memset(s, 0, sizeof *s);
    s->window = window < 16 ? 16 : window;
    return gen_init(&s->cur, 1024);
}

void idset_free(struct idset *s)
{
    free(s->cur.v);
    free(s->old.v);
    memset(s, 0, sizeof *s);
}

static bool gen_has(const struct idset_gen *g, uint64_t h)
{
    if (!g->v)
        return false;
    for (size_t i = h & (g->cap - 1);; i = (i + 1) & (g->cap - 1)) {
        if (g->v[i] == h)
            return true;
        if (!g->v[i])
            return false;
    }
}

static void gen_put(struct idset_gen *g, uint64_t h)
{
    size_t i = h & (g->cap - 1);
    while (g->v[i] && g->v[i] != h)
        i = (i + 1) & (g->cap - 1);
    if (!g->v[i]) {
        g->v[i] = h;
        g->n++;
    }
}

bool idset_has(const struct idset *s, uint64_t h)
{
    return gen_has(&s->cur, h) || gen_has(&s->old, h);
}

int idset_add(struct idset *s, uint64_t h)
{
    if (s->cur.n >= s->window / 2) { /* rotate: forget the older generation */
        free(s->old.v);
        s->old = s->cur;
        if (gen_init(&s->cur, 1024))
            return -1;
    }
    if ((s->cur.n + 1) * 2 > s->cur.cap) { /* keep the load under 1/2 */
        struct idset_gen g;
        if (gen_init(&g, s->cur.cap * 2))
            return -1;
        for (size_t i = 0; i < s->cur.cap; i++)
            if (s->cur.v[i])
                gen_put(&g, s->cur.v[i]);
        free(s->cur.v);
        s->cur = g;
    }
    gen_put(&s->cur, h);
    return 0;
}

int idset_batch_init(struct idset_gen *g, size_t max)
{
    size_t cap = 16;
    while (cap < max * 2) /* load at most 1/2 */
        cap *= 2;
    return gen_init(g, cap); /* freed by the caller with free(g->v) */
}

bool idset_batch_put(struct idset_gen *g, uint64_t h)
{
    if (gen_has(g, h))
        return false;
    gen_put(g, h);
    return true;
}

size_t idset_batch_forget(struct idset_gen *g, const uint64_t *h, size_t n)
{
    size_t found = 0;
    /* newest first: the probe path to an id holds only ids put before it,
     * which are still there when it is looked up */
    for (size_t k = n; k-- > 0 && g->n;) {
        if (!h[k])
            continue;
        size_t i = h[k] & (g->cap - 1);
        while (g->v[i] && g->v[i] != h[k])
            i = (i + 1) & (g->cap - 1);
        if (g->v[i]) {
            g->v[i] = 0;
            g->n--;
            found++;
        }
    }
    idset_batch_clear(g); /* anything left (ids not in h): the whole table */
    return found;
}

void idset_batch_clear(struct idset_gen *g)
{
    if (g->n)
        memset(g->v, 0, g->cap * sizeof *g->v);
    g->n = 0;
}

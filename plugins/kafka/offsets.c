/* Per-partition bookkeeping of lent offsets: the committed position is the
 * lowest offset still lent out, so acks in any order never skip a message. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "offsets.h"

struct fkafka_tp *fkafka_track_find(struct fkafka_track *t, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < t->n; i++) {
        struct fkafka_tp *tp = t->tps[i];
        if (tp->partition == partition && strcmp(tp->topic, topic) == 0)
            return tp;
    }
    return NULL;
}

static void fkafka_tp_reset(struct fkafka_tp *tp)
{
    tp->lo = tp->n = 0;
    tp->next = tp->max_lent = tp->committed = -1;
    tp->awaiting = false;
    tp->seek_to = -1;
}

struct fkafka_tp *fkafka_track_assign(struct fkafka_track *t, const char *topic, int32_t partition)
{
    struct fkafka_tp *tp = fkafka_track_find(t, topic, partition);
    if (!tp) {
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 16;
            struct fkafka_tp **tps = realloc(t->tps, cap * sizeof *tps);
            if (!tps)
                return NULL;
            t->tps = tps;
            t->cap = cap;
        }
        tp = calloc(1, sizeof *tp); /* freed in fkafka_track_free() */
        if (!tp)
            return NULL;
        tp->topic = strdup(topic); /* freed in fkafka_track_free() */
        if (!tp->topic) {
            free(tp);
            return NULL;
        }
        tp->partition = partition;
        t->tps[t->n++] = tp;
    }
    fkafka_tp_reset(tp);
    tp->gen = ++t->gen;
    if (tp->gen == 0)
        tp->gen = ++t->gen;
    tp->assigned = true;
    return tp;
}

void fkafka_tp_revoke(struct fkafka_tp *tp)
{
    fkafka_tp_reset(tp);
    tp->assigned = false;
}

void fkafka_track_free(struct fkafka_track *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->tps[i]->out);
        free(t->tps[i]->topic);
        free(t->tps[i]);
    }
    free(t->tps);
    memset(t, 0, sizeof *t);
}

/* First index in out[lo..n) whose value is >= off. */
static size_t fkafka_tp_lower(const struct fkafka_tp *tp, int64_t off)
{
    size_t a = tp->lo, b = tp->n;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (tp->out[m] < off)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

int fkafka_tp_lend(struct fkafka_tp *tp, int64_t off)
{
    if (tp->n == tp->cap) {
        if (tp->lo > 0) {
            memmove(tp->out, tp->out + tp->lo, (tp->n - tp->lo) * sizeof *tp->out);
            tp->n -= tp->lo;
            tp->lo = 0;
        } else {
            size_t cap = tp->cap ? tp->cap * 2 : 64;
            int64_t *out = realloc(tp->out, cap * sizeof *out); /* freed in fkafka_track_free() */
            if (!out)
                return -1;
            tp->out = out;
            tp->cap = cap;
        }
    }
    /* Offsets arrive in order except after a rewind: appending is the rule. */
    size_t at = (tp->n == tp->lo || tp->out[tp->n - 1] <= off) ? tp->n : fkafka_tp_lower(tp, off);
    memmove(tp->out + at + 1, tp->out + at, (tp->n - at) * sizeof *tp->out);
    tp->out[at] = off;
    tp->n++;

    if (tp->awaiting) {
        /* Messages fetched before the rewind may still trickle in; only the
         * rewound offset itself resumes the normal position. */
        if (off == tp->seek_to) {
            tp->awaiting = false;
            tp->next = off + 1;
        }
    } else {
        tp->next = off + 1;
    }
    int again = off <= tp->max_lent;
    if (off > tp->max_lent)
        tp->max_lent = off;
    return again;
}

static bool fkafka_tp_remove(struct fkafka_tp *tp, int64_t off)
{
    /* acks come in the order of the offsets as a rule: the lowest first */
    size_t at = tp->lo < tp->n && tp->out[tp->lo] == off ? tp->lo : fkafka_tp_lower(tp, off);
    if (at == tp->n || tp->out[at] != off)
        return false;
    if (at == tp->lo) {
        tp->lo++;
        if (tp->lo == tp->n)
            tp->lo = tp->n = 0;
    } else {
        memmove(tp->out + at, tp->out + at + 1, (tp->n - at - 1) * sizeof *tp->out);
        tp->n--;
    }
    return true;
}

bool fkafka_tp_done(struct fkafka_tp *tp, int64_t off)
{
    return fkafka_tp_remove(tp, off);
}

int64_t fkafka_tp_rewind(struct fkafka_tp *tp, int64_t off)
{
    if (!fkafka_tp_remove(tp, off))
        return -1;
    /* An earlier rewind whose offset has not come back yet pins a lower
     * position: consumption must restart there, not at off. */
    if (!tp->awaiting || off < tp->seek_to)
        tp->seek_to = off;
    tp->awaiting = true;
    tp->next = tp->seek_to;
    return tp->seek_to;
}

int64_t fkafka_tp_position(const struct fkafka_tp *tp)
{
    int64_t pos = tp->next;
    if (tp->n > tp->lo && (pos < 0 || tp->out[tp->lo] < pos))
        pos = tp->out[tp->lo];
    return pos;
}

bool fkafka_tp_dirty(const struct fkafka_tp *tp)
{
    int64_t pos = fkafka_tp_position(tp);
    return tp->assigned && pos >= 0 && pos != tp->committed;
}

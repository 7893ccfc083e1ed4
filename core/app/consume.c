/* The consume loop shared by ferry-aggregator and ferry-validator: receive
 * a batch (retries that are due first), hand it to the program's handler,
 * write what it keeps to the sink and commit, and only then ack. */
#include "config.h"
#include "app.h"
#include "private.h"
#include "http.h"

#include <ferry/retry.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Receives made while a batch commits take at most this many messages at a
 * time when batch_bytes bounds the next batch. */
#define CONSUME_STEP 256

/* /health and the metrics' state: the input connection, and the sink, which
 * must be CONNECTED with its last commit through. */
static void refresh(struct consume *c, bool force)
{
    const char *why = NULL;
    bool ready = true;
    char reason[300];
    if (c->sink) {
        struct ferry_sink_health h;
        ferry_sink_health(c->sink, &h);
        if (h.state != FERRY_HEALTH_CONNECTED || c->commit_failing) {
            ready = false;
            snprintf(reason, sizeof reason, "sink %s: %s", c->sink->sink->name,
                     h.reason[0]         ? h.reason
                     : c->commit_failing ? ferry_sink_error(c->sink)
                                         : "not connected");
            why = reason;
        }
    }
    app_http_refresh(c->metrics, c->health_conn ? c->health_conn : c->in, c->health_pub, ready, why,
                     &c->last_refresh, force);
}

/* Handling items[i] failed with why: count a failed attempt (deferred or
 * dead-lettered by the retrier), or without a retrier release it (with
 * acks it comes back). Returns false when the loan could not be ended that
 * way (the message was released). */
static bool fail_item(struct consume *c, struct consume_item *x, const char *why)
{
    if (!c->retry) {
        ferry_release(x->it.conn, x->it.msg);
        c->released++;
        return true;
    }
    bool dl;
    if (ferry_retry_fail(c->retry, &x->it, why, &dl) != FERRY_OK) {
        app_error(c->app, "cannot defer or dead-letter error=\"%s\" (the message comes back)",
                  ferry_retry_error(c->retry));
        c->released++;
        return false;
    }
    if (dl) {
        c->dead_lettered++;
        ferry_metrics_count(c->series, FERRY_CTR_DEAD_LETTERED, 1);
    } else {
        c->deferred++;
    }
    return true;
}

/* Refused for good: straight to the dead-letter destination with why. */
static void reject_item(struct consume *c, struct consume_item *x, const char *why)
{
    c->rejected++;
    ferry_metrics_count(c->series, FERRY_CTR_REJECTED, 1);
    if (c->retry && ferry_retry_reject(c->retry, &x->it, why) == FERRY_OK) {
        c->dead_lettered++;
        ferry_metrics_count(c->series, FERRY_CTR_DEAD_LETTERED, 1);
        return;
    }
    if (c->retry) {
        app_error(c->app, "cannot dead-letter error=\"%s\" (the message comes back)",
                  ferry_retry_error(c->retry));
        c->released++;
        return;
    }
    /* no dead-letter destination of ours: the transport's reject path */
    app_warn(c->app, "record refused by the sink, nacked without requeue reason=\"%s\"", why);
    ferry_nack(x->it.conn, x->it.msg, false, why);
}

static void ack_item(struct consume *c, struct consume_item *x)
{
    int ar = ferry_ack(x->it.conn, x->it.msg);
    if (ar != FERRY_OK && ar != FERRY_E_NOTSUP)
        app_debug(c->app, "ack failed error=\"%s\" (the broker will redeliver)",
                  ferry_conn_error(x->it.conn));
    c->acked++;
}

/* A fresh item for it: as if zeroed, but without clearing the two string
 * buffers (768 bytes a message) beyond their first byte. */
static inline void item_init(struct consume_item *x, struct ferry_retry_item it)
{
    x->it = it;
    x->verdict = 0;
    x->why[0] = '\0';
    x->rec = (struct ferry_sink_record){0};
    x->id[0] = '\0';
}

/* Receive up to want items into items[]: retries that are due first, then
 * the input, waiting up to wait ms (-1: batch_wait, or less when a retry
 * falls due sooner). Returns the status of the receive; *n is set. */
static int receive(struct consume *c, struct consume_item *items, size_t want, size_t *n, int wait)
{
    size_t got = 0;
    *n = c->retry ? ferry_retry_poll(c->retry, c->due, want) : 0;
    for (size_t i = 0; i < *n; i++)
        item_init(&items[i], c->due[i]);
    if (wait < 0) {
        wait = (int)c->batch_wait;
        int64_t next = c->retry ? ferry_retry_next_due(c->retry) : -1;
        if (*n || (next >= 0 && next < wait))
            wait = *n ? 0 : (int)next;
    } else if (*n) {
        wait = 0;
    }
    int rc = *n < want ? ferry_receive(c->in, c->msgs, want - *n, &got, wait) : FERRY_OK;
    for (size_t i = 0; i < got; i++)
        item_init(&items[*n + i],
                  (struct ferry_retry_item){c->in, c->msgs[i], ferry_retry_attempts(c->msgs[i])});
    *n += got;
    c->received += got;
    return rc;
}

/* The next batch, received while the sink commits the current one. */
struct consume_next {
    struct consume_item *items; /* c->next */
    size_t want, n;
    int64_t bytes; /* of the bodies received */
};

struct commit_job {
    struct ferry_sink_conn *sink;
    int st;
    atomic_bool done;
};

static void *commit_main(void *arg)
{
    struct commit_job *j = arg;
    j->st = ferry_sink_commit(j->sink);
    atomic_store(&j->done, true);
    return NULL;
}

/* Group commit: the sink commits (its fsync) in a thread of its own while
 * this one receives into nx whatever arrives meanwhile, up to nx->want;
 * that becomes the next batch, committed by the next single fsync. Nothing
 * else touches the sink until the commit returned, and nothing of the next
 * batch is handled, written or acked before this one is settled. Without
 * nx (or room in it) the commit is made here. */
static int commit(struct consume *c, struct consume_next *nx)
{
    struct commit_job job = {.sink = c->sink};
    atomic_init(&job.done, false);
    pthread_t th;
    if (!nx || nx->n >= nx->want || pthread_create(&th, NULL, commit_main, &job) != 0)
        return ferry_sink_commit(c->sink);
    while (!atomic_load(&job.done) && nx->n < nx->want && !*c->app->stop &&
           (!c->batch_bytes || nx->bytes < c->batch_bytes)) {
        size_t got, max = nx->want - nx->n;
        /* with a byte bound, in steps: large messages stop it sooner */
        if (c->batch_bytes && max > CONSUME_STEP)
            max = CONSUME_STEP;
        /* a short wait: the end of the commit is noticed within 1 ms */
        int rc = receive(c, nx->items + nx->n, max, &got, 1);
        for (size_t i = 0; i < got; i++)
            nx->bytes += (int64_t)nx->items[nx->n + i].it.msg->body_len;
        nx->n += got;
        if (rc != FERRY_OK && rc != FERRY_E_TIMEOUT)
            break; /* the loop meets the failure again at its next receive */
    }
    pthread_join(th, NULL);
    return job.st;
}

/* Write the items the handler kept to the sink and commit; retriable
 * failures are written again after a backoff (retry in place), or count a
 * failed attempt of each with a retrier. Returns 0 when the batch is
 * settled (*landed: it reached the sink), or an exit code. */
static int sink_batch(struct consume *c, struct consume_item *items, size_t n, bool *landed,
                      struct consume_next *nx)
{
    *landed = false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i].verdict == CONSUME_WRITE) {
            items[i].rec.msg = items[i].it.msg;
            c->recs[k] = items[i].rec;
            c->idx[k++] = i;
        }
    if (!k)
        return 0;
    struct ferry_backoff wb;
    ferry_backoff_init(&wb, c->backoff_min, c->backoff_max);
    bool failed_before = false;
    for (;;) {
        struct ferry_sink_health before;
        ferry_sink_health(c->sink, &before);
        int st = ferry_sink_write(c->sink, c->recs, k);
        if (st == FERRY_OK)
            st = commit(c, failed_before ? NULL : nx);
        else
            ferry_sink_abort(c->sink);
        if (st == FERRY_OK) {
            struct ferry_sink_health after;
            ferry_sink_health(c->sink, &after);
            uint64_t landed_now = after.committed - before.committed;
            c->written += landed_now;
            if (landed_now < k) /* what an idempotent sink skipped */
                c->duplicates += k - landed_now;
            for (size_t j = 0; j < k; j++) {
                struct consume_item *x = &items[c->idx[j]];
                x->verdict = c->recs[j].status == FERRY_OK ? CONSUME_ACK : CONSUME_REJECT;
                if (x->verdict == CONSUME_REJECT)
                    snprintf(x->why, sizeof x->why, "%s", c->recs[j].reason);
            }
            if (c->commit_failing)
                app_info(c->app, "sink recovered sink=%s", c->sink->sink->name);
            c->commit_failing = false;
            *landed = true;
            if (failed_before)
                refresh(c, true);
            return 0;
        }
        const char *err = ferry_sink_error(c->sink);
        if (!failed_before)
            ferry_metrics_count(c->series, FERRY_CTR_PROC_ERRORS, k);
        failed_before = true;
        c->commit_failing = true;
        refresh(c, true);
        if (!ferry_status_retriable(st)) {
            app_error(c->app, "sink failed sink=%s error=\"%s\" holding=%zu", c->sink->sink->name,
                      err, k);
            return st == FERRY_E_CONFIG ? EX_CONFIG : EX_IOERR;
        }
        if (c->retry && !c->retry_in_place) {
            char why[sizeof c->sink->err];
            snprintf(why, sizeof why, "%s", err); /* err lives on the sink handle */
            uint64_t d0 = c->deferred, l0 = c->dead_lettered, r0 = c->released;
            size_t released = 0;
            for (size_t j = 0; j < k; j++)
                if (!fail_item(c, &items[c->idx[j]], why))
                    released++;
            for (size_t j = 0; j < k; j++)
                items[c->idx[j]].verdict = CONSUME_SETTLED;
            app_warn(
                c->app,
                "sink write failed sink=%s error=\"%s\" deferred=%" PRIu64 " dead_lettered=%" PRIu64
                " dead_letter=%s released=%" PRIu64 " retry_after=%" PRId64 "ms",
                c->sink->sink->name, why, c->deferred - d0, c->dead_lettered - l0,
                c->dead_letter ? c->dead_letter : "-", c->released - r0, c->sink->retry_after_ms);
            /* let the fault clear; a server that named its own delay (HTTP
             * Retry-After) is not called again sooner, deferred or not */
            int64_t pause = released ? ferry_backoff_next(&wb) : 0;
            if (c->sink->retry_after_ms > pause)
                pause = c->sink->retry_after_ms;
            if (pause > 0 && !*c->app->stop)
                app_sleep(c->app, pause);
            return 0;
        }
        int64_t d = ferry_backoff_next(&wb);
        /* the server named its own delay (HTTP Retry-After): never sooner */
        int64_t ra = c->sink->retry_after_ms;
        if (ra > d)
            d = ra;
        app_error(c->app,
                  "sink write failed sink=%s error=\"%s\" holding=%zu retry_in=%" PRId64
                  "ms retry_after=%" PRId64 "ms",
                  c->sink->sink->name, err, k, d, ra);
        if (*c->app->stop)
            return EX_IOERR;
        app_sleep(c->app, d);
        if (*c->app->hup) { /* logrotate may have moved the file meanwhile */
            *c->app->hup = 0;
            ferry_sink_reopen(c->sink);
        }
    }
}

/* Settle every item by its verdict. */
static void settle(struct consume *c, struct consume_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct consume_item *x = &items[i];
        switch (x->verdict) {
        case CONSUME_ACK: ack_item(c, x); break;
        case CONSUME_FAIL:
            ferry_metrics_count(c->series, FERRY_CTR_PROC_ERRORS, 1);
            fail_item(c, x, x->why);
            break;
        case CONSUME_REJECT: reject_item(c, x, x->why); break;
        case CONSUME_RELEASE:
            ferry_release(x->it.conn, x->it.msg);
            c->released++;
            break;
        default: break; /* settled already */
        }
    }
}

int consume_init(struct consume *c)
{
    size_t max = c->batch;
    c->msgs = calloc(max, sizeof *c->msgs); /* all freed in consume_fini() */
    c->items = calloc(max, sizeof *c->items);
    c->next = calloc(max, sizeof *c->next);
    c->due = calloc(max, sizeof *c->due);
    c->recs = calloc(max, sizeof *c->recs);
    c->idx = calloc(max, sizeof *c->idx);
    return c->msgs && c->items && c->next && c->due && c->recs && c->idx ? 0 : -1;
}

void consume_fini(struct consume *c)
{
    free(c->msgs);
    free(c->items);
    free(c->next);
    free(c->due);
    free(c->recs);
    free(c->idx);
}

static uint64_t progress(const struct consume *c)
{
    return c->sink ? c->written : c->acked;
}

/* Give back items received for a next batch the loop will not handle. */
static void release_all(struct consume_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ferry_release(items[i].it.conn, items[i].it.msg);
}

int consume_run(struct consume *c)
{
    int64_t last_msg = ferry_mono_ms();
    struct ferry_backoff rb; /* receive failures */
    ferry_backoff_init(&rb, 100, 30000);
    size_t carried = 0; /* items in c->items received during the last commit */
    /* a batch received already is finished even after a stop signal: a
     * transport without acks would not send it again */
    while (carried || !*c->app->stop) {
        refresh(c, false);
        if (*c->app->hup) {
            *c->app->hup = 0;
            if (c->sink) {
                if (ferry_sink_reopen(c->sink) == FERRY_OK)
                    app_info(c->app, "reopened sink=%s", c->sink->sink->name);
                else
                    app_warn(c->app, "reopen failed sink=%s error=\"%s\"", c->sink->sink->name,
                             ferry_sink_error(c->sink));
            }
        }
        if (c->sink) {
            struct ferry_sink_health h;
            ferry_sink_health(c->sink, &h);
            if (h.state == FERRY_HEALTH_FAILED) {
                app_error(c->app, "sink failed sink=%s error=\"%s\"", c->sink->sink->name,
                          h.reason);
                release_all(c->items, carried);
                return EX_IOERR;
            }
        }
        size_t want = c->batch, n = carried;
        if (c->count && c->count - (int64_t)progress(c) < (int64_t)want)
            want = (size_t)(c->count - (int64_t)progress(c));
        int rc = FERRY_OK;
        if (carried)
            carried = 0;
        else
            rc = receive(c, c->items, want, &n, -1);
        if (rc != FERRY_OK && rc != FERRY_E_TIMEOUT && !n) {
            if (!ferry_status_retriable(rc)) {
                app_error(c->app, "receive failed error=\"%s\"", ferry_conn_error(c->in));
                return app_exit_code(rc);
            }
            int64_t d = ferry_backoff_next(&rb);
            app_warn(c->app, "receive failed error=\"%s\" retry_in=%" PRId64 "ms",
                     ferry_conn_error(c->in), d);
            app_sleep(c->app, d);
            continue;
        }
        if (!n) {
            if (c->on_idle)
                c->on_idle(c->ctx);
            if (c->idle_exit && ferry_mono_ms() - last_msg >= c->idle_exit &&
                (!c->retry || ferry_retry_next_due(c->retry) < 0)) {
                app_info(c->app, "idle for %" PRId64 " ms, exiting", c->idle_exit);
                break;
            }
            continue;
        }
        ferry_backoff_reset(&rb);
        last_msg = ferry_mono_ms();
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int st = c->handle(c->ctx, c->items, n);
        bool landed = false;
        /* the next batch may hold as many as the count leaves once all of
         * this one is written */
        struct consume_next nx = {.items = c->next, .want = c->batch};
        if (c->count)
            nx.want = c->count - (int64_t)progress(c) > (int64_t)n
                          ? (size_t)(c->count - (int64_t)progress(c)) - n
                          : 0;
        if (nx.want > c->batch)
            nx.want = c->batch;
        int code = st == FERRY_OK ? (c->sink ? sink_batch(c, c->items, n, &landed, &nx) : 0)
                                  : app_exit_code(st);
        if (code) {
            for (size_t i = 0; i < n; i++) /* not acked: with acks they come back */
                if (c->items[i].verdict != CONSUME_SETTLED)
                    ferry_release(c->items[i].it.conn, c->items[i].it.msg);
            release_all(nx.items, nx.n);
            return code;
        }
        uint64_t acked_before = c->acked, released_before = c->released;
        settle(c, c->items, n);
        /* idle counts from the end of the work: a batch that took longer
         * than idle_exit (a sink or a forward retried) is no idleness */
        last_msg = ferry_mono_ms();
        if (c->on_settled)
            c->on_settled(c->ctx, c->items, n);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        uint64_t acked = c->acked - acked_before;
        ferry_metrics_count(c->series, FERRY_CTR_CONSUMED, acked);
        /* each message waited for its whole batch */
        ferry_metrics_observe_n(c->series, took, acked);
        /* the next batch becomes the current one */
        struct consume_item *t = c->items;
        c->items = c->next;
        c->next = t;
        carried = nx.n;
        if (c->released > released_before && c->pause_after_release) /* let the output recover */
            app_sleep(c->app, c->pause_after_release);
        if (c->count && (int64_t)progress(c) >= c->count)
            break;
    }
    release_all(c->items, carried); /* none: the loop ends with carried at 0 */
    return EX_OK;
}

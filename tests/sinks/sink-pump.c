/* sink-pump: a test harness that drives a sink plugin the way the core's
 * consume loop does (receive a batch, write, commit, then ack; back off and
 * write the same batch again on a retriable status, waiting at least the
 * sink's retry_after_ms; rejected records go to --reject with the reason),
 * so the sink plugins can be tested against real servers on their own.
 *   sink-pump -c FILE --sink NAME --input DEST [--group G] [--batch N]
 *             [--count N] [--reject DEST] [--idle-exit MS]
 * Exit: 0 after --count acked or rejected (or idle), 69 transport, 78
 * config or credentials, 70 a fatal sink error. */
#include "config.h"

#include <ferry/ferry.h>
#include <ferry/sink.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <ltdl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "private.h"

static volatile sig_atomic_t pump_stop;

static void pump_on_signal(int sig)
{
    (void)sig;
    pump_stop = 1;
}

static const struct ferry_sink *pump_load(const char *name, char *err, size_t errlen)
{
    if (lt_dlinit() != 0) {
        snprintf(err, errlen, "lt_dlinit: %s", lt_dlerror());
        return NULL;
    }
    const char *path = getenv("FERRY_PLUGIN_PATH");
    if (path)
        lt_dlsetsearchpath(path);
    lt_dlhandle h = lt_dlopenext(name);
    if (!h) {
        snprintf(err, errlen, "cannot load sink %s: %s", name, lt_dlerror());
        return NULL;
    }
    const struct ferry_sink *d = lt_dlsym(h, "ferry_sink_descriptor");
    if (!d) {
        char sym[128];
        snprintf(sym, sizeof sym, "%s_LTX_ferry_sink_descriptor", name);
        d = lt_dlsym(h, sym);
    }
    if (!d || d->abi != FERRY_SINK_ABI) {
        snprintf(err, errlen, "%s: no sink descriptor of ABI %d", name, FERRY_SINK_ABI);
        return NULL;
    }
    return d;
}

static void pump_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !pump_stop)
        ;
}

int main(int argc, char **argv)
{
    const char *conf = NULL, *sink_name = NULL, *input = NULL, *group = NULL, *reject = NULL;
    size_t batch = 100;
    uint64_t count = 0;
    int64_t idle_exit_ms = 0;
    static const struct option lopts[] = {{"config", required_argument, NULL, 'c'},
                                          {"sink", required_argument, NULL, 's'},
                                          {"input", required_argument, NULL, 'i'},
                                          {"group", required_argument, NULL, 'g'},
                                          {"batch", required_argument, NULL, 'b'},
                                          {"count", required_argument, NULL, 'n'},
                                          {"reject", required_argument, NULL, 'r'},
                                          {"idle-exit", required_argument, NULL, 'x'},
                                          {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "c:", lopts, NULL)) != -1) {
        switch (o) {
        case 'c': conf = optarg; break;
        case 's': sink_name = optarg; break;
        case 'i': input = optarg; break;
        case 'g': group = optarg; break;
        case 'b': batch = strtoul(optarg, NULL, 10); break;
        case 'n': count = strtoull(optarg, NULL, 10); break;
        case 'r': reject = optarg; break;
        case 'x': idle_exit_ms = strtoll(optarg, NULL, 10); break;
        default: return 64;
        }
    }
    if (!conf || !sink_name || !input || batch == 0) {
        fprintf(stderr, "usage: sink-pump -c FILE --sink NAME --input DEST [--group G] "
                        "[--batch N] [--count N] [--reject DEST] [--idle-exit MS]\n");
        return 64;
    }
    signal(SIGTERM, pump_on_signal);
    signal(SIGINT, pump_on_signal);
    signal(SIGPIPE, SIG_IGN);

    char err[1024];
    struct ferry_config *cfg = ferry_config_new();
    if (ferry_config_load(cfg, conf, err, sizeof err) != FERRY_OK) {
        fprintf(stderr, "sink-pump: %s\n", err);
        return 78;
    }
    const struct ferry_sink *sk = pump_load(sink_name, err, sizeof err);
    if (!sk) {
        fprintf(stderr, "sink-pump: %s\n", err);
        return 78;
    }
    void *scfg = calloc(1, sk->cfg_size);
    struct ferry_kv *pt = NULL;
    size_t npt = 0;
    if (ferry_config_bind(cfg, sink_name, sk->options, scfg, &pt, &npt, err, sizeof err) !=
        FERRY_OK) {
        fprintf(stderr, "sink-pump: %s\n", err);
        return 78;
    }
    struct ferry_host host = {.size = sizeof host,
                              .vlog = ferry_stderr_vlog,
                              .log_ctx = (void *)"sink-pump",
                              .log_level = ferry_env_log_level()};
    struct ferry_sink_conn s = {.size = sizeof s,
                                .sink = sk,
                                .cfg = scfg,
                                .passthru = pt,
                                .n_passthru = npt,
                                .host = &host,
                                .client_id = "sink-pump@test",
                                .caps = sk->caps};
    int st = sk->ops->open(&s);
    if (st != FERRY_OK) {
        fprintf(stderr, "sink-pump: error [%s] open: %s\n", sink_name, s.err);
        ferry_options_free(sk->options, scfg);
        free(scfg);
        ferry_kv_free(pt, npt);
        ferry_config_free(cfg);
        return st == FERRY_E_CONFIG ? 78 : 69;
    }

    int tst;
    struct ferry_conn *c = ferry_open(cfg, "sink-pump@test", &tst, err, sizeof err);
    if (!c) {
        fprintf(stderr, "sink-pump: %s\n", err);
        return tst == FERRY_E_CONFIG ? 78 : 69;
    }
    ferry_conn_set_log(c, "sink-pump", ferry_env_log_level());
    if (ferry_subscribe(c, input, group) != FERRY_OK) {
        fprintf(stderr, "sink-pump: subscribe %s: %s\n", input, ferry_conn_error(c));
        return 69;
    }

    struct ferry_msg **msgs = calloc(batch, sizeof *msgs);
    struct ferry_sink_record *recs = calloc(batch, sizeof *recs);
    char(*ids)[128] = calloc(batch, sizeof *ids);
    uint64_t done = 0, rejected = 0, retries = 0;
    struct ferry_backoff bo;
    ferry_backoff_init(&bo, 100, 5000);
    int64_t last_rx = ferry_mono_ms();
    int rc = 0;
    while (!pump_stop && (count == 0 || done < count)) {
        size_t n = 0;
        size_t want = batch;
        if (count && count - done < want)
            want = (size_t)(count - done);
        st = ferry_receive(c, msgs, want, &n, 200);
        if (st == FERRY_E_TIMEOUT || n == 0) {
            if (idle_exit_ms && ferry_mono_ms() - last_rx > idle_exit_ms)
                break;
            continue;
        }
        if (st != FERRY_OK) {
            fprintf(stderr, "sink-pump: receive: %s\n", ferry_conn_error(c));
            rc = 69;
            break;
        }
        last_rx = ferry_mono_ms();
        for (size_t i = 0; i < n; i++) {
            recs[i] = (struct ferry_sink_record){
                .size = sizeof recs[i], .msg = msgs[i], .received_ms = ferry_time_ms()};
            const struct ferry_header *h;
            if (ferry_body_id(msgs[i]->body, msgs[i]->body_len, "id", ids[i], sizeof ids[i]))
                recs[i].id = ids[i];
            else if ((h = ferry_msg_header(msgs[i], "id")) && h->value_len < sizeof ids[i]) {
                memcpy(ids[i], h->value, h->value_len);
                ids[i][h->value_len] = '\0';
                recs[i].id = ids[i];
            }
        }
        /* Write and commit the same batch until it lands. */
        for (;;) {
            s.retry_after_ms = 0;
            st = sk->ops->write(&s, recs, n);
            if (st == FERRY_OK)
                st = sk->ops->commit(&s);
            else
                sk->ops->abort(&s);
            if (st == FERRY_OK || !ferry_status_retriable(st) || pump_stop)
                break;
            int64_t wait = ferry_backoff_next(&bo);
            if (s.retry_after_ms > wait)
                wait = s.retry_after_ms;
            retries++;
            fprintf(stderr,
                    "sink-pump: warn [%s] commit failed batch=%zu error=\"%s\" "
                    "retry_in=%" PRId64 "ms retry_after=%" PRId64 "ms\n",
                    sink_name, n, s.err, wait, s.retry_after_ms);
            pump_sleep_ms(wait);
        }
        if (st != FERRY_OK) {
            for (size_t i = 0; i < n; i++)
                ferry_release(c, msgs[i]);
            fprintf(stderr, "sink-pump: error [%s] commit: %s\n", sink_name, s.err);
            rc = pump_stop ? 0 : st == FERRY_E_CONFIG ? 78 : 70;
            break;
        }
        ferry_backoff_reset(&bo);
        for (size_t i = 0; i < n; i++) {
            if (recs[i].status == FERRY_E_REJECTED) {
                rejected++;
                fprintf(stderr, "sink-pump: warn [%s] rejected id=%s reason=\"%s\"\n", sink_name,
                        recs[i].id ? recs[i].id : "-", recs[i].reason ? recs[i].reason : "");
                if (reject) {
                    const char *why = recs[i].reason ? recs[i].reason : "rejected";
                    struct ferry_header hs[] = {{"x-ferry-error", why, strlen(why)},
                                                {"x-ferry-original-dest", input, strlen(input)}};
                    struct ferry_msg dm = {.dest = reject,
                                           .key = msgs[i]->key,
                                           .key_len = msgs[i]->key_len,
                                           .headers = hs,
                                           .n_headers = 2,
                                           .body = msgs[i]->body,
                                           .body_len = msgs[i]->body_len};
                    if (ferry_publish(c, &dm) != FERRY_OK || ferry_flush(c, 10000) != FERRY_OK) {
                        fprintf(stderr, "sink-pump: dead-letter publish: %s\n",
                                ferry_conn_error(c));
                        ferry_release(c, msgs[i]);
                        continue;
                    }
                }
            }
            ferry_ack(c, msgs[i]);
        }
        done += n;
    }
    struct ferry_sink_health h = {.size = sizeof h};
    sk->ops->health(&s, &h);
    fprintf(stderr,
            "sink-pump: done handled=%" PRIu64 " committed=%" PRIu64 " rejected=%" PRIu64
            " failures=%" PRIu64 " retries=%" PRIu64 "\n",
            done, h.committed, rejected, h.failures, retries);
    sk->ops->close(&s);
    ferry_close(c);
    ferry_options_free(sk->options, scfg);
    ferry_kv_free(pt, npt);
    free(scfg);
    free(msgs);
    free(recs);
    free(ids);
    ferry_config_free(cfg);
    return rc;
}

/* ferry-conformance: settings from the command line and the helpers that
 * the transport cases share (conformance.c: structure and capabilities;
 * delivery.c: volume, durability, connection loss, limits, loans), and the
 * sink suite (sink.c). Each case runs in a process of its own, forked by
 * Check. */
#ifndef FERRY_CONFORMANCE_H
#define FERRY_CONFORMANCE_H

#include <check.h>
#include <ferry/ferry.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Settings from the command line, read by every (forked) case. */
extern struct ferry_config *conf_cfg; /* every connection of the suite */
extern const char *conf_reject;       /* --reject DEST */
extern double conf_scale;             /* FERRY_TEST_TIMEOUT_SCALE */
extern uint32_t conf_caps;            /* effective capabilities of a connection */
extern const char *conf_restart_cmd;  /* --restart-cmd CMD */
extern const char *conf_cut_cmd;      /* --cut-cmd CMD */
extern pid_t conf_proxy_pid;          /* --proxy: the forwarding process, or 0 */
extern int64_t conf_max_size;         /* largest message accepted; 0 = unknown */
extern size_t conf_volume;            /* --volume N */
extern bool conf_consumer_confirms;   /* --consumer-confirms */

/* Helpers (conformance.c). Deadlines are in ms before scaling. */
int64_t now_ms(void);
int64_t scaled(int64_t ms);
struct ferry_conn *conn_open(void);
void unique(char *buf, size_t len, const char *what);
bool is_probe(const struct ferry_msg *m);
int recv_msgs(struct ferry_conn *c, struct ferry_msg **out, size_t max, size_t *n, int timeout_ms);
int publish_retry(struct ferry_conn *p, const struct ferry_msg *m, int64_t ms);
void warm_up(struct ferry_conn *prod, const char *dest, struct ferry_conn **cons, size_t n);
void publish_all(struct ferry_conn *p, struct ferry_msg *msgs, size_t n);
void publish_bodies(struct ferry_conn *p, const char *dest, const char *prefix, size_t n,
                    const char *key);
size_t drain(struct ferry_conn *c, size_t n, int *hits, size_t nhits, bool ack, int64_t ms);

/* A transport case: run when the plugin claims every bit of `need` and
 * `missing()` (when set) returns NULL; once passed, it verifies the claimed
 * bits of `verifies`. */
struct conf_case {
    const char *what;
    uint32_t need;
    uint32_t verifies;
    const TTest *t;
    const char *(*missing)(void); /* why the case cannot run here, or NULL */
    int timeout_s;                /* before scaling; 0: the suite's default */
};
/* Append the cases of delivery.c to out[max]; returns how many. */
size_t delivery_cases(struct conf_case *out, size_t max);

/* The built-in TCP proxy (proxy.c): forks a process forwarding every
 * connection made to listen_spec (HOST:PORT) to target_spec. SIGUSR1 to it
 * resets every connection it carries at that moment. Returns the pid, or
 * -1 with err set. */
pid_t conf_proxy_start(const char *listen_spec, const char *target_spec, char *err, size_t errlen);

/* Run the sink suite against sink name configured by cfg (its [NAME]
 * section). verify_cmd (may be NULL) prints the landed ids, one per line,
 * for sinks without a count operation; reject_body (may be NULL) is a body
 * the sink refuses for good, for the per-record case.
 * @return the exit status: 0 all claims verified, 1 a case failed or a
 * claim could not be verified, 69/78 the sink cannot be opened. */
int sink_conformance(const char *name, struct ferry_config *cfg, const char *verify_cmd,
                     const char *reject_body, double scale);

#endif

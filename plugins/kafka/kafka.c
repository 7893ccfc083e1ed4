/* kafka.so: the ferry transport for Apache Kafka, built on librdkafka.
 * Publishes with delivery reports per tag, consumes as a consumer-group
 * member and commits only offsets below every message still lent out. */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ferry/transport.h>
#include <librdkafka/rdkafka.h>

#include "fkafka.h"
#include "offsets.h"

/* How long topic look-ups and creation may block one call. */
#define FKAFKA_TOPIC_WAIT_MS 5000
/* After a failed look-up (brokers down) publish skips it this long. */
#define FKAFKA_TOPIC_RETRY_MS 5000
/* QUEUE_FULL: poll this often, this many times, before FERRY_E_AGAIN. */
#define FKAFKA_FULL_POLL_MS 10
#define FKAFKA_FULL_TRIES 20
/* message.max.bytes counts record and batch framing too. */
#define FKAFKA_RECORD_OVERHEAD 65536
/* Repeated broker errors are logged at most once per interval. */
#define FKAFKA_LOG_EVERY_MS 10000

enum fkafka_acks { FKAFKA_ACKS_ALL, FKAFKA_ACKS_1, FKAFKA_ACKS_0 };
static const char *const fkafka_acks_values[] = {"all", "1", "0"};
static const char *const fkafka_codecs[] = {"none", "gzip", "snappy", "lz4", "zstd"};
enum fkafka_reset { FKAFKA_RESET_EARLIEST, FKAFKA_RESET_LATEST };
#define FKAFKA_MAX_LAGS 256 /* partitions whose lag is exported */

struct fkafka_cfg {
    char *brokers;
    char *group;
    int64_t partitions;
    int64_t replication;
    int64_t retention_time_ms;
    int64_t retention_bytes;
    int64_t stats_interval_ms;
    int acks;
    bool idempotence;
    int compression;
    int64_t linger_ms;
    int64_t delivery_timeout_ms;
    char *reject_topic;
    int auto_offset_reset;
    int64_t session_timeout_ms;
    int64_t commit_interval_ms;
    int64_t fetch_wait_ms;
    int64_t max_message_size;
    int64_t close_timeout_ms;
    int security_protocol;
    char *ssl_ca;
    char *ssl_cert;
    char *ssl_key;
    int sasl_mechanism;
    char *sasl_username;
    char *sasl_password;
};

static const struct ferry_option fkafka_options[] = {
    {.name = "brokers",
     .type = FERRY_OPT_STR,
     .def = "127.0.0.1:9092",
     .offset = offsetof(struct fkafka_cfg, brokers),
     .help = "Bootstrap servers, host:port, comma separated."},
    {.name = "group",
     .type = FERRY_OPT_STR,
     .def = "",
     .offset = offsetof(struct fkafka_cfg, group),
     .help = "Consumer group joined when a program subscribes without one; empty keeps such "
             "subscriptions private (every message, nothing shared)."},
    {.name = "partitions",
     .type = FERRY_OPT_INT,
     .def = "6",
     .min = 1,
     .max = 100000,
     .offset = offsetof(struct fkafka_cfg, partitions),
     .help = "Number of partitions of the topics this plugin creates when they are missing."},
    {.name = "replication",
     .type = FERRY_OPT_INT,
     .def = "1",
     .min = 1,
     .max = 100,
     .offset = offsetof(struct fkafka_cfg, replication),
     .help = "Replication factor of the topics this plugin creates when they are missing."},
    {.name = "retention_time",
     .type = FERRY_OPT_DURATION,
     .def = "0",
     .min = 0,
     .max = INT64_MAX / 2,
     .offset = offsetof(struct fkafka_cfg, retention_time_ms),
     .help = "retention.ms of the topics this plugin creates: older messages are deleted, consumed "
             "or not (amqp's message_ttl); 0 keeps the broker's default."},
    {.name = "retention_bytes",
     .type = FERRY_OPT_SIZE,
     .def = "0",
     .min = 0,
     .max = INT64_MAX / 2,
     .offset = offsetof(struct fkafka_cfg, retention_bytes),
     .help = "retention.bytes of the topics this plugin creates: per partition, the oldest "
             "segments are deleted past it, consumed or not (amqp's max_length with drop-head); 0 "
             "keeps the broker's default."},
    {.name = "stats_interval",
     .type = FERRY_OPT_DURATION,
     .def = "1s",
     .min = 0,
     .max = 3600000,
     .offset = offsetof(struct fkafka_cfg, stats_interval_ms),
     .help = "How often librdkafka's statistics are taken: a consumer's ferry_consumer_lag, and "
             "a producer's brokers coming back (health); 0 turns them off."},
    {.name = "acks",
     .type = FERRY_OPT_ENUM,
     .def = "all",
     .choices = "all|1|0",
     .offset = offsetof(struct fkafka_cfg, acks),
     .help = "Broker acknowledgements a message needs before it counts as delivered (0 gives up "
             "confirms)."},
    {.name = "idempotence",
     .type = FERRY_OPT_BOOL,
     .def = "true",
     .offset = offsetof(struct fkafka_cfg, idempotence),
     .help =
         "Idempotent producer: retries never duplicate or reorder messages (needs acks = all)."},
    {.name = "compression",
     .type = FERRY_OPT_ENUM,
     .def = "none",
     .choices = "none|gzip|snappy|lz4|zstd",
     .offset = offsetof(struct fkafka_cfg, compression),
     .help = "Compression codec for produced batches."},
    {.name = "linger",
     .type = FERRY_OPT_DURATION,
     .def = "5ms",
     .min = 0,
     .max = 900000,
     .offset = offsetof(struct fkafka_cfg, linger_ms),
     .help =
         "How long the producer gathers messages into a batch before sending it, in milliseconds."},
    {.name = "delivery_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "5m",
     .min = 1000,
     .max = 2147483647,
     .offset = offsetof(struct fkafka_cfg, delivery_timeout_ms),
     .help = "How long a published message is retried (brokers down included) before it is "
             "reported failed."},
    {.name = "reject_topic",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fkafka_cfg, reject_topic),
     .help = "Topic that receives messages nacked without requeue, with headers x-ferry-error and "
             "x-ferry-source; unset drops them."},
    {.name = "auto_offset_reset",
     .type = FERRY_OPT_ENUM,
     .def = "earliest",
     .choices = "earliest|latest",
     .offset = offsetof(struct fkafka_cfg, auto_offset_reset),
     .help = "Where a group without committed offsets starts: earliest loses nothing produced "
             "before it first ran."},
    {.name = "session_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "45s",
     .min = 1000,
     .max = 3600000,
     .offset = offsetof(struct fkafka_cfg, session_timeout_ms),
     .help = "How long a silent group member keeps its partitions before the group hands them to "
             "others."},
    {.name = "commit_interval",
     .type = FERRY_OPT_DURATION,
     .def = "1s",
     .min = 10,
     .max = 3600000,
     .offset = offsetof(struct fkafka_cfg, commit_interval_ms),
     .help = "How often the offsets of acked messages are committed to the group."},
    {.name = "fetch_wait",
     .type = FERRY_OPT_DURATION,
     .def = "100ms",
     .min = 0,
     .max = 60000,
     .offset = offsetof(struct fkafka_cfg, fetch_wait_ms),
     .help = "Longest time a broker holds a fetch waiting for data; lower means lower latency."},
    {.name = "max_message_size",
     .type = FERRY_OPT_SIZE,
     .def = "1MiB",
     .min = 1000,
     .max = 1000000000,
     .offset = offsetof(struct fkafka_cfg, max_message_size),
     .help = "Largest message body this connection sends, in bytes (key, headers and framing may "
             "add 64 KiB)."},
    {.name = "close_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "10s",
     .min = 0,
     .max = 600000,
     .offset = offsetof(struct fkafka_cfg, close_timeout_ms),
     .help = "Longest time close waits for pending deliveries and for leaving the group."},
    {.name = "rdkafka.",
     .type = FERRY_OPT_PREFIX,
     .help = "Any librdkafka property (rdkafka.socket.timeout.ms = 30000), passed through "
             "unchanged and applied last."},
    {.name = "security_protocol",
     .type = FERRY_OPT_ENUM,
     .def = "plaintext",
     .choices = "plaintext|ssl|sasl_plaintext|sasl_ssl",
     .offset = offsetof(struct fkafka_cfg, security_protocol),
     .help = "How to talk to the brokers: plaintext, ssl (TLS), sasl_plaintext (SASL login without "
             "TLS) or sasl_ssl (SASL over TLS)."},
    {.name = "ssl_ca",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fkafka_cfg, ssl_ca),
     .help = "PEM file of the CA certificates that sign the brokers' certificates; default: the "
             "system's CA store."},
    {.name = "ssl_cert",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fkafka_cfg, ssl_cert),
     .help = "PEM file of the client certificate, for brokers that authenticate clients by "
             "certificate (with ssl_key)."},
    {.name = "ssl_key",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .offset = offsetof(struct fkafka_cfg, ssl_key),
     .help = "PEM file of the private key of ssl_cert; keep it mode 0600."},
    {.name = "sasl_mechanism",
     .type = FERRY_OPT_ENUM,
     .def = "plain",
     .choices = "plain|scram-sha-256|scram-sha-512",
     .offset = offsetof(struct fkafka_cfg, sasl_mechanism),
     .help = "SASL mechanism for sasl_plaintext and sasl_ssl; plain sends the password itself, so "
             "use it only with sasl_ssl."},
    {.name = "sasl_username",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fkafka_cfg, sasl_username),
     .help = "SASL user name."},
    {.name = "sasl_password",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .offset = offsetof(struct fkafka_cfg, sasl_password),
     .help = "SASL password; better from sasl_password_file or FERRY_KAFKA_SASL_PASSWORD."},
    {0}};

/* A message lent by receive(): ferry_msg first so the caller's pointer
 * converts back; header views point into rkm. */
struct fkafka_lent {
    struct ferry_msg msg;
    rd_kafka_message_t *rkm;
    struct fkafka_tp *tp;
    uint32_t gen;
    struct fkafka_lent *prev, *next;
    size_t cap; /* room in hdrs */
    struct ferry_header hdrs[];
};

/* Ended loans with room for this many headers are kept for the next
 * receive (at most FKAFKA_SPARE_MAX of them): no allocation per message,
 * as the plain consumer makes none. */
#define FKAFKA_SPARE_HDRS 8
#define FKAFKA_SPARE_MAX 4096

struct fkafka_topic {
    char *name;          /* freed in fkafka_close() */
    int partitions;      /* 0 while unknown */
    int64_t retry_at_ms; /* after a failed look-up */
};

struct fkafka_reject_wait {
    bool done;
    rd_kafka_resp_err_t err;
};

struct fkafka {
    struct ferry_conn *c;
    const struct fkafka_cfg *cfg;
    rd_kafka_conf_t *prod_conf; /* templates; freed in fkafka_close() */
    rd_kafka_conf_t *cons_conf;
    rd_kafka_t *prod; /* created on first publish or reject */
    rd_kafka_t *cons; /* created by subscribe */

    struct fkafka_topic *topics; /* topics known to exist; freed in fkafka_close() */
    size_t n_topics, cap_topics;
    int admin; /* CreateTopics usable: -1 unknown, 0 no, 1 yes */

    uint64_t outstanding; /* published, no delivery report yet */
    struct fkafka_reject_wait *reject_wait;

    bool private_sub;
    bool joined;      /* a group member got its first assignment */
    uint64_t revokes; /* rebalances that took partitions away */
    struct fkafka_track track;
    struct fkafka_lent *lent;  /* messages on loan */
    struct fkafka_lent *spare; /* ended loans for reuse (by next); freed in fkafka_close() */
    size_t n_spare;
    int64_t next_commit_ms;

    long long lag;                             /* from the last statistics, -1 unknown */
    struct fkafka_plag plags[FKAFKA_MAX_LAGS]; /* per partition, n_plags of them */
    size_t n_plags;
    struct ferry_lag lags[FKAFKA_MAX_LAGS]; /* handed out by fkafka_stats() */

    enum ferry_health_state state;
    char reason[256];
    bool been_up, was_down;
    uint64_t reconnects, published, confirmed, failed, received;
    int64_t last_broker_log_ms;
    unsigned suppressed;
};

static int64_t fkafka_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *fkafka_lib_version(void)
{
    return rd_kafka_version_str();
}

/* ---------------------------------------------------------------------- */
/* Health and callbacks (all run in the calling thread, from poll) */

static void fkafka_up(struct fkafka *p)
{
    if (p->state == FERRY_HEALTH_CONNECTED || p->state == FERRY_HEALTH_FAILED)
        return;
    if (p->was_down) {
        p->reconnects++;
        ferry_log_info(p->c, "reconnected brokers=%s", p->cfg->brokers);
    } else {
        ferry_log_info(p->c, "connected brokers=%s", p->cfg->brokers);
    }
    p->was_down = false;
    p->been_up = true;
    p->state = FERRY_HEALTH_CONNECTED;
    p->reason[0] = '\0';
    if (p->suppressed) {
        ferry_log_info(p->c, "broker errors ended suppressed=%u", p->suppressed);
        p->suppressed = 0;
    }
}

static void fkafka_down(struct fkafka *p, const char *why)
{
    if (p->state == FERRY_HEALTH_FAILED)
        return;
    if (p->state != FERRY_HEALTH_CONNECTING || !p->was_down)
        ferry_log_warn(p->c, "all brokers down brokers=%s error=\"%s\"", p->cfg->brokers, why);
    p->state = FERRY_HEALTH_CONNECTING;
    p->was_down = true;
    snprintf(p->reason, sizeof p->reason, "%s", why);
}

static void fkafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct fkafka *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[256];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof why);
        ferry_log_error(p->c, "fatal client error error=\"%s\" code=%s", why,
                        rd_kafka_err2name(orig));
        p->state = FERRY_HEALTH_FAILED;
        snprintf(p->reason, sizeof p->reason, "%s", why);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        fkafka_down(p, reason);
        return;
    }
    int64_t now = fkafka_now_ms();
    if (p->last_broker_log_ms && now - p->last_broker_log_ms < FKAFKA_LOG_EVERY_MS) {
        p->suppressed++;
        ferry_log_debug(p->c, "broker error code=%s error=\"%s\"",
                        rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
        return;
    }
    p->last_broker_log_ms = now;
    ferry_log_warn(p->c, "broker error code=%s error=\"%s\" suppressed=%u",
                   rd_kafka_err2name((rd_kafka_resp_err_t)err), reason, p->suppressed);
    p->suppressed = 0;
}

static void fkafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    struct fkafka *p = rd_kafka_opaque(rk);
    if (!p)
        return;
    /* librdkafka logs a refused connection as an error; ours are for
     * someone who must act, and error_cb already reports broker trouble. */
    enum ferry_log_level lvl = level <= 2   ? FERRY_LOG_ERROR
                               : level <= 4 ? FERRY_LOG_WARN
                               : level <= 6 ? FERRY_LOG_INFO
                                            : FERRY_LOG_DEBUG;
    if (strcmp(fac, "FAIL") == 0)
        lvl = FERRY_LOG_DEBUG;
    /* rdkafka.* properties go to both handles; each ignores the other's. */
    if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "will be ignored by this"))
        lvl = FERRY_LOG_DEBUG;
    ferry_conn_log(p->c, lvl, "librdkafka %s: %s", fac, buf);
}

static void fkafka_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    struct fkafka *p = opaque;
    if (p->reject_wait && rkm->_private == p->reject_wait) {
        p->reject_wait->done = true;
        p->reject_wait->err = rkm->err;
        return;
    }
#if UINTPTR_MAX >= UINT64_MAX
    uint64_t tag = (uint64_t)(uintptr_t)rkm->_private;
#else
    uint64_t tag = *(uint64_t *)rkm->_private;
    free(rkm->_private);
#endif
    p->outstanding--;
    if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->confirmed++;
        fkafka_up(p);
        ferry_conn_delivered(p->c, tag, FERRY_OK, NULL);
    } else {
        p->failed++;
        ferry_log_debug(p->c, "delivery failed dest=%s tag=%" PRIu64 " error=\"%s\"",
                        rd_kafka_topic_name(rkm->rkt), tag, rd_kafka_err2str(rkm->err));
        ferry_conn_delivered(p->c, tag, fkafka_status(rkm->err), rd_kafka_err2str(rkm->err));
    }
}

/* ---------------------------------------------------------------------- */
/* Offsets */

static void fkafka_commit(struct fkafka *p, bool sync)
{
    if (!p->cons || p->private_sub)
        return;
    rd_kafka_topic_partition_list_t *list = NULL;
    for (size_t i = 0; i < p->track.n; i++) {
        struct fkafka_tp *tp = p->track.tps[i];
        if (!fkafka_tp_dirty(tp))
            continue;
        if (!list)
            list = rd_kafka_topic_partition_list_new(8); /* destroyed below */
        int64_t pos = fkafka_tp_position(tp);
        rd_kafka_topic_partition_list_add(list, tp->topic, tp->partition)->offset = pos;
        tp->committed = pos;
    }
    if (!list)
        return;
    rd_kafka_resp_err_t err = rd_kafka_commit(p->cons, list, sync ? 0 : 1);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        ferry_log_warn(p->c, "commit failed error=\"%s\" partitions=%d", rd_kafka_err2str(err),
                       list->cnt);
        for (int i = 0; i < list->cnt; i++) {
            struct fkafka_tp *tp =
                fkafka_track_find(&p->track, list->elems[i].topic, list->elems[i].partition);
            if (tp)
                tp->committed = -1;
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

static void fkafka_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    struct fkafka *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        rd_kafka_resp_err_t e = err ? err : offsets->elems[i].err;
        if (!e)
            continue;
        struct fkafka_tp *tp =
            fkafka_track_find(&p->track, offsets->elems[i].topic, offsets->elems[i].partition);
        if (tp && tp->committed == offsets->elems[i].offset)
            tp->committed = -1; /* retried at the next tick */
        ferry_log_warn(
            p->c, "commit failed dest=%s partition=%" PRId32 " offset=%" PRId64 " error=\"%s\"",
            offsets->elems[i].topic, offsets->elems[i].partition, offsets->elems[i].offset,
            rd_kafka_err2str(e));
    }
    if (!err)
        fkafka_up(p);
}

static void fkafka_commit_tick(struct fkafka *p)
{
    int64_t now = fkafka_now_ms();
    if (now < p->next_commit_ms)
        return;
    p->next_commit_ms = now + p->cfg->commit_interval_ms;
    fkafka_commit(p, false);
}

static void fkafka_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct fkafka *p = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++)
            if (!fkafka_track_assign(&p->track, parts->elems[i].topic, parts->elems[i].partition))
                ferry_log_error(p->c, "out of memory tracking partition dest=%s partition=%" PRId32,
                                parts->elems[i].topic, parts->elems[i].partition);
        ferry_log_info(p->c, "partitions assigned count=%d", parts->cnt);
        p->joined = true;
        if (coop)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, parts);
        fkafka_up(p);
    } else {
        /* Commit what was acked before the partitions go to someone else;
         * loans from them end without effect (the new owner re-reads them). */
        fkafka_commit(p, true);
        p->revokes++;
        for (int i = 0; i < parts->cnt; i++) {
            struct fkafka_tp *tp =
                fkafka_track_find(&p->track, parts->elems[i].topic, parts->elems[i].partition);
            if (tp)
                fkafka_tp_revoke(tp);
        }
        ferry_log_info(p->c, "partitions revoked count=%d reason=%s", parts->cnt,
                       rd_kafka_err2name(err));
        if (coop)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, NULL);
    }
    if (e) {
        ferry_log_warn(p->c, "assign failed error=\"%s\"", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else if (aerr) {
        ferry_log_warn(p->c, "assign failed error=\"%s\"", rd_kafka_err2str(aerr));
    }
}

/* ---------------------------------------------------------------------- */
/* Topics: create missing ones with the configured partitions */

static struct fkafka_topic *fkafka_topic_find(struct fkafka *p, const char *name)
{
    for (size_t i = 0; i < p->n_topics; i++)
        if (strcmp(p->topics[i].name, name) == 0)
            return &p->topics[i];
    return NULL;
}

static struct fkafka_topic *fkafka_topic_add(struct fkafka *p, const char *name)
{
    if (p->n_topics == p->cap_topics) {
        size_t cap = p->cap_topics ? p->cap_topics * 2 : 8;
        struct fkafka_topic *t = realloc(p->topics, cap * sizeof *t); /* freed in fkafka_close() */
        if (!t)
            return NULL;
        p->topics = t;
        p->cap_topics = cap;
    }
    char *dup = strdup(name); /* freed in fkafka_close() */
    if (!dup)
        return NULL;
    struct fkafka_topic *t = &p->topics[p->n_topics++];
    *t = (struct fkafka_topic){.name = dup};
    return t;
}

/* Partition count of topic in md: 0 when absent, -1 when it has an error. */
static int fkafka_md_partitions(const struct rd_kafka_metadata *md, const char *topic)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) != 0)
            continue;
        if (md->topics[i].err)
            return md->topics[i].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? 0 : -1;
        return md->topics[i].partition_cnt;
    }
    return 0;
}

/* Is the Admin API usable? Clusters that advertise no real controller
 * (librdkafka's mock cluster) cannot create topics that way. */
static bool fkafka_admin_usable(struct fkafka *p, rd_kafka_t *rk,
                                const struct rd_kafka_metadata *md)
{
    if (p->admin < 0) {
        int32_t ctl = rd_kafka_controllerid(rk, 0);
        p->admin = 0;
        for (int i = 0; i < md->broker_cnt; i++)
            if (md->brokers[i].id == ctl)
                p->admin = 1;
        if (!p->admin)
            ferry_log_info(p->c,
                           "cluster has no controller, topics are auto-created "
                           "with the broker's partition count controller=%" PRId32,
                           ctl);
    }
    return p->admin == 1;
}

static int fkafka_create_topic(struct fkafka *p, rd_kafka_t *rk, const char *topic)
{
    char errstr[256];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(
        topic, (int)p->cfg->partitions, (int)p->cfg->replication, errstr, sizeof errstr);
    if (!nt)
        return ferry_conn_fail(p->c, FERRY_E_CONFIG, "create topic %s: %s", topic, errstr);
    char num[24];
    if (p->cfg->retention_time_ms > 0) {
        snprintf(num, sizeof num, "%" PRId64, p->cfg->retention_time_ms);
        rd_kafka_NewTopic_set_config(nt, "retention.ms", num);
    }
    if (p->cfg->retention_bytes > 0) {
        snprintf(num, sizeof num, "%" PRId64, p->cfg->retention_bytes);
        rd_kafka_NewTopic_set_config(nt, "retention.bytes", num);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opt, FKAFKA_TOPIC_WAIT_MS, errstr, sizeof errstr);
    rd_kafka_AdminOptions_set_operation_timeout(opt, FKAFKA_TOPIC_WAIT_MS, errstr, sizeof errstr);
    rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, FKAFKA_TOPIC_WAIT_MS + 1000);
    int st = FERRY_OK;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    const char *why = "no answer";
    if (ev) {
        err = rd_kafka_event_error(ev);
        why = rd_kafka_event_error_string(ev);
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr =
            res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
        if (!err && n == 1) {
            err = rd_kafka_topic_result_error(tr[0]);
            why = rd_kafka_topic_result_error_string(tr[0]);
        }
    }
    if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        st = ferry_conn_fail(p->c, fkafka_status(err), "create topic %s: %s", topic,
                             why ? why : rd_kafka_err2str(err));
    else if (!err)
        ferry_log_info(p->c,
                       "topic created dest=%s partitions=%" PRId64 " replication=%" PRId64
                       " retention_ms=%" PRId64 " retention_bytes=%" PRId64,
                       topic, p->cfg->partitions, p->cfg->replication, p->cfg->retention_time_ms,
                       p->cfg->retention_bytes);
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    return st;
}

/* Make sure topic exists; on success *parts is its partition count. Blocks
 * up to a few seconds, once per topic; while the brokers are down it
 * returns FERRY_E_NOCONN without blocking. */
static int fkafka_topic_ready(struct fkafka *p, rd_kafka_t *rk, const char *topic, int *parts)
{
    struct fkafka_topic *t = fkafka_topic_find(p, topic);
    int64_t now = fkafka_now_ms();
    if (t && t->partitions > 0) {
        *parts = t->partitions;
        return FERRY_OK;
    }
    if ((t && now < t->retry_at_ms) || (p->was_down && p->state == FERRY_HEALTH_CONNECTING))
        return ferry_conn_fail(p->c, FERRY_E_NOCONN, "topic %s: brokers unreachable: %s", topic,
                               p->reason[0] ? p->reason : "not yet known");
    if (!t && !(t = fkafka_topic_add(p, topic)))
        return ferry_conn_fail(p->c, FERRY_E_FATAL, "out of memory");
    t->retry_at_ms = now + FKAFKA_TOPIC_RETRY_MS;

    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, FKAFKA_TOPIC_WAIT_MS);
    if (err)
        return ferry_conn_fail(p->c, fkafka_status(err), "topic %s: metadata: %s", topic,
                               rd_kafka_err2str(err));
    fkafka_up(p);
    int n = fkafka_md_partitions(md, topic);
    int st = FERRY_OK;
    if (n == 0) {
        if (fkafka_admin_usable(p, rk, md)) {
            st = fkafka_create_topic(p, rk, topic);
        } else {
            if (p->cfg->retention_time_ms > 0 || p->cfg->retention_bytes > 0)
                ferry_log_warn(p->c,
                               "topic auto-created without retention_time or "
                               "retention_bytes dest=%s (the cluster takes no CreateTopics): "
                               "the broker's retention defaults apply",
                               topic);
            /* A look-up of this one topic makes the broker auto-create it. */
            rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
            const struct rd_kafka_metadata *m2 = NULL;
            if (rkt && rd_kafka_metadata(rk, 0, rkt, &m2, FKAFKA_TOPIC_WAIT_MS) == 0)
                rd_kafka_metadata_destroy(m2);
            if (rkt)
                rd_kafka_topic_destroy(rkt);
        }
        /* Creation is asynchronous on the broker: wait until it shows. */
        int64_t deadline = fkafka_now_ms() + FKAFKA_TOPIC_WAIT_MS;
        while (st == FERRY_OK && n == 0 && fkafka_now_ms() < deadline) {
            rd_kafka_metadata_destroy(md);
            md = NULL;
            err = rd_kafka_metadata(rk, 1, NULL, &md, FKAFKA_TOPIC_WAIT_MS);
            if (err) {
                st = ferry_conn_fail(p->c, fkafka_status(err), "topic %s: metadata: %s", topic,
                                     rd_kafka_err2str(err));
                break;
            }
            n = fkafka_md_partitions(md, topic);
            if (n == 0)
                rd_kafka_poll(rk, 50);
        }
        if (st == FERRY_OK && n == 0)
            st = ferry_conn_fail(p->c, FERRY_E_CONFIG,
                                 "topic %s does not exist and was not created "
                                 "(broker auto-creation off?)",
                                 topic);
    }
    if (st == FERRY_OK && n < 0)
        st = ferry_conn_fail(p->c, FERRY_E_AGAIN, "topic %s is not available yet", topic);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (st == FERRY_OK) {
        t->partitions = n;
        *parts = n;
    }
    return st;
}

/* ---------------------------------------------------------------------- */
/* open / close */

static int fkafka_set(struct ferry_conn *c, rd_kafka_conf_t *conf, const char *key,
                      const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "%s = %s: %s", key, value, errstr);
    return FERRY_OK;
}

static int fkafka_set_int(struct ferry_conn *c, rd_kafka_conf_t *conf, const char *key,
                          int64_t value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, value);
    return fkafka_set(c, conf, key, buf);
}

/* The security options, through fkafka_security_props(). A property
 * marked secret is never echoed in an error. */
static int fkafka_security(struct ferry_conn *c, rd_kafka_conf_t *conf)
{
    const struct fkafka_cfg *cfg = c->cfg;
    const struct fkafka_security sec = {
        .protocol = cfg->security_protocol,
        .ssl_ca = cfg->ssl_ca,
        .ssl_cert = cfg->ssl_cert,
        .ssl_key = cfg->ssl_key,
        .mechanism = cfg->sasl_mechanism,
        .username = cfg->sasl_username,
        .password = cfg->sasl_password,
    };
    struct fkafka_prop props[FKAFKA_SECURITY_PROPS];
    char errstr[512];
    bool cleartext;
    int n = fkafka_security_props(&sec, props, &cleartext, errstr, sizeof errstr);
    if (n < 0)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "%s", errstr);
    for (int i = 0; i < n; i++) {
        if (!props[i].secret) {
            int st = fkafka_set(c, conf, props[i].key, props[i].value);
            if (st)
                return st;
        } else if (rd_kafka_conf_set(conf, props[i].key, props[i].value, errstr, sizeof errstr) !=
                   RD_KAFKA_CONF_OK) {
            return ferry_conn_fail(c, FERRY_E_CONFIG,
                                   "%s: rejected by librdkafka "
                                   "(value not shown)",
                                   props[i].key);
        }
    }
    if (cleartext)
        ferry_log_warn(c, "SASL PLAIN without TLS: the password crosses the network in clear "
                          "text (use security_protocol = sasl_ssl or a SCRAM mechanism)");
    return FERRY_OK;
}

static int fkafka_passthru(struct ferry_conn *c, rd_kafka_conf_t *conf)
{
    for (size_t i = 0; i < c->n_passthru; i++) {
        const char *key = c->passthru[i].key;
        const char *dot = strchr(key, '.');
        char errstr[512];
        if (rd_kafka_conf_set(conf, dot ? dot + 1 : key, c->passthru[i].value, errstr,
                              sizeof errstr) != RD_KAFKA_CONF_OK)
            return ferry_conn_fail(c, FERRY_E_CONFIG, "%s: %s", key, errstr);
    }
    return FERRY_OK;
}

/* librdkafka's statistics, served by consumer_poll in the receiving
 * thread: keep the consumer lag for ferry_stats. */
static int fkafka_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    struct fkafka *p = opaque;
    p->lag = fkafka_stats_lag(json, len);
    p->n_plags = fkafka_stats_lags(json, len, p->plags, FKAFKA_MAX_LAGS);
    return 0; /* librdkafka frees json */
}

/* The producer's statistics tell an idle producer its brokers are back:
 * librdkafka reports all of them down (fkafka_error_cb), never their
 * return, and nothing else calls back while no message is sent. A broker
 * in state UP means a working connection. */
static int fkafka_prod_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    struct fkafka *p = opaque;
    static const char up[] = "\"state\":\"UP\"";
    if (memmem(json, len, up, sizeof up - 1))
        fkafka_up(p);
    return 0; /* librdkafka frees json */
}

static int fkafka_build_conf(struct fkafka *p)
{
    struct ferry_conn *c = p->c;
    const struct fkafka_cfg *cfg = p->cfg;
    rd_kafka_conf_t *base = rd_kafka_conf_new(); /* destroyed below */
    int st = fkafka_set(c, base, "bootstrap.servers", cfg->brokers);
    if (!st && c->client_id && *c->client_id)
        st = fkafka_set(c, base, "client.id", c->client_id);
    if (!st)
        st = fkafka_set(c, base, "log.queue", "true");
    if (!st)
        st = fkafka_security(c, base);
    if (!st)
        st = fkafka_set_int(c, base, "message.max.bytes",
                            cfg->max_message_size + FKAFKA_RECORD_OVERHEAD);
    rd_kafka_conf_set_opaque(base, p);
    rd_kafka_conf_set_error_cb(base, fkafka_error_cb);
    rd_kafka_conf_set_log_cb(base, fkafka_log_cb);
    if (st) {
        rd_kafka_conf_destroy(base);
        return st;
    }

    rd_kafka_conf_t *prod = rd_kafka_conf_dup(base); /* owned by p; freed in fkafka_close() */
    p->prod_conf = prod;
    rd_kafka_conf_set_dr_msg_cb(prod, fkafka_dr_cb);
    st = fkafka_set(c, prod, "acks", fkafka_acks_values[cfg->acks]);
    if (!st)
        st = fkafka_set(c, prod, "enable.idempotence", cfg->idempotence ? "true" : "false");
    if (!st)
        st = fkafka_set(c, prod, "compression.codec", fkafka_codecs[cfg->compression]);
    /* a connection to every broker, kept and retried while idle: so
     * librdkafka sees all of them down (and back) without traffic */
    if (!st)
        st = fkafka_set(c, prod, "enable.sparse.connections", "false");
    if (cfg->stats_interval_ms > 0) {
        rd_kafka_conf_set_stats_cb(prod, fkafka_prod_stats_cb);
        if (!st)
            st = fkafka_set_int(c, prod, "statistics.interval.ms", cfg->stats_interval_ms);
    }
    if (!st)
        st = fkafka_set_int(c, prod, "linger.ms", cfg->linger_ms);
    if (!st)
        st = fkafka_set_int(c, prod, "message.timeout.ms", cfg->delivery_timeout_ms);
    if (!st)
        st = fkafka_passthru(c, prod);

    rd_kafka_conf_t *cons = rd_kafka_conf_dup(base); /* owned by p; freed in fkafka_close() */
    p->cons_conf = cons;
    rd_kafka_conf_set_rebalance_cb(cons, fkafka_rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(cons, fkafka_commit_cb);
    if (cfg->stats_interval_ms > 0) {
        rd_kafka_conf_set_stats_cb(cons, fkafka_stats_cb);
        if (!st)
            st = fkafka_set_int(c, cons, "statistics.interval.ms", cfg->stats_interval_ms);
    }
    if (!st)
        st = fkafka_set(c, cons, "enable.auto.commit", "false");
    if (!st)
        st = fkafka_set(c, cons, "enable.auto.offset.store", "false");
    if (!st)
        st = fkafka_set(c, cons, "enable.partition.eof", "false");
    if (!st)
        st = fkafka_set(c, cons, "allow.auto.create.topics", "true");
    if (!st)
        st = fkafka_set(c, cons, "auto.offset.reset",
                        cfg->auto_offset_reset == FKAFKA_RESET_LATEST ? "latest" : "earliest");
    if (!st)
        st = fkafka_set_int(c, cons, "session.timeout.ms", cfg->session_timeout_ms);
    if (!st && cfg->session_timeout_ms < 9000)
        st = fkafka_set_int(c, cons, "heartbeat.interval.ms", cfg->session_timeout_ms / 3);
    if (!st)
        st = fkafka_set_int(c, cons, "fetch.wait.max.ms", cfg->fetch_wait_ms);
    if (!st)
        st = fkafka_passthru(c, cons);
    rd_kafka_conf_destroy(base);
    return st;
}

static void fkafka_close(struct ferry_conn *c);

static int fkafka_open(struct ferry_conn *c)
{
    const struct fkafka_cfg *cfg = c->cfg;
    if (!cfg->brokers || !*cfg->brokers)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "brokers: no bootstrap servers given");
    if (cfg->reject_topic && !*cfg->reject_topic)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "reject_topic: empty topic name");
    /* librdkafka only notices this when the producer is created. */
    bool idempotence = cfg->idempotence;
    for (size_t i = 0; i < c->n_passthru; i++)
        if (strcmp(c->passthru[i].key, "rdkafka.enable.idempotence") == 0)
            idempotence = strcmp(c->passthru[i].value, "true") == 0;
    if (idempotence && cfg->acks != FKAFKA_ACKS_ALL)
        return ferry_conn_fail(c, FERRY_E_CONFIG,
                               "acks = %s: idempotence = true needs "
                               "acks = all (or set idempotence = false)",
                               fkafka_acks_values[cfg->acks]);
    struct fkafka *p = calloc(1, sizeof *p); /* freed in fkafka_close() */
    if (!p)
        return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
    p->c = c;
    p->cfg = cfg;
    p->admin = -1;
    p->lag = -1;
    p->state = FERRY_HEALTH_CONNECTING;
    snprintf(p->reason, sizeof p->reason, "no broker contacted yet");
    c->priv = p;
    /* retention deletes what nobody consumed: say so once */
    if (cfg->retention_time_ms > 0 || cfg->retention_bytes > 0)
        ferry_log_warn(c,
                       "topics this plugin creates delete messages past retention_time=%" PRId64
                       "ms or retention_bytes=%" PRId64 " per partition, consumed or not: watch "
                       "ferry_consumer_lag",
                       cfg->retention_time_ms, cfg->retention_bytes);
    int st = fkafka_build_conf(p);
    if (st) {
        char err[sizeof c->err];
        memcpy(err, c->err, sizeof err);
        fkafka_close(c);
        memcpy(c->err, err, sizeof err);
        return st;
    }
    if (!cfg->reject_topic)
        c->caps &= ~(uint32_t)FERRY_CAP_DEADLETTER;
    if (cfg->acks == FKAFKA_ACKS_0)
        c->caps &= ~(uint32_t)(FERRY_CAP_CONFIRMS | FERRY_CAP_DURABLE);
    ferry_log_info(c, "opened brokers=%s lib_version=%s acks=%s idempotence=%s", cfg->brokers,
                   rd_kafka_version_str(), fkafka_acks_values[cfg->acks],
                   cfg->idempotence ? "true" : "false");
    return FERRY_OK;
}

static void fkafka_free_lent(struct fkafka *p, struct fkafka_lent *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        p->lent = l->next;
    if (l->next)
        l->next->prev = l->prev;
    rd_kafka_message_destroy(l->rkm);
    l->rkm = NULL; /* ended: a second ack, nack or release of it is refused */
    if (l->cap == FKAFKA_SPARE_HDRS && p->n_spare < FKAFKA_SPARE_MAX) {
        l->next = p->spare;
        p->spare = l;
        p->n_spare++;
    } else {
        free(l);
    }
}

static void fkafka_close_consumer(struct fkafka *p)
{
    fkafka_commit(p, true);
    while (p->lent)
        fkafka_free_lent(p, p->lent);
    for (size_t i = 0; i < p->track.n; i++)
        fkafka_tp_revoke(p->track.tps[i]);

    /* rd_kafka_consumer_close() can hang (seen against the mock cluster):
     * close asynchronously and give up after close_timeout. */
    bool closed = false;
    rd_kafka_queue_t *q = rd_kafka_queue_new(p->cons);
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(p->cons, q);
    if (e) {
        ferry_log_warn(p->c, "leaving the group failed error=\"%s\"", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else {
        int64_t deadline = fkafka_now_ms() + p->cfg->close_timeout_ms;
        while (!(closed = rd_kafka_consumer_closed(p->cons)) && fkafka_now_ms() < deadline) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
            if (!ev)
                continue;
            if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
                if (strcmp(rd_kafka_rebalance_protocol(p->cons), "COOPERATIVE") == 0) {
                    rd_kafka_error_t *ue = rd_kafka_incremental_unassign(
                        p->cons, rd_kafka_event_topic_partition_list(ev));
                    if (ue)
                        rd_kafka_error_destroy(ue);
                } else {
                    rd_kafka_assign(p->cons, NULL);
                }
            }
            rd_kafka_event_destroy(ev);
        }
        if (!closed)
            ferry_log_warn(p->c, "leaving the group timed out timeout=%" PRId64 "ms",
                           p->cfg->close_timeout_ms);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy_flags(p->cons, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    p->cons = NULL;
}

static void fkafka_close_producer(struct fkafka *p)
{
    int64_t deadline = fkafka_now_ms() + p->cfg->close_timeout_ms;
    while (p->outstanding > 0 && fkafka_now_ms() < deadline)
        rd_kafka_poll(p->prod, 50);
    if (p->outstanding > 0) {
        ferry_log_warn(p->c,
                       "close with undelivered messages pending=%" PRIu64 " timeout=%" PRId64 "ms",
                       p->outstanding, p->cfg->close_timeout_ms);
        /* Reported as FERRY_E_NOCONN: never sent as far as we know. */
        rd_kafka_purge(p->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                                    RD_KAFKA_PURGE_F_NON_BLOCKING);
        deadline = fkafka_now_ms() + 1000;
        while (p->outstanding > 0 && fkafka_now_ms() < deadline)
            rd_kafka_poll(p->prod, 50);
    }
    rd_kafka_destroy(p->prod);
    p->prod = NULL;
}

static void fkafka_close(struct ferry_conn *c)
{
    struct fkafka *p = c->priv;
    if (!p)
        return;
    if (p->cons)
        fkafka_close_consumer(p);
    while (p->spare) {
        struct fkafka_lent *l = p->spare;
        p->spare = l->next;
        free(l);
    }
    if (p->prod)
        fkafka_close_producer(p);
    if (p->prod_conf)
        rd_kafka_conf_destroy(p->prod_conf);
    if (p->cons_conf)
        rd_kafka_conf_destroy(p->cons_conf);
    for (size_t i = 0; i < p->n_topics; i++)
        free(p->topics[i].name);
    free(p->topics);
    fkafka_track_free(&p->track);
    free(p);
    c->priv = NULL;
}

/* ---------------------------------------------------------------------- */
/* Producing */

static int fkafka_producer(struct fkafka *p)
{
    if (p->prod)
        return FERRY_OK;
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(p->prod_conf); /* owned by rk once created */
    p->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!p->prod) {
        rd_kafka_conf_destroy(conf);
        return ferry_conn_fail(p->c, FERRY_E_CONFIG, "producer: %s", errstr);
    }
    rd_kafka_set_log_queue(p->prod, NULL);
    return FERRY_OK;
}

/* Produce one message; headers from m plus up to two extra. */
static int fkafka_produce(struct fkafka *p, const char *topic, const struct ferry_msg *m,
                          const struct ferry_header *extra, size_t n_extra, void *opaque)
{
    size_t nh = m->n_headers + n_extra;
    rd_kafka_vu_t stackvu[16];
    rd_kafka_vu_t *vu = stackvu;
    size_t nvu = 5 + nh;
    if (nvu > sizeof stackvu / sizeof stackvu[0]) {
        vu = malloc(nvu * sizeof *vu); /* freed below */
        if (!vu)
            return ferry_conn_fail(p->c, FERRY_E_FATAL, "out of memory");
    }
    size_t k = 0;
    vu[k].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[k++].u.cstr = topic;
    vu[k].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[k].u.mem.ptr = (void *)(uintptr_t)m->body;
    vu[k++].u.mem.size = m->body_len;
    if (m->key) {
        vu[k].vtype = RD_KAFKA_VTYPE_KEY;
        vu[k].u.mem.ptr = (void *)(uintptr_t)m->key;
        vu[k++].u.mem.size = m->key_len;
    }
    vu[k].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[k++].u.i = RD_KAFKA_MSG_F_COPY;
    vu[k].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[k++].u.ptr = opaque;
    for (size_t i = 0; i < nh; i++) {
        const struct ferry_header *h = i < m->n_headers ? &m->headers[i] : &extra[i - m->n_headers];
        vu[k].vtype = RD_KAFKA_VTYPE_HEADER;
        vu[k].u.header.name = h->name;
        vu[k].u.header.val = h->value;
        vu[k++].u.header.size = (ssize_t)h->value_len;
    }

    int st = FERRY_OK;
    for (int tries = 0;; tries++) {
        rd_kafka_error_t *e = rd_kafka_produceva(p->prod, vu, k);
        if (!e)
            break;
        rd_kafka_resp_err_t err = rd_kafka_error_code(e);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && tries < FKAFKA_FULL_TRIES) {
            rd_kafka_error_destroy(e);
            rd_kafka_poll(p->prod, FKAFKA_FULL_POLL_MS);
            continue;
        }
        st = ferry_conn_fail(p->c, fkafka_status(err), "publish to %s: %s", topic,
                             rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        break;
    }
    if (vu != stackvu)
        free(vu);
    return st;
}

static int fkafka_publish(struct ferry_conn *c, const struct ferry_msg *m)
{
    struct fkafka *p = c->priv;
    if (!m->dest || !*m->dest)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "publish: no destination");
    if (m->body_len > (size_t)p->cfg->max_message_size)
        return ferry_conn_fail(c, FERRY_E_TOOBIG,
                               "publish to %s: body of %zu bytes exceeds "
                               "max_message_size (%" PRId64 ")",
                               m->dest, m->body_len, p->cfg->max_message_size);
    int st = fkafka_producer(p);
    if (st)
        return st;
    if (p->state == FERRY_HEALTH_FAILED)
        return ferry_conn_fail(c, FERRY_E_FATAL, "producer failed: %s", p->reason);
    int parts;
    st = fkafka_topic_ready(p, p->prod, m->dest, &parts);
    /* Brokers down: librdkafka keeps the message and retries until
     * delivery_timeout; only a definite answer stops the publish. */
    if (st && !ferry_status_retriable(st))
        return st;

#if UINTPTR_MAX >= UINT64_MAX
    void *opaque = (void *)(uintptr_t)m->tag;
#else
    uint64_t *opaque = malloc(sizeof *opaque); /* freed in fkafka_dr_cb() */
    if (!opaque)
        return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
    *opaque = m->tag;
#endif
    /* Serve earlier delivery reports now, never after producing: the
     * report of this very message must not arrive before publish returns
     * (the caller only then records the tag as in flight). */
    rd_kafka_poll(p->prod, 0);
    st = fkafka_produce(p, m->dest, m, NULL, 0, opaque);
    if (st) {
#if UINTPTR_MAX < UINT64_MAX
        free(opaque);
#endif
        return st;
    }
    p->outstanding++;
    p->published++;
    return FERRY_OK;
}

static int fkafka_flush(struct ferry_conn *c, int timeout_ms)
{
    struct fkafka *p = c->priv;
    if (!p->prod && timeout_ms == 0 && !p->cons) {
        /* An idle publisher (the HTTP server between requests) polls here:
         * make the producer now, so it watches the brokers and /health
         * follows them before the first request. */
        if (fkafka_producer(p) != FERRY_OK)
            return FERRY_OK; /* the first publish reports it */
    }
    if (!p->prod)
        return FERRY_OK;
    int64_t deadline = fkafka_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = timeout_ms < 0 ? 100 : deadline - fkafka_now_ms();
        rd_kafka_poll(p->prod, left <= 0 ? 0 : (int)(left < 100 ? left : 100));
        if (p->outstanding == 0)
            return FERRY_OK;
        if (p->state == FERRY_HEALTH_FAILED) {
            rd_kafka_purge(p->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                                        RD_KAFKA_PURGE_F_NON_BLOCKING);
            int64_t until = fkafka_now_ms() + 1000;
            while (p->outstanding > 0 && fkafka_now_ms() < until)
                rd_kafka_poll(p->prod, 50);
            return ferry_conn_fail(c, FERRY_E_FATAL, "producer failed: %s", p->reason);
        }
        if (timeout_ms >= 0 && fkafka_now_ms() >= deadline)
            return ferry_conn_fail(c, FERRY_E_TIMEOUT,
                                   "%" PRIu64 " messages not yet "
                                   "confirmed%s%s",
                                   p->outstanding, p->reason[0] ? ": " : "", p->reason);
    }
}

/* ---------------------------------------------------------------------- */
/* Consuming */

static int fkafka_subscribe(struct ferry_conn *c, const char *dest, const char *group)
{
    struct fkafka *p = c->priv;
    if (p->cons)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "subscribe: already subscribed");
    if (!dest || !*dest)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "subscribe: no destination");
    if (!group || !*group)
        group = p->cfg->group;
    p->private_sub = !group || !*group;

    char private_group[128];
    if (p->private_sub) {
        /* Needed by the consumer API, never joined or committed to. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(private_group, sizeof private_group, "ferry-private-%ld-%lx", (long)getpid(),
                 (unsigned long)(ts.tv_nsec ^ ts.tv_sec));
        group = private_group;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(p->cons_conf); /* owned by rk once created */
    int st = fkafka_set(c, conf, "group.id", group);
    if (st) {
        rd_kafka_conf_destroy(conf);
        return st;
    }
    char errstr[512];
    p->cons = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!p->cons) {
        rd_kafka_conf_destroy(conf);
        return ferry_conn_fail(c, FERRY_E_CONFIG, "consumer: %s", errstr);
    }
    rd_kafka_set_log_queue(p->cons, NULL);
    rd_kafka_poll_set_consumer(p->cons);
    p->next_commit_ms = fkafka_now_ms() + p->cfg->commit_interval_ms;

    int parts = 0;
    st = fkafka_topic_ready(p, p->cons, dest, &parts);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(parts ? parts : 1);
    rd_kafka_resp_err_t err;
    if (p->private_sub) {
        /* A private subscription reads every partition itself: no group
         * join (seconds) and nothing shared with anyone. */
        if (st) {
            rd_kafka_topic_partition_list_destroy(list);
            goto fail;
        }
        int64_t start = p->cfg->auto_offset_reset == FKAFKA_RESET_LATEST
                            ? RD_KAFKA_OFFSET_END
                            : RD_KAFKA_OFFSET_BEGINNING;
        for (int i = 0; i < parts; i++) {
            rd_kafka_topic_partition_list_add(list, dest, i)->offset = start;
            if (!fkafka_track_assign(&p->track, dest, i)) {
                rd_kafka_topic_partition_list_destroy(list);
                st = ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
                goto fail;
            }
        }
        err = rd_kafka_assign(p->cons, list);
    } else {
        /* Brokers down: the group is joined once they answer. */
        if (st && !ferry_status_retriable(st)) {
            rd_kafka_topic_partition_list_destroy(list);
            goto fail;
        }
        rd_kafka_topic_partition_list_add(list, dest, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(p->cons, list);
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        st = ferry_conn_fail(c, fkafka_status(err), "subscribe to %s: %s", dest,
                             rd_kafka_err2str(err));
        goto fail;
    }
    ferry_log_info(c, "subscribed dest=%s group=%s%s", dest, group,
                   p->private_sub ? " private=true" : "");
    return FERRY_OK;

fail:
    rd_kafka_destroy_flags(p->cons, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    p->cons = NULL;
    fkafka_track_free(&p->track);
    return st;
}

/* Lends rkm out, or NULL: *foreign when its partition is not (or no
 * longer) assigned to us, else out of memory. */
static struct fkafka_lent *fkafka_lend(struct fkafka *p, rd_kafka_message_t *rkm, bool *foreign)
{
    rd_kafka_headers_t *hdrs = NULL;
    size_t nh = 0;
    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        nh = rd_kafka_header_cnt(hdrs);
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    struct fkafka_tp *tp = fkafka_track_find(&p->track, topic, rkm->partition);
    /* Every assignment goes through the rebalance callback (or subscribe)
     * first, which tracks it; a message from elsewhere is not ours to hand
     * out, ack or commit: its owner reads it. */
    *foreign = !tp || !tp->assigned;
    if (*foreign)
        return NULL;
    struct fkafka_lent *l;
    if (nh <= FKAFKA_SPARE_HDRS && p->spare) {
        l = p->spare;
        p->spare = l->next;
        p->n_spare--;
    } else {
        size_t cap = nh <= FKAFKA_SPARE_HDRS ? FKAFKA_SPARE_HDRS : nh;
        /* ended in fkafka_free_lent() (on ack, nack, release or close),
         * which keeps it for reuse or frees it; spares freed in fkafka_close() */
        l = malloc(sizeof *l + cap * sizeof l->hdrs[0]);
        if (!l)
            return NULL;
        l->cap = cap;
    }
    int again = fkafka_tp_lend(tp, rkm->offset);
    if (again < 0) {
        if (l->cap == FKAFKA_SPARE_HDRS && p->n_spare < FKAFKA_SPARE_MAX) {
            l->rkm = NULL;
            l->next = p->spare;
            p->spare = l;
            p->n_spare++;
        } else {
            free(l);
        }
        return NULL;
    }
    memset(&l->msg, 0, sizeof l->msg);
    l->rkm = rkm;
    l->tp = tp;
    l->gen = tp->gen;
    for (size_t i = 0; i < nh; i++) {
        const void *v = NULL;
        size_t vlen = 0;
        rd_kafka_header_get_all(hdrs, i, &l->hdrs[i].name, &v, &vlen);
        l->hdrs[i].value = v ? v : "";
        l->hdrs[i].value_len = vlen;
    }
    l->msg.dest = topic;
    l->msg.key = rkm->key;
    l->msg.key_len = rkm->key_len;
    l->msg.headers = nh ? l->hdrs : NULL;
    l->msg.n_headers = nh;
    l->msg.body = rkm->payload ? rkm->payload : "";
    l->msg.body_len = rkm->len;
    l->msg.tag = (uint64_t)rkm->offset;
    l->msg.redelivered = (uint32_t)again;
    l->prev = NULL;
    l->next = p->lent;
    if (p->lent)
        p->lent->prev = l;
    p->lent = l;
    return l;
}

static bool fkafka_stale(const struct fkafka_lent *l)
{
    return !l->tp->assigned || l->tp->gen != l->gen;
}

/* A rebalance inside this receive took partitions away: messages from them
 * were never handed out, so drop them quietly (their new owner reads them)
 * instead of lending messages whose ack could not count. */
static void fkafka_drop_stale(struct fkafka *p, struct ferry_msg **out, size_t *n)
{
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        struct fkafka_lent *l = (struct fkafka_lent *)out[i];
        if (fkafka_stale(l)) {
            fkafka_free_lent(p, l);
            p->received--;
        } else {
            out[k++] = out[i];
        }
    }
    *n = k;
}

static int fkafka_receive(struct ferry_conn *c, struct ferry_msg **out, size_t max, size_t *n,
                          int timeout_ms)
{
    struct fkafka *p = c->priv;
    *n = 0;
    if (!p->cons)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "receive before subscribe");
    if (p->prod)
        rd_kafka_poll(p->prod, 0);
    fkafka_commit_tick(p);
    int64_t deadline = fkafka_now_ms() + timeout_ms;
    uint64_t revokes = p->revokes;
    while (*n < max) {
        int wait = 0;
        if (*n == 0) {
            int64_t left = deadline - fkafka_now_ms();
            wait = timeout_ms < 0 ? -1 : left > 0 ? (int)left : 0;
        }
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(p->cons, wait);
        if (!rkm) {
            if (*n > 0 || wait == 0)
                break;
            continue;
        }
        if (rkm->err) {
            rd_kafka_resp_err_t err = rkm->err;
            char why[256];
            snprintf(why, sizeof why, "%s", rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
            if (err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                continue;
            if (fkafka_status(err) == FERRY_E_FATAL) {
                p->state = FERRY_HEALTH_FAILED;
                snprintf(p->reason, sizeof p->reason, "%s", why);
                if (*n > 0)
                    break;
                return ferry_conn_fail(c, FERRY_E_FATAL, "consumer failed: %s", why);
            }
            ferry_log_debug(c, "consumer error code=%s error=\"%s\"", rd_kafka_err2name(err), why);
            continue;
        }
        bool foreign = false;
        struct fkafka_lent *l = fkafka_lend(p, rkm, &foreign);
        if (!l && foreign) {
            ferry_log_debug(c,
                            "message of a partition not assigned to us skipped dest=%s "
                            "partition=%" PRId32 " offset=%" PRId64,
                            rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset);
            rd_kafka_message_destroy(rkm);
            continue;
        }
        if (!l) {
            rd_kafka_message_destroy(rkm);
            if (*n > 0)
                break;
            return ferry_conn_fail(c, FERRY_E_FATAL, "out of memory");
        }
        out[(*n)++] = &l->msg;
        p->received++;
    }
    if (revokes != p->revokes)
        fkafka_drop_stale(p, out, n);
    if (*n > 0) {
        fkafka_up(p);
        return FERRY_OK;
    }
    return ferry_conn_fail(c, FERRY_E_TIMEOUT, "no message within %dms", timeout_ms);
}

static int fkafka_stale_fail(struct fkafka *p, struct fkafka_lent *l, const char *op)
{
    int st = ferry_conn_fail(p->c, FERRY_E_NOCONN,
                             "%s %s[%" PRId32 "]@%" PRId64
                             ": partition revoked, its new owner reads it again",
                             op, l->msg.dest, l->rkm->partition, l->rkm->offset);
    fkafka_free_lent(p, l);
    return st;
}

/* A loan already ended (acked, nacked or released before): refused, not
 * applied to whatever message reuses it next. */
static int fkafka_ended(struct ferry_conn *c, const char *op)
{
    ferry_log_error(c, "%s of a message already settled (ignored)", op);
    return ferry_conn_fail(c, FERRY_E_CONFIG, "%s of a message already settled", op);
}

static int fkafka_ack(struct ferry_conn *c, struct ferry_msg *m)
{
    struct fkafka *p = c->priv;
    struct fkafka_lent *l = (struct fkafka_lent *)m;
    if (!l->rkm)
        return fkafka_ended(c, "ack");
    if (fkafka_stale(l))
        return fkafka_stale_fail(p, l, "ack");
    fkafka_tp_done(l->tp, l->rkm->offset);
    fkafka_free_lent(p, l);
    fkafka_commit_tick(p);
    return FERRY_OK;
}

/* Copy l to reject_topic with the reason and wait for the broker to have it. */
static int fkafka_reject(struct fkafka *p, struct fkafka_lent *l, const char *reason)
{
    int st = fkafka_producer(p);
    if (st)
        return st;
    const char *why = reason && *reason ? reason : "rejected";
    struct ferry_header extra[2] = {
        {.name = "x-ferry-error", .value = why, .value_len = strlen(why)},
        {.name = "x-ferry-source", .value = l->msg.dest, .value_len = strlen(l->msg.dest)},
    };
    int parts;
    st = fkafka_topic_ready(p, p->prod, p->cfg->reject_topic, &parts);
    if (st && !ferry_status_retriable(st))
        return st;
    struct fkafka_reject_wait wait = {0};
    st = fkafka_produce(p, p->cfg->reject_topic, &l->msg, extra, 2, &wait);
    if (st)
        return st;
    p->reject_wait = &wait;
    int64_t deadline = fkafka_now_ms() + p->cfg->delivery_timeout_ms + 1000;
    while (!wait.done && fkafka_now_ms() < deadline)
        rd_kafka_poll(p->prod, 100);
    p->reject_wait = NULL;
    if (!wait.done) {
        /* Never happens with librdkafka's own message timeout; stay safe. */
        rd_kafka_purge(p->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_NON_BLOCKING);
        return ferry_conn_fail(p->c, FERRY_E_TIMEOUT, "reject to %s: no delivery report",
                               p->cfg->reject_topic);
    }
    if (wait.err)
        return ferry_conn_fail(p->c, fkafka_status(wait.err), "reject to %s: %s",
                               p->cfg->reject_topic, rd_kafka_err2str(wait.err));
    return FERRY_OK;
}

/* Consume l's partition again from l's offset (nack requeue, release). */
static int fkafka_rewind(struct fkafka *p, struct fkafka_lent *l)
{
    struct fkafka_tp *tp = l->tp;
    int64_t off = l->rkm->offset;
    /* Already rewound to at or below off, and not yet back there: the
     * partition is re-read from there anyway. */
    bool sought = tp->awaiting && tp->seek_to <= off;
    int64_t to = fkafka_tp_rewind(tp, off);
    if (to < 0 || sought)
        return FERRY_OK;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, l->msg.dest, l->rkm->partition)->offset = to;
    /* Synchronous, so messages fetched before the seek are dropped by
     * librdkafka before the next receive. */
    int st = FERRY_OK;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(p->cons, list, 5000);
    rd_kafka_resp_err_t err = e ? rd_kafka_error_code(e) : list->elems[0].err;
    if (err)
        st = ferry_conn_fail(p->c, fkafka_status(err), "rewind %s[%" PRId32 "] to %" PRId64 ": %s",
                             l->msg.dest, l->rkm->partition, to,
                             e ? rd_kafka_error_string(e) : rd_kafka_err2str(err));
    if (e)
        rd_kafka_error_destroy(e);
    rd_kafka_topic_partition_list_destroy(list);
    return st;
}

static int fkafka_nack(struct ferry_conn *c, struct ferry_msg *m, bool requeue, const char *reason)
{
    struct fkafka *p = c->priv;
    struct fkafka_lent *l = (struct fkafka_lent *)m;
    if (!l->rkm)
        return fkafka_ended(c, "nack");
    if (fkafka_stale(l))
        return fkafka_stale_fail(p, l, "nack");
    int st = FERRY_OK;
    if (requeue) {
        st = fkafka_rewind(p, l);
    } else if (p->cfg->reject_topic) {
        st = fkafka_reject(p, l, reason);
        if (st == FERRY_OK)
            fkafka_tp_done(l->tp, l->rkm->offset);
        /* else: like release, the offset stays uncommitted and comes back. */
    } else {
        ferry_log_debug(
            c, "message dropped dest=%s partition=%" PRId32 " offset=%" PRId64 " reason=\"%s\"",
            l->msg.dest, l->rkm->partition, l->rkm->offset, reason ? reason : "");
        fkafka_tp_done(l->tp, l->rkm->offset);
    }
    fkafka_free_lent(p, l);
    return st;
}

static void fkafka_release(struct ferry_conn *c, struct ferry_msg *m)
{
    struct fkafka *p = c->priv;
    struct fkafka_lent *l = (struct fkafka_lent *)m;
    if (!l->rkm) {
        fkafka_ended(c, "release");
        return;
    }
    /* No decision: the partition is read again from this message on. If
     * that fails, its offset stays uncommitted, so it comes back after a
     * restart or a rebalance. */
    if (!fkafka_stale(l) && fkafka_rewind(p, l) != FERRY_OK)
        ferry_log_warn(c, "release could not rewind error=\"%s\"", c->err);
    fkafka_free_lent(p, l);
}

static int fkafka_health(struct ferry_conn *c, struct ferry_health *out)
{
    struct fkafka *p = c->priv;
    memset(out, 0, sizeof *out);
    out->state = p->state;
    snprintf(out->reason, sizeof out->reason, "%s",
             p->state == FERRY_HEALTH_CONNECTED ? "" : p->reason);
    if (out->state == FERRY_HEALTH_CONNECTED && p->cons && !p->private_sub && !p->joined) {
        /* Not ready to consume before the group gave us partitions. */
        out->state = FERRY_HEALTH_CONNECTING;
        snprintf(out->reason, sizeof out->reason, "joining consumer group");
    }
    out->reconnects = p->reconnects;
    out->inflight = p->outstanding;
    out->published = p->published;
    out->confirmed = p->confirmed;
    out->failed = p->failed;
    out->received = p->received;
    return FERRY_OK;
}

static int fkafka_stats(struct ferry_conn *c, struct ferry_stats *out)
{
    struct fkafka *p = c->priv;
    if (p->cons && p->lag >= 0) {
        out->consumer_lag = p->lag;
        for (size_t i = 0; i < p->n_plags; i++)
            p->lags[i] = (struct ferry_lag){.dest = p->plags[i].topic,
                                            .partition = p->plags[i].partition,
                                            .lag = p->plags[i].lag};
        /* a core whose struct ends before lags reads no further */
        if (out->size >= offsetof(struct ferry_stats, n_lags) + sizeof out->n_lags) {
            out->lags = p->lags;
            out->n_lags = p->n_plags;
        }
    }
    return FERRY_OK;
}

static const struct ferry_transport_ops fkafka_ops = {
    .size = sizeof(struct ferry_transport_ops),
    .open = fkafka_open,
    .close = fkafka_close,
    .publish = fkafka_publish,
    .flush = fkafka_flush,
    .subscribe = fkafka_subscribe,
    .receive = fkafka_receive,
    .ack = fkafka_ack,
    .nack = fkafka_nack,
    .release = fkafka_release,
    .health = fkafka_health,
    .stats = fkafka_stats,
};

#define ferry_descriptor kafka_LTX_ferry_descriptor
const struct ferry_transport ferry_descriptor = {
    .abi = FERRY_TRANSPORT_ABI,
    .size = sizeof(struct ferry_transport),
    .name = "kafka",
    .summary = "Apache Kafka through librdkafka",
    .lib_version = fkafka_lib_version,
    .caps = FERRY_CAP_ACK | FERRY_CAP_GROUPS | FERRY_CAP_DURABLE | FERRY_CAP_CONFIRMS |
            FERRY_CAP_KEY_ORDER | FERRY_CAP_DEADLETTER | FERRY_CAP_FANOUT,
    .options = fkafka_options,
    .cfg_size = sizeof(struct fkafka_cfg),
    .ops = &fkafka_ops,
};

/* MQTT transport for ferry through libmosquitto (MQTT 5): QoS 2 (or 1)
 * publishes confirmed by the broker, shared subscriptions for groups,
 * persistent sessions for consumers. Guarantees and limits are in
 * plugins/mqtt/README.md. */
#include "config.h"

#include <ferry/transport.h>

#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "mqtt-status.h"

/* Filled by the core from fmqtt_options before open(). */
struct fmqtt_cfg {
    char *host;
    int64_t port;
    char *client_id;
    bool clean_session;
    int64_t session_expiry_ms;
    char *username;
    char *password;
    bool tls;
    char *ca_file;
    char *ca_path;
    char *cert_file;
    char *key_file;
    bool tls_insecure;
    int64_t keepalive_ms;
    int64_t connect_timeout_ms;
    int64_t reconnect_min_ms;
    int64_t reconnect_max_ms;
    int64_t max_pending;
    int64_t receive_queue;
    int64_t max_message_size;
    int qos; /* index into "1|2" */
};

/* The user property that carries ferry's key (MQTT has no key of its own). */
#define FMQTT_KEY_PROP "x-ferry-key"
/* User properties are UTF-8 text: a key or header value that is not text
 * travels base64-encoded under this prefix ("x-ferry-b64:x-ferry-key"). */
#define FMQTT_B64_PREFIX "x-ferry-b64:"
/* MQTT's largest packet (the Remaining Length field), minus room for the header. */
#define FMQTT_MAX_PACKET (268435455 - 1024)

static const struct ferry_option fmqtt_options[] = {
    {.name = "host",
     .type = FERRY_OPT_STR,
     .def = "127.0.0.1",
     .offset = offsetof(struct fmqtt_cfg, host),
     .help = "Host name or address of the MQTT broker."},
    {.name = "port",
     .type = FERRY_OPT_INT,
     .def = "1883",
     .min = 1,
     .max = 65535,
     .offset = offsetof(struct fmqtt_cfg, port),
     .help = "TCP port of the broker (8883 is usual with TLS)."},
    {.name = "client_id",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fmqtt_cfg, client_id),
     .help = "MQTT client id of a consumer's session; give each consumer its own, stable "
             "across restarts (default: derived from program, host, group and destination)."},
    {.name = "clean_session",
     .type = FERRY_OPT_BOOL,
     .def = "false",
     .offset = offsetof(struct fmqtt_cfg, clean_session),
     .help = "Start consumers with a fresh session, dropping what the broker queued for them "
             "while they were away."},
    {.name = "session_expiry",
     .type = FERRY_OPT_DURATION,
     .def = "1d",
     .min = 0,
     .max = INT64_C(4294967295) * 1000,
     .offset = offsetof(struct fmqtt_cfg, session_expiry_ms),
     .help = "How long the broker keeps a consumer's session and queues its messages after "
             "it disconnects, in milliseconds (whole seconds are used)."},
    {.name = "username",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fmqtt_cfg, username),
     .help = "User name for the broker; none by default."},
    {.name = "password",
     .type = FERRY_OPT_STR,
     .flags = FERRY_OPTF_SECRET,
     .offset = offsetof(struct fmqtt_cfg, password),
     .help = "Password for username; better from FERRY_MQTT_PASSWORD or password_file."},
    {.name = "tls",
     .type = FERRY_OPT_BOOL,
     .def = "false",
     .offset = offsetof(struct fmqtt_cfg, tls),
     .help = "Connect with TLS; the broker is verified against ca_file or ca_path."},
    {.name = "ca_file",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fmqtt_cfg, ca_file),
     .help = "PEM file of the certificate authorities trusted for the broker."},
    {.name = "ca_path",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fmqtt_cfg, ca_path),
     .help = "Directory of trusted CA certificates (c_rehash layout), e.g. /etc/ssl/certs."},
    {.name = "cert_file",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fmqtt_cfg, cert_file),
     .help = "PEM client certificate, for brokers that ask for one (needs key_file)."},
    {.name = "key_file",
     .type = FERRY_OPT_STR,
     .offset = offsetof(struct fmqtt_cfg, key_file),
     .help = "PEM private key of cert_file, unencrypted."},
    {.name = "tls_insecure",
     .type = FERRY_OPT_BOOL,
     .def = "false",
     .offset = offsetof(struct fmqtt_cfg, tls_insecure),
     .help = "Skip the check that the broker's certificate names host (tests only)."},
    {.name = "keepalive",
     .type = FERRY_OPT_DURATION,
     .def = "30s",
     .min = 5000,
     .max = 65535000,
     .offset = offsetof(struct fmqtt_cfg, keepalive_ms),
     .help = "MQTT keepalive: a silent connection is probed and dropped after 1.5 times this."},
    {.name = "connect_timeout",
     .type = FERRY_OPT_DURATION,
     .def = "5s",
     .min = 100,
     .max = 600000,
     .offset = offsetof(struct fmqtt_cfg, connect_timeout_ms),
     .help = "How long open waits for the broker to accept the connection."},
    {.name = "reconnect_min",
     .type = FERRY_OPT_DURATION,
     .def = "1s",
     .min = 1000,
     .max = 3600000,
     .offset = offsetof(struct fmqtt_cfg, reconnect_min_ms),
     .help = "First reconnect delay after a lost connection (whole seconds); it doubles up "
             "to reconnect_max."},
    {.name = "reconnect_max",
     .type = FERRY_OPT_DURATION,
     .def = "30s",
     .min = 1000,
     .max = 3600000,
     .offset = offsetof(struct fmqtt_cfg, reconnect_max_ms),
     .help = "Longest reconnect delay (whole seconds)."},
    {.name = "max_pending",
     .type = FERRY_OPT_INT,
     .def = "10000",
     .min = 1,
     .max = 60000,
     .offset = offsetof(struct fmqtt_cfg, max_pending),
     .help = "Publishes not yet confirmed by PUBACK before publish returns 'again'."},
    {.name = "receive_queue",
     .type = FERRY_OPT_INT,
     .def = "1000",
     .min = 1,
     .max = 1000000,
     .offset = offsetof(struct fmqtt_cfg, receive_queue),
     .help = "Messages received and acknowledged to the broker but not yet handed out; "
             "a crash loses them (see the README)."},
    {.name = "qos",
     .type = FERRY_OPT_ENUM,
     .def = "2",
     .choices = "1|2",
     .offset = offsetof(struct fmqtt_cfg, qos),
     .help = "QoS of publishes: 2 lets the broker drop the copy libmosquitto sends again "
             "after a lost connection; 1 is faster but may then deliver a message twice."},
    {.name = "max_message_size",
     .type = FERRY_OPT_SIZE,
     .def = "16MiB",
     .min = 1,
     .max = FMQTT_MAX_PACKET,
     .offset = offsetof(struct fmqtt_cfg, max_message_size),
     .help = "Largest message (body, key, headers and topic) in bytes; bigger ones are "
             "refused by publish before anything is sent."},
    {0}};

/* A received message, lent to the caller. One allocation holds the struct,
 * the header array and every byte the ferry_msg points at. */
struct fmqtt_rmsg {
    struct ferry_msg m;
    struct fmqtt_rmsg *prev, *next; /* p->lent, or a queue (next only) */
};

struct fmqtt;

/* One libmosquitto client with its network thread. */
struct fmqtt_client {
    struct fmqtt *p;
    struct mosquitto *mosq;
    char *id; /* MQTT client id, owned */
    bool consumer;
    bool running; /* loop thread started */
    /* guarded by p->mtx: */
    bool connected;
    bool ever_connected;
    bool failed; /* refused for good, or taken over: no recovery */
    int fail_status;
    int last_rc;      /* last CONNACK / DISCONNECT reason */
    uint64_t subacks; /* SUBACKs granting QoS 1 (consumer) */
    int sub_refused;  /* the last SUBACK's refusal reason, 0 if none */
    char reason[200];
    uint64_t connects;
};

struct fmqtt_pend {
    uint64_t tag;
    bool used;
};

struct fmqtt_ack {
    int mid;
    int rc;
};

struct fmqtt {
    const struct fmqtt_cfg *cfg;
    pthread_mutex_t mtx;
    pthread_cond_t cond; /* signalled on (dis)connect, PUBACK, message, space */
    struct fmqtt_client pub;
    struct fmqtt_client *sub; /* the consumer session, after subscribe */
    char *sub_dest;
    char *sub_topic; /* what was subscribed: dest or $share/GROUP/dest */
    bool closing;
    /* publishing: pend is indexed by message id; acks arrive from the loop thread */
    struct fmqtt_pend *pend; /* 65536 entries, allocated at the first publish */
    size_t n_pend;
    struct fmqtt_ack *acks; /* guarded by mtx */
    size_t n_acks, acks_cap;
    uint64_t published, confirmed, failed, no_subscribers;
    /* consuming, network thread only: packet ids of this connection's
     * messages, and after a reconnect those of the one before, which the
     * broker sends again first when our PUBACKs were lost with it */
    uint16_t recent[1024];
    size_t n_recent;
    uint8_t *resend_ids; /* bitmap of 65536 packet ids; NULL: not resuming */
    /* consuming: filled by the loop thread (guarded by mtx) */
    struct fmqtt_rmsg *in_head, *in_tail;
    size_t n_in;
    uint64_t received, dropped;
    /* caller's thread only */
    uint64_t sub_connects_seen; /* consumer reconnects already logged */
    struct fmqtt_rmsg *lent;
    struct fmqtt_rmsg *requeue_head, *requeue_tail;
};

/* ---------------------------------------------------------------------- */

static pthread_once_t fmqtt_init_once = PTHREAD_ONCE_INIT;
static char fmqtt_version_buf[32];

static void fmqtt_init(void)
{
    int major, minor, rev;
    mosquitto_lib_init();
    mosquitto_lib_version(&major, &minor, &rev);
    snprintf(fmqtt_version_buf, sizeof fmqtt_version_buf, "libmosquitto %d.%d.%d", major, minor,
             rev);
}

static const char *fmqtt_lib_version(void)
{
    pthread_once(&fmqtt_init_once, fmqtt_init);
    return fmqtt_version_buf;
}

static int64_t fmqtt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait on p->cond (mtx held) until deadline (monotonic ms, -1: none).
 * Returns false once the deadline has passed. */
static bool fmqtt_wait(struct fmqtt *p, int64_t deadline)
{
    if (deadline < 0) {
        pthread_cond_wait(&p->cond, &p->mtx);
        return true;
    }
    int64_t now = fmqtt_now_ms();
    if (now >= deadline)
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = ts.tv_nsec + (deadline - now) % 1000 * 1000000;
    ts.tv_sec += (deadline - now) / 1000 + ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    pthread_cond_timedwait(&p->cond, &p->mtx, &ts);
    return true;
}

/* ---------------------------------------------------------------------- */
/* Callbacks: they run on libmosquitto's network thread */

static void fmqtt_on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                             const mosquitto_property *props)
{
    (void)mosq;
    (void)flags;
    (void)props;
    struct fmqtt_client *cl = obj;
    struct fmqtt *p = cl->p;
    pthread_mutex_lock(&p->mtx);
    cl->last_rc = rc;
    if (rc == 0) {
        cl->connected = true;
        if (cl->ever_connected)
            cl->connects++;
        cl->ever_connected = true;
        cl->reason[0] = '\0';
    } else {
        snprintf(cl->reason, sizeof cl->reason, "the broker refused the connection: %s",
                 mosquitto_reason_string(rc));
        if (fmqtt_connack_status(rc) == FERRY_E_CONFIG) {
            cl->failed = true;
            cl->fail_status = FERRY_E_CONFIG;
        }
    }
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mtx);
    if (rc != 0 && cl->failed)
        mosquitto_disconnect(mosq); /* retrying cannot fix credentials or a bad id */
    /* Subscribe on every connection, not once: mosquitto 2.0.11 does not
     * restore shared subscriptions from its persistence file, so after a
     * broker restart the session would be there without them. */
    if (rc == 0 && cl->consumer && p->sub_topic) {
        if (p->n_recent) {
            /* freed in fmqtt_on_message() or fmqtt_free() */
            if (!p->resend_ids)
                p->resend_ids = calloc(65536 / 8, 1);
            for (size_t i = 0; p->resend_ids && i < p->n_recent && i < 1024; i++)
                p->resend_ids[p->recent[i] / 8] |= (uint8_t)(1u << (p->recent[i] % 8));
            p->n_recent = 0;
        }
        mosquitto_subscribe_v5(mosq, NULL, p->sub_topic, 1, 0, NULL);
    }
}

static void fmqtt_on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n,
                               const int *granted, const mosquitto_property *props)
{
    (void)mosq;
    (void)mid;
    (void)props;
    struct fmqtt_client *cl = obj;
    struct fmqtt *p = cl->p;
    pthread_mutex_lock(&p->mtx);
    if (n >= 1 && granted[0] == 1) {
        cl->subacks++;
        cl->sub_refused = 0;
    } else {
        cl->sub_refused = n >= 1 ? granted[0] : MQTT_RC_UNSPECIFIED;
        snprintf(cl->reason, sizeof cl->reason, "subscribe %s refused: %s", p->sub_topic,
                 cl->sub_refused >= 0x80 ? mosquitto_reason_string(cl->sub_refused)
                                         : "QoS 1 not granted");
    }
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mtx);
}

static void fmqtt_on_disconnect(struct mosquitto *mosq, void *obj, int rc,
                                const mosquitto_property *props)
{
    (void)props;
    struct fmqtt_client *cl = obj;
    struct fmqtt *p = cl->p;
    bool stop = false;
    pthread_mutex_lock(&p->mtx);
    cl->connected = false;
    cl->last_rc = rc;
    if (!p->closing) {
        if (rc == MQTT_RC_SESSION_TAKEN_OVER) {
            /* Another client connected with our id: fighting back would make
             * the two take each other over for ever. */
            snprintf(cl->reason, sizeof cl->reason,
                     "session taken over: another client "
                     "connected with client id '%s'; give each consumer its own client_id",
                     cl->id);
            cl->failed = true;
            cl->fail_status = FERRY_E_CONFIG;
            stop = true;
        } else if (!cl->failed) {
            snprintf(cl->reason, sizeof cl->reason, "connection lost: %s",
                     rc >= 0x80 ? mosquitto_reason_string(rc) : mosquitto_strerror(rc));
        }
    }
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mtx);
    if (stop)
        mosquitto_disconnect(mosq);
}

static void fmqtt_on_publish(struct mosquitto *mosq, void *obj, int mid, int rc,
                             const mosquitto_property *props)
{
    (void)mosq;
    (void)props;
    struct fmqtt_client *cl = obj;
    struct fmqtt *p = cl->p;
    pthread_mutex_lock(&p->mtx);
    if (p->n_acks == p->acks_cap) {
        size_t cap = p->acks_cap ? p->acks_cap * 2 : 1024;
        struct fmqtt_ack *a = realloc(p->acks, cap * sizeof *a); /* freed in fmqtt_close() */
        if (!a) {
            /* Cannot record it: the message stays pending and flush times
             * out rather than report a confirm we lost. */
            pthread_mutex_unlock(&p->mtx);
            return;
        }
        p->acks = a;
        p->acks_cap = cap;
    }
    p->acks[p->n_acks++] = (struct fmqtt_ack){.mid = mid, .rc = rc};
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mtx);
}

static const char fmqtt_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Decode base64 text in place into out (room for strlen(in) bytes);
 * returns the length. Characters outside the alphabet are skipped. */
static size_t fmqtt_b64_decode(const char *in, char *out)
{
    uint32_t v = 0;
    int bits = 0;
    size_t n = 0;
    for (; *in; in++) {
        const char *k = strchr(fmqtt_b64, *in);
        if (!k)
            continue;
        v = v << 6 | (uint32_t)(k - fmqtt_b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (char)(v >> bits & 0xff);
        }
    }
    return n;
}

/* Whether len bytes are text a user property can carry as is. */
static bool fmqtt_is_text(const void *v, size_t len)
{
    return len < 65535 && !memchr(v, '\0', len) &&
           mosquitto_validate_utf8(v, (int)len) == MOSQ_ERR_SUCCESS;
}

/* Add one user property, base64 under FMQTT_B64_PREFIX when not text. */
static int fmqtt_add_prop(mosquitto_property **props, const char *name, const void *v, size_t len)
{
    bool text = fmqtt_is_text(v, len);
    size_t nl = strlen(name) + sizeof FMQTT_B64_PREFIX;
    char *n = malloc(nl);
    char *val = text ? strndup(v, len) : ferry_base64_encode(v, len);
    int rc = MOSQ_ERR_NOMEM;
    if (n && val) {
        snprintf(n, nl, "%s%s", text ? "" : FMQTT_B64_PREFIX, name);
        rc = mosquitto_property_add_string_pair(props, MQTT_PROP_USER_PROPERTY, n, val);
    }
    free(n);
    free(val);
    return rc;
}

/* Copy a received message into one allocation. NULL when out of memory. */
static struct fmqtt_rmsg *fmqtt_copy(const struct mosquitto_message *msg,
                                     const mosquitto_property *props)
{
    size_t n_hdr = 0,
           total = sizeof(struct fmqtt_rmsg) + strlen(msg->topic) + 1 + (size_t)msg->payloadlen + 1;
    for (const mosquitto_property *pr = props; pr; pr = mosquitto_property_next(pr)) {
        char *name = NULL, *value = NULL;
        if (mosquitto_property_identifier(pr) != MQTT_PROP_USER_PROPERTY ||
            !mosquitto_property_read_string_pair(pr, MQTT_PROP_USER_PROPERTY, &name, &value, false))
            continue;
        total += strlen(name) + strlen(value) + 2;
        if (strcmp(name, FMQTT_KEY_PROP) && strcmp(name, FMQTT_B64_PREFIX FMQTT_KEY_PROP))
            n_hdr++;
        free(name);
        free(value);
    }
    total += n_hdr * sizeof(struct ferry_header);
    /* freed in fmqtt_ack(), fmqtt_nack(), fmqtt_release() or fmqtt_close() */
    struct fmqtt_rmsg *r = calloc(1, total);
    if (!r)
        return NULL;
    struct ferry_header *hdrs = (struct ferry_header *)(r + 1);
    char *w = (char *)(hdrs + n_hdr);
#define FMQTT_COPY(dst, src, len)                                                                  \
    do {                                                                                           \
        if (len) /* an empty payload may come as NULL */                                           \
            memcpy(w, (src), (len));                                                               \
        (dst) = w;                                                                                 \
        w += (len);                                                                                \
        *w++ = '\0';                                                                               \
    } while (0)
    FMQTT_COPY(r->m.dest, msg->topic, strlen(msg->topic));
    FMQTT_COPY(r->m.body, msg->payload, (size_t)msg->payloadlen);
    r->m.body_len = (size_t)msg->payloadlen;
    size_t h = 0;
    for (const mosquitto_property *pr = props; pr; pr = mosquitto_property_next(pr)) {
        char *name = NULL, *value = NULL;
        if (mosquitto_property_identifier(pr) != MQTT_PROP_USER_PROPERTY ||
            !mosquitto_property_read_string_pair(pr, MQTT_PROP_USER_PROPERTY, &name, &value, false))
            continue;
        size_t vlen = strlen(value);
        const char *hname = name;
        if (!strncmp(name, FMQTT_B64_PREFIX, sizeof FMQTT_B64_PREFIX - 1)) {
            hname += sizeof FMQTT_B64_PREFIX - 1;
            vlen = fmqtt_b64_decode(value, value);
        }
        if (!strcmp(hname, FMQTT_KEY_PROP)) {
            FMQTT_COPY(r->m.key, value, vlen);
            r->m.key_len = vlen;
        } else if (h < n_hdr) {
            FMQTT_COPY(hdrs[h].name, hname, strlen(hname));
            FMQTT_COPY(hdrs[h].value, value, vlen);
            hdrs[h].value_len = vlen;
            h++;
        }
        free(name);
        free(value);
    }
#undef FMQTT_COPY
    r->m.headers = h ? hdrs : NULL;
    r->m.n_headers = h;
    return r;
}

static void fmqtt_on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
                             const mosquitto_property *props)
{
    (void)mosq;
    struct fmqtt_client *cl = obj;
    struct fmqtt *p = cl->p;
    struct fmqtt_rmsg *r = fmqtt_copy(msg, props);
    /* libmosquitto 2.0 does not pass the DUP flag on. A message resent
     * after a reconnect keeps its packet id, and the broker resends before
     * anything new: while ids match the last connection's, mark them. */
    uint16_t mid = (uint16_t)msg->mid;
    if (p->resend_ids) {
        if (p->resend_ids[mid / 8] & (1u << (mid % 8))) {
            if (r)
                r->m.redelivered = 1;
        } else {
            free(p->resend_ids);
            p->resend_ids = NULL;
        }
    }
    p->recent[p->n_recent++ % 1024] = mid;
    pthread_mutex_lock(&p->mtx);
    if (!r) {
        p->dropped++; /* reported by the next receive() */
    } else {
        /* Back-pressure: hold the network thread while the queue is full, so
         * the broker keeps the rest (up to its max_queued_messages). */
        while (p->n_in >= (size_t)p->cfg->receive_queue && !p->closing)
            pthread_cond_wait(&p->cond, &p->mtx);
        if (p->in_tail)
            p->in_tail->next = r;
        else
            p->in_head = r;
        p->in_tail = r;
        p->n_in++;
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->mtx);
}

static void fmqtt_on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
    struct fmqtt_client *cl = obj;
    struct fmqtt *p = cl->p;
    /* The rest of libmosquitto's log is per packet. Its errors matter when
     * not connected: a TLS handshake that fails on the network thread
     * shows nowhere else. */
    (void)mosq;
    if (level != MOSQ_LOG_ERR)
        return;
    pthread_mutex_lock(&p->mtx);
    if (!cl->connected && !cl->failed && !p->closing) {
        snprintf(cl->reason, sizeof cl->reason, "%s", str);
        /* A certificate that does not verify will not verify next time
         * either: fail now rather than retry for ever. */
        if (!cl->ever_connected && strstr(str, "OpenSSL Error")) {
            cl->failed = true;
            cl->fail_status = FERRY_E_CONFIG;
        }
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->mtx);
    /* No mosquitto_disconnect() here: libmosquitto may log with its own
     * locks held. open() sees `failed` and ends the client. */
}

/* ---------------------------------------------------------------------- */
/* Clients */

/* Replace what MQTT ids and topics should not carry; the result is
 * printable and stable. */
static void fmqtt_sanitize(char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.' || *s == '@'))
            *s = '_';
}

static pthread_mutex_t fmqtt_ids_mtx = PTHREAD_MUTEX_INITIALIZER;
static unsigned fmqtt_pub_seq;

/* The default id of a consumer session: the program and host (not the
 * pid, so that a restart finds its session), the group and the destination,
 * and the how-many-th such session of this process. */
static char *fmqtt_session_id(struct ferry_conn *c, const char *dest, const char *group)
{
    static struct {
        char *id;
        unsigned n;
    } seen[64];
    static size_t n_seen;
    const char *who = c->client_id ? c->client_id : "ferry";
    size_t wl = strcspn(who, ":");
    size_t len = wl + strlen(dest) + (group ? strlen(group) : 7) + 32;
    char *id = malloc(len); /* owned by the client, freed in fmqtt_client_free() */
    if (!id)
        return NULL;
    snprintf(id, len, "%.*s-%s-%s", (int)wl, who, group && *group ? group : "private", dest);
    fmqtt_sanitize(id);
    pthread_mutex_lock(&fmqtt_ids_mtx);
    unsigned n = 0;
    size_t i;
    for (i = 0; i < n_seen; i++)
        if (!strcmp(seen[i].id, id))
            break;
    if (i < n_seen)
        n = ++seen[i].n;
    else if (n_seen < sizeof seen / sizeof seen[0] && (seen[n_seen].id = strdup(id)))
        seen[n_seen++].n = 0; /* kept for the life of the process */
    pthread_mutex_unlock(&fmqtt_ids_mtx);
    if (n > 0)
        snprintf(id + strlen(id), len - strlen(id), "-%u", n + 1);
    return id;
}

static void fmqtt_client_free(struct fmqtt_client *cl)
{
    if (!cl)
        return;
    if (cl->mosq) {
        if (cl->running) {
            mosquitto_disconnect(cl->mosq);
            mosquitto_loop_stop(cl->mosq, false);
        }
        mosquitto_destroy(cl->mosq);
        cl->mosq = NULL;
    }
    free(cl->id);
    cl->id = NULL;
}

/* Create, configure and connect one client, and wait for the broker's
 * CONNACK up to connect_timeout. */
static int fmqtt_client_start(struct ferry_conn *c, struct fmqtt_client *cl, bool persistent,
                              int64_t expiry_ms)
{
    struct fmqtt *p = c->priv;
    const struct fmqtt_cfg *cfg = p->cfg;
    cl->p = p;
    cl->mosq = mosquitto_new(cl->id, !persistent, cl);
    if (!cl->mosq)
        return ferry_conn_fail(c, errno == EINVAL ? FERRY_E_CONFIG : FERRY_E_AGAIN,
                               "cannot create an MQTT client id=%s: %s", cl->id, strerror(errno));
    int rc = mosquitto_int_option(cl->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    if (rc == MOSQ_ERR_SUCCESS && cl->consumer)
        rc = mosquitto_int_option(cl->mosq, MOSQ_OPT_RECEIVE_MAXIMUM,
                                  cfg->receive_queue < 65535 ? (int)cfg->receive_queue : 65535);
    if (rc == MOSQ_ERR_SUCCESS && cfg->username)
        rc = mosquitto_username_pw_set(cl->mosq, cfg->username, cfg->password);
    if (rc != MOSQ_ERR_SUCCESS)
        return ferry_conn_fail(c, fmqtt_status(rc), "MQTT client options: %s",
                               mosquitto_strerror(rc));
    if (!cfg->username && cfg->password)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "password is set but username is not");
    if (cfg->tls || cfg->ca_file || cfg->ca_path || cfg->cert_file) {
        if (!cfg->ca_file && !cfg->ca_path)
            return ferry_conn_fail(c, FERRY_E_CONFIG, "tls needs ca_file or ca_path");
        if (!cfg->cert_file != !cfg->key_file)
            return ferry_conn_fail(c, FERRY_E_CONFIG, "cert_file and key_file come together");
        rc = mosquitto_tls_set(cl->mosq, cfg->ca_file, cfg->ca_path, cfg->cert_file, cfg->key_file,
                               NULL);
        if (rc == MOSQ_ERR_SUCCESS && cfg->tls_insecure)
            rc = mosquitto_tls_insecure_set(cl->mosq, true);
        if (rc != MOSQ_ERR_SUCCESS)
            return ferry_conn_fail(c, FERRY_E_CONFIG,
                                   "TLS settings (ca_file, ca_path, cert_file, "
                                   "key_file): %s",
                                   mosquitto_strerror(rc));
    }
    mosquitto_connect_v5_callback_set(cl->mosq, fmqtt_on_connect);
    mosquitto_disconnect_v5_callback_set(cl->mosq, fmqtt_on_disconnect);
    mosquitto_publish_v5_callback_set(cl->mosq, fmqtt_on_publish);
    mosquitto_message_v5_callback_set(cl->mosq, fmqtt_on_message);
    mosquitto_subscribe_v5_callback_set(cl->mosq, fmqtt_on_subscribe);
    mosquitto_log_callback_set(cl->mosq, fmqtt_on_log);
    unsigned rmin = (unsigned)(cfg->reconnect_min_ms / 1000),
             rmax = (unsigned)(cfg->reconnect_max_ms / 1000);
    mosquitto_reconnect_delay_set(cl->mosq, rmin, rmax < rmin ? rmin : rmax, true);

    mosquitto_property *props = NULL;
    if (persistent &&
        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                     (uint32_t)(expiry_ms / 1000)) != MOSQ_ERR_SUCCESS)
        return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
    int keepalive = (int)(cfg->keepalive_ms / 1000);
    /* libmosquitto keeps the properties (session expiry) for its reconnects. */
    rc = mosquitto_connect_bind_v5(cl->mosq, cfg->host, (int)cfg->port, keepalive, NULL, props);
    int err = errno;
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_SUCCESS)
        return ferry_conn_fail(
            c, fmqtt_status(rc), "MQTT broker %s:%" PRId64 ": %s%s", cfg->host, cfg->port,
            rc == MOSQ_ERR_ERRNO ? strerror(err)
            : rc == MOSQ_ERR_EAI ? "unknown host"
                                 : mosquitto_strerror(rc),
            rc == MOSQ_ERR_TLS ? " (does the broker's certificate chain to "
                                 "ca_file/ca_path and name host? tls_insecure skips the name check)"
                               : "");
    rc = mosquitto_loop_start(cl->mosq);
    if (rc != MOSQ_ERR_SUCCESS)
        return ferry_conn_fail(c, fmqtt_status(rc), "MQTT network thread: %s",
                               mosquitto_strerror(rc));
    cl->running = true;

    int64_t deadline = fmqtt_now_ms() + cfg->connect_timeout_ms;
    pthread_mutex_lock(&p->mtx);
    while (!cl->connected && !cl->failed && fmqtt_wait(p, deadline))
        ;
    bool ok = cl->connected;
    int st = cl->failed ? cl->fail_status : FERRY_E_NOCONN;
    char reason[sizeof cl->reason];
    snprintf(reason, sizeof reason, "%s", cl->reason[0] ? cl->reason : "no answer");
    pthread_mutex_unlock(&p->mtx);
    if (!ok && st == FERRY_E_CONFIG)
        return ferry_conn_fail(c, st, "MQTT broker %s:%" PRId64 " refused: %s", cfg->host,
                               cfg->port, reason);
    if (!ok)
        return ferry_conn_fail(c, st,
                               "MQTT broker %s:%" PRId64 " not connected within %" PRId64 " ms: %s",
                               cfg->host, cfg->port, cfg->connect_timeout_ms, reason);
    return FERRY_OK;
}

/* ---------------------------------------------------------------------- */
/* Operations */

static void fmqtt_free(struct fmqtt *p)
{
    pthread_mutex_lock(&p->mtx);
    p->closing = true;
    pthread_cond_broadcast(&p->cond); /* a blocked on_message lets go */
    pthread_mutex_unlock(&p->mtx);
    if (p->sub) {
        fmqtt_client_free(p->sub);
        free(p->sub);
    }
    fmqtt_client_free(&p->pub);
    struct fmqtt_rmsg *lists[] = {p->in_head, p->requeue_head, p->lent};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++)
        for (struct fmqtt_rmsg *r = lists[i], *next; r; r = next) {
            next = r->next;
            free(r);
        }
    free(p->pend);
    free(p->acks);
    free(p->resend_ids);
    free(p->sub_dest);
    free(p->sub_topic);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mtx);
    free(p);
}

static int fmqtt_open(struct ferry_conn *c)
{
    pthread_once(&fmqtt_init_once, fmqtt_init);
    const struct fmqtt_cfg *cfg = c->cfg;
    if (!cfg->host || !*cfg->host)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "host is empty");
    struct fmqtt *p = calloc(1, sizeof *p); /* freed in fmqtt_close() */
    if (!p)
        return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
    p->cfg = cfg;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&p->mtx, NULL);
    c->priv = p;

    /* The publishing client: a clean session under a unique id; libmosquitto
     * resends what is not yet PUBACKed when it reconnects. */
    const char *who = c->client_id ? c->client_id : "ferry";
    size_t len = strlen(who) + 16;
    p->pub.id = malloc(len); /* freed in fmqtt_client_free() */
    if (!p->pub.id) {
        fmqtt_free(p);
        c->priv = NULL;
        return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
    }
    pthread_mutex_lock(&fmqtt_ids_mtx);
    unsigned seq = ++fmqtt_pub_seq;
    pthread_mutex_unlock(&fmqtt_ids_mtx);
    snprintf(p->pub.id, len, "%s-%u", who, seq);
    fmqtt_sanitize(p->pub.id);
    /* QoS 2 needs the session to outlive a lost connection: the broker
     * remembers which packet ids it has, and drops the copy libmosquitto
     * sends again. The id is this process's own, so the session is only
     * kept long enough to reconnect. */
    int64_t expiry = cfg->reconnect_max_ms * 4 > 300000 ? cfg->reconnect_max_ms * 4 : 300000;
    int st = fmqtt_client_start(c, &p->pub, cfg->qos == 1, expiry);
    if (st != FERRY_OK) {
        fmqtt_free(p);
        c->priv = NULL;
        return st;
    }
    ferry_log_info(c, "connected broker=%s:%" PRId64 " client_id=%s tls=%s", cfg->host, cfg->port,
                   p->pub.id, cfg->tls || cfg->ca_file || cfg->ca_path ? "yes" : "no");
    return FERRY_OK;
}

static void fmqtt_close(struct ferry_conn *c)
{
    struct fmqtt *p = c->priv;
    if (!p)
        return;
    if (p->n_pend)
        ferry_log_warn(c, "closing with unconfirmed messages pending=%zu", p->n_pend);
    fmqtt_free(p);
    c->priv = NULL;
}

/* Report every PUBACK that arrived since the last call. Caller's thread. */
static void fmqtt_report(struct ferry_conn *c)
{
    struct fmqtt *p = c->priv;
    pthread_mutex_lock(&p->mtx);
    if (p->n_acks == 0) {
        pthread_mutex_unlock(&p->mtx);
        return;
    }
    struct fmqtt_ack *acks = p->acks;
    size_t n = p->n_acks;
    p->acks = NULL;
    p->n_acks = p->acks_cap = 0;
    pthread_mutex_unlock(&p->mtx);
    for (size_t i = 0; i < n; i++) {
        int mid = acks[i].mid, rc = acks[i].rc;
        if (!p->pend || mid < 0 || mid > 65535 || !p->pend[mid].used)
            continue; /* not ours (a QoS 0 probe of libmosquitto) */
        uint64_t tag = p->pend[mid].tag;
        p->pend[mid].used = false;
        p->n_pend--;
        if (rc < 0x80) {
            if (rc == MQTT_RC_NO_MATCHING_SUBSCRIBERS) {
                /* The broker took it and had nobody to give it to, as an
                 * exchange without a queue; say so, rate-limited. */
                uint64_t k = ++p->no_subscribers;
                while (k % 10 == 0)
                    k /= 10;
                if (k == 1)
                    ferry_log_warn(c, "published with no subscriber count=%" PRIu64,
                                   p->no_subscribers);
            }
            p->confirmed++;
            ferry_conn_delivered(c, tag, FERRY_OK, NULL);
        } else {
            char why[160];
            snprintf(why, sizeof why, "broker refused the message: %s",
                     mosquitto_reason_string(rc));
            p->failed++;
            ferry_conn_delivered(c, tag, fmqtt_puback_status(rc), why);
        }
    }
    free(acks);
}

/* The key and headers as user properties. */
static int fmqtt_props(struct ferry_conn *c, const struct ferry_msg *m, mosquitto_property **props)
{
    *props = NULL;
    int rc = MOSQ_ERR_SUCCESS;
    if (m->key && m->key_len)
        rc = fmqtt_add_prop(props, FMQTT_KEY_PROP, m->key, m->key_len);
    for (size_t i = 0; rc == MOSQ_ERR_SUCCESS && i < m->n_headers; i++) {
        const struct ferry_header *h = &m->headers[i];
        if (!fmqtt_is_text(h->name, strlen(h->name)) ||
            !strncmp(h->name, FMQTT_B64_PREFIX, sizeof FMQTT_B64_PREFIX - 1) ||
            !strcmp(h->name, FMQTT_KEY_PROP)) {
            mosquitto_property_free_all(props);
            return ferry_conn_fail(c, FERRY_E_NOTSUP,
                                   "header name %s: MQTT user property names "
                                   "are UTF-8 text, and %s and %s* are reserved",
                                   h->name, FMQTT_KEY_PROP, FMQTT_B64_PREFIX);
        }
        rc = fmqtt_add_prop(props, h->name, h->value, h->value_len);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        mosquitto_property_free_all(props);
        return ferry_conn_fail(c, fmqtt_status(rc), "message properties: %s",
                               mosquitto_strerror(rc));
    }
    return FERRY_OK;
}

static int fmqtt_publish(struct ferry_conn *c, const struct ferry_msg *m)
{
    struct fmqtt *p = c->priv;
    fmqtt_report(c);
    if (!m->dest || !*m->dest)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "publish without a destination");
    if (strpbrk(m->dest, "+#") || m->dest[0] == '$')
        return ferry_conn_fail(c, FERRY_E_CONFIG,
                               "destination %s is not an MQTT topic one can "
                               "publish to (no +, # or leading $)",
                               m->dest);
    /* What goes on the wire, with base64's growth for values that are not text. */
    uint64_t size =
        (uint64_t)m->body_len + strlen(m->dest) +
        (m->key_len ? sizeof FMQTT_B64_PREFIX FMQTT_KEY_PROP + m->key_len / 3 * 4 + 4 : 0);
    for (size_t i = 0; i < m->n_headers; i++)
        size += strlen(m->headers[i].name) + sizeof FMQTT_B64_PREFIX + 5 +
                m->headers[i].value_len / 3 * 4 + 4;
    if (size > (uint64_t)p->cfg->max_message_size)
        return ferry_conn_fail(c, FERRY_E_TOOBIG,
                               "message of %" PRIu64 " bytes, max_message_size is %" PRId64, size,
                               p->cfg->max_message_size);
    pthread_mutex_lock(&p->mtx);
    bool failed = p->pub.failed;
    int fst = p->pub.fail_status;
    char reason[sizeof p->pub.reason];
    snprintf(reason, sizeof reason, "%s", p->pub.reason);
    pthread_mutex_unlock(&p->mtx);
    if (failed)
        return ferry_conn_fail(c, fst, "%s", reason);
    if (p->n_pend >= (size_t)p->cfg->max_pending)
        return ferry_conn_fail(c, FERRY_E_AGAIN, "%zu messages await PUBACK (max_pending)",
                               p->n_pend);
    if (!p->pend) {
        p->pend = calloc(65536, sizeof *p->pend); /* freed in fmqtt_free() */
        if (!p->pend)
            return ferry_conn_fail(c, FERRY_E_AGAIN, "out of memory");
    }
    mosquitto_property *props;
    int st = fmqtt_props(c, m, &props);
    if (st != FERRY_OK)
        return st;
    int mid = 0;
    /* QoS 2 (or 1): confirmed when the broker's PUBCOMP (PUBACK) arrives;
     * while disconnected libmosquitto queues it and sends it after
     * reconnecting. */
    int rc = mosquitto_publish_v5(p->pub.mosq, &mid, m->dest, (int)m->body_len, m->body,
                                  p->cfg->qos + 1, false, props);
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_SUCCESS)
        return ferry_conn_fail(c, fmqtt_status(rc), "publish failed dest=%s error=\"%s\"", m->dest,
                               mosquitto_strerror(rc));
    if (mid < 0 || mid > 65535 || p->pend[mid].used)
        return ferry_conn_fail(c, FERRY_E_FATAL, "libmosquitto reused message id %d", mid);
    p->pend[mid] = (struct fmqtt_pend){.tag = m->tag, .used = true};
    p->n_pend++;
    p->published++;
    return FERRY_OK;
}

static int fmqtt_flush(struct ferry_conn *c, int timeout_ms)
{
    struct fmqtt *p = c->priv;
    int64_t deadline = timeout_ms < 0 ? -1 : fmqtt_now_ms() + timeout_ms;
    for (;;) {
        fmqtt_report(c);
        if (p->n_pend == 0)
            return FERRY_OK;
        pthread_mutex_lock(&p->mtx);
        if (p->pub.failed) {
            char reason[sizeof p->pub.reason];
            snprintf(reason, sizeof reason, "%s", p->pub.reason);
            int st = p->pub.fail_status;
            pthread_mutex_unlock(&p->mtx);
            for (int mid = 0; mid < 65536; mid++)
                if (p->pend[mid].used) {
                    p->pend[mid].used = false;
                    p->failed++;
                    ferry_conn_delivered(c, p->pend[mid].tag, st, reason);
                }
            p->n_pend = 0;
            return ferry_conn_fail(c, st, "%s", reason);
        }
        bool more = p->n_acks > 0 || fmqtt_wait(p, deadline);
        bool connected = p->pub.connected;
        char reason[sizeof p->pub.reason];
        snprintf(reason, sizeof reason, "%s", p->pub.reason);
        pthread_mutex_unlock(&p->mtx);
        if (!more) {
            fmqtt_report(c);
            if (p->n_pend == 0)
                return FERRY_OK;
            return ferry_conn_fail(c, FERRY_E_TIMEOUT,
                                   "%zu messages not confirmed within %d ms%s%s", p->n_pend,
                                   timeout_ms, connected ? "" : ": ", connected ? "" : reason);
        }
    }
}

static int fmqtt_subscribe(struct ferry_conn *c, const char *dest, const char *group)
{
    struct fmqtt *p = c->priv;
    if (p->sub)
        return ferry_conn_fail(c, FERRY_E_NOTSUP, "already subscribed to %s", p->sub_dest);
    if (!dest || !*dest)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "subscribe without a destination");
    if (group && *group && strpbrk(group, "/+#"))
        return ferry_conn_fail(c, FERRY_E_CONFIG, "group %s: an MQTT share name cannot hold / + #",
                               group);
    bool named = group && *group;
    size_t len = strlen(dest) + (named ? strlen(group) : 0) + 16;
    free(p->sub_topic);
    free(p->sub_dest);
    p->sub_topic = malloc(len);         /* freed in fmqtt_free() */
    p->sub_dest = strdup(dest);         /* freed in fmqtt_free() */
    p->sub = calloc(1, sizeof *p->sub); /* freed in fmqtt_free() or below */
    int st = FERRY_E_AGAIN;
    if (!p->sub_topic || !p->sub_dest || !p->sub) {
        ferry_conn_fail(c, st, "out of memory");
        goto fail;
    }
    if (named)
        snprintf(p->sub_topic, len, "$share/%s/%s", group, dest);
    else
        snprintf(p->sub_topic, len, "%s", dest);
    p->sub->consumer = true;
    p->sub->id = p->cfg->client_id ? strdup(p->cfg->client_id) : fmqtt_session_id(c, dest, group);
    if (!p->sub->id) {
        ferry_conn_fail(c, st, "out of memory");
        goto fail;
    }
    bool persistent = !p->cfg->clean_session && p->cfg->session_expiry_ms >= 1000;
    st = fmqtt_client_start(c, p->sub, persistent, p->cfg->session_expiry_ms);
    if (st != FERRY_OK)
        goto fail;
    /* fmqtt_on_connect() subscribes; messages published before the SUBACK
     * would not be ours, so wait for it. */
    int64_t deadline = fmqtt_now_ms() + p->cfg->connect_timeout_ms;
    pthread_mutex_lock(&p->mtx);
    while (p->sub->subacks == 0 && p->sub->sub_refused == 0 && !p->sub->failed &&
           fmqtt_wait(p, deadline))
        ;
    bool ok = p->sub->subacks > 0;
    int refused = p->sub->sub_refused;
    char reason[sizeof p->sub->reason];
    snprintf(reason, sizeof reason, "%s", p->sub->reason[0] ? p->sub->reason : "no SUBACK");
    pthread_mutex_unlock(&p->mtx);
    if (!ok) {
        st = ferry_conn_fail(c,
                             refused == MQTT_RC_NOT_AUTHORIZED ||
                                     refused == MQTT_RC_TOPIC_FILTER_INVALID ||
                                     refused == MQTT_RC_SHARED_SUBS_NOT_SUPPORTED
                                 ? FERRY_E_CONFIG
                                 : FERRY_E_NOCONN,
                             "subscribe %s within %" PRId64 " ms: %s", p->sub_topic,
                             p->cfg->connect_timeout_ms, reason);
        goto fail;
    }
    ferry_log_info(c, "subscribed topic=%s client_id=%s session=%s", p->sub_topic, p->sub->id,
                   persistent ? "persistent" : "clean");
    return FERRY_OK;
fail:
    fmqtt_client_free(p->sub);
    free(p->sub);
    p->sub = NULL;
    return st;
}

static void fmqtt_lend(struct fmqtt *p, struct fmqtt_rmsg *r)
{
    r->prev = NULL;
    r->next = p->lent;
    if (p->lent)
        p->lent->prev = r;
    p->lent = r;
}

static void fmqtt_unlend(struct fmqtt *p, struct fmqtt_rmsg *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        p->lent = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static int fmqtt_receive(struct ferry_conn *c, struct ferry_msg **out, size_t max, size_t *n,
                         int timeout_ms)
{
    struct fmqtt *p = c->priv;
    *n = 0;
    fmqtt_report(c);
    if (!p->sub)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "receive before subscribe");
    if (max == 0)
        return ferry_conn_fail(c, FERRY_E_CONFIG, "receive of at most 0 messages");
    while (*n < max && p->requeue_head) {
        struct fmqtt_rmsg *r = p->requeue_head;
        p->requeue_head = r->next;
        if (!p->requeue_head)
            p->requeue_tail = NULL;
        fmqtt_lend(p, r);
        out[(*n)++] = &r->m;
    }
    int64_t deadline = timeout_ms < 0 ? -1 : fmqtt_now_ms() + timeout_ms;
    pthread_mutex_lock(&p->mtx);
    while (*n == 0 && !p->in_head && !p->sub->failed && fmqtt_wait(p, deadline))
        ;
    bool taken = false;
    while (*n < max && p->in_head) {
        struct fmqtt_rmsg *r = p->in_head;
        p->in_head = r->next;
        if (!p->in_head)
            p->in_tail = NULL;
        p->n_in--;
        taken = true;
        r->m.tag = ++p->received;
        fmqtt_lend(p, r);
        out[(*n)++] = &r->m;
    }
    if (taken)
        pthread_cond_broadcast(&p->cond); /* room for a waiting on_message */
    uint64_t dropped = p->dropped;
    p->dropped = 0;
    uint64_t connects = p->sub->connects;
    bool failed = p->sub->failed;
    int fst = p->sub->fail_status;
    char reason[sizeof p->sub->reason];
    snprintf(reason, sizeof reason, "%s", p->sub->reason);
    pthread_mutex_unlock(&p->mtx);
    if (dropped)
        ferry_log_error(c, "messages lost: out of memory copying them dropped=%" PRIu64, dropped);
    if (connects > p->sub_connects_seen) {
        /* mosquitto 2.0.11 closes the older of two connections with one
         * client id without saying why: the two consumers then take the
         * session from each other every few seconds. Log the 1st, 10th,
         * 100th reconnect. */
        for (uint64_t k = p->sub_connects_seen + 1; k <= connects; k++) {
            uint64_t d = k;
            while (d % 10 == 0)
                d /= 10;
            if (d == 1) {
                ferry_log_warn(c,
                               "consumer reconnected client_id=%s reconnects=%" PRIu64
                               " hint=\"if this repeats every few seconds, another consumer "
                               "uses the same client_id\"",
                               p->sub->id, connects);
                break;
            }
        }
        p->sub_connects_seen = connects;
    }
    if (*n > 0)
        return FERRY_OK;
    if (failed)
        return ferry_conn_fail(c, fst, "%s", reason);
    return ferry_conn_fail(c, FERRY_E_TIMEOUT, "no message within %d ms", timeout_ms);
}

static struct fmqtt_rmsg *fmqtt_loan(struct ferry_msg *m)
{
    return (struct fmqtt_rmsg *)m; /* m is the first member */
}

static int fmqtt_ack(struct ferry_conn *c, struct ferry_msg *m)
{
    struct fmqtt_rmsg *r = fmqtt_loan(m);
    fmqtt_unlend(c->priv, r);
    free(r);
    return FERRY_OK;
}

static int fmqtt_nack(struct ferry_conn *c, struct ferry_msg *m, bool requeue, const char *reason)
{
    struct fmqtt *p = c->priv;
    struct fmqtt_rmsg *r = fmqtt_loan(m);
    fmqtt_unlend(p, r);
    if (requeue) {
        /* The broker has its PUBACK already, so the requeue is local to
         * this connection: receive() hands the message out again first. */
        r->m.redelivered = 1;
        if (p->requeue_tail)
            p->requeue_tail->next = r;
        else
            p->requeue_head = r;
        p->requeue_tail = r;
        return FERRY_OK;
    }
    ferry_log_debug(c, "message dropped (nack) dest=%s reason=\"%s\"", r->m.dest,
                    reason ? reason : "");
    free(r);
    return FERRY_OK;
}

static void fmqtt_release(struct ferry_conn *c, struct ferry_msg *m)
{
    fmqtt_ack(c, m);
}

static int fmqtt_health(struct ferry_conn *c, struct ferry_health *out)
{
    struct fmqtt *p = c->priv;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&p->mtx);
    struct fmqtt_client *cls[2] = {&p->pub, p->sub};
    out->state = FERRY_HEALTH_CONNECTED;
    for (size_t i = 0; i < 2; i++) {
        struct fmqtt_client *cl = cls[i];
        if (!cl)
            continue;
        out->reconnects += cl->connects;
        if (cl->failed) {
            out->state = FERRY_HEALTH_FAILED;
            snprintf(out->reason, sizeof out->reason, "%s", cl->reason);
        } else if (!cl->connected && out->state == FERRY_HEALTH_CONNECTED) {
            out->state = FERRY_HEALTH_CONNECTING;
            snprintf(out->reason, sizeof out->reason, "%s broker=%s:%" PRId64,
                     cl->reason[0] ? cl->reason : "connecting", p->cfg->host, p->cfg->port);
        }
    }
    pthread_mutex_unlock(&p->mtx);
    out->inflight = p->n_pend;
    out->published = p->published;
    out->confirmed = p->confirmed;
    out->failed = p->failed;
    out->received = p->received;
    return FERRY_OK;
}

static const struct ferry_transport_ops fmqtt_ops = {
    .size = sizeof(struct ferry_transport_ops),
    .open = fmqtt_open,
    .close = fmqtt_close,
    .publish = fmqtt_publish,
    .flush = fmqtt_flush,
    .subscribe = fmqtt_subscribe,
    .receive = fmqtt_receive,
    .ack = fmqtt_ack,
    .nack = fmqtt_nack,
    .release = fmqtt_release,
    .health = fmqtt_health,
};

#define ferry_descriptor mqtt_LTX_ferry_descriptor
const struct ferry_transport ferry_descriptor = {
    .abi = FERRY_TRANSPORT_ABI,
    .size = sizeof(struct ferry_transport),
    .name = "mqtt",
    .summary =
        "MQTT 5 through libmosquitto (confirmed QoS 2, shared subscriptions, persistent sessions)",
    .lib_version = fmqtt_lib_version,
    /* No ACK: the consumer's PUBACK is gone once a message is handed out
     * (README: "Why no ack"). No DURABLE: a PUBACK does not mean on disk. */
    .caps = FERRY_CAP_CONFIRMS | FERRY_CAP_GROUPS | FERRY_CAP_FANOUT | FERRY_CAP_KEY_ORDER,
    .options = fmqtt_options,
    .cfg_size = sizeof(struct fmqtt_cfg),
    .ops = &fmqtt_ops,
};

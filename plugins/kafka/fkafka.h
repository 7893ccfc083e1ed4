/* Internal declarations shared by the files of kafka.so (not exported: the
 * module exports only its descriptor). */
#ifndef FKAFKA_H
#define FKAFKA_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

/** The consumer lag in librdkafka's statistics JSON (len bytes): the sum
 *  of every partition's "consumer_lag" (high watermark minus committed
 *  offset) that is known (not -1). -1 when none is known. */
long long fkafka_stats_lag(const char *json, size_t len);

/** Map a librdkafka error code to a ferry_status (FERRY_OK for no error). */
int fkafka_status(rd_kafka_resp_err_t err);

enum fkafka_protocol { FKAFKA_PLAINTEXT = 0, FKAFKA_SSL, FKAFKA_SASL_PLAINTEXT, FKAFKA_SASL_SSL };
enum fkafka_mechanism { FKAFKA_SASL_PLAIN = 0, FKAFKA_SCRAM_SHA_256, FKAFKA_SCRAM_SHA_512 };

/* The security options of [kafka], as the option table fills them. */
struct fkafka_security {
    int protocol; /* enum fkafka_protocol */
    const char *ssl_ca, *ssl_cert, *ssl_key;
    int mechanism; /* enum fkafka_mechanism */
    const char *username, *password;
};

/* One librdkafka property; value borrows from the fkafka_security. */
struct fkafka_prop {
    const char *key;
    const char *value;
    bool secret; /* never print the value */
};

#define FKAFKA_SECURITY_PROPS 10

/** Map the security options onto librdkafka properties: up to
 *  FKAFKA_SECURITY_PROPS go to out. Returns how many, or -1 with the reason
 *  in err (which names options, never secret values). *cleartext is set
 *  when a password would cross the network unencrypted (SASL PLAIN
 *  without TLS). */
int fkafka_security_props(const struct fkafka_security *s, struct fkafka_prop *out, bool *cleartext,
                          char *err, size_t errlen);

#endif

/* Helpers of the AMQP plugin that need no broker: status mapping and URL
 * lists (parsing, masking). Compiled into amqp.so and into the unit test. */
#ifndef FERRY_AMQP_UTIL_H
#define FERRY_AMQP_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* One broker address of the url option, parsed. */
struct famqp_url {
    char *buf; /* owns the strings below */
    char *host;
    int port;
    char *user;
    char *password;
    char *vhost;
    bool ssl;
    char masked[256]; /* the URL with the password replaced by "***", for logs */
};

/** Map a rabbitmq-c status (negative amqp_status_enum) or an AMQP reply
 *  code (positive, from connection.close / channel.close) to a ferry_status. */
int famqp_status(int code);

/** Parse a comma-separated list of amqp:// URLs into *out (n entries).
 *  Returns 0, or -1 with a message in err. *out is freed with
 *  famqp_urls_free(), also on error. */
int famqp_urls_parse(const char *list, struct famqp_url **out, size_t *n, char *err, size_t errlen);
void famqp_urls_free(struct famqp_url *u, size_t n);

/** Copy url into out with any password replaced by "***". */
void famqp_url_mask(const char *url, char *out, size_t outlen);

#endif

/* Helpers of the AMQP plugin that need no broker: status mapping and URL
 * lists (parsing, masking). Compiled into amqp.so and into the unit test. */
#include "config.h"

#include "amqp-util.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/transport.h>

int famqp_status(int code)
{
    if (code == 0)
        return FERRY_OK;
    if (code > 0) {
        switch (code) {
        case AMQP_REPLY_SUCCESS: return FERRY_OK;
        case AMQP_CONTENT_TOO_LARGE: return FERRY_E_TOOBIG;
        case AMQP_NO_ROUTE:
        case AMQP_NO_CONSUMERS: return FERRY_E_REJECTED;
        case AMQP_ACCESS_REFUSED:
        case AMQP_NOT_FOUND:
        case AMQP_PRECONDITION_FAILED:
        case AMQP_NOT_ALLOWED:
        case AMQP_COMMAND_INVALID:
        case AMQP_NOT_IMPLEMENTED: return FERRY_E_CONFIG;
        case AMQP_RESOURCE_LOCKED:
        case AMQP_RESOURCE_ERROR: return FERRY_E_AGAIN;
        default: /* 320 connection-forced, 5xx frame/channel/internal errors */
            return FERRY_E_NOCONN;
        }
    }
    switch (code) {
    case AMQP_STATUS_TIMEOUT: return FERRY_E_TIMEOUT;
    case AMQP_STATUS_BAD_URL:
    case AMQP_STATUS_INVALID_PARAMETER:
    case AMQP_STATUS_UNSUPPORTED:
    case AMQP_STATUS_BROKER_UNSUPPORTED_SASL_METHOD:
    case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
    case AMQP_STATUS_SSL_PEER_VERIFY_FAILED:
    case AMQP_STATUS_SSL_SET_ENGINE_FAILED: return FERRY_E_CONFIG;
    case AMQP_STATUS_TABLE_TOO_BIG: return FERRY_E_TOOBIG;
    case AMQP_STATUS_NO_MEMORY:
    case AMQP_STATUS_TCP_SOCKETLIB_INIT_ERROR: return FERRY_E_FATAL;
    default:
        /* socket, heartbeat, protocol and timer errors: the connection is
         * unusable, a new one may work */
        return FERRY_E_NOCONN;
    }
}

/* The URL with its user information (user name and password: both are
 * secrets) replaced by ***. It ends at the last '@' of the URL: a password
 * may hold '@' or '/' unescaped, and a shown host is worth less than a
 * shown secret. */
void famqp_url_mask(const char *url, char *out, size_t outlen)
{
    const char *scheme = strstr(url, "://");
    const char *auth = scheme ? scheme + 3 : url;
    const char *at = strrchr(auth, '@');
    if (!at) {
        snprintf(out, outlen, "%s", url);
        return;
    }
    snprintf(out, outlen, "%.*s***%s", (int)(auth - url), url, at);
}

static char *famqp_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

void famqp_urls_free(struct famqp_url *u, size_t n)
{
    if (!u)
        return;
    for (size_t i = 0; i < n; i++)
        free(u[i].buf);
    free(u);
}

int famqp_urls_parse(const char *list, struct famqp_url **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    char *copy = strdup(list ? list : ""); /* freed below */
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t cap = 1;
    for (const char *p = copy; *p; p++)
        cap += *p == ',';
    struct famqp_url *u = calloc(cap, sizeof *u); /* freed in famqp_urls_free() */
    if (!u) {
        free(copy);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t k = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *one = famqp_trim(tok);
        if (!*one)
            continue;
        char masked[256];
        famqp_url_mask(one, masked, sizeof masked);
        struct amqp_connection_info info;
        u[k].buf = strdup(one); /* freed in famqp_urls_free() */
        if (!u[k].buf) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (strncmp(one, "amqp://", 7) != 0 && strncmp(one, "amqps://", 8) != 0) {
            k++;
            snprintf(err, errlen, "url %s: must start with amqp:// or amqps://", masked);
            goto fail;
        }
        if (amqp_parse_url(u[k].buf, &info) != AMQP_STATUS_OK) {
            k++;
            snprintf(err, errlen,
                     "url %s: not a valid AMQP URL "
                     "(amqp://user:password@host:port/vhost)",
                     masked);
            goto fail;
        }
        u[k].host = info.host;
        u[k].port = info.port;
        u[k].user = info.user;
        u[k].password = info.password;
        u[k].vhost = info.vhost;
        u[k].ssl = info.ssl != 0;
        snprintf(u[k].masked, sizeof u[k].masked, "%s", masked);
        k++;
    }
    free(copy);
    if (k == 0) {
        famqp_urls_free(u, k);
        snprintf(err, errlen, "url is empty: give at least one amqp://host:port");
        return -1;
    }
    *out = u;
    *n = k;
    return 0;
fail:
    free(copy);
    famqp_urls_free(u, k);
    return -1;
}

/* kafka.so: the security options (TLS, SASL) mapped onto librdkafka
 * properties in one place, so the mapping can be unit-tested. */
#include "config.h"

#include <stdio.h>

#include "fkafka.h"

int fkafka_security_props(const struct fkafka_security *s, struct fkafka_prop *out, bool *cleartext,
                          char *err, size_t errlen)
{
    static const char *const protocols[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"};
    static const char *const mechanisms[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
    bool tls = s->protocol == FKAFKA_SSL || s->protocol == FKAFKA_SASL_SSL;
    bool sasl = s->protocol == FKAFKA_SASL_PLAINTEXT || s->protocol == FKAFKA_SASL_SSL;
    size_t n = 0;
    *cleartext = false;
    if (s->protocol < FKAFKA_PLAINTEXT || s->protocol > FKAFKA_SASL_SSL ||
        s->mechanism < FKAFKA_SASL_PLAIN || s->mechanism > FKAFKA_SCRAM_SHA_512) {
        snprintf(err, errlen, "security_protocol or sasl_mechanism out of range");
        return -1;
    }
    if (!tls && (s->ssl_ca || s->ssl_cert || s->ssl_key)) {
        snprintf(err, errlen,
                 "ssl_ca, ssl_cert and ssl_key need security_protocol = ssl or "
                 "sasl_ssl (it is %s)",
                 protocols[s->protocol]);
        return -1;
    }
    if (!s->ssl_cert != !s->ssl_key) {
        snprintf(err, errlen, "ssl_cert and ssl_key go together");
        return -1;
    }
    if (!sasl && (s->username || s->password)) {
        snprintf(err, errlen,
                 "sasl_username and sasl_password need security_protocol = "
                 "sasl_plaintext or sasl_ssl (it is %s)",
                 protocols[s->protocol]);
        return -1;
    }
    if (sasl && (!s->username || !s->password)) {
        snprintf(err, errlen, "security_protocol = %s needs sasl_username and sasl_password",
                 protocols[s->protocol]);
        return -1;
    }
    out[n++] = (struct fkafka_prop){"security.protocol", protocols[s->protocol], false};
    if (tls) {
        /* librdkafka checks the broker's certificate and host name by
         * default; say so explicitly so rdkafka.* is the only way out. */
        out[n++] = (struct fkafka_prop){"enable.ssl.certificate.verification", "true", false};
        out[n++] = (struct fkafka_prop){"ssl.endpoint.identification.algorithm", "https", false};
        if (s->ssl_ca)
            out[n++] = (struct fkafka_prop){"ssl.ca.location", s->ssl_ca, false};
        if (s->ssl_cert) {
            out[n++] = (struct fkafka_prop){"ssl.certificate.location", s->ssl_cert, false};
            out[n++] = (struct fkafka_prop){"ssl.key.location", s->ssl_key, true};
        }
    }
    if (sasl) {
        out[n++] = (struct fkafka_prop){"sasl.mechanism", mechanisms[s->mechanism], false};
        out[n++] = (struct fkafka_prop){"sasl.username", s->username, false};
        out[n++] = (struct fkafka_prop){"sasl.password", s->password, true};
        *cleartext = !tls && s->mechanism == FKAFKA_SASL_PLAIN;
    }
    return (int)n;
}

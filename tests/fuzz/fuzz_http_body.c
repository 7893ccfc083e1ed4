/* libFuzzer target: the HTTP request body parser of POST /produce and
 * POST /batch-produce, with the limits of [http] and [producer]. Every
 * message it accepts is one JSON value in valid UTF-8, no key twice, no
 * NUL; every reason it gives is UTF-8. */
#include "config.h"
#include "app.h"
#include "http.h"
#include "jsoncheck.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef FERRY_FUZZ_STANDALONE
/* built from the sources without cli.c: the parser logs nothing, the rest
 * of http.c is linked but not run */
void app_log(const struct app *a, int level, const char *fmt, ...)
{
    (void)a;
    (void)level;
    (void)fmt;
}

/* the key of a message: the producer's rule is not what is fuzzed here */
const char *app_message_key(enum app_key_mode mode, const char *field, const char *deflt,
                            const char *service, const void *body, size_t len, char *buf,
                            size_t buflen)
{
    (void)mode;
    (void)field;
    (void)service;
    (void)body;
    (void)len;
    (void)buf;
    (void)buflen;
    return deflt;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ferry_metrics *m;
    if (!m)
        m = ferry_metrics_new("fuzz");
    struct http_defaults d = {.service = "svc",
                              .level = FERRY_INFO,
                              .destination = "logs",
                              .max_message_size = 65536,
                              .max_batch = 100,
                              .metrics = m,
                              .producer_id = "fuzz:1:1"};
    char *body = malloc(size + 1); /* NUL-terminated as the server hands it; freed below */
    if (!body)
        return 0;
    memcpy(body, data, size);
    body[size] = '\0';
    for (int batch = 0; batch < 2; batch++) {
        struct http_job *j = NULL;
        char err[512];
        int rc = app_http_parse(body, size, batch, &d, &j, err, sizeof err);
        if (rc == 0) {
            for (size_t i = 0; i < j->n; i++) {
                char why[256];
                if (ferry_json_check(j->msgs[i].body, j->msgs[i].body_len,
                                     FERRY_JSON_NO_DUP_KEYS | FERRY_JSON_NO_NUL, NULL, why,
                                     sizeof why))
                    abort(); /* ferry would send JSON it refuses itself */
            }
            app_http_job_free(j);
        } else if (ferry_utf8_check(err, strlen(err)) != strlen(err)) {
            abort(); /* a reason that is not UTF-8 goes into a JSON answer */
        }
    }
    free(body);
    return 0;
}

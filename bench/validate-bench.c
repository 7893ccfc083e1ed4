/* Validations per second on one core: generated download events (about 300
 * bytes) against a compiled schema, as text and as pre-parsed cJSON. Time is
 * the thread's CPU time, so other load on the machine does not count.
 * Usage: validate-bench SCHEMA [CPU-SECONDS] */
#include "config.h"
#include "app.h"

#include <cjson/cJSON.h>
#include <ferry/schema.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NEVENTS 1024

struct event {
    char text[1024];
    size_t len;
    cJSON *doc; /* freed in main() */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run one kind of validation over the events until SECONDS of CPU time
 * pass; returns validations per CPU second. *bad counts the invalid verdicts. */
static double measure(const struct ferry_schema *s, const struct event *ev, bool parsed,
                      double seconds, unsigned long *bad)
{
    unsigned long n = 0;
    *bad = 0;
    double start = now_s(), t;
    do {
        for (int i = 0; i < NEVENTS; i++) {
            if (parsed) {
                *bad += !ferry_schema_is_valid(s, ev[i].doc);
            } else {
                struct ferry_schema_result r;
                if (ferry_schema_validate_text(s, ev[i].text, ev[i].len, &r) != 0) {
                    fprintf(stderr, "validate-bench: out of memory\n");
                    exit(EXIT_FAILURE);
                }
                *bad += !r.valid;
                ferry_schema_result_free(&r);
            }
        }
        n += NEVENTS;
        t = now_s() - start;
    } while (t < seconds);
    return (double)n / t;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: validate-bench SCHEMA [CPU-SECONDS]\n");
        return 64;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    char err[1024];
    struct ferry_schema *s = ferry_schema_load(argv[1], NULL, err, sizeof err); /* freed below */
    if (!s) {
        fprintf(stderr, "validate-bench: %s\n", err);
        return 78;
    }
    static struct event ev[NEVENTS];
    uint64_t rng = 42;
    size_t bytes = 0;
    for (int i = 0; i < NEVENTS; i++) {
        app_make_download((uint64_t)i + 1000000, false, &rng, ev[i].text, sizeof ev[i].text,
                          &ev[i].len);
        /* about 300 bytes, like events with a client's extra fields */
        ev[i].len += (size_t)snprintf(ev[i].text + ev[i].len - 1, sizeof ev[i].text - ev[i].len + 1,
                                      ",\"client\":\"ferry-dl/2.4.1 (linux; x86_64)\","
                                      "\"mirror\":\"https://mirror-%02d.example.org/pub\"}",
                                      i % 64) -
                     1;
        ev[i].doc = cJSON_ParseWithLength(ev[i].text, ev[i].len);
        bytes += ev[i].len;
    }
    printf("schema %s, %d distinct valid events, %.0f bytes on average, one thread, rates per CPU "
           "second\n",
           argv[1], NEVENTS, (double)bytes / NEVENTS);
    unsigned long bad;
    double text = measure(s, ev, false, seconds, &bad);
    printf("ferry_schema_validate_text (parse + validate): %10.0f validations/s  %6.2f us each  "
           "invalid=%lu\n",
           text, 1e6 / text, bad);
    double tree = measure(s, ev, true, seconds, &bad);
    printf("ferry_schema_is_valid (pre-parsed cJSON):      %10.0f validations/s  %6.2f us each  "
           "invalid=%lu\n",
           tree, 1e6 / tree, bad);

    /* the invalid mix the producer generates: every kind of error */
    for (int i = 0; i < NEVENTS; i++) {
        cJSON_Delete(ev[i].doc);
        app_make_download((uint64_t)i + 2000000, true, &rng, ev[i].text, sizeof ev[i].text,
                          &ev[i].len);
        ev[i].doc = NULL;
    }
    double inval = measure(s, ev, false, seconds, &bad);
    printf("ferry_schema_validate_text, invalid events:    %10.0f validations/s  %6.2f us each  "
           "invalid=%lu\n",
           inval, 1e6 / inval, bad);
    ferry_schema_free(s);
    return 0;
}

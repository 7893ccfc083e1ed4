/* logger-demo: log a few messages through libferry's logging API and say
 * what became of them. Build: cc logger-demo.c $(pkg-config --cflags --libs ferry) */
#include <ferry/ferry.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    const char *config = argc > 1 ? argv[1] : NULL; /* an INI file with [logger] and [transport] */
    int count = argc > 2 ? atoi(argv[2]) : 10;
    char err[512];
    int st;
    struct ferry_logger *lg = ferry_logger_open("logger-demo", config, &st, err, sizeof err);
    if (!lg) {
        fprintf(stderr, "logger-demo: cannot open the logger: %s\n", err);
        return st == FERRY_E_CONFIG ? 78 : 69;
    }
    ferry_log(lg, FERRY_INFO, "User logged in", "{\"user_id\":\"123\"}");
    for (int i = 1; i < count; i++)
        ferry_logf(lg, i % 10 == 0 ? FERRY_WARNING : FERRY_INFO, "request %d served in %d ms", i,
                   i % 7 + 1);
    ferry_log(lg, FERRY_DEBUG, "below the default minimum level: not sent", NULL);

    if (ferry_logger_flush(lg, 5000) != FERRY_OK)
        fprintf(stderr, "logger-demo: not everything delivered yet, closing anyway\n");
    struct ferry_logger_stats s;
    st = ferry_logger_close(lg, 5000, &s);
    printf("logged=%" PRIu64 " delivered=%" PRIu64 " dropped=%" PRIu64 " failed=%" PRIu64
           " pending=%" PRIu64 "\n",
           s.logged, s.delivered, s.dropped, s.failed, s.pending);
    return st == FERRY_OK ? 0 : 69;
}

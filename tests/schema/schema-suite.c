/* ferry: runs the official JSON-Schema-Test-Suite (draft7) against the validator.
 * Every required test must pass; optional and format tests are counted only.
 * Suite location: $FERRY_SCHEMA_SUITE_DIR (default /usr/share/json-schema-test-suite). */
#include <config.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ferry/schema.h"

#define SKIP 77
#define HARD_ERROR 99

struct tally {
    unsigned passed, total;
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap); /* owned by the caller */
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap * 2); /* owned by the caller */
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every test of FILE; failures are printed when VERBOSE_FAIL. */
static int run_file(const char *file, const struct ferry_schema_opts *opts, struct tally *t,
                    int verbose_fail)
{
    char *text = slurp(file); /* freed below */
    if (!text) {
        fprintf(stderr, "%s: cannot read\n", file);
        return -1;
    }
    cJSON *groups = cJSON_Parse(text); /* freed below */
    free(text);
    if (!cJSON_IsArray(groups)) {
        fprintf(stderr, "%s: not a test file\n", file);
        cJSON_Delete(groups);
        return -1;
    }
    const cJSON *g;
    cJSON_ArrayForEach(g, groups)
    {
        const cJSON *schema = cJSON_GetObjectItemCaseSensitive(g, "schema");
        const cJSON *desc = cJSON_GetObjectItemCaseSensitive(g, "description");
        const cJSON *tests = cJSON_GetObjectItemCaseSensitive(g, "tests");
        char *stext = cJSON_PrintUnformatted(schema); /* freed below */
        char err[512];
        struct ferry_schema *s =
            stext ? ferry_schema_compile(stext, NULL, opts, err, sizeof err) : NULL;
        free(stext);
        const cJSON *test;
        cJSON_ArrayForEach(test, tests)
        {
            const cJSON *data = cJSON_GetObjectItemCaseSensitive(test, "data");
            const cJSON *tdesc = cJSON_GetObjectItemCaseSensitive(test, "description");
            bool expect = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(test, "valid"));
            t->total++;
            if (!s) {
                if (verbose_fail)
                    printf("FAIL %s: %s: %s: schema does not compile: %s\n", file,
                           desc->valuestring, tdesc->valuestring, err);
                continue;
            }
            struct ferry_schema_result r;
            bool quick = ferry_schema_is_valid(s, data);
            if (ferry_schema_validate(s, data, &r) != 0) {
                printf("FAIL %s: %s: %s: validation error\n", file, desc->valuestring,
                       tdesc->valuestring);
                continue;
            }
            bool consistent = quick == r.valid && (r.valid ? r.n_errors == 0 : r.n_errors > 0);
            if (r.valid == expect && consistent)
                t->passed++;
            else if (verbose_fail) {
                char *msg = ferry_schema_result_format(&r); /* freed below */
                printf("FAIL %s: %s: %s: expected %s, got %s%s (%s)\n", file, desc->valuestring,
                       tdesc->valuestring, expect ? "valid" : "invalid",
                       r.valid ? "valid" : "invalid", consistent ? "" : " inconsistently",
                       msg ? msg : "");
                free(msg);
            }
            ferry_schema_result_free(&r);
        }
        ferry_schema_free(s);
    }
    cJSON_Delete(groups);
    return 0;
}

/* Run every *.json directly inside DIR. */
static int run_dir(const char *dir, const struct ferry_schema_opts *opts, struct tally *t,
                   int verbose_fail)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".json"))
            names[n++] = strdup(e->d_name); /* freed below */
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        if (names[i]) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            if (run_file(path, opts, t, verbose_fail) < 0)
                rc = -1;
        }
        free(names[i]);
    }
    return rc;
}

int main(void)
{
    const char *root = getenv("FERRY_SCHEMA_SUITE_DIR");
    const char *req = getenv("FERRY_REQUIRE_ALL_TRANSPORTS");
    bool required = req && !strcmp(req, "1");
    if (!root || !*root)
        root = "/usr/share/json-schema-test-suite";
    char tests[4096], remotes[4096], optional[4200], format[4300];
    snprintf(tests, sizeof tests, "%s/tests/draft7", root);
    snprintf(remotes, sizeof remotes, "%s/remotes/", root);
    snprintf(optional, sizeof optional, "%s/optional", tests);
    snprintf(format, sizeof format, "%s/format", optional);
    struct stat st;
    if (stat(tests, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("schema-suite: %s not found (install the Debian package json-schema-test-suite "
               "or set FERRY_SCHEMA_SUITE_DIR)\n",
               tests);
        return required ? HARD_ERROR : SKIP;
    }
    const char *map[] = {"http://localhost:1234/", remotes, NULL};
    struct ferry_schema_opts opts = {.uri_map = map};
    struct tally t_req = {0}, t_opt = {0}, t_fmt = {0};
    if (run_dir(tests, &opts, &t_req, 1) < 0) {
        printf("schema-suite: cannot read %s\n", tests);
        return HARD_ERROR;
    }
    run_dir(optional, &opts, &t_opt, getenv("FERRY_SCHEMA_SUITE_VERBOSE") != NULL);
    run_dir(format, &opts, &t_fmt, getenv("FERRY_SCHEMA_SUITE_VERBOSE") != NULL);
    printf("draft7 required: %u/%u passed; optional: %u/%u; format: %u/%u\n", t_req.passed,
           t_req.total, t_opt.passed, t_opt.total, t_fmt.passed, t_fmt.total);
    printf("%u passed, %u failed\n", t_req.passed, t_req.total - t_req.passed);
    if (t_req.total == 0)
        return HARD_ERROR;
    return t_req.passed == t_req.total ? 0 : 1;
}

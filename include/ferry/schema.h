/* ferry: JSON Schema (draft-07) validation of messages.
 * A schema is compiled once and may then be shared by any number of threads. */
#ifndef FERRY_SCHEMA_H
#define FERRY_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A compiled schema: immutable after compilation, safe to use from several
 * threads at once. */
struct ferry_schema;

struct ferry_schema_opts {
    /* Colon-separated directories searched for schemas referenced by URI
     * ($ref to another document); may be NULL. */
    const char *search_path;
    /* NULL-terminated list of pairs { URI prefix, directory, ..., NULL }:
     * a reference whose URI starts with a prefix is read from the file
     * DIRECTORY/REST-OF-URI. May be NULL. Nothing is ever fetched over the
     * network. */
    const char *const *uri_map;
    /* Most errors collected per validation; 0 means FERRY_SCHEMA_MAX_ERRORS. */
    size_t max_errors;
};

#define FERRY_SCHEMA_MAX_ERRORS 16

/* Compile the schema in the file PATH. References to other documents are
 * resolved relative to the schema's directory, then through o->uri_map and
 * o->search_path. On failure returns NULL and writes "FILE:LINE:COL: reason"
 * or "FILE: reason" into ERR. O may be NULL. The caller frees the result with
 * ferry_schema_free(). */
struct ferry_schema *ferry_schema_load(const char *path, const struct ferry_schema_opts *o,
                                       char *err, size_t errlen);

/* Compile the schema in JSON_TEXT (NUL-terminated). BASE_URI, which may be
 * NULL, is the URI relative references are resolved against. On failure
 * returns NULL and writes "LINE:COL: reason" or a reason into ERR. */
struct ferry_schema *ferry_schema_compile(const char *json_text, const char *base_uri,
                                          const struct ferry_schema_opts *o, char *err,
                                          size_t errlen);

void ferry_schema_free(struct ferry_schema *s);

struct ferry_schema_error {
    char *instance_path; /* JSON Pointer of the failing value, "" = root */
    char *keyword;       /* "maximum", "required", ... */
    char *schema_path;   /* "#/properties/latitude/maximum" */
    char *message;       /* "123.4 is greater than the maximum 90" */
};

struct ferry_schema_result {
    bool valid;
    size_t n_errors;
    struct ferry_schema_error *errors;
    bool truncated; /* more errors than max_errors were found */
};

/* Validate INSTANCE. Fills OUT (release it with ferry_schema_result_free()).
 * Returns 0, or -1 with errno set when memory ran out or an argument is NULL.
 * A valid instance costs no allocation, except one PCRE2 match block when
 * the schema uses "pattern"/"patternProperties" and the decoding done for
 * "contentEncoding"/"contentMediaType" and format "regex". Validation descends at most
 * 1000 schema levels; deeper nesting is reported as an error. */
int ferry_schema_validate(const struct ferry_schema *s, const cJSON *instance,
                          struct ferry_schema_result *out);

/* Same for LEN bytes of JSON text. Text that is not JSON gives valid=false
 * and one error with keyword "json" telling where parsing stopped. */
int ferry_schema_validate_text(const struct ferry_schema *s, const char *text, size_t len,
                               struct ferry_schema_result *out);

/* Quick yes/no check: stops at the first failure and allocates nothing
 * unless the schema uses "pattern" or "patternProperties". */
bool ferry_schema_is_valid(const struct ferry_schema *s, const cJSON *instance);

void ferry_schema_result_free(struct ferry_schema_result *r);

/* "/latitude: 123.4 is greater than the maximum 90 (#/properties/latitude/maximum)",
 * one per error, joined with "; " ("" when there are none). An error on the
 * whole message shows "(root)" as its path; "; ..." ends a truncated list.
 * Returns NULL when out of memory; the caller frees the string. */
char *ferry_schema_result_format(const struct ferry_schema_result *r);

#ifdef __cplusplus
}
#endif

#endif

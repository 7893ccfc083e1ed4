/* ferry: declarations shared by the JSON Schema validator's source files. */
#ifndef FERRY_SCHEMA_INTERNAL_H
#define FERRY_SCHEMA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* The built-in draft-07 meta-schema and the URI it answers to. */
extern const char ferry_schema_draft07_uri[];
extern const char ferry_schema_draft07_text[];

/* Formats known to the "format" keyword; FERRY_FMT_NONE means "not checked". */
enum ferry_schema_format {
    FERRY_FMT_NONE = 0,
    FERRY_FMT_DATE_TIME,
    FERRY_FMT_DATE,
    FERRY_FMT_TIME,
    FERRY_FMT_EMAIL,
    FERRY_FMT_IDN_EMAIL,
    FERRY_FMT_HOSTNAME,
    FERRY_FMT_IDN_HOSTNAME,
    FERRY_FMT_IPV4,
    FERRY_FMT_IPV6,
    FERRY_FMT_URI,
    FERRY_FMT_URI_REFERENCE,
    FERRY_FMT_IRI,
    FERRY_FMT_IRI_REFERENCE,
    FERRY_FMT_URI_TEMPLATE,
    FERRY_FMT_JSON_POINTER,
    FERRY_FMT_RELATIVE_JSON_POINTER,
    FERRY_FMT_REGEX,
};

/* Map a format name to its id; unknown names give FERRY_FMT_NONE. */
enum ferry_schema_format ferry_schema_format_lookup(const char *name);

/* Whether the NUL-terminated string S (LEN bytes, UTF-8) conforms to FMT. */
bool ferry_schema_format_check(enum ferry_schema_format fmt, const char *s, size_t len);

/* Whether PATTERN is an ECMA-262 regular expression that PCRE2 accepts. */
bool ferry_schema_regex_valid(const char *pattern);

/* Compile the ECMA-262 regular expression PATTERN with PCRE2, translating
 * what differs (\s, \v, \uHHHH, empty classes). Returns a pcre2_code *
 * (owned by the caller, release with pcre2_code_free()) or NULL with the
 * PCRE2 error code and offset in *EC and *EO. */
void *ferry_schema_regex_compile(const char *pattern, int *ec, size_t *eo);

#endif

/* Checks of JSON text beyond what cJSON checks (jsoncheck.c). */
#ifndef FERRY_JSONCHECK_H
#define FERRY_JSONCHECK_H

#include <stddef.h>

#if defined(__GNUC__)
#define FERRY_JC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define FERRY_JC_PRINTF(f, a)
#endif

#define FERRY_JSON_NO_DUP_KEYS 1u /* an object naming a key twice is refused */
#define FERRY_JSON_NO_NUL 2u      /* a string holding \u0000 or a NUL byte is refused */
#define FERRY_JSON_ANY_NUMBER 4u  /* numbers beyond a double pass (jsonb's numeric holds them) */

/* The offset of the first byte of text that is not part of valid UTF-8
 * (overlong forms, surrogates and code points beyond U+10FFFF are not
 * valid), or len when all of it is. */
size_t ferry_utf8_check(const void *text, size_t len);

/* Replace each byte that is not part of valid UTF-8 with '?', in place.
 * Returns how many were replaced. For text ferry writes into headers and
 * logs that may hold bytes from a message. */
size_t ferry_utf8_scrub(char *text, size_t len);

/* 0 when text is one JSON value, all of it valid UTF-8, every number a
 * finite double (unless FERRY_JSON_ANY_NUMBER), and what flags ask holds; else -1 with a one-line reason
 * in err (which names the byte offset, also stored in *off when off is not
 * NULL). The reason never holds bytes that are not UTF-8. */
int ferry_json_check(const void *text, size_t len, unsigned flags, size_t *off, char *err,
                     size_t errlen);

#endif

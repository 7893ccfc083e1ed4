/* RFC 4648 base64 encoding for plugins that carry bytes in text
 * (base64.c, compiled into each plugin that needs it). */
#ifndef FERRY_BASE64_H
#define FERRY_BASE64_H

#include <stddef.h>

/* The base64 form of len bytes at in, NUL-terminated, in a new string the
 * caller frees; NULL when out of memory. */
char *ferry_base64_encode(const void *in, size_t len);

#endif

/* RFC 4648 base64 encoding (base64.h). */
#include "config.h"
#include "base64.h"

#include <stdint.h>
#include <stdlib.h>

char *ferry_base64_encode(const void *in, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *u = in;
    char *out = malloc((len + 2) / 3 * 4 + 1), *w = out; /* owned by the caller */
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)u[i] << 16 | (i + 1 < len ? (uint32_t)u[i + 1] << 8 : 0) |
                     (i + 2 < len ? u[i + 2] : 0);
        *w++ = abc[v >> 18 & 63];
        *w++ = abc[v >> 12 & 63];
        *w++ = i + 1 < len ? abc[v >> 6 & 63] : '=';
        *w++ = i + 2 < len ? abc[v & 63] : '=';
    }
    *w = '\0';
    return out;
}

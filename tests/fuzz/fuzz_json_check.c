/* libFuzzer target: the JSON text checks (UTF-8, NUL, duplicate keys,
 * numbers beyond a double). What they pass, cJSON parses; their reasons
 * are UTF-8; the UTF-8 scrub leaves valid UTF-8. */
#include "config.h"
#include "jsoncheck.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1); /* exact size: overreads show; freed below */
    if (!text)
        return 0;
    memcpy(text, data, size);
    for (unsigned flags = 0; flags < 4; flags++) {
        char err[256];
        size_t off = SIZE_MAX;
        int rc = ferry_json_check(text, size, flags, &off, err, sizeof err);
        if (rc == 0) {
            cJSON *j = cJSON_ParseWithLength(text, size); /* freed below */
            if (!j)
                abort(); /* passed the check, yet not JSON */
            cJSON_Delete(j);
        } else {
            if (off > size || ferry_utf8_check(err, strlen(err)) != strlen(err))
                abort();
        }
    }
    size_t at = ferry_utf8_check(text, size);
    if (at > size)
        abort();
    ferry_utf8_scrub(text, size);
    if (ferry_utf8_check(text, size) != size)
        abort();
    free(text);
    return 0;
}

/* libFuzzer target: JSON Schema compilation and validation. Input: a schema,
 * the byte 0xFE, then an instance; without 0xFE the input is an instance
 * checked against the download-event schema. */
#include "config.h"
#include <ferry/schema.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char download_schema[] =
    "{\"type\":\"object\",\"required\":[\"event_id\",\"user_id\",\"file_size\"],"
    "\"properties\":{\"event_id\":{\"type\":\"string\",\"pattern\":\"^dl-[0-9]+$\"},"
    "\"user_id\":{\"type\":\"string\",\"minLength\":1},\"file_size\":{\"type\":\"integer\","
    "\"minimum\":0},"
    "\"latitude\":{\"type\":\"number\",\"minimum\":-90,\"maximum\":90},"
    "\"timestamp\":{\"type\":\"string\",\"format\":\"date-time\"}},\"additionalProperties\":false}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *sep = memchr(data, 0xFE, size);
    char *schema_text; /* freed below */
    const char *inst;
    size_t inst_len;
    if (sep) {
        size_t sl = (size_t)(sep - data);
        schema_text = malloc(sl + 1);
        if (!schema_text)
            return 0;
        memcpy(schema_text, data, sl);
        schema_text[sl] = '\0';
        inst = (const char *)sep + 1;
        inst_len = size - sl - 1;
    } else {
        schema_text = strdup(download_schema);
        if (!schema_text)
            return 0;
        inst = (const char *)data;
        inst_len = size;
    }
    char err[256];
    struct ferry_schema *s = ferry_schema_compile(schema_text, NULL, NULL, err, sizeof err);
    if (s) {
        struct ferry_schema_result r;
        if (ferry_schema_validate_text(s, inst, inst_len, &r) == 0)
            ferry_schema_result_free(&r);
        ferry_schema_free(s);
    }
    free(schema_text);
    return 0;
}

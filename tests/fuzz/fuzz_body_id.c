/* libFuzzer target: id extraction from message bodies (fast path and cJSON),
 * and the ledger's seq parser. */
#include "config.h"
#include <ferry/ferry.h>
#include <ferry/ledger.h>

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[64], big[4096];
    (void)ferry_body_id(data, size, "id", buf, sizeof buf);
    (void)ferry_body_id(data, size, "producer", big, sizeof big);
    (void)ferry_body_id(data, size, "seq", buf, 8);
    uint64_t v;
    (void)ferry_ledger_parse_seq(data, size, &v);
    return 0;
}

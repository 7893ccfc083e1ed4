/* oldabi.so: an ABI 1 plugin built before `defer` was appended to the
 * descriptor. Its size stops short of defer; the core must load it and
 * never read the member (set here to a function that aborts). */
#include <ferry/transport.h>
#include <stdlib.h>

static int oa_open(struct ferry_conn *c) { (void)c; return FERRY_OK; }
static void oa_close(struct ferry_conn *c) { (void)c; }
static int oa_health(struct ferry_conn *c, struct ferry_health *h) { (void)c; (void)h; return FERRY_OK; }
static int oa_defer(struct ferry_conn *c, struct ferry_msg *m, int64_t delay_ms,
                    const struct ferry_header *set, size_t n_set)
{
    (void)c, (void)m, (void)delay_ms, (void)set, (void)n_set;
    abort();
}

static const struct ferry_option oa_options[] = {{0}};
static const struct ferry_transport_ops oa_ops = {.open = oa_open, .close = oa_close, .health = oa_health};

#define ferry_descriptor oldabi_LTX_ferry_descriptor
const struct ferry_transport ferry_descriptor = {
    .abi = FERRY_TRANSPORT_ABI, .size = FERRY_TRANSPORT_MIN_SIZE, .name = "oldabi",
    .summary = "An ABI 1 descriptor from before defer (tests only)", .options = oa_options,
    .ops = &oa_ops, .defer = oa_defer};

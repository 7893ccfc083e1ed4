/* oldabi.so: a plugin built against ABI 1, before `defer` was appended to
 * its descriptor: the ops table has no size, and the descriptor's size
 * stops short of defer. The core must load it (converting the table), call
 * its operations, and never read the defer member (set here to a function
 * that aborts). The ABI 1 layout is spelled out here, since
 * <ferry/transport.h> now describes ABI 2. */
#include <ferry/transport.h>
#include <stdlib.h>

struct v1_ops {
    int (*open)(struct ferry_conn *c);
    void (*close)(struct ferry_conn *c);
    int (*publish)(struct ferry_conn *c, const struct ferry_msg *m);
    int (*flush)(struct ferry_conn *c, int timeout_ms);
    int (*subscribe)(struct ferry_conn *c, const char *dest, const char *group);
    int (*receive)(struct ferry_conn *c, struct ferry_msg **out, size_t max, size_t *n,
                   int timeout_ms);
    int (*ack)(struct ferry_conn *c, struct ferry_msg *m);
    int (*nack)(struct ferry_conn *c, struct ferry_msg *m, bool requeue, const char *reason);
    void (*release)(struct ferry_conn *c, struct ferry_msg *m);
    int (*health)(struct ferry_conn *c, struct ferry_health *out);
};
struct v1_transport {
    uint32_t abi, size;
    const char *name, *summary;
    const char *(*lib_version)(void);
    uint32_t caps;
    const struct ferry_option *options;
    size_t cfg_size;
    const struct v1_ops *ops;
    ferry_defer_op defer;
};

static int oa_open(struct ferry_conn *c)
{
    (void)c;
    return FERRY_OK;
}
static void oa_close(struct ferry_conn *c)
{
    (void)c;
}
static int oa_health(struct ferry_conn *c, struct ferry_health *h)
{
    (void)c;
    h->state = FERRY_HEALTH_BLOCKED; /* the test sees that the call went here */
    return FERRY_OK;
}
static int oa_defer(struct ferry_conn *c, struct ferry_msg *m, int64_t delay_ms,
                    const struct ferry_header *set, size_t n_set)
{
    (void)c, (void)m, (void)delay_ms, (void)set, (void)n_set;
    abort();
}

static const struct ferry_option oa_options[] = {{0}};
static const struct v1_ops oa_ops = {.open = oa_open, .close = oa_close, .health = oa_health};

#define ferry_descriptor oldabi_LTX_ferry_descriptor
const struct v1_transport ferry_descriptor = {
    .abi = 1,
    .size = offsetof(struct v1_transport, defer),
    .name = "oldabi",
    .summary = "An ABI 1 descriptor from before defer (tests only)",
    .options = oa_options,
    .ops = &oa_ops,
    .defer = oa_defer};

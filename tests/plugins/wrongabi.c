/* wrongabi.so: a plugin built for a future ABI; the loader must refuse it
 * with a message naming both versions. */
#include <ferry/transport.h>

static int wa_open(struct ferry_conn *c)
{
    (void)c;
    return FERRY_OK;
}
static void wa_close(struct ferry_conn *c)
{
    (void)c;
}
static int wa_health(struct ferry_conn *c, struct ferry_health *h)
{
    (void)c;
    (void)h;
    return FERRY_OK;
}

static const struct ferry_option wa_options[] = {{0}};
static const struct ferry_transport_ops wa_ops = {.size = sizeof(struct ferry_transport_ops),
                                                  .open = wa_open,
                                                  .close = wa_close,
                                                  .health = wa_health};

#define ferry_descriptor wrongabi_LTX_ferry_descriptor
const struct ferry_transport ferry_descriptor = {.abi = FERRY_TRANSPORT_ABI + 1,
                                                 .size = sizeof(struct ferry_transport),
                                                 .name = "wrongabi",
                                                 .summary = "Built for another ABI (tests only)",
                                                 .options = wa_options,
                                                 .ops = &wa_ops};

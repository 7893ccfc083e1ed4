/* badopts.so: a plugin whose option table breaks the rules (no help text);
 * the loader must refuse it and name the option. */
#include <ferry/transport.h>
#include <stddef.h>

struct bo_cfg {
    char *host;
};
static int bo_open(struct ferry_conn *c)
{
    (void)c;
    return FERRY_OK;
}
static void bo_close(struct ferry_conn *c)
{
    (void)c;
}
static int bo_health(struct ferry_conn *c, struct ferry_health *h)
{
    (void)c;
    (void)h;
    return FERRY_OK;
}

static const struct ferry_option bo_options[] = {
    {.name = "host", .type = FERRY_OPT_STR, .offset = offsetof(struct bo_cfg, host), .help = ""},
    {0}};
static const struct ferry_transport_ops bo_ops = {.size = sizeof(struct ferry_transport_ops),
                                                  .open = bo_open,
                                                  .close = bo_close,
                                                  .health = bo_health};

#define ferry_descriptor badopts_LTX_ferry_descriptor
const struct ferry_transport ferry_descriptor = {.abi = FERRY_TRANSPORT_ABI,
                                                 .size = sizeof(struct ferry_transport),
                                                 .name = "badopts",
                                                 .summary = "Broken option table (tests only)",
                                                 .options = bo_options,
                                                 .cfg_size = sizeof(struct bo_cfg),
                                                 .ops = &bo_ops};

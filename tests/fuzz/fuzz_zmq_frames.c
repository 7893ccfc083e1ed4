/* libFuzzer target: the zmq plugin's frame decoder (fzmq_build), compiled in
 * from the plugin source to reach its static functions. Input: frames
 * separated by the byte 0xFE; the first byte picks pipeline or pubsub. */
#include "../../plugins/zmq/zmq.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct fzmq_cfg cfg = {.pattern = data[0] & 1 ? FZMQ_PUBSUB : FZMQ_PIPELINE};
    struct fzmq p = {.cfg = &cfg, .sub_dest = (char *)"logs", .sub_dest_len = 4};
    struct ferry_conn c = {.size = sizeof c, .priv = &p};
    zmq_msg_t fr[3 + 2 * FZMQ_MAX_HEADERS];
    size_t n = 0, start = 1;
    for (size_t i = 1; i <= size && n < sizeof fr / sizeof *fr; i++) {
        if (i < size && data[i] != 0xFE)
            continue;
        zmq_msg_init_size(&fr[n], i - start);
        if (i > start)
            memcpy(zmq_msg_data(&fr[n]), data + start, i - start);
        n++;
        start = i + 1;
    }
    struct fzmq_rmsg *r = NULL;
    if (n > 0 && fzmq_build(&c, fr, n, &r) == 1) {
        /* touch every byte the message claims, as a consumer would */
        volatile size_t sum = 0;
        for (size_t i = 0; i < r->m.body_len; i++)
            sum += ((const unsigned char *)r->m.body)[i];
        for (size_t h = 0; h < r->m.n_headers; h++)
            sum += strlen(r->m.headers[h].name) + r->m.headers[h].value_len;
        for (size_t i = 0; i < r->m.key_len; i++)
            sum += ((const unsigned char *)r->m.key)[i];
        (void)sum;
        free(r);
    }
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&fr[i]);
    return 0;
}

/* libFuzzer target: the INI parser and binding a section to an option table. */
#include "config.h"
#include <ferry/ferry.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct fz_cfg {
    char *s;
    int64_t i, d, z;
    bool b;
    int e;
};

static const struct ferry_option fz_options[] = {
    {.name = "s",
     .type = FERRY_OPT_STR,
     .def = "x",
     .offset = offsetof(struct fz_cfg, s),
     .help = "A string."},
    {.name = "i",
     .type = FERRY_OPT_INT,
     .def = "1",
     .min = -5,
     .max = 1000,
     .offset = offsetof(struct fz_cfg, i),
     .help = "An int."},
    {.name = "d",
     .type = FERRY_OPT_DURATION,
     .def = "5ms",
     .min = 0,
     .max = 86400000,
     .offset = offsetof(struct fz_cfg, d),
     .help = "A duration."},
    {.name = "z",
     .type = FERRY_OPT_SIZE,
     .def = "1MiB",
     .min = 0,
     .max = INT64_MAX,
     .offset = offsetof(struct fz_cfg, z),
     .help = "A size."},
    {.name = "b",
     .type = FERRY_OPT_BOOL,
     .def = "no",
     .offset = offsetof(struct fz_cfg, b),
     .help = "A bool."},
    {.name = "e",
     .type = FERRY_OPT_ENUM,
     .def = "a",
     .choices = "a|bb|ccc",
     .offset = offsetof(struct fz_cfg, e),
     .help = "An enum."},
    {.name = "p.", .type = FERRY_OPT_PREFIX, .help = "Pass-through."},
    {0}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1); /* freed below */
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct ferry_config *cfg = ferry_config_new(); /* freed below */
    char err[512];
    if (cfg && ferry_config_load_string(cfg, "fuzz.ini", text, err, sizeof err) == FERRY_OK) {
        const char *secs[16];
        size_t n = ferry_config_sections(cfg, secs, 16);
        for (size_t i = 0; i < n && i < 16; i++) {
            struct fz_cfg dst;
            memset(&dst, 0, sizeof dst);
            struct ferry_kv *kv = NULL;
            size_t nkv = 0;
            if (ferry_config_bind(cfg, secs[i], fz_options, &dst, &kv, &nkv, err, sizeof err) ==
                FERRY_OK) {
                ferry_kv_free(kv, nkv);
            }
            ferry_options_free(fz_options, &dst);
            (void)ferry_config_section_line(cfg, secs[i]);
        }
    }
    ferry_config_free(cfg);
    free(text);
    return 0;
}

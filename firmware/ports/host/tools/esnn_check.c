/* Host test driver for the runtime (not part of any firmware image).
 *
 *   esnn_check validate FILE...          one line per file: "<status> <NAME> <FILE>"
 *   esnn_check infer MODEL.esg PIXELS    PIXELS = raw uint8 samples of input_size bytes each;
 *                                        one JSON object per sample on stdout
 *
 * The arena is allocated with exactly arena_bytes, so an out-of-bounds access is caught by
 * AddressSanitizer in the sanitizer build. Exit status: 0, or 1 on a runtime/IO error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esnn.h"
#include "esnn_host_io.h"

#define ESNN_CHECK_MAX_FILE 0xFFFFFFFFul

static void print_u32s(const char *key, const uint32_t *v, uint32_t n)
{
    uint32_t i;
    printf(",\"%s\":[", key);
    for (i = 0; i < n; i++) printf(i ? ",%lu" : "%lu", (unsigned long)v[i]);
    printf("]");
}

static int do_infer(const char *model_path, const char *pixels_path)
{
    static esnn_model_t m;
    static esnn_result_t r;
    uint32_t len, plen, i, k;
    uint8_t *esg = esnn_host_read_file(model_path, &len, ESNN_CHECK_MAX_FILE), *px, *arena;
    esnn_status_t st;
    if (esg == NULL) {
        fprintf(stderr, "cannot read %s\n", model_path);
        return 1;
    }
    st = esnn_model_init(&m, esg, len);
    if (st != ESNN_OK) {
        fprintf(stderr, "%s: %s (%d)\n", model_path, esnn_status_str(st), (int)st);
        return 1;
    }
    px = esnn_host_read_file(pixels_path, &plen, ESNN_CHECK_MAX_FILE);
    if (px == NULL || plen % m.input_size != 0) {
        fprintf(stderr, "%s: not a whole number of %lu-byte samples\n", pixels_path,
                (unsigned long)m.input_size);
        return 1;
    }
    arena = (uint8_t *)malloc(esnn_arena_bytes(&m)); /* SPEC 4, or the ESNN_INPUT_BLOCK arena */
    if (arena == NULL) return 1;
    for (k = 0; k < plen / m.input_size; k++) {
        st = esnn_infer(&m, px + k * m.input_size, m.input_size, arena, esnn_arena_bytes(&m), &r);
        if (st != ESNN_OK) {
            fprintf(stderr, "sample %lu: %s\n", (unsigned long)k, esnn_status_str(st));
            return 1;
        }
        printf("{\"pred\":%u,\"input_spikes\":%lu", r.prediction, (unsigned long)r.input_spikes);
        printf(",\"counts\":[");
        for (i = 0; i < r.n_classes; i++) printf(i ? ",%u" : "%u", r.counts[i]);
        printf("],\"v_final\":[");
        for (i = 0; i < r.n_classes; i++) printf(i ? ",%ld" : "%ld", (long)r.v_last[i]);
        printf("]");
        print_u32s("spikes", r.spikes, r.n_layers);
        print_u32s("ops", r.ops, r.n_layers);
        printf("}\n");
    }
    free(arena);
    free(px);
    free(esg);
    return 0;
}

int main(int argc, char **argv)
{
    int i;
    if (argc >= 3 && strcmp(argv[1], "validate") == 0) {
        static esnn_model_t m;
        for (i = 2; i < argc; i++) {
            uint32_t len;
            uint8_t *esg = esnn_host_read_file(argv[i], &len, ESNN_CHECK_MAX_FILE);
            esnn_status_t st;
            if (esg == NULL) {
                fprintf(stderr, "cannot read %s\n", argv[i]);
                return 1;
            }
            st = esnn_model_init(&m, esg, len);
            printf("%d %s %s\n", (int)st, esnn_status_name(st), argv[i]);
            free(esg);
        }
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "infer") == 0) return do_infer(argv[2], argv[3]);
    fprintf(stderr, "usage: %s validate FILE... | infer MODEL.esg PIXELS.bin\n", argv[0]);
    return 2;
}

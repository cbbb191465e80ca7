/* Host driver for tests/test_ann.py: the int8 ANN runtime (firmware/runtime/esnn_ann.c)
 * compiled with the host compiler.
 *
 *   ann_check init BLOB           prints the esnn_ann_init status NAME (exit 0 if OK)
 *   ann_check infer BLOB PIXELS   PIXELS = input_size bytes per sample; one JSON line per
 *                                 sample: pred, logits, macs, active
 *   ann_check esg FILE.esg PIXELS the same for the ANN section of a .esg (esnn_model_init,
 *                                 then esnn_ann_init on esnn_model_t.ann)
 * The arena is exactly arena_bytes (a sanitizer build catches any access past it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esnn.h"
#include "../tools/esnn_host_io.h"
#include "esnn_ann.h"

#define MAX_BLOB (64u * 1024u * 1024u)

int main(int argc, char **argv)
{
    esnn_ann_model_t m;
    esnn_ann_result_t r;
    esnn_model_t snn;
    const uint8_t *ann;
    uint8_t *blob;
    uint8_t *px;
    uint8_t *arena;
    uint8_t *x;
    uint32_t len;
    uint32_t plen;
    uint32_t k;
    esnn_status_t st;

    if (argc < 3 || (strcmp(argv[1], "init") != 0 && strcmp(argv[1], "infer") != 0 &&
                     strcmp(argv[1], "esg") != 0) ||
        (strcmp(argv[1], "init") != 0 && argc != 4)) {
        fprintf(stderr, "usage: ann_check init BLOB | ann_check infer BLOB PIXELS | "
                        "ann_check esg FILE.esg PIXELS\n");
        return 2;
    }
    blob = esnn_host_read_file(argv[2], &len, MAX_BLOB);
    if (blob == NULL) {
        fprintf(stderr, "cannot read %s\n", argv[2]);
        return 2;
    }
    ann = blob;
    if (strcmp(argv[1], "esg") == 0) {
        st = esnn_model_init(&snn, blob, len);
        if (st != ESNN_OK || snn.ann == NULL) {
            fprintf(stderr, "esnn_model_init: %s%s\n", esnn_status_str((int)st),
                    st == ESNN_OK ? " (no ANN section)" : "");
            free(blob);
            return 1;
        }
        ann = snn.ann;
        len = snn.ann_len;
    }
    st = esnn_ann_init(&m, ann, len);
    if (strcmp(argv[1], "init") == 0) {
        printf("%s\n", esnn_status_name((int)st));
        free(blob);
        return st == ESNN_OK ? 0 : 1;
    }
    if (st != ESNN_OK) {
        fprintf(stderr, "esnn_ann_init: %s\n", esnn_status_str((int)st));
        free(blob);
        return 1;
    }
    px = esnn_host_read_file(argv[3], &plen, MAX_BLOB);
    if (px == NULL || plen % m.input_size != 0u) {
        fprintf(stderr, "cannot read %s as samples of %u bytes\n", argv[3],
                (unsigned)m.input_size);
        free(blob);
        free(px);
        return 2;
    }
    arena = (uint8_t *)malloc(m.arena_bytes);
    x = (uint8_t *)malloc(m.input_size);
    if (arena == NULL || x == NULL) {
        return 2;
    }
    for (k = 0u; k < plen / m.input_size; ++k) {
        uint32_t j;
        memcpy(x, px + (size_t)k * m.input_size, m.input_size);
        st = esnn_ann_infer(&m, x, m.input_size, arena, m.arena_bytes, &r);
        if (st != ESNN_OK) {
            fprintf(stderr, "esnn_ann_infer: %s\n", esnn_status_str((int)st));
            return 1;
        }
        printf("{\"pred\": %u, \"logits\": [", (unsigned)r.prediction);
        for (j = 0u; j < r.n_classes; ++j) {
            printf("%s%ld", j ? ", " : "", (long)r.logits[j]);
        }
        printf("], \"macs\": [");
        for (j = 0u; j < r.n_layers; ++j) {
            printf("%s%lu", j ? ", " : "", (unsigned long)r.macs[j]);
        }
        printf("], \"active\": [");
        for (j = 0u; j < r.n_layers; ++j) {
            printf("%s%lu", j ? ", " : "", (unsigned long)r.active[j]);
        }
        printf("]}\n");
    }
    free(x);
    free(arena);
    free(px);
    free(blob);
    return 0;
}

/* libFuzzer harness for the runtime: .esg validation, then one inference when it is valid.
 *
 * Each input is tried twice: as given (exercises header/CRC checks), and with every CRC
 * recomputed (so mutations reach the semantic checks and the inference kernels). Inference
 * runs on pixels taken from the input itself, with a work cap so slow-but-correct models do
 * not look like hangs. Built by benchmarks/fuzz_esg.sh with clang -fsanitize=fuzzer,address,
 * undefined; with -DESNN_FUZZ_REPLAY it is a plain program that replays files (given on the
 * command line) through the same code, used by tests/test_c_validate.py under gcc + ASan.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "esnn.h"

#define MAX_BLOB 65536u
#define MAX_ARENA (1u << 20)
#define MAX_WORK (1u << 16) /* steps x synapses per inference */

static union {
    uint64_t align;
    uint8_t b[MAX_BLOB];
} blob;
static union {
    uint64_t align;
    uint8_t b[MAX_ARENA];
} arena;
static uint8_t pixels[65536];
static esnn_model_t model;
static esnn_result_t result;

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Recompute section CRCs, table CRC and header CRC as far as the table can be read. */
static void refresh_crcs(uint8_t *b, uint32_t len)
{
    uint32_t count = esnn_rd32(b + 16), k, off, size;
    if (count <= 260u && 64u + 16u * count <= len) {
        for (k = 0; k < count; k++) {
            off = esnn_rd32(b + 64 + 16 * k + 4);
            size = esnn_rd32(b + 64 + 16 * k + 8);
            if (off <= len && size <= len - off) put32(b + 64 + 16 * k + 12, esnn_crc32(0, b + off, size));
        }
        put32(b + 48, esnn_crc32(0, b + 64, 16u * count));
    }
    put32(b + 60, esnn_crc32(0, b, 60));
}

static void run_model(const uint8_t *data, uint32_t size)
{
    uint64_t work = 0;
    uint32_t l, i;
    for (l = 0; l < model.n_layers; l++) {
        const esnn_layer_t *L = &model.layers[l];
        work += (L->storage == ESNN_STORAGE_SPARSE ? L->nnz : (uint64_t)L->n_in * L->n_out) + L->n_out;
    }
    if (work * model.steps > MAX_WORK || model.arena_bytes > MAX_ARENA) return;
    for (i = 0; i < model.input_size; i++) pixels[i] = data[(i * 7u) % size] ^ (uint8_t)(i * 13u);
    if (esnn_infer(&model, pixels, model.input_size, arena.b, model.arena_bytes, &result) != ESNN_OK)
        __builtin_trap();
    if (result.prediction >= model.n_classes) __builtin_trap();
    /* a wrong input size and a short arena must be refused, not run */
    if (esnn_infer(&model, pixels, model.input_size + 1u, arena.b, model.arena_bytes, &result) != ESNN_ERR_INPUT_SIZE)
        __builtin_trap();
    if (model.arena_bytes >= 8u &&
        esnn_infer(&model, pixels, model.input_size, arena.b, model.arena_bytes - 8u, &result) != ESNN_ERR_ARENA_TOO_SMALL)
        __builtin_trap();
}

int esnn_fuzz_one(const uint8_t *data, size_t size);

int esnn_fuzz_one(const uint8_t *data, size_t size)
{
    uint32_t len;
    if (size > MAX_BLOB || size == 0) return 0;
    len = (uint32_t)size;
    memcpy(blob.b, data, size);
    if (esnn_model_init(&model, blob.b, len) == ESNN_OK) run_model(data, len);
    if (len >= 64u) {
        refresh_crcs(blob.b, len);
        if (esnn_model_init(&model, blob.b, len) == ESNN_OK) run_model(data, len);
    }
    return 0;
}

#ifdef ESNN_FUZZ_REPLAY
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    static uint8_t buf[MAX_BLOB];
    int i;
    for (i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        size_t n;
        if (f == NULL) {
            fprintf(stderr, "cannot read %s\n", argv[i]);
            return 1;
        }
        n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        esnn_fuzz_one(buf, n);
    }
    printf("replayed %d files\n", argc - 1);
    return 0;
}
#else
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return esnn_fuzz_one(data, size);
}
#endif

/* edgesnn runtime: validate a .esg spike graph in place and run integer inference.
 *
 * Implements exporters/spikegraph/SPEC.md (version 1.1) bit for bit. C99, no malloc, no hidden
 * state: the model struct points into the .esg blob (which may live in flash), all working
 * memory comes from a caller-supplied arena of arena_bytes (SPEC section 4).
 */
#ifndef ESNN_H
#define ESNN_H

#include <stddef.h>
#include <stdint.h>

#include "esnn_rom.h" /* ESNN_ROM: blob pointers (flash on AVR) */

#define ESNN_VERSION_MAJOR 1
#define ESNN_VERSION_MINOR 0
#define ESNN_VERSION_PATCH 0

/* Fixed maximums for the model and result structs; a generated project sets them from its
 * graph in model_config.h (pass -DESNN_CONFIG_HEADER="model_config.h" or define them). */
#ifdef ESNN_CONFIG_HEADER
#include ESNN_CONFIG_HEADER
#endif
#ifndef ESNN_MAX_LAYERS
#define ESNN_MAX_LAYERS 8
#endif
#ifndef ESNN_MAX_CLASSES
#define ESNN_MAX_CLASSES 32
#endif
#if ESNN_MAX_LAYERS < 1 || ESNN_MAX_LAYERS > 255
#error "ESNN_MAX_LAYERS must be 1..255"
#endif
#if ESNN_MAX_CLASSES < 1 || ESNN_MAX_CLASSES > 255
#error "ESNN_MAX_CLASSES must be 1..255"
#endif

typedef enum {
#define ESNN_STATUS(name, num, text) ESNN_##name = num,
#include "esnn_status.def"
#undef ESNN_STATUS
    ESNN_STATUS_END_
} esnn_status_t;

/* One line of text for a status code ("unknown status" for anything else). */
const char *esnn_status_str(int status);
/* The NAME of a status code as written in esnn_status.def ("?" for anything else). */
const char *esnn_status_name(int status);

/* .esg offsets and enums (ESNN_ENC_*, ESNN_NEURON_*, ESNN_RESET_*, ESNN_STORAGE_*, ...),
 * generated from the layout table of edgesnn/graph/esg.py */
#include "esnn_layout.h"

/* A build for a graph without CubaLIF layers (-DESNN_NO_CUBALIF, set by a generated project's
 * model_config.h) leaves the synaptic-current code out (1,672 B on the Uno); its
 * esnn_model_init rejects a CubaLIF layer (ESNN_ERR_ENUM). */
#ifdef ESNN_NO_CUBALIF
#undef ESNN_NEURON_MAX
#define ESNN_NEURON_MAX 1u
#undef ESNN_NEURON_EXTRA_STATES
#define ESNN_NEURON_EXTRA_STATES(k) 0u
#undef ESNN_NEURON_HAS_EXT
#define ESNN_NEURON_HAS_EXT(k) 0
#define ESNN_SYN_LEAK(L) ((const ESNN_ROM uint8_t *)0)
#else
#define ESNN_SYN_LEAK(L) ((L)->syn_leak)
#endif

/* A build for a graph without the direct encoder (-DESNN_NO_DIRECT, set likewise) leaves its
 * code out (I0, its multiply-add rows, the drive of the fire pass); its esnn_model_init
 * rejects a direct-encoded graph (ESNN_ERR_ENUM). */
#ifdef ESNN_NO_DIRECT
#undef ESNN_ENC_MAX
#define ESNN_ENC_MAX 1u
#define ESNN_DIRECT(m) 0
#else
#define ESNN_DIRECT(m) ((m)->encoder == ESNN_ENC_DIRECT)
#endif

typedef struct {
    const ESNN_ROM uint8_t *thr;    /* int32[1 or n_out] */
    const ESNN_ROM uint8_t *leak;   /* uint32[1 or n_out], Q0.16 */
    const ESNN_ROM uint8_t *rowptr; /* uint32[n_in + 1] (sparse) */
    const ESNN_ROM uint8_t *index;  /* uint8/uint16[nnz] (sparse) */
    const ESNN_ROM uint8_t *w;      /* weight bytes */
    const ESNN_ROM uint8_t *bias;   /* int32[n_out], or NULL: no bias (SPEC 5.4, version 1.1) */
    const ESNN_ROM uint8_t *syn_leak; /* uint32[1 or n_out] Q0.16 (CubaLIF, SPEC 5.4.1), or NULL */
    uint32_t bias_max;     /* largest |bias| (0 without one) */
    uint32_t nnz;
    uint16_t n_in, n_out;
    uint8_t neuron, reset, fire, weight_bits, storage, index_bits, thr_per, leak_per, syn_per;
} esnn_layer_t;

typedef struct {
    const ESNN_ROM uint8_t *esg;  /* the blob, validated; NULL until esnn_model_init succeeds */
    const ESNN_ROM uint8_t *hash; /* 16 bytes: header bytes 32..47 */
    const ESNN_ROM uint8_t *ann;  /* ANN section payload (an EANN blob for esnn_ann_init), or NULL */
    uint32_t ann_len;
    uint32_t len, input_size, seed, arena_bytes;
    uint16_t n_layers, steps, n_classes;
    uint8_t encoder, readout;
    esnn_layer_t layers[ESNN_MAX_LAYERS];
} esnn_model_t;

/* SPEC section 3.4. counts/spikes/ops wrap modulo 2^32 (uint32 on the wire). */
typedef struct {
    uint8_t prediction;
    uint8_t n_layers;
    uint16_t n_classes;
    uint32_t input_spikes;
    uint16_t counts[ESNN_MAX_CLASSES];
    int32_t v_last[ESNN_MAX_CLASSES]; /* last layer membranes after the last step */
    uint32_t spikes[ESNN_MAX_LAYERS];
    uint32_t ops[ESNN_MAX_LAYERS];
} esnn_result_t;

/* Validate `esg` (every check of SPEC section 6) and fill `m` with pointers into it. The blob
 * must stay valid and unchanged while `m` is used, and must be 4-byte aligned. */
esnn_status_t esnn_model_init(esnn_model_t *m, const ESNN_ROM uint8_t *esg, uint32_t len);

/* Arena bytes this build's esnn_infer needs: SPEC 4's m->arena_bytes, or less in a small-RAM
 * build that walks the input in blocks (-DESNN_INPUT_BLOCK=B, see esnn_infer.c). */
#ifdef ESNN_INPUT_BLOCK
uint32_t esnn_arena_bytes(const esnn_model_t *m);
#else
#define esnn_arena_bytes(m) ((m)->arena_bytes)
#endif

/* One inference of `n` pixels; `arena` (4-byte aligned, >= esnn_arena_bytes(m)) is scratch. */
esnn_status_t esnn_infer(const esnn_model_t *m, const uint8_t *pixels, uint32_t n,
                         uint8_t *arena, uint32_t arena_len, esnn_result_t *out);

/* The rate encoder's counter hash (SPEC 3.1); esnn_infer inlines the same arithmetic. */
static inline uint32_t esnn_hash32(uint32_t k, uint32_t seed)
{
    uint32_t x = k * 0x9E3779B9u + seed;
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

/* CRC-32 (IEEE, zlib.crc32): pass crc = 0 to start, the previous value to continue. */
uint32_t esnn_crc32(uint32_t crc, const ESNN_ROM uint8_t *data, uint32_t len);

/* COBS: encode `len` bytes into `out` (capacity >= len + len / 254 + 1, no trailing 0);
 * returns the encoded length. Decode in place or to `out` (capacity >= len); returns the
 * decoded length, or -1 when `in` is not valid COBS (a 0 byte, or a code past the end). */
uint32_t esnn_cobs_encode(const uint8_t *in, uint32_t len, uint8_t *out);
int32_t esnn_cobs_decode(const uint8_t *in, uint32_t len, uint8_t *out);

/* Little-endian loads, independent of host byte order and alignment. */
static inline uint32_t esnn_rd16(const ESNN_ROM uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static inline uint32_t esnn_rd32(const ESNN_ROM uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* The same for a pointer known to be 4-byte (esnn_ld32) or 2-byte (esnn_ld16) aligned: one
 * load instruction on a little-endian gcc/clang target. */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && \
    !defined(__AVR__) /* AVR: byte loads anyway, and memcpy cannot read __memx */
static inline uint32_t esnn_ld32(const ESNN_ROM uint8_t *p)
{
    uint32_t x;
    __builtin_memcpy(&x, p, 4);
    return x;
}
static inline uint32_t esnn_ld16(const ESNN_ROM uint8_t *p)
{
    uint16_t x;
    __builtin_memcpy(&x, p, 2);
    return x;
}
#else
#define esnn_ld32 esnn_rd32
#define esnn_ld16 esnn_rd16
#endif

#endif /* ESNN_H */

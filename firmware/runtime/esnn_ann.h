/* edgesnn int8 ANN baseline: the same-topology ReLU network the SNN is compared against,
 * run by a dense int8 fully connected kernel (4 output rows per pass; SMLAD on cores with
 * the DSP extension) or by an event-driven sparse kernel that skips zero inputs, zero
 * activations and pruned weights. Its numpy twin is edgesnn/graph/ann.py (bit-exact).
 *
 * Integer semantics, per layer l (x: uint8 inputs, pixels for layer 0):
 *   acc[j] = bias[j] + sum_i x[i] * W[i][j]                 int32, exact (checked bounds)
 *   hidden layers:  h[j] = clamp((acc[j] * M + 2^(s-1)) >> s, 0, 255)   64-bit, >> floors
 *   last layer:     logits[j] = acc[j]; prediction = first index of the largest logit
 * M (multiplier, 1..2^31-1) and s (shift, 1..62) are per layer (per-tensor requantization,
 * single rounding, as CMSIS-NN's arm_nn_requantize with CMSIS_NN_USE_SINGLE_ROUNDING).
 *
 * Blob "EANN" version 1 (little-endian; the blob and every array 4-byte aligned):
 *   0  u8[4] magic "EANN"          4  u16 version = 1        6  u16 n_layers (1..255)
 *   8  u32 size (bytes, multiple of 4)                      12  u32 CRC-32 of [16, size)
 *   16 + 40 * l: layer header
 *     0 u32 n_in (1..65535)   4 u32 n_out (1..65535)
 *     8 u8 storage (0 dense, 1 sparse, 2 dense-skip: the dense blocks, with runs of
 *     groups of 4 inputs that are all zero skipped)   9 u8 output (0 ReLU uint8: every
 *     layer but the last; 1 int32 logits: the last, n_out <= 255)   10 u8 index_bits (dense
 *     and dense-skip 0; sparse 8 when n_out <= 256, else 16)   11 u8 reserved 0
 *     12 u32 nnz: dense(-skip) = A4(n_out) * A4(n_in) weight bytes, sparse = entries
 *     16 i32 multiplier (ReLU: 1..2^31-1; logits: 0)   20 u32 shift (ReLU 1..62; logits 0)
 *     24 u32 off_bias -> int32[n_out]; |bias| + 32640 * n_in <= 2^31 - 1 (no overflow)
 *     28 u32 off_weights: dense -> int8 blocks (below); sparse -> int8[nnz], none 0
 *     32 u32 off_rowptr -> u32[n_in + 1] (sparse: 0, monotone, ends at nnz; dense: 0)
 *     36 u32 off_index -> u8 / u16 [nnz] (sparse: output of each entry, < n_out, strictly
 *        increasing within a row; dense: 0)
 *   Sparse storage is CSR by input (row i = the fan-out of input i), as the .esg's.
 *   Arrays lie in [16 + 40 * n_layers, size), offsets multiples of 4, without overlap.
 *   A4(n) = (n + 3) & ~3.
 * Dense blocks: output rows in blocks of 4 (b = j >> 2), inputs in groups of 4 (g = i >> 2);
 * block b holds A4(n_in) * 4 bytes, group g of it 16 bytes at 16 * g; input q = i & 3 and
 * row r = j & 3 sit at byte (q & 1) * 8 + (r >> 1) * 4 + (q >> 1) * 2 + (r & 1): each 32-bit
 * word pairs two rows of inputs (q, q + 2) so that SXTB16 / UXTB16 feed SMLAD directly.
 * Padding weights (rows >= n_out, inputs >= n_in) are 0.
 *
 * Arena: max(4 * A4(max n_out), A4(max n_in of dense-skip layers)) (int32 accumulators of a
 * sparse layer, or the runs of nonzero input groups of a dense-skip layer: u16 first group,
 * u16 length) + 2 * A4(max hidden n_out) (uint8 activations, ping-pong)
 * = esnn_ann_model_t.arena_bytes.
 * MACs counted: dense n_in * n_out; dense-skip n_out * the inputs of the visited groups (a
 * group of 4, or the last 1..3 inputs, is visited when one of them is nonzero); sparse the
 * stored entries of the nonzero inputs. */
#ifndef ESNN_ANN_H
#define ESNN_ANN_H

#include <stdint.h>

#include "esnn.h"

#ifndef ESNN_ANN_MAX_LAYERS
#define ESNN_ANN_MAX_LAYERS 4
#endif
#if ESNN_ANN_MAX_LAYERS < 1 || ESNN_ANN_MAX_LAYERS > 255
#error "ESNN_ANN_MAX_LAYERS must be 1..255"
#endif

#define ESNN_ANN_HEADER_BYTES 16u
#define ESNN_ANN_LAYER_BYTES 40u
#define ESNN_ANN_DENSE 0u
#define ESNN_ANN_SPARSE 1u
#define ESNN_ANN_DENSE_SKIP 2u /* dense blocks; runs of all-zero input groups are skipped */
#define ESNN_ANN_OUT_RELU_U8 0u
#define ESNN_ANN_OUT_INT32 1u

typedef struct {
    const int32_t *bias;     /* int32[n_out] */
    const int8_t *w;         /* dense: blocked int8 */
    const uint8_t *index;    /* sparse: u8 or u16 [nnz] */
    const uint32_t *rowptr;  /* sparse: u32[n_in + 1] */
    uint32_t n_in, n_out, nnz;
    int32_t multiplier;
    uint32_t shift;
    int32_t rnd_hi;   /* shift >= 33: 2^(shift - 33), added to the high word */
    uint32_t shift_hi; /* shift >= 33: shift - 32; else 0 (the 64-bit path) */
    uint8_t storage, output, index_bits;
} esnn_ann_layer_t;

typedef struct {
    const uint8_t *blob; /* NULL until esnn_ann_init succeeds */
    uint32_t len, input_size, n_layers, n_classes, arena_bytes;
    uint32_t acc_bytes, act_bytes; /* arena: int32 accumulators, then 2 activation buffers */
    esnn_ann_layer_t layers[ESNN_ANN_MAX_LAYERS];
} esnn_ann_model_t;

typedef struct {
    uint8_t prediction;
    uint8_t n_layers;
    uint16_t n_classes;
    int32_t logits[ESNN_MAX_CLASSES];
    uint32_t macs[ESNN_ANN_MAX_LAYERS];   /* multiply-accumulates done (dense: n_in * n_out) */
    uint32_t active[ESNN_ANN_MAX_LAYERS]; /* inputs visited (dense: n_in; dense-skip: those
                                             of the visited groups; sparse: the nonzero ones) */
} esnn_ann_result_t;

/* Validate the blob (bounds, alignment, CRC, enums, shapes, rowptr/index/weights, bias
 * bounds) and fill `m` with pointers into it; the blob must outlive `m`. */
esnn_status_t esnn_ann_init(esnn_ann_model_t *m, const uint8_t *blob, uint32_t len);

/* One inference of `n` (= input_size) uint8 inputs, 4-byte aligned; `arena` (4-byte aligned,
 * >= m->arena_bytes) is scratch. */
esnn_status_t esnn_ann_infer(const esnn_ann_model_t *m, const uint8_t *x, uint32_t n,
                             uint8_t *arena, uint32_t arena_len, esnn_ann_result_t *out);

#endif /* ESNN_ANN_H */

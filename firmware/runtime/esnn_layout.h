/* The .esg byte layout (exporters/spikegraph/SPEC.md section 5) for the C runtime.
 * GENERATED from the one layout table in edgesnn/graph/esg.py: do not edit; run
 * `.venv/bin/python tests/golden/make_vectors.py` after changing the table
 * (tests/test_esg_layout.py fails while this file and the table differ). */
#ifndef ESNN_LAYOUT_H
#define ESNN_LAYOUT_H

#define ESNN_ESG_MAGIC 0x474E5345u /* ESNG as a little-endian u32 */
#define ESNN_ESG_VERSION_MAJOR 1u
#define ESNN_ESG_VERSION_MINOR 4u
#define ESNN_ESG_MAX_SECTIONS 257u
#define ESNN_ESG_SECTION_ALIGN 8u /* payload offsets */
#define ESNN_ESG_ARRAY_ALIGN 4u /* layer array offsets, and the blob itself */
#define ESNN_Q16_ONE 65536u /* leak multiplier 1.0 (no leak) */
#define ESNN_BIAS_MAX 8388607 /* |bias| limit (SPEC.md 3.2) */

/* SPEC.md 5.1: 64-byte record, field offsets */
#define ESNN_HDR_BYTES 64u
#define ESNN_HDR_MAGIC 0u
#define ESNN_HDR_VERSION_MAJOR 4u
#define ESNN_HDR_VERSION_MINOR 6u
#define ESNN_HDR_HEADER_SIZE 8u
#define ESNN_HDR_FILE_SIZE 12u
#define ESNN_HDR_SECTION_COUNT 16u
#define ESNN_HDR_SECTION_TABLE_OFFSET 20u
#define ESNN_HDR_FLAGS 24u
#define ESNN_HDR_RESERVED0 28u
#define ESNN_HDR_MODEL_HASH 32u
#define ESNN_HDR_TABLE_CRC 48u
#define ESNN_HDR_RESERVED1 52u
#define ESNN_HDR_HEADER_CRC 60u

/* SPEC.md 5.2: 16-byte record, field offsets */
#define ESNN_SEC_BYTES 16u
#define ESNN_SEC_KIND 0u
#define ESNN_SEC_OFFSET 4u
#define ESNN_SEC_SIZE 8u
#define ESNN_SEC_CRC 12u

/* SPEC.md 5.3: 32-byte record, field offsets */
#define ESNN_GRAPH_BYTES 32u
#define ESNN_GRAPH_INPUT_SIZE 0u
#define ESNN_GRAPH_N_LAYERS 4u
#define ESNN_GRAPH_STEPS 6u
#define ESNN_GRAPH_ENCODER 8u
#define ESNN_GRAPH_READOUT 9u
#define ESNN_GRAPH_N_CLASSES 10u
#define ESNN_GRAPH_SEED 12u
#define ESNN_GRAPH_ARENA_BYTES 16u
#define ESNN_GRAPH_RESERVED 20u

/* SPEC.md 5.4: 48-byte record, field offsets */
#define ESNN_LAYER_BYTES 48u
#define ESNN_LAYER_N_IN 0u
#define ESNN_LAYER_N_OUT 4u
#define ESNN_LAYER_NEURON 8u
#define ESNN_LAYER_RESET 9u
#define ESNN_LAYER_WEIGHT_BITS 10u
#define ESNN_LAYER_STORAGE 11u
#define ESNN_LAYER_INDEX_BITS 12u
#define ESNN_LAYER_THRESHOLD_COUNT_FLAG 13u
#define ESNN_LAYER_LEAK_COUNT_FLAG 14u
#define ESNN_LAYER_FIRE 15u
#define ESNN_LAYER_NNZ 16u
#define ESNN_LAYER_OFF_THRESHOLD 20u
#define ESNN_LAYER_OFF_LEAK 24u
#define ESNN_LAYER_OFF_ROWPTR 28u
#define ESNN_LAYER_OFF_INDEX 32u
#define ESNN_LAYER_OFF_WEIGHTS 36u
#define ESNN_LAYER_WEIGHTS_BYTES 40u
#define ESNN_LAYER_OFF_BIAS 44u

/* SPEC.md 5.4.1: 8-byte record, field offsets */
#define ESNN_LAYER_EXT_BYTES 8u
#define ESNN_LAYER_EXT_OFF_SYN_LEAK 0u
#define ESNN_LAYER_EXT_SYN_LEAK_COUNT_FLAG 4u
#define ESNN_LAYER_EXT_RESERVED 5u

/* neuron models (edgesnn/graph/neurons.py): int32 state words per neuron */
#define ESNN_NEURON_LIF_STATES 1u
#define ESNN_NEURON_IF_STATES 1u
#define ESNN_NEURON_CUBA_LIF_STATES 2u
#define ESNN_NEURON_EXTRA_STATES(k) ((k) == ESNN_NEURON_CUBA_LIF ? 1u : 0u)
#define ESNN_NEURON_HAS_EXT(k) ((k) == ESNN_NEURON_CUBA_LIF) /* a LAYER_EXT record follows */

enum { ESNN_SECTION_GRAPH = 1, ESNN_SECTION_LAYER = 2, ESNN_SECTION_META = 3, ESNN_SECTION_ANN = 4 };
#define ESNN_SECTION_MAX 4u

enum { ESNN_ENC_RATE = 0, ESNN_ENC_LATENCY = 1, ESNN_ENC_DIRECT = 2 };
#define ESNN_ENC_MAX 2u

enum { ESNN_READOUT_COUNT_MEMBRANE = 0, ESNN_READOUT_COUNT = 1 };
#define ESNN_READOUT_MAX 1u

enum { ESNN_NEURON_LIF = 0, ESNN_NEURON_IF = 1, ESNN_NEURON_CUBA_LIF = 2 };
#define ESNN_NEURON_MAX 2u

enum { ESNN_RESET_SUBTRACT = 0, ESNN_RESET_ZERO = 1, ESNN_RESET_SUBTRACT_DELAYED = 2, ESNN_RESET_NONE = 3 };
#define ESNN_RESET_MAX 3u

enum { ESNN_FIRE_GT = 0, ESNN_FIRE_GE = 1 };
#define ESNN_FIRE_MAX 1u

enum { ESNN_STORAGE_DENSE = 0, ESNN_STORAGE_SPARSE = 1 };
#define ESNN_STORAGE_MAX 1u

#endif /* ESNN_LAYOUT_H */

/* .esg validation in place (SPEC.md sections 4, 5 and 6). Runs once at boot; never allocates;
 * every loop is bounded by a field that was range-checked before the loop. */
#include "esnn.h"

#define A8(x) (((x) + (ESNN_ESG_SECTION_ALIGN - 1u)) & ~(uint32_t)(ESNN_ESG_SECTION_ALIGN - 1u))
#define HDR ESNN_HDR_BYTES
#define LAYER_HDR ESNN_LAYER_BYTES
#define SEC(b, s) ((b) + HDR + ESNN_SEC_BYTES * (s)) /* section table entry s */
/* a one-byte field of the layer header p */
#define U8(p, f) ((uint32_t)(p)[ESNN_LAYER_##f])
/* the sparse / int4 variants of a layer */
#define IS_SPARSE(p) (U8(p, STORAGE) == ESNN_STORAGE_SPARSE)

/* [off, off + size) lies inside [0, len) (no overflow). */
static int in_bounds(uint32_t off, uint32_t size, uint32_t len)
{
    return off <= len && size <= len - off;
}

static int all_zero(const ESNN_ROM uint8_t *p, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        if (p[i] != 0) return 0;
    }
    return 1;
}

static esnn_status_t check_layer(esnn_layer_t *L, const ESNN_ROM uint8_t *p, uint32_t size, uint32_t n_in_expect)
{
    uint32_t n_in, n_out, nnz, wb, i, k, a, b, c, ib, hdr = LAYER_HDR;
    uint32_t off[8], len[8];
    const ESNN_ROM uint8_t *rp, *ix;

    if (size < LAYER_HDR) return ESNN_ERR_SHAPE;
    n_in = esnn_ld32(p + ESNN_LAYER_N_IN);
    n_out = esnn_ld32(p + ESNN_LAYER_N_OUT);
    if (n_in < 1 || n_in > 65535u || n_out < 1 || n_out > 65535u) return ESNN_ERR_RANGE;
    if (U8(p, NEURON) > ESNN_NEURON_MAX || U8(p, RESET) > ESNN_RESET_MAX ||
        U8(p, STORAGE) > ESNN_STORAGE_MAX || U8(p, FIRE) > ESNN_FIRE_MAX ||
        (U8(p, THRESHOLD_COUNT_FLAG) | U8(p, LEAK_COUNT_FLAG)) > 1 ||
        (U8(p, WEIGHT_BITS) != 8 && U8(p, WEIGHT_BITS) != 4))
        return ESNN_ERR_ENUM;
    ib = U8(p, INDEX_BITS);
    if (!IS_SPARSE(p) ? ib != 0 : !(ib == 16 || (ib == 8 && n_out <= 256u))) return ESNN_ERR_ENUM;
    /* a neuron with parameters beyond the LAYER record (CubaLIF's synaptic leak): the
     * LAYER_EXT extension (SPEC 5.4.1) */
    off[7] = len[7] = 0;
    if (ESNN_NEURON_HAS_EXT(U8(p, NEURON))) {
        hdr += ESNN_LAYER_EXT_BYTES;
        if (size < hdr) return ESNN_ERR_SHAPE;
        if (p[LAYER_HDR + ESNN_LAYER_EXT_SYN_LEAK_COUNT_FLAG] > 1u) return ESNN_ERR_ENUM;
        if (!all_zero(p + LAYER_HDR + ESNN_LAYER_EXT_RESERVED, ESNN_LAYER_EXT_BYTES - ESNN_LAYER_EXT_RESERVED))
            return ESNN_ERR_RESERVED;
        off[7] = esnn_ld32(p + LAYER_HDR + ESNN_LAYER_EXT_OFF_SYN_LEAK);
        len[7] = p[LAYER_HDR + ESNN_LAYER_EXT_SYN_LEAK_COUNT_FLAG] ? 4u * n_out : 4u;
    }
    if (n_in != n_in_expect) return ESNN_ERR_SHAPE;

    nnz = esnn_ld32(p + ESNN_LAYER_NNZ);
    wb = esnn_ld32(p + ESNN_LAYER_WEIGHTS_BYTES);
    if (!IS_SPARSE(p)) {
        if (nnz != n_in * n_out || wb != n_in * (U8(p, WEIGHT_BITS) == 8 ? n_out : (n_out + 1u) / 2u))
            return ESNN_ERR_SIZE;
        if (esnn_ld32(p + ESNN_LAYER_OFF_ROWPTR) != 0 || esnn_ld32(p + ESNN_LAYER_OFF_INDEX) != 0)
            return ESNN_ERR_ARRAY_BOUNDS;
    } else {
        if (nnz > n_in * n_out || wb != (U8(p, WEIGHT_BITS) == 8 ? nnz : nnz / 2u + (nnz & 1u)))
            return ESNN_ERR_SIZE;
        if (nnz > (size >> (ib == 16 ? 1 : 0))) return ESNN_ERR_ARRAY_BOUNDS;
    }

    /* 0 the layer header, 1 threshold, 2 leak, 3 rowptr, 4 index, 5 weights, 6 bias,
     * 7 synaptic leak (CubaLIF) */
    off[0] = 0;
    len[0] = hdr;
    off[1] = esnn_ld32(p + ESNN_LAYER_OFF_THRESHOLD);
    off[2] = esnn_ld32(p + ESNN_LAYER_OFF_LEAK);
    off[3] = esnn_ld32(p + ESNN_LAYER_OFF_ROWPTR);
    off[4] = esnn_ld32(p + ESNN_LAYER_OFF_INDEX);
    off[5] = esnn_ld32(p + ESNN_LAYER_OFF_WEIGHTS);
    off[6] = esnn_ld32(p + ESNN_LAYER_OFF_BIAS);
    len[1] = U8(p, THRESHOLD_COUNT_FLAG) ? 4u * n_out : 4u;
    len[2] = U8(p, LEAK_COUNT_FLAG) ? 4u * n_out : 4u;
    len[3] = IS_SPARSE(p) ? 4u * (n_in + 1u) : 0;
    len[4] = IS_SPARSE(p) ? nnz * (ib / 8u) : 0;
    len[5] = wb;
    len[6] = off[6] ? 4u * n_out : 0; /* offset 0: no bias */
    for (k = 1; k < 8; k++) {
        if (off[k] & (ESNN_ESG_ARRAY_ALIGN - 1u)) return ESNN_ERR_ALIGN;
        if ((!IS_SPARSE(p) && (k == 3 || k == 4)) || (k == 6 && off[6] == 0) || (k == 7 && len[7] == 0))
            continue; /* absent in dense storage, no bias, or no synaptic current */
        if (off[k] < hdr || !in_bounds(off[k], len[k], size)) return ESNN_ERR_ARRAY_BOUNDS;
    }
    for (a = 0; a < 8; a++) {
        for (b = a + 1; b < 8; b++) {
            if (off[a] < off[b] + len[b] && off[b] < off[a] + len[a])
                return ESNN_ERR_OVERLAP;
        }
    }

    L->n_in = (uint16_t)n_in;
    L->n_out = (uint16_t)n_out;
    L->neuron = p[ESNN_LAYER_NEURON];
    L->reset = p[ESNN_LAYER_RESET];
    L->fire = p[ESNN_LAYER_FIRE];
    L->weight_bits = p[ESNN_LAYER_WEIGHT_BITS];
    L->storage = p[ESNN_LAYER_STORAGE];
    L->index_bits = (uint8_t)ib;
    L->thr_per = p[ESNN_LAYER_THRESHOLD_COUNT_FLAG];
    L->leak_per = p[ESNN_LAYER_LEAK_COUNT_FLAG];
    L->syn_per = len[7] > 4u;
    L->syn_leak = len[7] ? p + off[7] : NULL;
    L->nnz = nnz;
    L->thr = p + off[1];
    L->leak = p + off[2];
    L->rowptr = p + off[3];
    L->index = p + off[4];
    L->w = p + off[5];
    L->bias = off[6] ? p + off[6] : NULL;
    L->bias_max = 0;
    for (k = 0; k < len[6]; k += 4) { /* |bias| <= ESNN_BIAS_MAX */
        a = esnn_ld32(L->bias + k);
        a = (a >> 31) ? 0u - a : a;
        if (a > (uint32_t)ESNN_BIAS_MAX) return ESNN_ERR_RANGE;
        if (a > L->bias_max) L->bias_max = a;
    }

    for (k = 0; k < len[1]; k += 4) {
        if (L->thr[k + 3] & 0x80u) return ESNN_ERR_THRESHOLD;
    }
    for (k = 0; k < len[2]; k += 4) {
        a = esnn_ld32(L->leak + k);
        if (a > ESNN_Q16_ONE || (L->neuron == ESNN_NEURON_IF && a != ESNN_Q16_ONE)) return ESNN_ERR_LEAK;
    }
    for (k = 0; k < len[7]; k += 4) {
        if (esnn_ld32(L->syn_leak + k) > ESNN_Q16_ONE) return ESNN_ERR_LEAK;
    }
    /* an unused high nibble (end of each dense int4 row / after the last sparse entry) is 0 */
    if (L->weight_bits == 4) {
        if (L->storage == ESNN_STORAGE_DENSE && (n_out & 1u)) {
            for (k = 1; k <= n_in; k++) {
                if (L->w[k * ((n_out + 1u) / 2u) - 1u] & 0xF0u) return ESNN_ERR_NIBBLE;
            }
        } else if (L->storage == ESNN_STORAGE_SPARSE && (nnz & 1u) && (L->w[wb - 1u] & 0xF0u)) {
            return ESNN_ERR_NIBBLE;
        }
    }
    if (L->storage == ESNN_STORAGE_SPARSE) {
        /* every stored entry is a nonzero weight (SPEC 5.4): byte k, or nibble k of int4 */
        a = L->weight_bits == 4 ? 1u : 0u;
        for (k = 0; k < nnz; k++) {
            if ((((uint32_t)L->w[k >> a] >> ((k & a) << 2)) & (0xFFu >> (a << 2))) == 0)
                return ESNN_ERR_RANGE;
        }
        rp = L->rowptr;
        ix = L->index;
        if (esnn_ld32(rp) != 0 || esnn_ld32(rp + 4u * n_in) != nnz) return ESNN_ERR_ROWPTR;
        /* rows in order, k = rowptr[i]; indices of a row strictly increasing (>= c) */
        for (i = 0, k = 0; i < n_in; i++) {
            b = esnn_ld32(rp + 4u * i + 4u);
            if (b < k || b > nnz) return ESNN_ERR_ROWPTR;
            for (c = 0; k < b; k++) {
                a = ib == 8 ? ix[k] : esnn_ld16(ix + 2u * k);
                if (a < c || a >= n_out) return ESNN_ERR_INDEX;
                c = a + 1u;
            }
        }
    }
    return ESNN_OK;
}

esnn_status_t esnn_model_init(esnn_model_t *m, const ESNN_ROM uint8_t *b, uint32_t len)
{
    uint32_t count, s, kind, off, size, expect, end, n_layer_sec, i, sum_out, syn_out, arena;
    const ESNN_ROM uint8_t *e, *g;
    esnn_status_t st;

    if (m == NULL || b == NULL) return ESNN_ERR_NULL;
    m->esg = NULL;
    if (len < HDR) return ESNN_ERR_TRUNCATED;
    if ((ESNN_ROM_ADDR(b) & (ESNN_ESG_ARRAY_ALIGN - 1u)) != 0) return ESNN_ERR_ALIGN;
    if (esnn_ld32(b + ESNN_HDR_MAGIC) != ESNN_ESG_MAGIC) return ESNN_ERR_MAGIC;
    if (esnn_ld16(b + ESNN_HDR_VERSION_MAJOR) != ESNN_ESG_VERSION_MAJOR) return ESNN_ERR_VERSION;
    if (esnn_ld32(b + ESNN_HDR_HEADER_SIZE) != HDR) return ESNN_ERR_HEADER_SIZE;
    if (esnn_ld32(b + ESNN_HDR_FILE_SIZE) != len || (len & (ESNN_ESG_SECTION_ALIGN - 1u)))
        return ESNN_ERR_FILE_SIZE;
    if (esnn_crc32(0, b, ESNN_HDR_HEADER_CRC) != esnn_ld32(b + ESNN_HDR_HEADER_CRC))
        return ESNN_ERR_HEADER_CRC;
    if (esnn_ld32(b + ESNN_HDR_FLAGS) || esnn_ld32(b + ESNN_HDR_RESERVED0) ||
        esnn_ld32(b + ESNN_HDR_RESERVED1) || esnn_ld32(b + ESNN_HDR_RESERVED1 + 4u))
        return ESNN_ERR_RESERVED;
    if (esnn_ld32(b + ESNN_HDR_SECTION_TABLE_OFFSET) != HDR) return ESNN_ERR_HEADER_SIZE;
    count = esnn_ld32(b + ESNN_HDR_SECTION_COUNT);
    if (count < 2 || count > ESNN_ESG_MAX_SECTIONS) return ESNN_ERR_SECTION_COUNT;
    if (!in_bounds(HDR, ESNN_SEC_BYTES * count, len)) return ESNN_ERR_TABLE_BOUNDS;
    if (esnn_crc32(0, b + HDR, ESNN_SEC_BYTES * count) != esnn_ld32(b + ESNN_HDR_TABLE_CRC))
        return ESNN_ERR_TABLE_CRC;

    /* Section table: GRAPH, LAYER..., optional ANN, optional META; payloads packed in order,
     * 8-aligned. The ANN payload is validated by esnn_ann_init when it is used. */
    end = HDR + ESNN_SEC_BYTES * count;
    n_layer_sec = 0;
    m->ann = NULL;
    m->ann_len = 0;
    for (s = 0; s < count; s++) {
        e = SEC(b, s);
        kind = esnn_ld32(e + ESNN_SEC_KIND);
        off = esnn_ld32(e + ESNN_SEC_OFFSET);
        size = esnn_ld32(e + ESNN_SEC_SIZE);
        if (kind < ESNN_SECTION_GRAPH || kind > ESNN_SECTION_MAX) return ESNN_ERR_SECTION_KIND;
        if (s == 0 ? kind != ESNN_SECTION_GRAPH
                   : !((kind == ESNN_SECTION_LAYER && m->ann == NULL) ||
                       (kind == ESNN_SECTION_ANN && m->ann == NULL && s >= 2u) ||
                       (kind == ESNN_SECTION_META && s == count - 1u && s >= 2u)))
            return ESNN_ERR_SECTION_ORDER;
        if (kind == ESNN_SECTION_LAYER) n_layer_sec++;
        if (kind == ESNN_SECTION_ANN) {
            m->ann = b + off;
            m->ann_len = size;
        }
        if (off & (ESNN_ESG_SECTION_ALIGN - 1u)) return ESNN_ERR_ALIGN;
        if (!in_bounds(off, size, len)) return ESNN_ERR_SECTION_BOUNDS;
        expect = A8(end);
        if (off != expect) return ESNN_ERR_PLACEMENT;
        if (!all_zero(b + end, off - end)) return ESNN_ERR_PADDING;
        if (esnn_crc32(0, b + off, size) != esnn_ld32(e + ESNN_SEC_CRC)) return ESNN_ERR_SECTION_CRC;
        end = off + size;
    }
    if (A8(end) != len) return ESNN_ERR_FILE_SIZE;
    if (!all_zero(b + end, len - end)) return ESNN_ERR_PADDING;

    /* GRAPH */
    g = b + esnn_ld32(SEC(b, 0) + ESNN_SEC_OFFSET);
    if (esnn_ld32(SEC(b, 0) + ESNN_SEC_SIZE) != ESNN_GRAPH_BYTES) return ESNN_ERR_SHAPE;
    m->input_size = esnn_ld32(g + ESNN_GRAPH_INPUT_SIZE);
    m->n_layers = (uint16_t)esnn_ld16(g + ESNN_GRAPH_N_LAYERS);
    m->steps = (uint16_t)esnn_ld16(g + ESNN_GRAPH_STEPS);
    m->encoder = g[ESNN_GRAPH_ENCODER];
    m->readout = g[ESNN_GRAPH_READOUT];
    m->n_classes = (uint16_t)esnn_ld16(g + ESNN_GRAPH_N_CLASSES);
    m->seed = esnn_ld32(g + ESNN_GRAPH_SEED);
    m->arena_bytes = esnn_ld32(g + ESNN_GRAPH_ARENA_BYTES);
    if (m->input_size < 1 || m->input_size > 65535u || m->n_layers < 1 || m->n_layers > 255u ||
        m->steps < 1)
        return ESNN_ERR_RANGE;
    if (m->encoder > ESNN_ENC_MAX || m->readout > ESNN_READOUT_MAX) return ESNN_ERR_ENUM;
    if (m->n_classes < 1 || m->n_classes > 255u) return ESNN_ERR_RANGE;
    if (esnn_ld32(g + ESNN_GRAPH_RESERVED) || esnn_ld32(g + ESNN_GRAPH_RESERVED + 4u) ||
        esnn_ld32(g + ESNN_GRAPH_RESERVED + 8u))
        return ESNN_ERR_RESERVED;
    if (m->n_layers != n_layer_sec) return ESNN_ERR_SHAPE;
    if (m->n_layers > ESNN_MAX_LAYERS || m->n_classes > ESNN_MAX_CLASSES) return ESNN_ERR_LIMIT;

    /* LAYERs, and the arena formula (SPEC section 4) */
    expect = m->input_size;
    sum_out = syn_out = 0;
    arena = 2u * A8(2u * m->input_size);
    for (i = 0; i < m->n_layers; i++) {
        e = SEC(b, i + 1u);
        st = check_layer(&m->layers[i], b + esnn_ld32(e + ESNN_SEC_OFFSET), esnn_ld32(e + ESNN_SEC_SIZE),
                         expect);
        if (st != ESNN_OK) return st;
        expect = m->layers[i].n_out;
        sum_out += expect;
        syn_out += ESNN_NEURON_EXTRA_STATES(m->layers[i].neuron) * expect;
        arena += A8(2u * expect);
    }
    if (m->n_classes != expect) return ESNN_ERR_SHAPE;
    arena += A8(4u * sum_out) + A8(4u * syn_out);
    if (m->encoder == ESNN_ENC_DIRECT) arena += A8((uint32_t)4u * m->layers[0].n_out);
    if (m->arena_bytes != arena) return ESNN_ERR_ARENA_BYTES;

    m->len = len;
    m->hash = b + ESNN_HDR_MODEL_HASH;
    m->esg = b;
    return ESNN_OK;
}

/* .esg validation in place (SPEC.md sections 4, 5 and 6). Runs once at boot; never allocates;
 * every loop is bounded by a field that was range-checked before the loop. */
#include "esnn.h"

#define A8(x) (((x) + 7u) & ~(uint32_t)7u)
#define Q16_ONE 65536u
#define HDR 64u
#define LAYER_HDR 48u

/* [off, off + size) lies inside [0, len) (no overflow). */
static int in_bounds(uint32_t off, uint32_t size, uint32_t len)
{
    return off <= len && size <= len - off;
}

static int all_zero(const uint8_t *p, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        if (p[i] != 0) return 0;
    }
    return 1;
}

static esnn_status_t check_layer(esnn_layer_t *L, const uint8_t *p, uint32_t size, uint32_t n_in_expect)
{
    uint32_t n_in, n_out, nnz, wb, i, k, a, b, c, ib;
    uint32_t off[6], len[6];
    const uint8_t *rp, *ix;

    if (size < LAYER_HDR) return ESNN_ERR_SHAPE;
    n_in = esnn_ld32(p);
    n_out = esnn_ld32(p + 4);
    if (n_in < 1 || n_in > 65535u || n_out < 1 || n_out > 65535u) return ESNN_ERR_RANGE;
    if ((p[8] | p[9] | p[11] | p[13] | p[14]) > 1 || (p[10] != 8 && p[10] != 4)) return ESNN_ERR_ENUM;
    ib = p[12];
    if (p[11] == 0 ? ib != 0 : !(ib == 16 || (ib == 8 && n_out <= 256u))) return ESNN_ERR_ENUM;
    if (p[15] != 0 || esnn_ld32(p + 44) != 0) return ESNN_ERR_RESERVED;
    if (n_in != n_in_expect) return ESNN_ERR_SHAPE;

    nnz = esnn_ld32(p + 16);
    wb = esnn_ld32(p + 40);
    if (p[11] == 0) {
        if (nnz != n_in * n_out || wb != n_in * (p[10] == 8 ? n_out : (n_out + 1u) / 2u))
            return ESNN_ERR_SIZE;
        if (esnn_ld32(p + 28) != 0 || esnn_ld32(p + 32) != 0) return ESNN_ERR_ARRAY_BOUNDS;
    } else {
        if (nnz > n_in * n_out || wb != (p[10] == 8 ? nnz : nnz / 2u + (nnz & 1u)))
            return ESNN_ERR_SIZE;
        if (nnz > (size >> (ib == 16 ? 1 : 0))) return ESNN_ERR_ARRAY_BOUNDS;
    }

    off[0] = 0;
    len[0] = LAYER_HDR;
    for (k = 1; k < 6; k++) off[k] = esnn_ld32(p + 16 + 4 * k);
    len[1] = p[13] ? 4u * n_out : 4u;
    len[2] = p[14] ? 4u * n_out : 4u;
    len[3] = p[11] ? 4u * (n_in + 1u) : 0;
    len[4] = p[11] ? nnz * (ib / 8u) : 0;
    len[5] = wb;
    for (k = 1; k < 6; k++) {
        if (off[k] & 3u) return ESNN_ERR_ALIGN;
        if (p[11] == 0 && (k == 3 || k == 4)) continue; /* absent in dense storage */
        if (off[k] < LAYER_HDR || !in_bounds(off[k], len[k], size)) return ESNN_ERR_ARRAY_BOUNDS;
    }
    for (a = 0; a < 6; a++) {
        for (b = a + 1; b < 6; b++) {
            if (off[a] < off[b] + len[b] && off[b] < off[a] + len[a])
                return ESNN_ERR_OVERLAP;
        }
    }

    L->n_in = (uint16_t)n_in;
    L->n_out = (uint16_t)n_out;
    L->neuron = p[8];
    L->reset = p[9];
    L->weight_bits = p[10];
    L->storage = p[11];
    L->index_bits = (uint8_t)ib;
    L->thr_per = p[13];
    L->leak_per = p[14];
    L->nnz = nnz;
    L->thr = p + off[1];
    L->leak = p + off[2];
    L->rowptr = p + off[3];
    L->index = p + off[4];
    L->w = p + off[5];

    for (k = 0; k < len[1]; k += 4) {
        if (L->thr[k + 3] & 0x80u) return ESNN_ERR_THRESHOLD;
    }
    for (k = 0; k < len[2]; k += 4) {
        a = esnn_ld32(L->leak + k);
        if (a > Q16_ONE || (L->neuron == 1 && a != Q16_ONE)) return ESNN_ERR_LEAK;
    }
    /* an unused high nibble (end of each dense int4 row / after the last sparse entry) is 0 */
    if (L->weight_bits == 4) {
        if (L->storage == 0 && (n_out & 1u)) {
            for (k = 1; k <= n_in; k++) {
                if (L->w[k * ((n_out + 1u) / 2u) - 1u] & 0xF0u) return ESNN_ERR_NIBBLE;
            }
        } else if (L->storage && (nnz & 1u) && (L->w[wb - 1u] & 0xF0u)) {
            return ESNN_ERR_NIBBLE;
        }
    }
    if (L->storage) {
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

esnn_status_t esnn_model_init(esnn_model_t *m, const uint8_t *b, uint32_t len)
{
    uint32_t count, s, kind, off, size, expect, end, n_layer_sec, i, sum_out, arena;
    const uint8_t *e, *g;
    esnn_status_t st;

    if (m == NULL || b == NULL) return ESNN_ERR_NULL;
    m->esg = NULL;
    if (len < HDR) return ESNN_ERR_TRUNCATED;
    if (((uintptr_t)b & 3u) != 0) return ESNN_ERR_ALIGN;
    if (esnn_ld32(b) != 0x474E5345u) return ESNN_ERR_MAGIC; /* "ESNG" */
    if (esnn_ld16(b + 4) != 1) return ESNN_ERR_VERSION;
    if (esnn_ld32(b + 8) != HDR) return ESNN_ERR_HEADER_SIZE;
    if (esnn_ld32(b + 12) != len || (len & 7u)) return ESNN_ERR_FILE_SIZE;
    if (esnn_crc32(0, b, 60) != esnn_ld32(b + 60)) return ESNN_ERR_HEADER_CRC;
    if (esnn_ld32(b + 24) || esnn_ld32(b + 28) || esnn_ld32(b + 52) || esnn_ld32(b + 56))
        return ESNN_ERR_RESERVED;
    if (esnn_ld32(b + 20) != HDR) return ESNN_ERR_HEADER_SIZE;
    count = esnn_ld32(b + 16);
    if (count < 2 || count > 257u) return ESNN_ERR_SECTION_COUNT;
    if (!in_bounds(HDR, 16u * count, len)) return ESNN_ERR_TABLE_BOUNDS;
    if (esnn_crc32(0, b + HDR, 16u * count) != esnn_ld32(b + 48)) return ESNN_ERR_TABLE_CRC;

    /* Section table: GRAPH, LAYER..., optional META; payloads packed in order, 8-aligned. */
    end = HDR + 16u * count;
    n_layer_sec = 0;
    for (s = 0; s < count; s++) {
        e = b + HDR + 16u * s;
        kind = esnn_ld32(e);
        off = esnn_ld32(e + 4);
        size = esnn_ld32(e + 8);
        if (kind < 1 || kind > 3) return ESNN_ERR_SECTION_KIND;
        if (s == 0 ? kind != 1 : !(kind == 2 || (kind == 3 && s == count - 1u && s >= 2u)))
            return ESNN_ERR_SECTION_ORDER;
        if (kind == 2) n_layer_sec++;
        if (off & 7u) return ESNN_ERR_ALIGN;
        if (!in_bounds(off, size, len)) return ESNN_ERR_SECTION_BOUNDS;
        expect = A8(end);
        if (off != expect) return ESNN_ERR_PLACEMENT;
        if (!all_zero(b + end, off - end)) return ESNN_ERR_PADDING;
        if (esnn_crc32(0, b + off, size) != esnn_ld32(e + 12)) return ESNN_ERR_SECTION_CRC;
        end = off + size;
    }
    if (A8(end) != len) return ESNN_ERR_FILE_SIZE;
    if (!all_zero(b + end, len - end)) return ESNN_ERR_PADDING;

    /* GRAPH */
    g = b + esnn_ld32(b + HDR + 4);
    if (esnn_ld32(b + HDR + 8) != 32u) return ESNN_ERR_SHAPE;
    m->input_size = esnn_ld32(g);
    m->n_layers = (uint16_t)esnn_ld16(g + 4);
    m->steps = (uint16_t)esnn_ld16(g + 6);
    m->encoder = g[8];
    m->readout = g[9];
    m->n_classes = (uint16_t)esnn_ld16(g + 10);
    m->seed = esnn_ld32(g + 12);
    m->arena_bytes = esnn_ld32(g + 16);
    if (m->input_size < 1 || m->input_size > 65535u || m->n_layers < 1 || m->n_layers > 255u ||
        m->steps < 1)
        return ESNN_ERR_RANGE;
    if (m->encoder > 2 || m->readout != 0) return ESNN_ERR_ENUM;
    if (m->n_classes < 1 || m->n_classes > 255u) return ESNN_ERR_RANGE;
    if (esnn_ld32(g + 20) || esnn_ld32(g + 24) || esnn_ld32(g + 28)) return ESNN_ERR_RESERVED;
    if (m->n_layers != n_layer_sec) return ESNN_ERR_SHAPE;
    if (m->n_layers > ESNN_MAX_LAYERS || m->n_classes > ESNN_MAX_CLASSES) return ESNN_ERR_LIMIT;

    /* LAYERs, and the arena formula (SPEC section 4) */
    expect = m->input_size;
    sum_out = 0;
    arena = 2u * A8(2u * m->input_size);
    for (i = 0; i < m->n_layers; i++) {
        e = b + HDR + 16u * (i + 1u);
        st = check_layer(&m->layers[i], b + esnn_ld32(e + 4), esnn_ld32(e + 8), expect);
        if (st != ESNN_OK) return st;
        expect = m->layers[i].n_out;
        sum_out += expect;
        arena += A8(2u * expect);
    }
    if (m->n_classes != expect) return ESNN_ERR_SHAPE;
    arena += A8(4u * sum_out);
    if (m->encoder == ESNN_ENC_DIRECT) arena += A8(4u * m->layers[0].n_out);
    if (m->arena_bytes != arena) return ESNN_ERR_ARENA_BYTES;

    m->len = len;
    m->hash = b + 32;
    m->esg = b;
    return ESNN_OK;
}

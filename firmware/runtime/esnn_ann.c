/* edgesnn int8 ANN baseline: blob validation, dense and event-driven sparse inference.
 * Semantics and blob layout: esnn_ann.h. Numpy twin: edgesnn/graph/ann.py. */
#include "esnn_ann.h"
#include "esnn_mac.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(ESNN_NO_ASM)
#define ESNN_ANN_DSP 1
#else
#define ESNN_ANN_DSP 0
#endif

#define ANN_A4(n) (((n) + 3u) & ~3u)
#define ANN_MAX_PRODUCT 32640u /* 255 * 128: the largest |x * w| */

/* ------------------------------------------------------------------------------------ */
/* validation */

static esnn_status_t ann_array(uint32_t off, uint32_t bytes, uint32_t lo, uint32_t len,
                               uint32_t *spans, uint32_t *n_spans)
{
    uint32_t k;
    if ((off & 3u) != 0u) {
        return ESNN_ERR_ALIGN;
    }
    if (off < lo || off > len || bytes > len - off) {
        return ESNN_ERR_ARRAY_BOUNDS;
    }
    for (k = 0u; k < *n_spans; ++k) {
        uint32_t a = spans[2u * k];
        uint32_t b = spans[2u * k + 1u];
        if (bytes != 0u && off < b && a < off + bytes) {
            return ESNN_ERR_OVERLAP;
        }
    }
    spans[2u * *n_spans] = off;
    spans[2u * *n_spans + 1u] = off + bytes;
    ++*n_spans;
    return ESNN_OK;
}

static esnn_status_t ann_check_sparse(const esnn_ann_layer_t *L)
{
    uint32_t i;
    uint32_t k;
    if (L->rowptr[0] != 0u || L->rowptr[L->n_in] != L->nnz) {
        return ESNN_ERR_ROWPTR;
    }
    for (i = 0u; i < L->n_in; ++i) {
        uint32_t beg = L->rowptr[i];
        uint32_t end = L->rowptr[i + 1u];
        uint32_t prev = 0u;
        if (end < beg || end > L->nnz) {
            return ESNN_ERR_ROWPTR;
        }
        for (k = beg; k < end; ++k) {
            uint32_t idx = L->index_bits == 8u ? L->index[k] : esnn_ld16(L->index + 2u * k);
            if (idx >= L->n_out || (k > beg && idx <= prev)) {
                return ESNN_ERR_INDEX;
            }
            if (L->w[k] == 0) {
                return ESNN_ERR_RANGE;
            }
            prev = idx;
        }
    }
    return ESNN_OK;
}

/* Padding weights (rows >= n_out in the last block, inputs >= n_in in the last group of
 * every block) must be zero. */
static esnn_status_t ann_check_dense_padding(const esnn_ann_layer_t *L)
{
    uint32_t n_in4 = ANN_A4(L->n_in);
    uint32_t blocks = ANN_A4(L->n_out) >> 2;
    uint32_t b;
    uint32_t t;
    for (b = 0u; b < blocks; ++b) {
        uint32_t first = (4u * b + 4u > L->n_out) ? 0u : (n_in4 - 4u) * 4u;
        for (t = first; t < n_in4 * 4u; ++t) {
            uint32_t u = t & 15u;
            uint32_t i = (t >> 4) * 4u + ((u >> 3) & 1u) + ((u >> 1) & 1u) * 2u;
            uint32_t j = 4u * b + ((u >> 2) & 1u) * 2u + (u & 1u);
            if ((i >= L->n_in || j >= L->n_out) && L->w[b * n_in4 * 4u + t] != 0) {
                return ESNN_ERR_RANGE;
            }
        }
    }
    return ESNN_OK;
}

esnn_status_t esnn_ann_init(esnn_ann_model_t *m, const uint8_t *blob, uint32_t len)
{
    uint32_t n_layers;
    uint32_t data0;
    uint32_t spans[2u * 4u * ESNN_ANN_MAX_LAYERS];
    uint32_t n_spans = 0u;
    uint32_t prev_out;
    uint32_t max_out = 0u;
    uint32_t max_hidden = 0u;
    uint32_t max_runs = 0u;
    uint32_t l;

    if (m == NULL || blob == NULL) {
        return ESNN_ERR_NULL;
    }
    m->blob = NULL;
    if (((uintptr_t)blob & 3u) != 0u) {
        return ESNN_ERR_ALIGN;
    }
    if (len < ESNN_ANN_HEADER_BYTES) {
        return ESNN_ERR_TRUNCATED;
    }
    if (blob[0] != 'E' || blob[1] != 'A' || blob[2] != 'N' || blob[3] != 'N') {
        return ESNN_ERR_MAGIC;
    }
    if (esnn_rd16(blob + 4) != 1u) {
        return ESNN_ERR_VERSION;
    }
    if (esnn_rd32(blob + 8) != len || (len & 3u) != 0u) {
        return ESNN_ERR_FILE_SIZE;
    }
    if (esnn_crc32(0u, blob + 16, len - 16u) != esnn_rd32(blob + 12)) {
        return ESNN_ERR_SECTION_CRC;
    }
    n_layers = esnn_rd16(blob + 6);
    if (n_layers < 1u) {
        return ESNN_ERR_RANGE;
    }
    if (n_layers > ESNN_ANN_MAX_LAYERS) {
        return ESNN_ERR_LIMIT;
    }
    data0 = ESNN_ANN_HEADER_BYTES + ESNN_ANN_LAYER_BYTES * n_layers;
    if (data0 > len) {
        return ESNN_ERR_TABLE_BOUNDS;
    }
    prev_out = 0u;
    for (l = 0u; l < n_layers; ++l) {
        const uint8_t *h = blob + ESNN_ANN_HEADER_BYTES + ESNN_ANN_LAYER_BYTES * l;
        esnn_ann_layer_t *L = &m->layers[l];
        uint32_t last = (l + 1u == n_layers);
        uint32_t wbytes;
        uint32_t bound;
        uint32_t j;
        esnn_status_t st;

        L->n_in = esnn_rd32(h);
        L->n_out = esnn_rd32(h + 4);
        L->storage = h[8];
        L->output = h[9];
        L->index_bits = h[10];
        L->nnz = esnn_rd32(h + 12);
        L->multiplier = (int32_t)esnn_rd32(h + 16);
        L->shift = esnn_rd32(h + 20);
        if (L->n_in < 1u || L->n_in > 65535u || L->n_out < 1u || L->n_out > 65535u) {
            return ESNN_ERR_RANGE;
        }
        if (h[11] != 0u) {
            return ESNN_ERR_RESERVED;
        }
        if (L->storage > ESNN_ANN_DENSE_SKIP || L->output != (last ? ESNN_ANN_OUT_INT32
                                                                : ESNN_ANN_OUT_RELU_U8)) {
            return ESNN_ERR_ENUM;
        }
        if (L->storage != ESNN_ANN_SPARSE ? L->index_bits != 0u
                                          : (L->index_bits != 16u &&
                                             (L->index_bits != 8u || L->n_out > 256u))) {
            return ESNN_ERR_ENUM;
        }
        if (l == 0u ? L->n_in == 0u : L->n_in != prev_out) {
            return ESNN_ERR_SHAPE;
        }
        if (last ? (L->n_out > 255u || L->multiplier != 0 || L->shift != 0u)
                 : (L->multiplier < 1 || L->shift < 1u || L->shift > 62u)) {
            return last && L->n_out > 255u ? ESNN_ERR_SHAPE : ESNN_ERR_RANGE;
        }
        if (last && L->n_out > ESNN_MAX_CLASSES) {
            return ESNN_ERR_LIMIT;
        }
        if (L->storage != ESNN_ANN_SPARSE) {
            if (L->nnz != ANN_A4(L->n_out) * ANN_A4(L->n_in) || esnn_rd32(h + 32) != 0u ||
                esnn_rd32(h + 36) != 0u) {
                return ESNN_ERR_SIZE;
            }
            wbytes = L->nnz;
        } else {
            if (L->nnz > L->n_in * L->n_out || L->nnz > len) {
                return ESNN_ERR_SIZE;
            }
            wbytes = L->nnz;
        }
        st = ann_array(esnn_rd32(h + 24), 4u * L->n_out, data0, len, spans, &n_spans);
        if (st == ESNN_OK) {
            st = ann_array(esnn_rd32(h + 28), wbytes, data0, len, spans, &n_spans);
        }
        if (st == ESNN_OK && L->storage == ESNN_ANN_SPARSE) {
            st = ann_array(esnn_rd32(h + 32), 4u * (L->n_in + 1u), data0, len, spans,
                           &n_spans);
            if (st == ESNN_OK) {
                st = ann_array(esnn_rd32(h + 36), L->nnz * (L->index_bits / 8u), data0, len,
                               spans, &n_spans);
            }
        }
        if (st != ESNN_OK) {
            return st;
        }
        L->bias = (const int32_t *)(const void *)(blob + esnn_rd32(h + 24));
        L->w = (const int8_t *)(const void *)(blob + esnn_rd32(h + 28));
        L->index = blob + esnn_rd32(h + 36);
        L->shift_hi = L->shift >= 33u ? L->shift - 32u : 0u;
        L->rnd_hi = L->shift >= 33u ? (int32_t)1 << (L->shift - 33u) : 0;
        L->rowptr = L->storage == ESNN_ANN_SPARSE
                        ? (const uint32_t *)(const void *)(blob + esnn_rd32(h + 32))
                        : NULL;
        bound = 0x7FFFFFFFu - ANN_MAX_PRODUCT * L->n_in;
        for (j = 0u; j < L->n_out; ++j) {
            int32_t b = (int32_t)esnn_ld32(blob + esnn_rd32(h + 24) + 4u * j);
            uint32_t mag = b < 0 ? 0u - (uint32_t)b : (uint32_t)b;
            if (mag > bound) {
                return ESNN_ERR_RANGE;
            }
        }
        st = L->storage == ESNN_ANN_SPARSE ? ann_check_sparse(L) : ann_check_dense_padding(L);
        if (st != ESNN_OK) {
            return st;
        }
        prev_out = L->n_out;
        max_out = L->n_out > max_out ? L->n_out : max_out;
        if (L->storage == ESNN_ANN_DENSE_SKIP && ANN_A4(L->n_in) > max_runs) {
            max_runs = ANN_A4(L->n_in); /* (n_in / 4 + 1) / 2 runs of 4 bytes at most */
        }
        if (!last && L->n_out > max_hidden) {
            max_hidden = L->n_out;
        }
    }
    m->input_size = m->layers[0].n_in;
    m->n_layers = n_layers;
    m->n_classes = prev_out;
    m->acc_bytes = 4u * ANN_A4(max_out) > max_runs ? 4u * ANN_A4(max_out) : max_runs;
    m->act_bytes = ANN_A4(max_hidden);
    m->arena_bytes = m->acc_bytes + 2u * m->act_bytes;
    m->len = len;
    m->blob = blob;
    return ESNN_OK;
}

/* ------------------------------------------------------------------------------------ */
/* kernels */

/* clamp((acc * M + 2^(s-1)) >> s, 0, 255). For s >= 33 only the high word of acc * M
 * matters: floor((H * 2^32 + L + 2^(s-1)) / 2^s) = (H + 2^(s-33)) >> (s-32) since L < 2^32. */
static inline uint8_t ann_requant_relu(const esnn_ann_layer_t *L, int32_t acc)
{
    int64_t p;
    if (acc <= 0) {
        return 0u; /* M > 0: a non-positive accumulator rounds to <= 0 */
    }
    p = (int64_t)acc * L->multiplier;
    if (L->shift_hi != 0u) {
        int32_t r = ((int32_t)(p >> 32) + L->rnd_hi) >> L->shift_hi;
        return r > 255 ? 255u : (uint8_t)r;
    }
    p = (p + ((int64_t)1 << (L->shift - 1u))) >> L->shift;
    return p > 255 ? 255u : (uint8_t)p;
}

/* acc[0..3] += x[0 .. 4 * groups) . rows 0..3 of one weight block (layout: esnn_ann.h).
 * Thumb-2 assembly on Cortex-M: with the DSP extension two SMLAD per weight word (23
 * instructions per 16 MACs), without it LDRSB + MLA per weight (38 per 16); C elsewhere. */
#if defined(__GNUC__) && defined(__thumb2__) && !defined(ESNN_NO_ASM) && ESNN_ANN_DSP
__attribute__((noinline)) static void ann_dot4(const uint8_t *x, const int8_t *w,
                                               uint32_t groups, int32_t *acc)
{
    int32_t a0 = acc[0];
    int32_t a1 = acc[1];
    int32_t a2 = acc[2];
    int32_t a3 = acc[3];
    const int8_t *end = w + 16u * groups;
    uint32_t xa;
    uint32_t xb;
    uint32_t w0;
    uint32_t w1;
    uint32_t t;
    if (groups != 0u) {
        __asm__ volatile(
            "1:\n\t"
            "ldr    %[t], [%[x]], #4\n\t"
            "ldrd   %[w0], %[w1], [%[w]], #16\n\t"
            "uxtb16 %[xa], %[t]\n\t"
            "uxtb16 %[xb], %[t], ror #8\n\t"
            "sxtb16 %[t], %[w0]\n\t"
            "smlad  %[a0], %[xa], %[t], %[a0]\n\t"
            "sxtb16 %[t], %[w0], ror #8\n\t"
            "smlad  %[a1], %[xa], %[t], %[a1]\n\t"
            "sxtb16 %[t], %[w1]\n\t"
            "smlad  %[a2], %[xa], %[t], %[a2]\n\t"
            "sxtb16 %[t], %[w1], ror #8\n\t"
            "smlad  %[a3], %[xa], %[t], %[a3]\n\t"
            "ldrd   %[w0], %[w1], [%[w], #-8]\n\t"
            "sxtb16 %[t], %[w0]\n\t"
            "smlad  %[a0], %[xb], %[t], %[a0]\n\t"
            "sxtb16 %[t], %[w0], ror #8\n\t"
            "smlad  %[a1], %[xb], %[t], %[a1]\n\t"
            "sxtb16 %[t], %[w1]\n\t"
            "smlad  %[a2], %[xb], %[t], %[a2]\n\t"
            "sxtb16 %[t], %[w1], ror #8\n\t"
            "smlad  %[a3], %[xb], %[t], %[a3]\n\t"
            "cmp    %[w], %[end]\n\t"
            "bne    1b\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x),
              [w] "+r"(w), [xa] "=&r"(xa), [xb] "=&r"(xb), [w0] "=&r"(w0), [w1] "=&r"(w1),
              [t] "=&r"(t)
            : [end] "r"(end)
            : "cc", "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#elif defined(__GNUC__) && defined(__thumb2__) && !defined(ESNN_NO_ASM)
__attribute__((noinline)) static void ann_dot4(const uint8_t *x, const int8_t *w,
                                               uint32_t groups, int32_t *acc)
{
    int32_t a0 = acc[0];
    int32_t a1 = acc[1];
    int32_t a2 = acc[2];
    int32_t a3 = acc[3];
    const int8_t *end = w + 16u * groups;
    int32_t x0;
    int32_t x1;
    int32_t x2;
    int32_t x3;
    int32_t t;
    if (groups != 0u) {
        __asm__ volatile(
            "1:\n\t"
            "ldrb   %[x1], [%[x], #1]\n\t"
            "ldrb   %[x2], [%[x], #2]\n\t"
            "ldrb   %[x3], [%[x], #3]\n\t"
            "ldrb   %[x0], [%[x]], #4\n\t"
            "ldrsb  %[t], [%[w]], #16\n\t"
            "mla    %[a0], %[x0], %[t], %[a0]\n\t"
            "ldrsb  %[t], [%[w], #-15]\n\t"
            "mla    %[a1], %[x0], %[t], %[a1]\n\t"
            "ldrsb  %[t], [%[w], #-12]\n\t"
            "mla    %[a2], %[x0], %[t], %[a2]\n\t"
            "ldrsb  %[t], [%[w], #-11]\n\t"
            "mla    %[a3], %[x0], %[t], %[a3]\n\t"
            "ldrsb  %[t], [%[w], #-14]\n\t"
            "mla    %[a0], %[x2], %[t], %[a0]\n\t"
            "ldrsb  %[t], [%[w], #-13]\n\t"
            "mla    %[a1], %[x2], %[t], %[a1]\n\t"
            "ldrsb  %[t], [%[w], #-10]\n\t"
            "mla    %[a2], %[x2], %[t], %[a2]\n\t"
            "ldrsb  %[t], [%[w], #-9]\n\t"
            "mla    %[a3], %[x2], %[t], %[a3]\n\t"
            "ldrsb  %[t], [%[w], #-8]\n\t"
            "mla    %[a0], %[x1], %[t], %[a0]\n\t"
            "ldrsb  %[t], [%[w], #-7]\n\t"
            "mla    %[a1], %[x1], %[t], %[a1]\n\t"
            "ldrsb  %[t], [%[w], #-4]\n\t"
            "mla    %[a2], %[x1], %[t], %[a2]\n\t"
            "ldrsb  %[t], [%[w], #-3]\n\t"
            "mla    %[a3], %[x1], %[t], %[a3]\n\t"
            "ldrsb  %[t], [%[w], #-6]\n\t"
            "mla    %[a0], %[x3], %[t], %[a0]\n\t"
            "ldrsb  %[t], [%[w], #-5]\n\t"
            "mla    %[a1], %[x3], %[t], %[a1]\n\t"
            "ldrsb  %[t], [%[w], #-2]\n\t"
            "mla    %[a2], %[x3], %[t], %[a2]\n\t"
            "ldrsb  %[t], [%[w], #-1]\n\t"
            "mla    %[a3], %[x3], %[t], %[a3]\n\t"
            "cmp    %[w], %[end]\n\t"
            "bne    1b\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x),
              [w] "+r"(w), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3),
              [t] "=&r"(t)
            : [end] "r"(end)
            : "cc", "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#else
static void ann_dot4(const uint8_t *x, const int8_t *w, uint32_t groups, int32_t *acc)
{
    int32_t a0 = acc[0];
    int32_t a1 = acc[1];
    int32_t a2 = acc[2];
    int32_t a3 = acc[3];
    const int8_t *end = w + 16u * groups;
    while (w != end) {
        int32_t x0 = x[0];
        int32_t x1 = x[1];
        int32_t x2 = x[2];
        int32_t x3 = x[3];
        a0 += x0 * w[0] + x2 * w[2] + x1 * w[8] + x3 * w[10];
        a1 += x0 * w[1] + x2 * w[3] + x1 * w[9] + x3 * w[11];
        a2 += x0 * w[4] + x2 * w[6] + x1 * w[12] + x3 * w[14];
        a3 += x0 * w[5] + x2 * w[7] + x1 * w[13] + x3 * w[15];
        x += 4;
        w += 16;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

/* The last 1..3 inputs of a block (their group's other weights are zero padding). */
static void ann_dot4_tail(const uint8_t *x, const int8_t *w, uint32_t rem, int32_t *acc)
{
    uint32_t q;
    uint32_t r;
    for (q = 0u; q < rem; ++q) {
        for (r = 0u; r < 4u; ++r) {
            acc[r] += (int32_t)x[q] *
                      w[(q & 1u) * 8u + (r >> 1) * 4u + (q >> 1) * 2u + (r & 1u)];
        }
    }
}

/* Runs of consecutive groups of 4 inputs with a nonzero input: runs[2k] = first group,
 * runs[2k + 1] = length. Returns the number of runs (at most (groups + 1) / 2). */
static uint32_t ann_runs(const uint8_t *x, uint32_t groups, uint16_t *runs)
{
    uint32_t g = 0u;
    uint32_t n = 0u;
    while (g < groups) {
        uint32_t start;
        if (esnn_ld32(x + 4u * g) == 0u) {
            ++g;
            continue;
        }
        start = g;
        while (g < groups && esnn_ld32(x + 4u * g) != 0u) {
            ++g;
        }
        runs[2u * n] = (uint16_t)start;
        runs[2u * n + 1u] = (uint16_t)(g - start);
        ++n;
    }
    return n;
}

/* Dense layer: every block of 4 output rows over the runs of input groups (one run of all
 * groups for plain dense storage); returns the number of inputs visited. */
static uint32_t ann_dense(const esnn_ann_layer_t *L, const uint8_t *x, uint8_t *h,
                          int32_t *logits, uint16_t *runs)
{
    uint32_t groups = L->n_in >> 2;
    uint32_t rem = L->n_in & 3u;
    uint32_t stride = ANN_A4(L->n_in) * 4u;
    uint32_t blocks = ANN_A4(L->n_out) >> 2;
    uint32_t n_runs = 0u;
    uint32_t visited = 0u;
    uint32_t tail = rem;
    uint32_t b;
    uint32_t k;
    if (L->storage == ESNN_ANN_DENSE_SKIP) {
        n_runs = ann_runs(x, groups, runs);
        for (k = 0u; k < rem && x[4u * groups + k] == 0u; ++k) {
        }
        tail = k < rem ? rem : 0u; /* the last 1..3 inputs: visited unless all zero */
        for (k = 0u; k < n_runs; ++k) {
            visited += 4u * runs[2u * k + 1u];
        }
    } else {
        visited = 4u * groups;
    }
    for (b = 0u; b < blocks; ++b) {
        const int8_t *w = L->w + b * stride;
        uint32_t j0 = 4u * b;
        uint32_t r;
        int32_t acc[4];
        for (r = 0u; r < 4u; ++r) {
            acc[r] = j0 + r < L->n_out ? L->bias[j0 + r] : 0;
        }
        if (L->storage == ESNN_ANN_DENSE) {
            ann_dot4(x, w, groups, acc);
        } else {
            for (k = 0u; k < n_runs; ++k) {
                uint32_t g0 = runs[2u * k];
                ann_dot4(x + 4u * g0, w + 16u * g0, runs[2u * k + 1u], acc);
            }
        }
        if (tail != 0u) {
            ann_dot4_tail(x + 4u * groups, w + 16u * groups, tail, acc);
        }
        for (r = 0u; r < 4u && j0 + r < L->n_out; ++r) {
            if (h != NULL) {
                h[j0 + r] = ann_requant_relu(L, acc[r]);
            } else {
                logits[j0 + r] = acc[r];
            }
        }
    }
    return visited + tail;
}

/* acc[index[k]] += xv * w[k] for the entries k of one row: on Thumb-2 the SNN runtime's
 * assembly multiply-add loop (5 instructions per entry), elsewhere unrolled by 4 in C. */
static void ann_scatter8(const uint8_t *idx, const int8_t *w, uint32_t n, int32_t xv,
                         int32_t *acc)
{
#ifdef ESNN_MAC_ASM
    if (n != 0u) mac_row8((uint32_t *)(void *)acc, idx, w, n, (uint32_t)xv); /* wrapping = int32 */
    return;
#endif
    for (; n >= 4u; n -= 4u) {
        acc[idx[0]] += xv * w[0];
        acc[idx[1]] += xv * w[1];
        acc[idx[2]] += xv * w[2];
        acc[idx[3]] += xv * w[3];
        idx += 4;
        w += 4;
    }
    for (; n != 0u; --n) {
        acc[*idx++] += xv * *w++;
    }
}

static void ann_scatter16(const uint8_t *idx, const int8_t *w, uint32_t n, int32_t xv,
                          int32_t *acc)
{
    for (; n != 0u; --n) {
        acc[esnn_ld16(idx)] += xv * *w++;
        idx += 2;
    }
}

static inline uint32_t ann_scatter(const esnn_ann_layer_t *L, uint32_t i, int32_t xv,
                                   int32_t *acc)
{
    uint32_t beg = L->rowptr[i];
    uint32_t n = L->rowptr[i + 1u] - beg;
    if (L->index_bits == 8u) {
        ann_scatter8(L->index + beg, L->w + beg, n, xv, acc);
    } else {
        ann_scatter16(L->index + 2u * beg, L->w + beg, n, xv, acc);
    }
    return n;
}

/* Event-driven: only nonzero inputs visit their stored (nonzero) fan-out entries, four zero
 * inputs are skipped with one word compare. Returns the number of multiply-accumulates;
 * *active = the number of nonzero inputs. */
static uint32_t ann_sparse(const esnn_ann_layer_t *L, const uint8_t *x, int32_t *acc,
                           uint32_t *active)
{
    uint32_t n_words = L->n_in >> 2;
    uint32_t g;
    uint32_t i;
    uint32_t nz = 0u;
    uint32_t macs = 0u;
    for (i = 0u; i < L->n_out; ++i) {
        acc[i] = L->bias[i];
    }
    for (g = 0u; g < n_words; ++g) {
        uint32_t v = esnn_ld32(x + 4u * g);
        uint32_t q;
        if (v == 0u) {
            continue;
        }
        for (q = 0u; q < 4u; ++q) {
            uint32_t xv = (v >> (8u * q)) & 0xFFu;
            if (xv != 0u) {
                macs += ann_scatter(L, 4u * g + q, (int32_t)xv, acc);
                ++nz;
            }
        }
    }
    for (i = 4u * n_words; i < L->n_in; ++i) {
        if (x[i] != 0u) {
            macs += ann_scatter(L, i, (int32_t)x[i], acc);
            ++nz;
        }
    }
    *active = nz;
    return macs;
}

esnn_status_t esnn_ann_infer(const esnn_ann_model_t *m, const uint8_t *x, uint32_t n,
                             uint8_t *arena, uint32_t arena_len, esnn_ann_result_t *out)
{
    int32_t *acc;
    uint8_t *buf[2];
    const uint8_t *in = x;
    uint32_t l;
    uint32_t c;

    if (m == NULL || x == NULL || arena == NULL || out == NULL) {
        return ESNN_ERR_NULL;
    }
    if (m->blob == NULL) {
        return ESNN_ERR_NOT_INIT;
    }
    if (n != m->input_size) {
        return ESNN_ERR_INPUT_SIZE;
    }
    if ((((uintptr_t)arena | (uintptr_t)x) & 3u) != 0u) {
        return ESNN_ERR_ALIGN;
    }
    if (arena_len < m->arena_bytes) {
        return ESNN_ERR_ARENA_TOO_SMALL;
    }
    acc = (int32_t *)(void *)arena;
    buf[0] = arena + m->acc_bytes;
    buf[1] = buf[0] + m->act_bytes;
    out->n_layers = (uint8_t)m->n_layers;
    out->n_classes = (uint16_t)m->n_classes;
    for (l = 0u; l < m->n_layers; ++l) {
        const esnn_ann_layer_t *L = &m->layers[l];
        uint8_t *h = (l + 1u == m->n_layers) ? NULL : buf[l & 1u];
        if (L->storage != ESNN_ANN_SPARSE) {
            out->active[l] = ann_dense(L, in, h, out->logits, (uint16_t *)(void *)arena);
            out->macs[l] = out->active[l] * L->n_out;
        } else {
            uint32_t j;
            out->macs[l] = ann_sparse(L, in, acc, &out->active[l]);
            if (h != NULL) {
                for (j = 0u; j < L->n_out; ++j) {
                    h[j] = ann_requant_relu(L, acc[j]);
                }
            } else {
                for (j = 0u; j < L->n_out; ++j) {
                    out->logits[j] = acc[j];
                }
            }
        }
        in = h;
    }
    out->prediction = 0u;
    for (c = 1u; c < m->n_classes; ++c) {
        if (out->logits[c] > out->logits[out->prediction]) {
            out->prediction = (uint8_t)c;
        }
    }
    return ESNN_OK;
}

/* Event-driven integer inference (SPEC.md section 3), arena layout of SPEC section 4.
 *
 * Per time step and layer: (1) leak every membrane, (2) for every presynaptic spike add its
 * fan-out row to the membranes, (3) fire and reset. Step (2) adds in wrapping uint32; the true
 * sum is leak(v) + I with |I| < 2^23 (at most 65535 weights of magnitude <= 128), so it can only
 * leave int32 when |leak(v)| >= 2^30. Step (1) records that case per neuron in the layer's
 * (not yet used) output spike list, and step (3) saturates exactly as sat32 in SPEC 3.2.
 * The constant current of the direct encoder (up to 2^31) is added in int64 in step (1).
 */
#include "esnn.h"

#define A8(x) (((x) + 7u) & ~(uint32_t)7u)
#define Q16_ONE 65536u
#define NEAR_TOP 1u    /* leak(v) >= 2^30 */
#define NEAR_BOTTOM 2u /* leak(v) <= -2^30 */

uint32_t esnn_hash32(uint32_t k, uint32_t seed)
{
    uint32_t x = k * 0x9E3779B9u + seed;
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

/* Weight of stored entry k of an int8 or packed int4 array. */
static int32_t weight_at(const uint8_t *w, uint32_t k, uint32_t bits)
{
    uint32_t nib;
    if (bits == 8) return (int32_t)(int8_t)w[k];
    nib = (k & 1u) ? (uint32_t)(w[k >> 1] >> 4) : (uint32_t)(w[k >> 1] & 15u);
    return (int32_t)(nib ^ 8u) - 8;
}

/* (v * beta + 32768) >> 16 with an arithmetic shift of the 64-bit product. */
static int32_t leak(int32_t v, uint32_t beta)
{
    int64_t x = (int64_t)v * (int64_t)beta + 32768;
    /* floor(x / 2^16) without relying on >> of a negative value: for x < 0, ~x = -x - 1 >= 0 */
    return x >= 0 ? (int32_t)(x >> 16) : (int32_t)~((~x) >> 16);
}

/* Add `scale` * row i of layer L to acc[]; returns the row's fan-out (ops). */
static uint32_t add_row(const esnn_layer_t *L, uint32_t i, uint32_t scale, uint32_t *acc)
{
    uint32_t j, k, k1, n = L->n_out;
    if (L->storage == 0) {
        if (L->weight_bits == 8) {
            const uint8_t *row = L->w + i * n;
            for (j = 0; j < n; j++) acc[j] += scale * (uint32_t)(int32_t)(int8_t)row[j];
        } else {
            const uint8_t *row = L->w + i * ((n + 1u) / 2u);
            for (j = 0; j < n; j++) acc[j] += scale * (uint32_t)weight_at(row, j, 4);
        }
        return n;
    }
    k = esnn_rd32(L->rowptr + 4u * i);
    k1 = esnn_rd32(L->rowptr + 4u * i + 4u);
    for (j = k; j < k1; j++) {
        uint32_t post = L->index_bits == 8 ? L->index[j] : esnn_rd16(L->index + 2u * j);
        acc[post] += scale * (uint32_t)weight_at(L->w, j, L->weight_bits);
    }
    return k1 - k;
}

esnn_status_t esnn_infer(const esnn_model_t *m, const uint8_t *px, uint32_t n, uint8_t *arena,
                         uint32_t arena_len, esnn_result_t *out)
{
    uint32_t i, j, k, l, t, sum_out, off, nz_count, n_src, cnt, base, best;
    uint32_t *v, *i0 = NULL, *vl;
    uint16_t *nz, *in_list, *src, *dst;
    const esnn_layer_t *L;
    int direct;

    if (m == NULL || px == NULL || arena == NULL || out == NULL) return ESNN_ERR_NULL;
    if (m->esg == NULL) return ESNN_ERR_NOT_INIT;
    if (n != m->input_size) return ESNN_ERR_INPUT_SIZE;
    if (arena_len < m->arena_bytes) return ESNN_ERR_ARENA_TOO_SMALL;
    if (((uintptr_t)arena & 3u) != 0) return ESNN_ERR_ALIGN;
    direct = m->encoder == ESNN_ENC_DIRECT;

    /* Arena (SPEC 4): membranes | I0 (direct) | nonzero pixels | input spikes | layer spikes */
    sum_out = 0;
    for (l = 0; l < m->n_layers; l++) sum_out += m->layers[l].n_out;
    v = (uint32_t *)(void *)arena;
    off = A8(4u * sum_out);
    if (direct) {
        i0 = (uint32_t *)(void *)(arena + off);
        off += A8(4u * m->layers[0].n_out);
    }
    nz = (uint16_t *)(void *)(arena + off);
    off += A8(2u * n);
    in_list = (uint16_t *)(void *)(arena + off);
    off += A8(2u * n);

    for (j = 0; j < sum_out; j++) v[j] = 0;
    out->prediction = 0;
    out->n_layers = (uint8_t)m->n_layers;
    out->n_classes = m->n_classes;
    out->input_spikes = 0;
    for (j = 0; j < m->n_classes; j++) out->counts[j] = 0;
    for (l = 0; l < m->n_layers; l++) out->spikes[l] = out->ops[l] = 0;

    nz_count = 0;
    for (i = 0; i < n; i++) {
        if (px[i] != 0) nz[nz_count++] = (uint16_t)i;
    }
    if (direct) {
        for (j = 0; j < m->layers[0].n_out; j++) i0[j] = 0;
        for (k = 0; k < nz_count; k++) out->ops[0] += add_row(&m->layers[0], nz[k], px[nz[k]], i0);
    }

    for (t = 0; t < m->steps; t++) {
        n_src = 0;
        if (m->encoder == ESNN_ENC_RATE) {
            base = t * n;
            for (k = 0; k < nz_count; k++) {
                i = nz[k];
                if ((esnn_hash32(base + i, m->seed) >> 24) < px[i]) in_list[n_src++] = (uint16_t)i;
            }
        } else if (m->encoder == ESNN_ENC_LATENCY) {
            for (k = 0; k < nz_count; k++) {
                i = nz[k];
                if ((((255u - px[i]) * m->steps) >> 8) == t) in_list[n_src++] = (uint16_t)i;
            }
        }
        out->input_spikes += n_src;
        src = in_list;
        vl = v;
        dst = (uint16_t *)(void *)(arena + off);
        for (l = 0; l < m->n_layers; l++) {
            L = &m->layers[l];
            /* (1) leak (and the direct encoder's constant current) */
            for (j = 0; j < L->n_out; j++) {
                uint32_t beta = esnn_rd32(L->leak + (L->leak_per ? 4u * j : 0u));
                int32_t x = (int32_t)vl[j];
                if (beta != Q16_ONE) x = leak(x, beta);
                if (direct && l == 0) {
                    int64_t y = (int64_t)x + (int32_t)i0[j];
                    x = y > INT32_MAX ? INT32_MAX : y < INT32_MIN ? INT32_MIN : (int32_t)y;
                    dst[j] = 0;
                } else {
                    dst[j] = (uint16_t)(x >= 0x40000000 ? NEAR_TOP : x <= -0x40000000 ? NEAR_BOTTOM : 0u);
                }
                vl[j] = (uint32_t)x;
            }
            /* (2) event-driven integration: one fan-out row per presynaptic spike */
            if (!(direct && l == 0)) {
                for (k = 0; k < n_src; k++) out->ops[l] += add_row(L, src[k], 1u, vl);
            }
            /* (3) saturate, fire, reset; the spike list overwrites flags already read */
            cnt = 0;
            for (j = 0; j < L->n_out; j++) {
                int32_t th = (int32_t)esnn_rd32(L->thr + (L->thr_per ? 4u * j : 0u));
                int32_t x = (int32_t)vl[j];
                if (dst[j] == NEAR_TOP && x < 0) x = INT32_MAX;
                else if (dst[j] == NEAR_BOTTOM && x >= 0) x = INT32_MIN;
                if (x > th) {
                    dst[cnt++] = (uint16_t)j;
                    x = L->reset ? 0 : x - th;
                }
                vl[j] = (uint32_t)x;
            }
            out->spikes[l] += cnt;
            src = dst;
            n_src = cnt;
            vl += L->n_out;
            dst += A8(2u * L->n_out) / 2u;
        }
        for (k = 0; k < n_src; k++) out->counts[src[k]]++;
    }

    /* Readout (SPEC 3.3): most spikes, then larger final membrane, then lowest index. */
    vl = v + sum_out - m->n_classes;
    best = 0;
    for (j = 0; j < m->n_classes; j++) {
        out->v_last[j] = (int32_t)vl[j];
        if (out->counts[j] > out->counts[best] ||
            (out->counts[j] == out->counts[best] && (int32_t)vl[j] > (int32_t)vl[best]))
            best = j;
    }
    out->prediction = (uint8_t)best;
    return ESNN_OK;
}

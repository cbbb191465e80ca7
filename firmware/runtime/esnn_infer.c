/* Event-driven integer inference (SPEC.md section 3), arena layout of SPEC section 4.
 *
 * Per time step and layer: (1) integrate: for every presynaptic spike add its fan-out row to
 * the membranes (the direct encoder's layer 0 adds the constant current I0 instead, with
 * saturation), (2) fire, reset and already leak each membrane for the next step (with
 * beta = 1 on the last step, so the readout sees the post-reset membranes): one pass over the
 * neurons per step.
 *
 * Saturation without a second buffer: the bias (SPEC 3.2, |b| <= 2^23 - 1) and the rows are
 * added in wrapping uint32. |v| grows by at most 128 * n_in + max |b| per step, and leak, reset
 * and saturation never increase it, so in a spike-driven layer with
 * T * (128 * n_in + max |b|) < 2^31 no sum can leave int32 and the wrapping sums are exact.
 * Otherwise the true sum leak(v) + b + I (|b + I| < 2^24: at most 65535 weights of magnitude
 * <= 128) can only leave int32 when |leak(v)| >= 2^30: before integrating, such a layer records
 * per neuron in its (not yet written) output spike list which limit it is near, and its fire
 * pass saturates exactly as sat32 in SPEC 3.2.
 *
 * Inner loops are specialised per storage / weight_bits / index_bits (no per-entry calls);
 * the two hot ones (dense int8, and sparse int8 with 8-bit indices) are written in Thumb-2
 * assembly for the Cortex-M3/M4/M7/M33, with the same loops in C elsewhere (or with
 * -DESNN_NO_ASM). Arrays of the blob are 4-byte aligned (checked by esnn_model_init).
 *
 * Cost on a Cortex-M3 (gcc 12 -Os, instructions): 5 per sparse entry and about 13 per spiking
 * row, 4.25 per dense weight, 8 per neuron and step (fire + leak; 10 for the direct encoder's
 * layer 0, whose constant current the fire pass adds), 10.5 per nonzero pixel and step (rate
 * encoder, two pixels per pass), 5 per sparse entry of the direct encoder's I0 (once per
 * inference); benchmarks/device_cost.py measures whole inferences.
 */
#include "esnn.h"
#include "esnn_mac.h"

#define A8(x) (((x) + 7u) & ~(uint32_t)7u)
#define W_ABS_MAX 128u /* largest |weight| a layer stores (int8; int4: 8) */
#define PX_MAX 255u    /* largest pixel */
#define NEAR_TOP 1u    /* leak(v) >= 2^30: bits 31..30 of v are 01 */
#define NEAR_BOTTOM 2u /* leak(v) < -2^30: bits 31..30 of v are 10 */

#define ld32 esnn_ld32
#define ld16 esnn_ld16

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline)) /* keeps each hot loop's registers to itself */
#else
#define NOINLINE
#endif

/* Sign-extend a 4-bit two's complement nibble (0..15). */
#define NIB(x) ((uint32_t)(((x) & 15u) ^ 8u) - 8u)

/* leak(v) = (v * beta + 32768) >> 16 (arithmetic shift of the 64-bit product), computed as the
 * high word of v * 2^32 * [beta >= 2^15] + 2^31 + v * b16 with b16 = (int32)(beta << 16) =
 * beta * 2^16 - 2^32 * [beta >= 2^15]: the sum is 2^16 * (v * beta + 32768), so its high word
 * is the floor of (v * beta + 32768) / 2^16 (one multiply-accumulate on a Cortex-M3). `big` is
 * ~0 when beta >= 2^15, else 0. The high word of a logical shift equals that of an arithmetic
 * one, and the result always fits in int32. */
static inline int32_t leak16(int32_t v, int32_t b16, uint32_t big)
{
    int64_t acc = (int64_t)(int32_t)((uint32_t)v & big) * 4294967296LL + 2147483648LL;
    return (int32_t)(uint32_t)((uint64_t)(acc + (int64_t)v * b16) >> 32);
}
#define B16(beta) ((int32_t)((beta) << 16))
#define BIG(beta) ((beta) >= 32768u ? 0xFFFFFFFFu : 0u)

/* The integration kernels: acc[] += s * (fan-out row of i) for every i of list[0..end), with
 * s = px[i] when px is given (the direct encoder's I0), else 1; each returns the synaptic ops
 * (SPEC 3.4). One function per storage / weight format, so that each keeps its pointers in
 * registers; rows are walked with post-incremented pointers, no per-entry calls. */

/* acc[0..n) += s * w[0..n) (int8), n >= 1: per weight load, load, multiply-add, store; on
 * Thumb-2 unrolled 8 times in assembly and entered at the remainder (4 instructions per
 * weight), elsewhere (or with ESNN_NO_ASM) in C. */
#if defined(__GNUC__) && defined(__thumb2__) && !defined(ESNN_NO_ASM)
#define DENSE_ASM                               \
    "ldrsb  %[x], [%[w]], #1\n\t"               \
    "ldr    %[y], [%[a]]\n\t"                   \
    "mla    %[y], %[x], %[s], %[y]\n\t"         \
    "str    %[y], [%[a]], #4\n\t"
static inline void add_dense8(uint32_t *a, const ESNN_ROM uint8_t *w, uint32_t n, uint32_t s)
{
    uint32_t x, y;
    __asm__ volatile(
        "and    %[y], %[n], #7\n\t"
        "add    %[n], %[a], %[n], lsl #2\n\t"   /* n = end of the row's membranes */
        "tbb    [pc, %[y]]\n"
        "0:\n\t"
        ".byte  (10f-0b)/2, (17f-0b)/2, (16f-0b)/2, (15f-0b)/2\n\t"
        ".byte  (14f-0b)/2, (13f-0b)/2, (12f-0b)/2, (11f-0b)/2\n"
        "10:\n\t" DENSE_ASM
        "11:\n\t" DENSE_ASM
        "12:\n\t" DENSE_ASM
        "13:\n\t" DENSE_ASM
        "14:\n\t" DENSE_ASM
        "15:\n\t" DENSE_ASM
        "16:\n\t" DENSE_ASM
        "17:\n\t" DENSE_ASM
        "cmp    %[a], %[n]\n\t"
        "bne    10b\n"
        : [a] "+l"(a), [w] "+r"(w), [n] "+r"(n), [x] "=&r"(x), [y] "=&l"(y)
        : [s] "r"(s)
        : "cc", "memory");
}
#else
static inline void add_dense8(uint32_t *a, const ESNN_ROM uint8_t *w, uint32_t n, uint32_t s)
{
    do {
        *a++ += s * (uint32_t)(int32_t)(int8_t)*w++;
    } while (--n);
}
#endif

/* Dense rows, int8 or packed int4 (each row starts on a byte boundary). */
static NOINLINE uint32_t rows_dense(const uint16_t *list, const uint16_t *end, const uint8_t *px,
                                    uint32_t *acc, const esnn_layer_t *L)
{
    const ESNN_ROM uint8_t *wb = L->w, *w;
    uint32_t n = L->n_out, s = 1, q, bits = L->weight_bits, ops = 0;
    uint32_t stride = bits == 8 ? n : (n + 1u) >> 1;
    uint32_t *a, *a_end = acc + n;
    for (; list != end; list++) {
        if (px) s = px[*list];
        w = wb + *list * stride;
        a = acc;
        ops += n;
        if (bits == 8u) {
            add_dense8(a, w, n, s);
        } else {
            for (; a + 2 <= a_end; a += 2) {
                q = *w++;
                a[0] += s * NIB(q);
                a[1] += s * NIB(q >> 4);
            }
            if (a != a_end) *a += s * NIB(*w);
        }
    }
    return ops;
}

/* Sparse rows, int8 weights, 8-bit indices, s = 1 (spikes): the hottest loop of a pruned
 * network. Per entry: load index, load weight, load, add and store the membrane, unrolled and
 * entered at the remainder (Duff's device). On Thumb-2 (Cortex-M3/M4/M7/M33) it is written in
 * assembly, 16 entries per pass, with post-indexed loads and a tbb jump, because gcc -Os does
 * not reach 5 instructions per entry; elsewhere, or with ESNN_NO_ASM, C, 8 per pass. */
#if defined(__GNUC__) && defined(__thumb2__) && !defined(ESNN_NO_ASM)
#define ENTRY_ASM                               \
    "ldrsb  %[x], [%[ix], %[dw]]\n\t"           \
    "ldrb   %[b], [%[ix]], #1\n\t"              \
    "ldr    %[y], [%[acc], %[b], lsl #2]\n\t"   \
    "add    %[y], %[y], %[x]\n\t"               \
    "str    %[y], [%[acc], %[b], lsl #2]\n\t"
static NOINLINE uint32_t rows_sparse8(const uint16_t *list, const uint16_t *end, uint32_t *acc,
                                      const esnn_layer_t *L)
{
    const ESNN_ROM uint8_t *rp = L->rowptr, *ib = L->index, *ix;
    uintptr_t dw = (uintptr_t)L->w - (uintptr_t)ib; /* weight of the index byte ix */
    uint32_t ops, q, b, x, y;
    __asm__ volatile(
        "movs   %[ops], #0\n\t"
        "b      3f\n"
        "1:\n\t"
        "ldrh   %[b], [%[list]], #2\n\t"        /* presynaptic neuron i */
        "add    %[x], %[rp], %[b], lsl #2\n\t"
        "ldrd   %[b], %[q], [%[x]]\n\t"         /* rowptr[i], rowptr[i + 1] */
        "sub    %[q], %[q], %[b]\n\t"           /* q = entries of the row */
        "add    %[ops], %[ops], %[q]\n\t"
        "add    %[ix], %[ib], %[b]\n\t"
        "and    %[y], %[q], #15\n\t"
        "add    %[q], %[ix], %[q]\n\t"          /* q = end of the row's index bytes */
        "tbb    [pc, %[y]]\n"
        "0:\n\t"
        ".byte  (2f-0b)/2, (25f-0b)/2, (24f-0b)/2, (23f-0b)/2\n\t"
        ".byte  (22f-0b)/2, (21f-0b)/2, (20f-0b)/2, (19f-0b)/2\n\t"
        ".byte  (18f-0b)/2, (17f-0b)/2, (16f-0b)/2, (15f-0b)/2\n\t"
        ".byte  (14f-0b)/2, (13f-0b)/2, (12f-0b)/2, (11f-0b)/2\n"
        "10:\n\t" ENTRY_ASM
        "11:\n\t" ENTRY_ASM
        "12:\n\t" ENTRY_ASM
        "13:\n\t" ENTRY_ASM
        "14:\n\t" ENTRY_ASM
        "15:\n\t" ENTRY_ASM
        "16:\n\t" ENTRY_ASM
        "17:\n\t" ENTRY_ASM
        "18:\n\t" ENTRY_ASM
        "19:\n\t" ENTRY_ASM
        "20:\n\t" ENTRY_ASM
        "21:\n\t" ENTRY_ASM
        "22:\n\t" ENTRY_ASM
        "23:\n\t" ENTRY_ASM
        "24:\n\t" ENTRY_ASM
        "25:\n\t" ENTRY_ASM
        "2:\n\t"                              /* q % 16 == 0 enters here: none left, or 16 more */
        "cmp    %[ix], %[q]\n\t"
        "bne    10b\n"
        "3:\n\t"
        "cmp    %[list], %[end]\n\t"
        "bne    1b\n"
        : [list] "+&r"(list), [ops] "=&l"(ops), [q] "=&r"(q), [ix] "=&l"(ix), [b] "=&r"(b),
          [x] "=&l"(x), [y] "=&r"(y)
        : [end] "r"(end), [acc] "r"(acc), [rp] "r"(rp), [ib] "r"(ib), [dw] "l"(dw)
        : "cc", "memory");
    return ops;
}
#else
#define ADD_ENTRY acc[*ix++] += (uint32_t)(int32_t)*w++
static NOINLINE uint32_t rows_sparse8(const uint16_t *list, const uint16_t *end, uint32_t *acc,
                                      const esnn_layer_t *L)
{
    const ESNN_ROM uint8_t *rp = L->rowptr, *ib = L->index, *ix, *r;
    const ESNN_ROM int8_t *wb = (const ESNN_ROM int8_t *)(const ESNN_ROM void *)L->w, *w;
    uint32_t k, q, ops = 0;
    for (; list != end; list++) {
        r = rp + 4u * *list;
        k = ld32(r);
        q = ld32(r + 4) - k;
        if (q == 0) continue;
        ops += q;
        ix = ib + k;
        w = wb + k;
        k = (q + 7u) >> 3;
        switch (q & 7u) {
        case 0: do { ADD_ENTRY; /* fall through */
        case 7: ADD_ENTRY; /* fall through */
        case 6: ADD_ENTRY; /* fall through */
        case 5: ADD_ENTRY; /* fall through */
        case 4: ADD_ENTRY; /* fall through */
        case 3: ADD_ENTRY; /* fall through */
        case 2: ADD_ENTRY; /* fall through */
        case 1: ADD_ENTRY;
                } while (--k);
        }
    }
    return ops;
}
#endif

/* Sparse rows: 16-bit indices, packed int4 weights (nibble k of the weight bytes), or scaled
 * by the pixel (the direct encoder's I0). */
static NOINLINE uint32_t rows_sparse(const uint16_t *list, const uint16_t *end, const uint8_t *px,
                                     uint32_t *acc, const esnn_layer_t *L)
{
    const ESNN_ROM uint8_t *rp = L->rowptr, *ib = L->index, *wb = L->w, *ix;
    const ESNN_ROM int8_t *w;
    uint32_t s = 1, k, q, b, ops = 0, i16 = L->index_bits == 16, w4 = L->weight_bits == 4;
    for (; list != end; list++) {
        if (px) s = px[*list];
        k = ld32(rp + 4u * *list);
        q = ld32(rp + 4u * *list + 4u) - k;
        ops += q;
        if (q == 0) continue;
        w = (const ESNN_ROM int8_t *)(const ESNN_ROM void *)(wb + k);
#ifndef ESNN_NO_DIRECT
        if (!i16 && !w4) { /* int8, 8-bit indices: the direct encoder's I0 */
            mac_row8(acc, ib + k, w, q, s);
            continue;
        }
#endif
        if (i16 && !w4) {
            ix = ib + 2u * k;
            do {
                acc[ld16(ix)] += s * (uint32_t)(int32_t)*w++;
                ix += 2;
            } while (--q);
        } else { /* int4 */
            do {
                b = i16 ? ld16(ib + 2u * k) : ib[k];
                acc[b] += s * NIB((uint32_t)wb[k >> 1] >> ((k & 1u) << 2));
                k++;
            } while (--q);
        }
    }
    return ops;
}

static uint32_t integrate(const esnn_layer_t *L, const uint16_t *list, uint32_t n_list,
                          const uint8_t *px, uint32_t *acc)
{
    const uint16_t *end = list + n_list;
    if (L->storage == ESNN_STORAGE_DENSE) return rows_dense(list, end, px, acc, L);
    if (px == NULL && L->weight_bits == 8 && L->index_bits == 8) return rows_sparse8(list, end, acc, L);
    return rows_sparse(list, end, px, acc, L);
}

/* acc[j] += bias[j] (wrapping: |bias| <= 2^23 - 1, see the top of this file). */
static void add_bias(uint32_t *acc, const esnn_layer_t *L)
{
    const ESNN_ROM uint8_t *b = L->bias;
    uint32_t *end = acc + L->n_out;
    do {
        *acc++ += ld32(b);
        b += 4;
    } while (acc != end);
}

/* Rate encoder (SPEC 3.1) for one step: x = esnn_hash32(t * n + i, seed) for the nonzero pixels
 * i, with c = t * n * 0x9E3779B9 + seed; the last xor-shift leaves the top byte alone, so it
 * is skipped. Writes the spiking pixels to out; returns their count. */
static NOINLINE uint32_t encode_rate(const uint8_t *px, const uint16_t *nz, uint32_t nz_count,
                                     uint32_t c, uint16_t *out)
{
    const uint16_t *end = nz + nz_count;
    uint16_t *o = out;
    uint32_t i, x;
#define PIXEL                                   \
    i = *nz++;                                  \
    x = c + i * 0x9E3779B9u;                    \
    x ^= x >> 16;                               \
    x *= 0x7FEB352Du;                           \
    x ^= x >> 15;                               \
    x *= 0x846CA68Bu;                           \
    if ((x >> 24) < px[i]) *o++ = (uint16_t)i
    if (nz == end) return 0;
    if (nz_count & 1u) goto odd; /* two pixels per pass, entered at the remainder */
    do {
        PIXEL;
    odd:
        PIXEL;
    } while (nz != end);
#undef PIXEL
    return (uint32_t)(o - out);
}

/* Latency encoder (SPEC 3.1) for one step: the pixels of nz[0..count) that spike at step t go
 * to out (which may be nz itself); returns their count. */
static uint32_t encode_latency(const uint8_t *px, const uint16_t *nz, uint32_t count, uint32_t t,
                               uint32_t steps, uint16_t *out)
{
    uint32_t k, i, o = 0;
    for (k = 0; k < count; k++) {
        i = nz[k];
        if ((((uint32_t)(255u - px[i]) * steps) >> 8) == t) out[o++] = (uint16_t)i;
    }
    return o;
}

/* The direct encoder's layer 0 (see esnn_infer): the constant current I0 + b that fire adds
 * to every membrane, and the neurons that can fire at all, act[0..n_act) in increasing order
 * (or act = NULL: all of them). */
typedef struct {
    const uint32_t *cur;
    const uint16_t *act;
    uint32_t n_act;
} drive_t;

/* Fire, reset and leak every membrane of layer L (SPEC 3.2 steps 3-4, then the leak of the
 * next step's step 2, with beta = 1 when `last` so the readout sees post-reset membranes).
 * A CubaLIF layer (mem != NULL) has its synaptic currents in v (the rows and the bias were
 * added to them) and its membranes in mem: per neuron the synaptic current (after the flagged
 * saturation) is added to the membrane with saturation (SPEC 3.2 step 2), the membrane fires
 * and resets, and both are leaked for the next step, each with its own leak.
 * A SUBTRACT_DELAYED layer subtracts the threshold of a neuron that fired after that leak
 * (not on the last step: its readout sees the membrane that fired); NONE keeps it; GE fires on
 * v >= th, i.e. v > th - 1 (th >= 0, so th - 1 cannot overflow).
 * Spike indices go to dst; returns their count. With `chk`, dst[j] holds the NEAR_* flag of
 * neuron j (read before it can be overwritten: the spike count is <= j). With `dr` (the
 * direct encoder's layer 0) the current is added first and only the listed neurons are
 * visited. */
static NOINLINE uint32_t fire(const esnn_layer_t *L, uint32_t *v, uint32_t *mem, uint16_t *dst, int chk,
                              int last, const drive_t *dr)
{
#ifdef ESNN_NO_DIRECT
    const uint32_t *cur = NULL;
    const uint16_t *act = NULL;
    (void)dr;
#else
    const uint32_t *cur = dr ? dr->cur : NULL;
    const uint16_t *act = dr ? dr->act : NULL;
#endif
    uint32_t k, n_it = act ? dr->n_act : L->n_out; /* (act implies dr) */
    uint32_t j, n = L->n_out, keep = L->reset == ESNN_RESET_ZERO ? 0u : 0xFFFFFFFFu; /* reset: subtract, or zero */
    uint32_t beta = last ? ESNN_Q16_ONE : ld32(L->leak), big = BIG(beta);
    int32_t th = (int32_t)ld32(L->thr), x, b16 = B16(beta);
    const ESNN_ROM uint8_t *tp = L->thr;
    uint32_t *p = v;
    uint16_t *d = dst;
    /* The fast loop: per-neuron thresholds (what training exports) and one leak >= 1/2 for
     * the layer, or none (beta = 1 is exact too): per neuron load v (and add the direct
     * encoder's current, 2 instructions), load its threshold, fire, reset, leak
     * (2 instructions), store; on Thumb-2 in assembly, two neurons per pass entered at the
     * remainder (8 instructions per silent neuron, 10 with the current), the threshold and
     * the current addressed from the membrane pointer. Shared thresholds, per-neuron leaks and
     * flagged layers take the general loop below. */
    int fast = !chk && !mem && (!L->leak_per || last || L->neuron == ESNN_NEURON_IF) && big &&
               L->thr_per && L->reset <= ESNN_RESET_ZERO && L->fire == ESNN_FIRE_GT;
#if !(defined(__GNUC__) && defined(__thumb2__) && !defined(ESNN_NO_ASM))
    fast = fast && !act; /* in C the general loop walks a neuron list */
#endif
    if (fast) {
#if defined(__GNUC__) && defined(__thumb2__) && !defined(ESNN_NO_ASM)
#define FIRE_ASM(L, CUR, KEEP)                  \
        "ldr    %[x], [%[p]]\n\t"               \
        CUR                                     \
        "ldr    %[th], [%[p], %[dt]]\n\t"       \
        "cmp    %[x], %[th]\n\t"                \
        "ble    " #L "f\n\t"                    \
        "subs   %[lo], %[p], %[v]\n\t"          \
        "lsrs   %[lo], %[lo], #2\n\t"           \
        "strh   %[lo], [%[d]], #2\n\t"          \
        "subs   %[x], %[x], %[th]\n\t"          \
        KEEP                                    \
        #L ":\n\t"                              \
        "mov    %[lo], #0x80000000\n\t"         \
        "smlal  %[lo], %[x], %[x], %[b16]\n\t"  \
        "str    %[x], [%[p]], #4\n\t"
#define FIRE_LOOP(CUR, KEEP)                    \
            "subs   %[dt], %[dt], %[p]\n\t"     \
            "lsls   %[lo], %[n], #31\n\t"       \
            "add    %[n], %[p], %[n], lsl #2\n\t" /* n = end of the membranes */ \
            "bmi    2f\n"                       \
            "1:\n\t" FIRE_ASM(3, CUR, KEEP)     \
            "2:\n\t" FIRE_ASM(4, CUR, KEEP)     \
            "cmp    %[p], %[n]\n\t"             \
            "bne    1b\n"
#define FIRE_OUT                                \
            [p] "+&l"(p), [d] "+r"(d), [x] "=&l"(x), [th] "=&l"(th), [lo] "=&l"(lo), \
            [dt] "+&l"(dt), [n] "+&r"(n)
        int32_t lo;
        uintptr_t dt = (uintptr_t)tp; /* then from a membrane to its threshold */
        if (act) { /* only the listed neurons: 13 instructions each, none for the others */
            const uint16_t *a = act, *ae = act + n_it;
            __asm__ volatile(
                "b      2f\n"
                "1:\n\t"
                "ldrh   %[j], [%[a]], #2\n\t"
                "ldr    %[x], [%[v], %[j], lsl #2]\n\t"
                "ldr    %[th], [%[c], %[j], lsl #2]\n\t"
                "add    %[x], %[x], %[th]\n\t"
                "ldr    %[th], [%[t], %[j], lsl #2]\n\t"
                "cmp    %[x], %[th]\n\t"
                "ble    3f\n\t"
                "strh   %[j], [%[d]], #2\n\t"
                "subs   %[x], %[x], %[th]\n\t"
                "ldr    %[th], %[keep]\n\t"
                "ands   %[x], %[x], %[th]\n"
                "3:\n\t"
                "mov    %[lo], #0x80000000\n\t"
                "smlal  %[lo], %[x], %[x], %[b16]\n\t"
                "str    %[x], [%[v], %[j], lsl #2]\n"
                "2:\n\t"
                "cmp    %[a], %[ae]\n\t"
                "bne    1b\n"
                : [a] "+&r"(a), [d] "+&r"(d), [j] "=&r"(j), [x] "=&r"(x), [th] "=&r"(th),
                  [lo] "=&r"(lo)
                : [ae] "r"(ae), [v] "r"(v), [c] "r"(cur), [t] "r"(tp), [keep] "m"(keep),
                  [b16] "r"(b16)
                : "cc", "memory");
        } else if (cur) { /* one register more: the reset mask is read from memory (per spike) */
            uintptr_t dc = (uintptr_t)cur - (uintptr_t)v; /* from a membrane to its current */
            __asm__ volatile(FIRE_LOOP("ldr    %[th], [%[p], %[dc]]\n\t"
                                       "add    %[x], %[x], %[th]\n\t",
                                       "ldr    %[lo], %[keep]\n\t"
                                       "ands   %[x], %[x], %[lo]\n")
                             : FIRE_OUT
                             : [v] "r"(v), [keep] "m"(keep), [b16] "r"(b16), [dc] "r"(dc)
                             : "cc", "memory");
        } else {
            __asm__ volatile(FIRE_LOOP("", "ands   %[x], %[x], %[keep]\n")
                             : FIRE_OUT
                             : [v] "r"(v), [keep] "r"(keep), [b16] "r"(b16)
                             : "cc", "memory");
        }
#undef FIRE_OUT
#undef FIRE_LOOP
#undef FIRE_ASM
#else
        do {
            x = (int32_t)(*p + (cur ? cur[p - v] : 0u));
            p++;
            th = (int32_t)ld32(tp);
            tp += 4;
            if (x > th) {
                *d++ = (uint16_t)(p - v - 1);
                x = (int32_t)((uint32_t)(x - th) & keep);
            }
            p[-1] = (uint32_t)leak16(x, b16, 0xFFFFFFFFu);
        } while (p != v + n);
#endif
    } else {
        uint32_t tm = L->thr_per ? 0xFFFFFFFFu : 0u, lm = (L->leak_per && !last) ? 0xFFFFFFFFu : 0u;
        uint32_t rm = L->reset, late, a, r, sm = L->syn_per ? 0xFFFFFFFFu : 0u, alpha;
        int32_t ge = (int32_t)L->fire, syn = 0; /* ESNN_FIRE_GE = 1 */
        for (k = 0; k < n_it; k++) {
            j = act ? act[k] : k;
            x = (int32_t)(v[j] + (cur ? cur[j] : 0u));
            th = (int32_t)ld32(L->thr + 4u * (j & tm));
            late = 0;
            if (chk) {
                if (dst[j] == NEAR_TOP && x < 0) x = INT32_MAX;
                else if (dst[j] == NEAR_BOTTOM && x >= 0) x = INT32_MIN;
            }
            if (mem) { /* CubaLIF: x is the synaptic current; v = sat32(v + I_syn) */
                syn = x;
                a = mem[j];
                r = a + (uint32_t)syn;
                if (((a ^ r) & ((uint32_t)syn ^ r)) >> 31) r = 0x7FFFFFFFu + (a >> 31); /* overflow */
                x = (int32_t)r;
            }
            if (x > th - ge) {
                *d++ = (uint16_t)j;
                if (rm == ESNN_RESET_SUBTRACT_DELAYED)
                    late = last ? 0u : (uint32_t)th; /* leak(x) - th >= -th: exact */
                else if (rm != ESNN_RESET_NONE)
                    x = (int32_t)((uint32_t)(x - th) & keep);
            }
            if (lm) {
                beta = ld32(L->leak + 4u * j);
                b16 = B16(beta);
                big = BIG(beta);
            }
            if (mem) {
                mem[j] = (uint32_t)leak16(x, b16, big) - late;
                alpha = ld32(L->syn_leak + 4u * (j & sm));
                v[j] = (uint32_t)leak16(syn, B16(alpha), BIG(alpha));
            } else {
                v[j] = (uint32_t)leak16(x, b16, big) - late;
            }
        }
    }
    return (uint32_t)(d - dst);
}

#ifdef ESNN_INPUT_BLOCK
#if ESNN_INPUT_BLOCK < 1 || ESNN_INPUT_BLOCK > 65535
#error "ESNN_INPUT_BLOCK must be 1..65535"
#endif
/* Small-RAM builds (-DESNN_INPUT_BLOCK=B, model_config.h): no input-sized lists. The pixels are
 * walked once per step in blocks of at most B nonzero pixels, each block encoded in place and
 * its events' rows added at once. The sums wrap (or take the flagged path, which does not
 * depend on the order of the rows either), so membranes, spikes, ops and counts are those of
 * the two-list layout; the arena is SPEC 4's with A(2 B) for the two A(2 input_size) lists. */
uint32_t esnn_arena_bytes(const esnn_model_t *m)
{
    return m->arena_bytes - 2u * A8(2u * m->input_size) + A8(2u * ESNN_INPUT_BLOCK);
}

/* Layer 0's rows, added to acc, for the input events of step t (rate, latency) or, for the
 * direct encoder, for every nonzero pixel scaled by its value (I0); adds the synaptic ops to
 * *ops and returns the number of events. */
static uint32_t input_blocks(const esnn_model_t *m, const uint8_t *px, uint32_t t, uint16_t *blk,
                             uint32_t *acc, uint32_t *ops)
{
    uint32_t i = 0, k, cnt, events = 0, n = m->input_size;
    uint32_t c = t * n * 0x9E3779B9u + m->seed;
    while (i < n) {
        for (k = 0; i < n && k < ESNN_INPUT_BLOCK; i++) {
            if (px[i] != 0) blk[k++] = (uint16_t)i;
        }
        if (m->encoder == ESNN_ENC_RATE) cnt = encode_rate(px, blk, k, c, blk);
        else if (m->encoder == ESNN_ENC_LATENCY) cnt = encode_latency(px, blk, k, t, m->steps, blk);
        else cnt = k;
        *ops += integrate(&m->layers[0], blk, cnt, ESNN_DIRECT(m) ? px : NULL, acc);
        events += cnt;
    }
    return events;
}
#endif

#ifndef ESNN_INPUT_BLOCK
/* The indices of the nonzero pixels into nz; returns their count. Where px is 4-byte aligned
 * (not on AVR) four pixels are tested with one load first: about 80 % of an MNIST digit's
 * pixels are zero, mostly in whole words. */
static uint32_t nonzero_pixels(const uint8_t *px, uint32_t n, uint16_t *nz)
{
    uint32_t i, k = 0, words = 0;
#ifndef __AVR__
    uint32_t j, w;
    if (((uintptr_t)px & 3u) == 0) words = n / 4u;
    for (j = 0; j < words; j++) {
        __builtin_memcpy(&w, px + 4u * j, 4);
        if (w == 0) continue;
        for (i = 4u * j; i < 4u * j + 4u; i++) {
            if (px[i] != 0) nz[k++] = (uint16_t)i;
        }
    }
#endif
    for (i = 4u * words; i < n; i++) {
        if (px[i] != 0) nz[k++] = (uint16_t)i;
    }
    return k;
}
#endif

esnn_status_t esnn_infer(const esnn_model_t *m, const uint8_t *px, uint32_t n, uint8_t *arena,
                         uint32_t arena_len, esnn_result_t *out)
{
    uint32_t j, k, l, t, sum_out, off, nz_count, n_src, cnt, best, lim;
    uint32_t *v, *i0 = NULL, *vl;
    drive_t drive = {NULL, NULL, 0}; /* the direct encoder's layer 0 (see below) */
    uint16_t *act;
    uint32_t syn_out, *mem = NULL, *ml; /* CubaLIF membranes (see the arena below) */
    uint16_t *nz, *in_list, *src, *dst;
    const esnn_layer_t *L;
    int direct, chk;

    if (m == NULL || px == NULL || arena == NULL || out == NULL) return ESNN_ERR_NULL;
    if (m->esg == NULL) return ESNN_ERR_NOT_INIT;
    if (n != m->input_size) return ESNN_ERR_INPUT_SIZE;
    if (arena_len < esnn_arena_bytes(m)) return ESNN_ERR_ARENA_TOO_SMALL;
    if (((uintptr_t)arena & 3u) != 0) return ESNN_ERR_ALIGN;
    direct = ESNN_DIRECT(m);
    /* |v| grows by at most 128 per presynaptic spike and step (leak, reset and saturation never
     * increase it), so a spike-driven layer with T * n_in < 2^24 never reaches 2^31: its
     * wrapping sums are exact. Larger ones take the flagged path (see the top of this file). */
    lim = 0x7FFFFFFFu / W_ABS_MAX / m->steps; /* = 0xFFFFFF / T */

    /* Arena (SPEC 4): membranes | I0 (direct) | nonzero pixels | input spikes | layer spikes
     * (ESNN_INPUT_BLOCK: one block of B pixels for the two input lists) */
    sum_out = syn_out = 0;
    for (l = 0; l < m->n_layers; l++) {
        sum_out += m->layers[l].n_out;
        syn_out += (uint32_t)ESNN_NEURON_EXTRA_STATES(m->layers[l].neuron) * m->layers[l].n_out;
        out->spikes[l] = out->ops[l] = 0;
    }
    /* The first block holds, per neuron, the state the rows are added to: the membrane, or the
     * synaptic current of a CubaLIF neuron, whose membrane is in the second block (SPEC 4:
     * A(4 sum n_out) + A(4 sum of CubaLIF n_out)). */
    v = (uint32_t *)(void *)arena;
    off = A8(4u * sum_out);
    mem = (uint32_t *)(void *)(arena + off);
    off += A8(4u * syn_out);
    if (direct) {
        i0 = (uint32_t *)(void *)(arena + off);
        off += A8((uint32_t)4u * m->layers[0].n_out);
    }
    for (j = 0; j < off / 4u; j++) v[j] = 0; /* membranes (and I0) */
    nz = (uint16_t *)(void *)(arena + off);
#ifdef ESNN_INPUT_BLOCK
    in_list = nz;
    off += A8(2u * ESNN_INPUT_BLOCK);
    if (direct) (void)input_blocks(m, px, 0, nz, i0, &out->ops[0]);
#else
    off += A8(2u * n);
    in_list = (uint16_t *)(void *)(arena + off);
    off += A8(2u * n);
#endif

    out->n_layers = (uint8_t)m->n_layers;
    out->n_classes = m->n_classes;
    out->input_spikes = 0;
    for (j = 0; j < m->n_classes; j++) out->counts[j] = 0;

    nz_count = 0;
#ifndef ESNN_INPUT_BLOCK
    nz_count = nonzero_pixels(px, n, nz);
    if (direct) out->ops[0] = integrate(&m->layers[0], nz, nz_count, px, i0);
#endif
    if (direct && m->layers[0].bias) add_bias(i0, &m->layers[0]); /* I0 + b fits int32 */
    L = &m->layers[0];
    /* The direct encoder: |v| <= T * max |I0 + b| <= T * (255 * 128 * n_in + max |b|) (leak,
     * reset and saturation never increase it). Below 2^31 fire adds I0 + b itself, exactly, and
     * a hidden layer 0 only visits the neurons that can fire: from v = 0, a neuron whose
     * constant current c = I0 + b is <= 0 keeps v <= 0 (leak(v) <= 0 for v <= 0), and v <= 0
     * never exceeds a threshold >= 0 (fire gt) or reaches one > 0 (fire ge). The others'
     * membranes are not observed (only the last layer's are read out). Their list goes where
     * the pixel lists were (no longer needed once I0 is summed) when it fits. */
    if (direct && PX_MAX * W_ABS_MAX * L->n_in + L->bias_max <= 0x7FFFFFFFu / m->steps) {
        drive.cur = i0;
#ifdef ESNN_INPUT_BLOCK
        k = A8(2u * ESNN_INPUT_BLOCK);
#else
        k = 2u * A8(2u * n);
#endif
        if (m->n_layers > 1 && 2u * L->n_out <= k) {
            act = nz;
            for (j = 0; j < L->n_out; j++) {
                if ((int32_t)i0[j] > 0 ||
                    (L->fire == ESNN_FIRE_GE && ld32(L->thr + (L->thr_per ? 4u * j : 0u)) == 0))
                    act[drive.n_act++] = (uint16_t)j;
            }
            drive.act = act;
        }
    }

    for (t = 0; t < m->steps; t++) {
        n_src = 0;
        if (m->encoder == ESNN_ENC_RATE) {
            n_src = encode_rate(px, nz, nz_count, t * n * 0x9E3779B9u + m->seed, in_list);
        } else if (m->encoder == ESNN_ENC_LATENCY) {
            n_src = encode_latency(px, nz, nz_count, t, m->steps, in_list);
        }
        out->input_spikes += n_src; /* ESNN_INPUT_BLOCK: 0 here, counted by input_blocks */
        src = in_list;
        vl = v;
        ml = mem;
        dst = (uint16_t *)(void *)(arena + off);
        for (l = 0; l < m->n_layers; l++) {
            L = &m->layers[l];
            chk = 0;
            if (direct && l == 0) {
                for (j = 0; drive.cur == NULL && j < L->n_out; j++) { /* else fire adds it */
                    uint32_t a = vl[j], b = i0[j], r = a + b; /* v = sat32(v + I0) */
                    if (((a ^ r) & (b ^ r)) >> 31) r = 0x7FFFFFFFu + (a >> 31); /* overflow */
                    vl[j] = r;
                }
            } else {
                /* T * (128 * n_in + max |b|) < 2^31 keeps every wrapping sum exact */
                chk = L->n_in > lim || L->bias_max > 0x7FFFFFFFu / m->steps - W_ABS_MAX * L->n_in;
                if (chk) { /* flag the membranes near a limit for exact saturation */
                    for (j = 0; j < L->n_out; j++) dst[j] = (uint16_t)(vl[j] >> 30); /* 0..3 */
                }
                if (L->bias) add_bias(vl, L); /* the constant current, then the spikes' rows */
#ifdef ESNN_INPUT_BLOCK
                if (l == 0) out->input_spikes += input_blocks(m, px, t, nz, vl, &out->ops[0]);
                else
#endif
                    out->ops[l] += integrate(L, src, n_src, NULL, vl);
            }
            cnt = fire(L, vl, ESNN_SYN_LEAK(L) ? ml : NULL, dst, chk, t + 1u == m->steps,
                       direct && l == 0 ? &drive : NULL);
            if (ESNN_SYN_LEAK(L)) ml += L->n_out;
            out->spikes[l] += cnt;
            src = dst;
            n_src = cnt;
            vl += L->n_out;
            dst += A8((uint32_t)2u * L->n_out) / 2u;
        }
        for (k = 0; k < n_src; k++) out->counts[src[k]]++;
    }

    /* Readout (SPEC 3.3): most spikes, then (readout 0) larger final membrane, then lowest
     * index; readout 1 (the peers' argmax of the counts) skips the membrane. */
    vl = (ESNN_SYN_LEAK(&m->layers[m->n_layers - 1u]) ? mem + syn_out : v + sum_out) - m->n_classes;
    best = 0;
    for (j = 0; j < m->n_classes; j++) {
        out->v_last[j] = (int32_t)vl[j];
        if (out->counts[j] > out->counts[best] ||
            (out->counts[j] == out->counts[best] && m->readout == ESNN_READOUT_COUNT_MEMBRANE &&
             (int32_t)vl[j] > (int32_t)vl[best]))
            best = j;
    }
    out->prediction = (uint8_t)best;
    return ESNN_OK;
}

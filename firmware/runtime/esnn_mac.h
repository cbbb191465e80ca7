/* The multiply-add row loop shared by the SNN runtime (the direct encoder's I0) and the int8
 * ANN's event-driven sparse kernel: one home for the hottest loop of both. */
#ifndef ESNN_MAC_H
#define ESNN_MAC_H

#include <stdint.h>

#include "esnn_rom.h"

/* acc[index[k]] += s * w[k] for the q >= 1 entries of one row (int8 weights, 8-bit indices),
 * wrapping: per entry load index, load weight, load, multiply-add and store the sum; on
 * Thumb-2 unrolled 8 times in assembly and entered at the remainder (5 instructions per
 * entry), the weight addressed from the index byte (dw = w - index). */
#if defined(__GNUC__) && defined(__thumb2__) && !defined(ESNN_NO_ASM)
#define ESNN_MAC_ASM 1
#define MAC_ASM                                 \
    "ldrsb  %[x], [%[ix], %[dw]]\n\t"           \
    "ldrb   %[b], [%[ix]], #1\n\t"              \
    "ldr    %[y], [%[acc], %[b], lsl #2]\n\t"   \
    "mla    %[y], %[x], %[s], %[y]\n\t"         \
    "str    %[y], [%[acc], %[b], lsl #2]\n\t"
static inline void mac_row8(uint32_t *acc, const ESNN_ROM uint8_t *ix, const ESNN_ROM int8_t *w,
                            uint32_t q, uint32_t s)
{
    uintptr_t dw = (uintptr_t)w - (uintptr_t)ix;
    uint32_t b, x, y;
    __asm__ volatile(
        "and    %[y], %[q], #7\n\t"
        "add    %[q], %[ix], %[q]\n\t"          /* q = end of the row's index bytes */
        "tbb    [pc, %[y]]\n"
        "0:\n\t"
        ".byte  (10f-0b)/2, (17f-0b)/2, (16f-0b)/2, (15f-0b)/2\n\t"
        ".byte  (14f-0b)/2, (13f-0b)/2, (12f-0b)/2, (11f-0b)/2\n"
        "10:\n\t" MAC_ASM
        "11:\n\t" MAC_ASM
        "12:\n\t" MAC_ASM
        "13:\n\t" MAC_ASM
        "14:\n\t" MAC_ASM
        "15:\n\t" MAC_ASM
        "16:\n\t" MAC_ASM
        "17:\n\t" MAC_ASM
        "cmp    %[ix], %[q]\n\t"
        "bne    10b\n"
        : [ix] "+l"(ix), [q] "+r"(q), [b] "=&r"(b), [x] "=&l"(x), [y] "=&l"(y)
        : [acc] "r"(acc), [dw] "l"(dw), [s] "r"(s)
        : "cc", "memory");
}
#else
static inline void mac_row8(uint32_t *acc, const ESNN_ROM uint8_t *ix, const ESNN_ROM int8_t *w,
                            uint32_t q, uint32_t s)
{
    do {
        acc[*ix++] += s * (uint32_t)(int32_t)*w++;
    } while (--q);
}
#endif

#endif

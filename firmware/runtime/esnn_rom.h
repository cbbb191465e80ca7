/* ESNN_ROM qualifies every pointer into the .esg blob. It is empty on every target whose flash
 * is in the data address space (Cortex-M, the host). On AVR (Harvard: flash is a separate
 * address space) a port that keeps the model in flash defines ESNN_MODEL_IN_FLASH; the blob is
 * then read through avr-gcc's 24-bit __memx pointers (GNU C named address space, -std=gnu99),
 * which reach flash and RAM alike. ESNN_ROM_ADDR gives a blob pointer's address as an integer
 * (for the alignment check). */
#ifndef ESNN_ROM_H
#define ESNN_ROM_H

#include <stdint.h>

#if defined(__AVR__) && defined(ESNN_MODEL_IN_FLASH)
#define ESNN_ROM __memx
#define ESNN_ROM_ADDR(p) ((uint32_t)(__uint24)(p))
#else
#define ESNN_ROM
#define ESNN_ROM_ADDR(p) ((uintptr_t)(p))
#endif

#endif /* ESNN_ROM_H */

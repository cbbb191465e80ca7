/* ESNN_ROM qualifies every pointer into the .esg blob. It is empty on every target whose flash
 * is in the data address space (Cortex-M, the host). On AVR (Harvard: flash is a separate
 * address space) the blob stays in flash when the build defines ESNN_MODEL_IN_FLASH (the AVR
 * port.mk) or is an Arduino build (ARDUINO): it is then read through avr-gcc's 24-bit __memx
 * pointers (a GNU C named address space: gnu99/gnu11; C++ has none, so C++ code must not touch
 * blob pointers). ESNN_ROM_ADDR gives a blob pointer's address as an integer (alignment check).
 */
#ifndef ESNN_ROM_H
#define ESNN_ROM_H

#include <stdint.h>

#if defined(__AVR__) && !defined(__cplusplus) && \
    (defined(ESNN_MODEL_IN_FLASH) || defined(ARDUINO))
#define ESNN_ROM __memx
#define ESNN_ROM_ADDR(p) ((uint32_t)(__uint24)(p))
/* avr-gcc 5.4 (Debian's) crashes in its induction-variable pass on loops over __memx data */
#pragma GCC optimize("no-ivopts")
#else
#define ESNN_ROM
#define ESNN_ROM_ADDR(p) ((uintptr_t)(p))
#endif

#endif /* ESNN_ROM_H */

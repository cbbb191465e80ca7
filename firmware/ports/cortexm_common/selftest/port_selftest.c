/* Port self-test firmware for the Cortex-M ports (used by tests/test_qemu.py and
 * tests/test_launch.py; no runtime, no model; Cortex-M0 to M55).
 *
 * For every byte k received it runs a loop of exactly 2 * n + const instructions,
 * n = 1000 * 10^min(k, 4), between esnn_port_cycles_start() and esnn_port_cycles_read(), and
 * answers 12 bytes (little-endian u32): cycle unit, n, measured count. The difference between
 * two n tells how many units one loop iteration (subs + bne = 2 instructions) costs; k = 4
 * (2 * 10^7 instructions) makes the 24-bit SysTick wrap several times. */
#include <stdint.h>

#include "esnn_port.h"

int main(void);

static void put32(uint32_t v)
{
    uint32_t i;
    for (i = 0u; i < 4u; ++i) {
        esnn_port_putc((uint8_t)(v >> (8u * i)));
    }
}

static uint32_t timed_loop(uint32_t n)
{
    uint32_t r;
    esnn_port_cycles_start();
#if defined(__thumb2__)
    __asm volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
#else /* ARMv6-M (Cortex-M0): GCC passes inline assembly in divided syntax; same 2 insns */
    __asm volatile("1: sub %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
#endif
    r = esnn_port_cycles_read();
    return r;
}

int main(void)
{
    esnn_port_init();
    for (;;) {
        int c = esnn_port_getc();
        uint32_t n = 1000u;
        uint32_t k;
        if (c < 0) {
            break;
        }
        for (k = 0u; k < (uint32_t)c && k < 4u; ++k) {
            n *= 10u;
        }
        put32(esnn_port_cycle_unit());
        put32(n);
        put32(timed_loop(n));
        esnn_port_flush();
    }
    return 0;
}

/* Cycle counting for the Cortex-M ports: esnn_port_cycles_start/read/unit.
 *
 * Real silicon: the DWT cycle counter (DEMCR.TRCENA + DWT_CTRL.CYCCNTENA), unit 0 = core
 * cycles. If CYCCNT does not move after being enabled (QEMU does not model the DWT, it
 * reads 0), fall back to SysTick: the port runs under QEMU with `-icount shift=N`, where
 * SysTick counts virtual time derived from the instruction count, deterministically.
 * Ticks are turned into instructions with ESNN_CM_TICKS_NUM / ESNN_CM_TICKS_DEN ticks per
 * instruction, generated into esnn_board.h from the profile (run.icount_shift, core.clock_hz):
 * 2^shift ns per instruction divided by the SysTick period, 32/5 = 6.4 for lm3s6965evb
 * (shift=7, 50 MHz) and 8/5 = 1.6 for mps2-an386 (shift=6, 25 MHz); tests/test_qemu.py checks
 * them with a loop of known length. Unit 1.
 * The 24-bit SysTick counter is extended by counting its wraps in SysTick_Handler. */
#include <stdint.h>

#include "cm_regs.h"
#include "esnn_board.h"
#include "esnn_port.h"

/* SysTick runs on the processor clock (CLKSOURCE = 1), the clock of core.clock_hz. */
#define ESNN_CM_SYSTICK_CLKSOURCE 1
#if !defined(ESNN_CM_TICKS_NUM) || !defined(ESNN_CM_TICKS_DEN)
#error "esnn_board.h (generated from the device profile) must define ESNN_CM_TICKS_NUM/DEN"
#endif

void SysTick_Handler(void);
void esnn_cm_cycles_init(void);

static volatile uint32_t systick_wraps;
static uint8_t use_dwt;

void SysTick_Handler(void)
{
    systick_wraps++;
}

void esnn_cm_cycles_init(void)
{
    volatile uint32_t spin;
    uint32_t before;

    SCB_DEMCR |= SCB_DEMCR_TRCENA;
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    before = DWT_CYCCNT;
    for (spin = 0u; spin < 16u; ++spin) {
    }
    use_dwt = (uint8_t)(DWT_CYCCNT != before);
}

void esnn_port_cycles_start(void)
{
    if (use_dwt) {
        DWT_CYCCNT = 0u;
        return;
    }
    SYST_CSR = 0u;
    SYST_RVR = SYST_RELOAD_MAX;
    systick_wraps = 0u;
    SYST_CVR = 0u; /* any write clears the counter; it reloads on the next tick */
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT |
               (ESNN_CM_SYSTICK_CLKSOURCE ? SYST_CSR_CLKSOURCE : 0u);
}

uint32_t esnn_port_cycles_read(void)
{
    uint32_t wraps;
    uint32_t cvr;
    uint32_t pend;
    uint64_t ticks;

    if (use_dwt) {
        return DWT_CYCCNT;
    }
    /* Tick k after the start reads CVR = (2^24 - k) mod 2^24 and SysTick_Handler runs as
     * the counter reaches 0. A wrap that happened but whose exception is still pending is
     * seen in ICSR.PENDSTSET; retry until wraps and the pending bit are stable around the
     * read of CVR. */
    do {
        wraps = systick_wraps;
        pend = SCB_ICSR & SCB_ICSR_PENDSTSET;
        cvr = SYST_CVR;
    } while (wraps != systick_wraps || pend != (SCB_ICSR & SCB_ICSR_PENDSTSET));
    if (pend) {
        wraps++;
    }
    ticks = (uint64_t)wraps * (SYST_RELOAD_MAX + 1u) +
            (uint64_t)((SYST_RELOAD_MAX + 1u - cvr) & SYST_RELOAD_MAX);
    return (uint32_t)((ticks * ESNN_CM_TICKS_DEN) / ESNN_CM_TICKS_NUM);
}

uint8_t esnn_port_cycle_unit(void)
{
    return use_dwt ? 0u : 1u;
}

/* edgesnn port for the BBC micro:bit v1 (Nordic nRF51822: Cortex-M0, 16 MHz, 256 KB flash,
 * 16 KB RAM) as emulated by QEMU's `microbit` machine (nRF51 Series Reference Manual v3.0;
 * nRF51822 Product Specification v3.1).
 *
 * Cortex-M0 is ARMv6-M: Thumb-1 plus a few 32-bit instructions, no hardware divide, no DWT.
 * The runtime's Thumb-2 assembly is selected only under __thumb2__, which the compiler does
 * not define for the Cortex-M0, so the portable C path runs; divisions go to libgcc.
 *
 * Serial: UART0 at 0x40002000 (RM chapter 29), TXD on P0.24 and RXD on P0.25 (the micro:bit's
 * interface-chip UART), polled through the RXDRDY / TXDRDY events.
 * Cycles: TIMER0 at 0x40008000 (RM chapter 18) in 32-bit timer mode at 16 MHz (prescaler 0),
 * read with a CAPTURE task. The nRF51 has no SysTick, so cortexm_common/cm_cycles.c is not
 * used. On silicon the timer counts core cycles (core and timer both at 16 MHz); under
 * `qemu-system-arm -icount shift=N` it counts virtual time, 2^N ns per instruction, and
 * ESNN_CM_TICKS_NUM / ESNN_CM_TICKS_DEN (esnn_board.h, from the profile) turn ticks into
 * instructions. */
#include <stdint.h>

#include "cm_regs.h"
#include "esnn_board.h"
#include "esnn_port.h"

#define UART0_BASE 0x40002000u
#define UART_STARTRX ESNN_REG32(UART0_BASE + 0x000u)
#define UART_STARTTX ESNN_REG32(UART0_BASE + 0x008u)
#define UART_RXDRDY ESNN_REG32(UART0_BASE + 0x108u)
#define UART_TXDRDY ESNN_REG32(UART0_BASE + 0x11Cu)
#define UART_ENABLE ESNN_REG32(UART0_BASE + 0x500u)
#define UART_PSELTXD ESNN_REG32(UART0_BASE + 0x50Cu)
#define UART_PSELRXD ESNN_REG32(UART0_BASE + 0x514u)
#define UART_RXD ESNN_REG32(UART0_BASE + 0x518u)
#define UART_TXD ESNN_REG32(UART0_BASE + 0x51Cu)
#define UART_BAUDRATE ESNN_REG32(UART0_BASE + 0x524u)
#define UART_ENABLE_ON 4u
#define UART_PIN_TXD 24u
#define UART_PIN_RXD 25u

#define TIMER0_BASE 0x40008000u
#define TIMER_START ESNN_REG32(TIMER0_BASE + 0x000u)
#define TIMER_STOP ESNN_REG32(TIMER0_BASE + 0x004u)
#define TIMER_CLEAR ESNN_REG32(TIMER0_BASE + 0x00Cu)
#define TIMER_CAPTURE0 ESNN_REG32(TIMER0_BASE + 0x040u)
#define TIMER_MODE ESNN_REG32(TIMER0_BASE + 0x504u)
#define TIMER_BITMODE ESNN_REG32(TIMER0_BASE + 0x508u)
#define TIMER_PRESCALER ESNN_REG32(TIMER0_BASE + 0x510u)
#define TIMER_CC0 ESNN_REG32(TIMER0_BASE + 0x540u)
#define TIMER_BITMODE_32 3u

/* BAUDRATE register values (RM 29.10.12); 115200 is the one the profile uses. */
#if ESNN_BOARD_BAUD == 115200ul
#define UART_BAUD_VALUE 0x01D7E000u
#elif ESNN_BOARD_BAUD == 9600ul
#define UART_BAUD_VALUE 0x00275000u
#else
#error "devices/microbit.toml serial.baudrate: this port knows 9600 and 115200"
#endif
#if ESNN_BOARD_CLOCK_HZ != 16000000ul
#error "devices/microbit.toml core.clock_hz must be 16000000 (nRF51 HFCLK)"
#endif

void esnn_port_init(void)
{
    UART_PSELTXD = UART_PIN_TXD;
    UART_PSELRXD = UART_PIN_RXD;
    UART_BAUDRATE = UART_BAUD_VALUE;
    UART_ENABLE = UART_ENABLE_ON;
    UART_STARTTX = 1u;
    UART_STARTRX = 1u;

    TIMER_STOP = 1u;
    TIMER_MODE = 0u; /* timer, not counter */
    TIMER_BITMODE = TIMER_BITMODE_32;
    TIMER_PRESCALER = 0u; /* 16 MHz */
    TIMER_CLEAR = 1u;
    TIMER_START = 1u;
}

int esnn_port_getc(void)
{
    while (UART_RXDRDY == 0u) {
    }
    UART_RXDRDY = 0u; /* clear the event before reading RXD (RM 29.5) */
    return (int)(UART_RXD & 0xFFu);
}

void esnn_port_putc(uint8_t c)
{
    UART_TXDRDY = 0u;
    UART_TXD = c;
    while (UART_TXDRDY == 0u) {
    }
}

void esnn_port_flush(void)
{
    /* putc returns only once TXDRDY says the byte has left TXD */
}

void esnn_port_cycles_start(void)
{
    TIMER_CLEAR = 1u;
}

uint32_t esnn_port_cycles_read(void)
{
    uint64_t ticks;
    TIMER_CAPTURE0 = 1u;
    ticks = TIMER_CC0;
    return (uint32_t)((ticks * ESNN_CM_TICKS_DEN) / ESNN_CM_TICKS_NUM);
}

/* edgesnn port for the TI Stellaris LM3S6965 (Cortex-M3, 50 MHz, 256 KB flash, 64 KB SRAM;
 * LM3S6965 datasheet DS-LM3S6965) as emulated by QEMU's `lm3s6965evb` machine.
 *
 * Serial: UART0, an ARM PL011 at 0x4000C000 (pins PA0/PA1), polled through UARTFR
 * (RXFE: receive FIFO empty, TXFF: transmit FIFO full, BUSY). Cycles: cortexm_common
 * (DWT on silicon, SysTick under `qemu-system-arm -icount shift=7`).
 *
 * Clock: esnn_port_init runs the system clock at 50 MHz from the PLL (8 MHz crystal on the
 * EVB, 400 MHz PLL / 2 / SYSDIV 4; datasheet section 6, "Clock Control"). QEMU models this:
 * its SysTick then runs at 50 MHz, i.e. 6.4 ticks per instruction at -icount shift=7
 * (128 ns per instruction / 20 ns per tick; measured by tests/test_qemu.py). */
#include <stdint.h>

#include "cm_regs.h"
#include "esnn_board.h"
#include "esnn_port.h"

void esnn_cm_cycles_init(void);

/* System control (datasheet section 6): clock gating of UART0 and GPIO port A. */
#define SYSCTL_RCGC1 ESNN_REG32(0x400FE104u)
#define SYSCTL_RCGC2 ESNN_REG32(0x400FE108u)
#define SYSCTL_RCGC1_UART0 (1u << 0)
#define SYSCTL_RCGC2_GPIOA (1u << 0)
/* Run-mode clock configuration and raw interrupt status (PLL lock). */
#define SYSCTL_RIS ESNN_REG32(0x400FE050u)
#define SYSCTL_RCC ESNN_REG32(0x400FE060u)
#define SYSCTL_RIS_PLLLRIS (1u << 6)
#define RCC_MOSCDIS (1u << 0)
#define RCC_OSCSRC_MASK (3u << 4)
#define RCC_XTAL_MASK (0xFu << 6)
#define RCC_XTAL_8MHZ (0xEu << 6)
#define RCC_BYPASS (1u << 11)
#define RCC_PWRDN (1u << 13)
#define RCC_USESYSDIV (1u << 22)
#define RCC_SYSDIV_MASK (0xFu << 23)
#define RCC_SYSDIV_4 (3u << 23)
#define PLL_LOCK_SPINS 100000u
/* GPIO port A: alternate function (UART0 on PA0/PA1) and digital enable. */
#define GPIOA_AFSEL ESNN_REG32(0x40004420u)
#define GPIOA_DEN ESNN_REG32(0x4000451Cu)

/* PL011 UART0 (datasheet section 12.5). */
#define UART0_BASE 0x4000C000u
#define UART_DR ESNN_REG32(UART0_BASE + 0x000u)
#define UART_FR ESNN_REG32(UART0_BASE + 0x018u)
#define UART_IBRD ESNN_REG32(UART0_BASE + 0x024u)
#define UART_FBRD ESNN_REG32(UART0_BASE + 0x028u)
#define UART_LCRH ESNN_REG32(UART0_BASE + 0x02Cu)
#define UART_CTL ESNN_REG32(UART0_BASE + 0x030u)
#define UART_FR_BUSY (1u << 3)
#define UART_FR_RXFE (1u << 4)
#define UART_FR_TXFF (1u << 5)
#define UART_LCRH_FEN (1u << 4)
#define UART_LCRH_WLEN8 (3u << 5)
#define UART_CTL_UARTEN (1u << 0)
#define UART_CTL_TXE (1u << 8)
#define UART_CTL_RXE (1u << 9)

/* The PLL setting below gives 50 MHz: the profile must say so (esnn_board.h is generated
 * from devices/lm3s6965evb.toml). */
#if ESNN_BOARD_CLOCK_HZ != 50000000ul
#error "devices/lm3s6965evb.toml core.clock_hz must be 50000000 (PLL 400 MHz / 2 / SYSDIV 4)"
#endif

static void clock_50mhz(void)
{
    uint32_t rcc = SYSCTL_RCC;
    uint32_t spin;

    rcc |= RCC_BYPASS; /* run from the oscillator while the PLL is reconfigured */
    rcc &= ~RCC_USESYSDIV;
    SYSCTL_RCC = rcc;
    rcc &= ~(RCC_XTAL_MASK | RCC_OSCSRC_MASK | RCC_PWRDN | RCC_MOSCDIS);
    rcc |= RCC_XTAL_8MHZ; /* main oscillator, 8 MHz crystal, PLL powered */
    rcc &= ~RCC_SYSDIV_MASK;
    rcc |= RCC_SYSDIV_4 | RCC_USESYSDIV;
    SYSCTL_RCC = rcc;
    for (spin = 0u; spin < PLL_LOCK_SPINS && !(SYSCTL_RIS & SYSCTL_RIS_PLLLRIS); ++spin) {
    }
    SYSCTL_RCC = rcc & ~RCC_BYPASS; /* switch to the PLL */
}

void esnn_port_init(void)
{
    volatile uint32_t settle;
    /* Baud divisor 16 * baud: BRD = clock / (16 * baud); the fraction in 1/64ths. */
    const uint32_t div64 = ((uint32_t)ESNN_BOARD_CLOCK_HZ * 4u + (uint32_t)ESNN_BOARD_BAUD / 2u) /
                         (uint32_t)ESNN_BOARD_BAUD;

    clock_50mhz();
    SYSCTL_RCGC1 |= SYSCTL_RCGC1_UART0;
    SYSCTL_RCGC2 |= SYSCTL_RCGC2_GPIOA;
    for (settle = 0u; settle < 8u; ++settle) { /* a few cycles after gating a clock */
    }
    GPIOA_AFSEL |= 0x3u;
    GPIOA_DEN |= 0x3u;

    UART_CTL = 0u;
    UART_IBRD = div64 >> 6;
    UART_FBRD = div64 & 0x3Fu;
    UART_LCRH = UART_LCRH_WLEN8 | UART_LCRH_FEN;
    UART_CTL = UART_CTL_UARTEN | UART_CTL_TXE | UART_CTL_RXE;

    esnn_cm_cycles_init();
}

int esnn_port_getc(void)
{
    while (UART_FR & UART_FR_RXFE) {
    }
    return (int)(UART_DR & 0xFFu); /* a UART never closes: never -1 */
}

void esnn_port_putc(uint8_t c)
{
    while (UART_FR & UART_FR_TXFF) {
    }
    UART_DR = c;
}

void esnn_port_flush(void)
{
    while (UART_FR & UART_FR_BUSY) {
    }
}

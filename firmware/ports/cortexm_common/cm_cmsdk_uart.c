/* edgesnn port for the Arm MPS2/MPS3 FPGA images whose console is a CMSDK APB UART (Arm
 * Cortex-M System Design Kit TRM, DDI 0479: DATA, STATE, CTRL, BAUDDIV), as QEMU models them:
 * mps2-an386 (Cortex-M4F), mps2-an505 (Cortex-M33), mps3-an547 (Cortex-M55).
 *
 * The port.mk gives ESNN_CMSDK_UART_BASE (UART0 of that image's memory map); the board name,
 * clock (the UART's PCLK, which is also the core and SysTick clock on these images) and baud
 * rate come from esnn_board.h, generated from the device profile. Polled through STATE
 * (bit 0 TX buffer full, bit 1 RX buffer full). Cycles: cm_cycles.c (DWT on silicon,
 * SysTick under `qemu-system-arm -icount`). */
#include <stdint.h>

#include "cm_regs.h"
#include "esnn_board.h"
#include "esnn_port.h"

#ifndef ESNN_CMSDK_UART_BASE
#error "the port.mk must define ESNN_CMSDK_UART_BASE (UART0 base address of the FPGA image)"
#endif

void esnn_cm_cycles_init(void);

#define UART_DATA ESNN_REG32(ESNN_CMSDK_UART_BASE + 0x000u)
#define UART_STATE ESNN_REG32(ESNN_CMSDK_UART_BASE + 0x004u)
#define UART_CTRL ESNN_REG32(ESNN_CMSDK_UART_BASE + 0x008u)
#define UART_BAUDDIV ESNN_REG32(ESNN_CMSDK_UART_BASE + 0x010u)
#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)
#define UART_CTRL_TXEN (1u << 0)
#define UART_CTRL_RXEN (1u << 1)

#if ESNN_BOARD_CLOCK_HZ / ESNN_BOARD_BAUD < 16
#error "CMSDK UART: BAUDDIV = clock / baud must be >= 16 (DDI 0479)"
#endif

void esnn_port_init(void)
{
    UART_CTRL = 0u;
    UART_BAUDDIV = (uint32_t)(ESNN_BOARD_CLOCK_HZ / ESNN_BOARD_BAUD);
    UART_CTRL = UART_CTRL_TXEN | UART_CTRL_RXEN;
    esnn_cm_cycles_init();
}

int esnn_port_getc(void)
{
    while (!(UART_STATE & UART_STATE_RXFULL)) {
    }
    return (int)(UART_DATA & 0xFFu); /* a UART never closes: never -1 */
}

void esnn_port_putc(uint8_t c)
{
    while (UART_STATE & UART_STATE_TXFULL) {
    }
    UART_DATA = c;
}

void esnn_port_flush(void)
{
    /* A one-byte transmit buffer and no busy flag: wait until it is empty. */
    while (UART_STATE & UART_STATE_TXFULL) {
    }
}

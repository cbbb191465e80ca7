/* edgesnn port for the Arm MPS2 FPGA board with the AN386 image (Cortex-M4F, 25 MHz) as
 * emulated by QEMU's `mps2-an386` machine (Arm Application Note AN386; QEMU docs
 * "Arm MPS2 and MPS3 boards").
 *
 * Serial: UART0, a CMSDK APB UART at 0x40004000 (DATA, STATE, CTRL, BAUDDIV; Arm Cortex-M
 * System Design Kit TRM, DDI 0479), polled through STATE (bit 0 TX buffer full, bit 1 RX
 * buffer full). Cycles: cortexm_common (DWT on silicon, SysTick under
 * `qemu-system-arm -icount shift=6`). */
#include <stdint.h>

#include "cm_regs.h"
#include "esnn_board.h"
#include "esnn_port.h"

void esnn_cm_cycles_init(void);

#define UART0_BASE 0x40004000u
#define UART_DATA ESNN_REG32(UART0_BASE + 0x000u)
#define UART_STATE ESNN_REG32(UART0_BASE + 0x004u)
#define UART_CTRL ESNN_REG32(UART0_BASE + 0x008u)
#define UART_BAUDDIV ESNN_REG32(UART0_BASE + 0x010u)
#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)
#define UART_CTRL_TXEN (1u << 0)
#define UART_CTRL_RXEN (1u << 1)


void esnn_port_init(void)
{
    UART_CTRL = 0u;
    UART_BAUDDIV = (uint32_t)(ESNN_BOARD_CLOCK_HZ / ESNN_BOARD_BAUD); /* >= 16 */
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
    /* The CMSDK UART has a one-byte transmit buffer and no busy flag: wait until empty. */
    while (UART_STATE & UART_STATE_TXFULL) {
    }
}

uint32_t esnn_port_clock_hz(void)
{
    return (uint32_t)ESNN_BOARD_CLOCK_HZ;
}

const char *esnn_port_board(void)
{
    return ESNN_BOARD_NAME;
}

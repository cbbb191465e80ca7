/* Cortex-M system registers used by the edgesnn ports (ARMv7-M Architecture Reference
 * Manual, DDI 0403E: B3.2 System Control Space, B3.3 SysTick, C1.8 DWT).
 * No vendor SDK: only the handful of registers the ports touch. */
#ifndef ESNN_CM_REGS_H
#define ESNN_CM_REGS_H

#include <stdint.h>

#define ESNN_REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* SysTick (B3.3.2) */
#define SYST_CSR ESNN_REG32(0xE000E010u)
#define SYST_RVR ESNN_REG32(0xE000E014u)
#define SYST_CVR ESNN_REG32(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2) /* 1: processor clock, 0: reference clock */
#define SYST_RELOAD_MAX 0x00FFFFFFu

/* System Control Block */
#define SCB_ICSR ESNN_REG32(0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_CPACR ESNN_REG32(0xE000ED88u) /* coprocessor access (FPU: CP10, CP11) */
#define SCB_DEMCR ESNN_REG32(0xE000EDFCu)
#define SCB_DEMCR_TRCENA (1u << 24)

/* Data Watchpoint and Trace unit (C1.8.7) */
#define DWT_CTRL ESNN_REG32(0xE0001000u)
#define DWT_CYCCNT ESNN_REG32(0xE0001004u)
#define DWT_CTRL_CYCCNTENA (1u << 0)

#endif /* ESNN_CM_REGS_H */

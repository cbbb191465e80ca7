/* STM32L4R5 (STM32L4+ series) registers used by the nucleo-l4r5zi port. No vendor SDK: only
 * the handful of registers and bits the port touches, from ST RM0432 (STM32L4+ reference
 * manual). Addresses: RM0432 section 2.2.2 "Memory map and register boundary addresses".
 * Cross-checked against libopencm3 include/libopencm3/stm32/l4/{memorymap,rcc,pwr}.h (same
 * addresses and bit positions on STM32L4 and STM32L4+) and ST's stm32l4xx_hal_rcc.c
 * (STM32L4R5xx branches). */
#ifndef ESNN_STM32L4R5_REGS_H
#define ESNN_STM32L4R5_REGS_H

#include "cm_regs.h" /* ESNN_REG32 */

/* ---- base addresses (RM0432 2.2.2) ------------------------------------------------------ */
#define PWR_BASE 0x40007000u     /* APB1 */
#define LPUART1_BASE 0x40008000u /* APB1 */
#define RCC_BASE 0x40021000u     /* AHB1 */
#define FLASH_R_BASE 0x40022000u /* AHB1: flash interface registers */
#define GPIOG_BASE 0x48001800u   /* AHB2 */

/* ---- RCC (RM0432 chapter 6, "RCC registers") ---------------------------------------------- */
#define RCC_CR ESNN_REG32(RCC_BASE + 0x00u)
#define RCC_CR_HSION (1u << 8)
#define RCC_CR_HSIRDY (1u << 10)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)

#define RCC_CFGR ESNN_REG32(RCC_BASE + 0x08u)
#define RCC_CFGR_SW_MASK (3u << 0)
#define RCC_CFGR_SW_PLL (3u << 0)
#define RCC_CFGR_SWS_MASK (3u << 2)
#define RCC_CFGR_SWS_PLL (3u << 2)
#define RCC_CFGR_HPRE_MASK (0xFu << 4)
#define RCC_CFGR_HPRE_DIV1 (0x0u << 4)
#define RCC_CFGR_HPRE_DIV2 (0x8u << 4)
#define RCC_CFGR_PPRE1_MASK (7u << 8)  /* APB1 prescaler, 0xx = /1 */
#define RCC_CFGR_PPRE2_MASK (7u << 11) /* APB2 prescaler, 0xx = /1 */

/* PLLCFGR: PLLSRC[1:0], PLLM[7:4] (divide by PLLM+1; 4 bits on STM32L4+), PLLN[14:8],
 * PLLREN bit 24, PLLR[26:25] (00 = /2). */
#define RCC_PLLCFGR ESNN_REG32(RCC_BASE + 0x0Cu)
#define RCC_PLLCFGR_PLLSRC_HSI16 (2u << 0)
#define RCC_PLLCFGR_PLLM_SHIFT 4u
#define RCC_PLLCFGR_PLLN_SHIFT 8u
#define RCC_PLLCFGR_PLLREN (1u << 24)
#define RCC_PLLCFGR_PLLR_SHIFT 25u

#define RCC_AHB2ENR ESNN_REG32(RCC_BASE + 0x4Cu)
#define RCC_AHB2ENR_GPIOGEN (1u << 6)
#define RCC_APB1ENR1 ESNN_REG32(RCC_BASE + 0x58u)
#define RCC_APB1ENR1_PWREN (1u << 28)
#define RCC_APB1ENR2 ESNN_REG32(RCC_BASE + 0x5Cu)
#define RCC_APB1ENR2_LPUART1EN (1u << 0)

#define RCC_CCIPR ESNN_REG32(RCC_BASE + 0x88u)
#define RCC_CCIPR_LPUART1SEL_MASK (3u << 10) /* 00 = PCLK1, 01 = SYSCLK, 10 = HSI16, 11 = LSE */
#define RCC_CCIPR_LPUART1SEL_PCLK1 (0u << 10)

/* ---- FLASH (RM0432 chapter 3, FLASH_ACR) --------------------------------------------------- */
#define FLASH_ACR ESNN_REG32(FLASH_R_BASE + 0x00u)
#define FLASH_ACR_LATENCY_MASK (0xFu << 0) /* 4 bits on STM32L4+ (0..15 wait states) */
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)

/* ---- PWR (RM0432 chapter 5, "PWR registers") ----------------------------------------------- */
#define PWR_CR1 ESNN_REG32(PWR_BASE + 0x00u)
#define PWR_CR1_VOS_MASK (3u << 9)
#define PWR_CR1_VOS_RANGE1 (1u << 9)
#define PWR_CR2 ESNN_REG32(PWR_BASE + 0x04u)
#define PWR_CR2_IOSV (1u << 9) /* VDDIO2 valid: removes the isolation of PG[15:2] */
#define PWR_SR2 ESNN_REG32(PWR_BASE + 0x14u)
#define PWR_SR2_VOSF (1u << 10) /* regulator not yet at the VOS-selected level */
#define PWR_CR5 ESNN_REG32(PWR_BASE + 0x80u)
#define PWR_CR5_R1MODE (1u << 8) /* 0: range 1 boost mode (up to 120 MHz), 1: normal (80 MHz) */

/* ---- GPIO (RM0432 chapter 8, "GPIO registers") --------------------------------------------- */
#define GPIOG_MODER ESNN_REG32(GPIOG_BASE + 0x00u)  /* 2 bits per pin: 10 = alternate function */
#define GPIOG_OSPEEDR ESNN_REG32(GPIOG_BASE + 0x08u) /* 2 bits per pin */
#define GPIOG_PUPDR ESNN_REG32(GPIOG_BASE + 0x0Cu)   /* 2 bits per pin: 01 = pull-up */
#define GPIOG_AFRL ESNN_REG32(GPIOG_BASE + 0x20u)    /* pins 0..7, 4 bits each */
#define GPIOG_AFRH ESNN_REG32(GPIOG_BASE + 0x24u)    /* pins 8..15, 4 bits each */

/* ---- LPUART1 (RM0432 chapter "Low-power universal asynchronous receiver transmitter") ----- */
#define LPUART1_CR1 ESNN_REG32(LPUART1_BASE + 0x00u)
#define LPUART1_CR2 ESNN_REG32(LPUART1_BASE + 0x04u)
#define LPUART1_CR3 ESNN_REG32(LPUART1_BASE + 0x08u)
#define LPUART1_BRR ESNN_REG32(LPUART1_BASE + 0x0Cu)
#define LPUART1_ISR ESNN_REG32(LPUART1_BASE + 0x1Cu)
#define LPUART1_ICR ESNN_REG32(LPUART1_BASE + 0x20u)
#define LPUART1_RDR ESNN_REG32(LPUART1_BASE + 0x24u)
#define LPUART1_TDR ESNN_REG32(LPUART1_BASE + 0x28u)
#define LPUART1_PRESC ESNN_REG32(LPUART1_BASE + 0x2Cu)
#define LPUART_CR1_UE (1u << 0)
#define LPUART_CR1_RE (1u << 2)
#define LPUART_CR1_TE (1u << 3)
/* ISR with the FIFO disabled (CR1.FIFOEN = 0, the reset value) */
#define LPUART_ISR_PE (1u << 0)
#define LPUART_ISR_FE (1u << 1)
#define LPUART_ISR_NE (1u << 2)
#define LPUART_ISR_ORE (1u << 3)
#define LPUART_ISR_RXNE (1u << 5)
#define LPUART_ISR_TC (1u << 6)
#define LPUART_ISR_TXE (1u << 7)
#define LPUART_ISR_ERRORS (LPUART_ISR_PE | LPUART_ISR_FE | LPUART_ISR_NE | LPUART_ISR_ORE)
/* ICR clear bits sit at the same positions as the ISR flags they clear (PECF..ORECF) */
#define LPUART_ICR_ERRORS LPUART_ISR_ERRORS

#endif /* ESNN_STM32L4R5_REGS_H */

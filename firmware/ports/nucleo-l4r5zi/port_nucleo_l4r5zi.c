/* edgesnn port for the ST NUCLEO-L4R5ZI board (STM32L4R5ZI, Cortex-M4F, 120 MHz), bare metal.
 *
 * Clock (RM0432 chapter 6 "Reset and clock control", chapter 5 "Power control"): HSI16 ->
 * PLL (M = 2, N = 30, R = 2: VCO 240 MHz, SYSCLK 120 MHz), AHB and APB at /1, the regulator in
 * range 1 boost mode (PWR_CR5.R1MODE = 0, needed above 80 MHz) and 5 flash wait states with
 * prefetch, instruction and data caches (RM0432 3.3.3 "Read access latency": range 1 boost,
 * 20 MHz per wait state, 100 < HCLK <= 120 MHz -> 5 WS). The switch follows the sequence of
 * RM0432 5.1.8 "Dynamic voltage scaling management" for range 1 normal -> boost: AHB
 * prescaler /2, clear R1MODE, raise the wait states, switch SYSCLK, wait >= 1 us, AHB /1.
 * Every wait on a ready flag is bounded; if one runs out the board stays on its reset clock
 * (MSI 4 MHz) and esnn_port_clock_hz() reports that, so HELLO never claims a wrong clock.
 *
 * Serial: LPUART1 on PG7 (TX) / PG8 (RX), alternate function 8 (DS12023 alternate function
 * table), wired to the ST-LINK virtual COM port on NUCLEO-144 boards (UM2179). Port G pins
 * PG[15:2] are supplied by VDDIO2, isolated until PWR_CR2.IOSV is set. 115200 8N1, polled,
 * kernel clock PCLK1; LPUART baud rate: BRR = 256 * fck / baud (RM0432 LPUART "baud rate
 * generation"; 0x300 <= BRR < 2^20).
 *
 * Cycles: cortexm_common/cm_cycles.c, the DWT cycle counter (DEMCR.TRCENA, DWT_CTRL.CYCCNTENA;
 * unit 0 = core cycles at esnn_port_clock_hz()). */
#include <stdint.h>

#include "esnn_board.h"
#include "esnn_port.h"
#include "stm32l4r5_regs.h"

void esnn_cm_cycles_init(void);

#define ESNN_L4R5_RESET_HZ 4000000u /* MSI 4 MHz: the clock after reset (RM0432 6.2) */
#define ESNN_L4R5_HSI16_HZ 16000000u
#define ESNN_L4R5_BAUD ((uint32_t)ESNN_BOARD_BAUD)
/* PLL from HSI16: 16 MHz / M (2) = 8 MHz VCO input, x N (30) = 240 MHz VCO, / R (2) = 120 MHz */
#define ESNN_L4R5_PLLM 2u
#define ESNN_L4R5_PLLN 30u
#define ESNN_L4R5_FLASH_WS 5u
#define ESNN_L4R5_TARGET_HZ (ESNN_L4R5_HSI16_HZ / ESNN_L4R5_PLLM * ESNN_L4R5_PLLN / 2u)
/* The clock tree above must give the profile's clock (esnn_board.h, from the TOML). */
#if ESNN_L4R5_TARGET_HZ != ESNN_BOARD_CLOCK_HZ
#error "devices/nucleo-l4r5zi.toml core.clock_hz differs from the PLL setting (HSI16 / M x N / R)"
#endif
/* Bound on every ready-flag poll: far longer than the HSI16 (a few us) and PLL (< 100 us)
 * start-up times at the slowest clock the loop can run on (MSI 4 MHz, >= 4 cycles per poll). */
#define ESNN_L4R5_POLL_LIMIT 200000u

static uint32_t sysclk_hz = ESNN_L4R5_RESET_HZ;

/* Poll until (reg & mask) == want, at most ESNN_L4R5_POLL_LIMIT reads; 1 on success. */
static int wait_bits(volatile uint32_t *reg, uint32_t mask, uint32_t want)
{
    uint32_t n;
    for (n = 0u; n < ESNN_L4R5_POLL_LIMIT; ++n) {
        if ((*reg & mask) == want) {
            return 1;
        }
    }
    return 0;
}

static void set_hpre(uint32_t hpre)
{
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_HPRE_MASK) | hpre;
}

/* SYSCLK = 120 MHz from the PLL; returns the SYSCLK it ends on. */
static uint32_t clock_init(void)
{
    volatile uint32_t spin;

    /* Voltage range 1 (the reset value; wait in case it was changed) */
    PWR_CR1 = (PWR_CR1 & ~PWR_CR1_VOS_MASK) | PWR_CR1_VOS_RANGE1;
    if (!wait_bits(&PWR_SR2, PWR_SR2_VOSF, 0u)) {
        return ESNN_L4R5_RESET_HZ;
    }
    /* Range 1 normal -> boost (RM0432 5.1.8): AHB /2 first, then R1MODE = 0 */
    set_hpre(RCC_CFGR_HPRE_DIV2);
    PWR_CR5 &= ~PWR_CR5_R1MODE;
    /* Wait states for the target clock before the clock goes up; read back (RM0432 3.3.3) */
    FLASH_ACR = (FLASH_ACR & ~FLASH_ACR_LATENCY_MASK) | ESNN_L4R5_FLASH_WS | FLASH_ACR_PRFTEN |
                FLASH_ACR_ICEN | FLASH_ACR_DCEN;
    if (!wait_bits(&FLASH_ACR, FLASH_ACR_LATENCY_MASK, ESNN_L4R5_FLASH_WS)) {
        set_hpre(RCC_CFGR_HPRE_DIV1);
        return ESNN_L4R5_RESET_HZ;
    }
    /* HSI16 on */
    RCC_CR |= RCC_CR_HSION;
    if (!wait_bits(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY)) {
        set_hpre(RCC_CFGR_HPRE_DIV1);
        return ESNN_L4R5_RESET_HZ;
    }
    /* Main PLL (off after reset; PLLCFGR may only change while PLLON = 0 and PLLRDY = 0) */
    RCC_CR &= ~RCC_CR_PLLON;
    if (!wait_bits(&RCC_CR, RCC_CR_PLLRDY, 0u)) {
        set_hpre(RCC_CFGR_HPRE_DIV1);
        return ESNN_L4R5_RESET_HZ;
    }
    RCC_PLLCFGR = RCC_PLLCFGR_PLLSRC_HSI16 | ((ESNN_L4R5_PLLM - 1u) << RCC_PLLCFGR_PLLM_SHIFT) |
                  (ESNN_L4R5_PLLN << RCC_PLLCFGR_PLLN_SHIFT) |
                  (0u << RCC_PLLCFGR_PLLR_SHIFT) /* R = 2 */ | RCC_PLLCFGR_PLLREN;
    RCC_CR |= RCC_CR_PLLON;
    if (!wait_bits(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
        RCC_CR &= ~RCC_CR_PLLON;
        set_hpre(RCC_CFGR_HPRE_DIV1);
        return ESNN_L4R5_RESET_HZ;
    }
    /* APB1/APB2 at /1 (PCLK1 = 120 MHz feeds LPUART1), then SYSCLK = PLL with AHB still /2 */
    RCC_CFGR &= ~(RCC_CFGR_PPRE1_MASK | RCC_CFGR_PPRE2_MASK);
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    if (!wait_bits(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL)) {
        set_hpre(RCC_CFGR_HPRE_DIV1);
        return ESNN_L4R5_RESET_HZ;
    }
    /* >= 1 us at HCLK = 60 MHz (>= 60 cycles; each iteration takes several) before AHB /1 */
    for (spin = 0u; spin < 64u; ++spin) {
    }
    set_hpre(RCC_CFGR_HPRE_DIV1);
    return ESNN_L4R5_TARGET_HZ;
}

static void lpuart1_init(uint32_t fck)
{
    /* PG7/PG8 live in the VDDIO2 domain: remove the isolation before touching GPIOG */
    PWR_CR2 |= PWR_CR2_IOSV;
    RCC_AHB2ENR |= RCC_AHB2ENR_GPIOGEN;
    RCC_APB1ENR2 |= RCC_APB1ENR2_LPUART1EN;
    (void)RCC_APB1ENR2; /* read back: the clocks are on before the first access */
    RCC_CCIPR = (RCC_CCIPR & ~RCC_CCIPR_LPUART1SEL_MASK) | RCC_CCIPR_LPUART1SEL_PCLK1;

    /* AF8 first, then alternate-function mode: PG7 (AFRL[31:28]), PG8 (AFRH[3:0]) */
    GPIOG_AFRL = (GPIOG_AFRL & ~(0xFu << 28)) | (8u << 28);
    GPIOG_AFRH = (GPIOG_AFRH & ~0xFu) | 8u;
    GPIOG_OSPEEDR = (GPIOG_OSPEEDR & ~((3u << 14) | (3u << 16))) | (1u << 14) | (1u << 16);
    GPIOG_PUPDR = (GPIOG_PUPDR & ~((3u << 14) | (3u << 16))) | (1u << 16); /* RX pull-up */
    GPIOG_MODER = (GPIOG_MODER & ~((3u << 14) | (3u << 16))) | (2u << 14) | (2u << 16);

    /* 8N1, no FIFO, prescaler /1; BRR = 256 * fck / baud, rounded, in 32-bit arithmetic */
    LPUART1_CR1 = 0u;
    LPUART1_CR2 = 0u;
    LPUART1_CR3 = 0u;
    LPUART1_PRESC = 0u;
    LPUART1_BRR = (fck / ESNN_L4R5_BAUD) * 256u +
                  ((fck % ESNN_L4R5_BAUD) * 256u + ESNN_L4R5_BAUD / 2u) / ESNN_L4R5_BAUD;
    LPUART1_CR1 = LPUART_CR1_TE | LPUART_CR1_RE | LPUART_CR1_UE;
}

void esnn_port_init(void)
{
    RCC_APB1ENR1 |= RCC_APB1ENR1_PWREN;
    (void)RCC_APB1ENR1; /* read back: PWR is clocked before its registers are written */
    sysclk_hz = clock_init();
    lpuart1_init(sysclk_hz);
    esnn_cm_cycles_init();
}

int esnn_port_getc(void)
{
    uint32_t isr;
    for (;;) {
        isr = LPUART1_ISR;
        if (isr & LPUART_ISR_ERRORS) {
            /* overrun / framing / noise / parity: clear and go on; the protocol's CRC and
             * resynchronisation deal with the damaged bytes */
            LPUART1_ICR = isr & LPUART_ICR_ERRORS;
        }
        if (isr & LPUART_ISR_RXNE) {
            return (int)(LPUART1_RDR & 0xFFu); /* a UART never closes: never -1 */
        }
    }
}

void esnn_port_putc(uint8_t c)
{
    while (!(LPUART1_ISR & LPUART_ISR_TXE)) {
    }
    LPUART1_TDR = c;
}

void esnn_port_flush(void)
{
    while (!(LPUART1_ISR & LPUART_ISR_TC)) {
    }
}

uint32_t esnn_port_clock_hz(void)
{
    return sysclk_hz;
}

/* Startup for the Cortex-M ports: vector table, reset handler, default handlers.
 *
 * No vendor SDK and no C library start files: Reset_Handler copies .data from flash,
 * zeroes .bss, enables the FPU when the code is built for a hardware FPU, and calls
 * main(). Compile with -ffreestanding -fno-tree-loop-distribute-patterns so the copy
 * loops are not turned into calls to memcpy/memset before .data/.bss exist. */
#include <stdint.h>

#include "cm_regs.h"

/* Linker script symbols (see the port's .ld file). */
extern uint32_t _sidata; /* load address of .data in flash */
extern uint32_t _sdata;
extern uint32_t _edata;
extern uint32_t _sbss;
extern uint32_t _ebss;
extern uint32_t _estack;

int main(void);
void Reset_Handler(void);
void esnn_cm_default_handler(void);
void esnn_cm_hardfault_handler(void);
/* SysTick_Handler: defined by cm_cycles.c; a port with its own cycle counter (microbit) keeps
 * the default handler. */
void SysTick_Handler(void) __attribute__((weak, alias("esnn_cm_default_handler")));

void Reset_Handler(void)
{
    uint32_t *src = &_sidata;
    uint32_t *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss; ++dst) {
        *dst = 0u;
    }
#if defined(__ARM_FP) && !defined(__SOFTFP__)
    /* Full access to CP10 and CP11 (the FPU) before any floating-point instruction. */
    SCB_CPACR |= (0xFu << 20);
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    (void)main();
    for (;;) {
        __asm volatile("wfi");
    }
}

void esnn_cm_default_handler(void)
{
    for (;;) {
    }
}

void esnn_cm_hardfault_handler(void)
{
    for (;;) {
    }
}

typedef void (*esnn_cm_vector_t)(void);

/* The 16 ARMv7-M system exception slots; the ports use no peripheral interrupts. */
__attribute__((section(".isr_vector"), used))
const esnn_cm_vector_t esnn_cm_vectors[16] = {
    (esnn_cm_vector_t)(uintptr_t)&_estack, /* 0: initial stack pointer */
    Reset_Handler,                         /* 1: reset */
    esnn_cm_default_handler,               /* 2: NMI */
    esnn_cm_hardfault_handler,             /* 3: HardFault */
    esnn_cm_default_handler,               /* 4: MemManage */
    esnn_cm_default_handler,               /* 5: BusFault */
    esnn_cm_default_handler,               /* 6: UsageFault */
    0, 0, 0, 0,                            /* 7-10: reserved */
    esnn_cm_default_handler,               /* 11: SVCall */
    esnn_cm_default_handler,               /* 12: DebugMonitor */
    0,                                     /* 13: reserved */
    esnn_cm_default_handler,               /* 14: PendSV */
    SysTick_Handler,                       /* 15: SysTick */
};

# edgesnn port: ST NUCLEO-L4R5ZI (STM32L4R5ZI, Cortex-M4F, 120 MHz), a physical board.
# Included by a generated project's Makefile (and by cortexm_common/selftest). Defines the
# toolchain, the port sources (relative to this folder), compile and link flags.
# common/ is firmware/ports/cortexm_common (startup, vector table, cycle counter).
PORT_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
CROSS ?= arm-none-eabi-
CC := $(CROSS)gcc
SIZE := $(CROSS)size
OBJCOPY := $(CROSS)objcopy
PORT_SRCS := port_nucleo_l4r5zi.c common/cm_startup.c common/cm_cycles.c
# Hard-float ABI; Reset_Handler enables the FPU (CPACR) before main.
PORT_ARCH := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
# Cycles come from the DWT cycle counter (unit 0). cm_cycles.c falls back to SysTick only when
# CYCCNT does not move (QEMU); on this silicon it always moves. Were it ever used, SysTick on
# the processor clock counts one tick per core cycle: 1/1.
PORT_CFLAGS := $(PORT_ARCH) -ffreestanding -fno-tree-loop-distribute-patterns \
	-ffunction-sections -fdata-sections -I$(PORT_DIR)/common \
	-DESNN_CM_SYSTICK_CLKSOURCE=1 -DESNN_CM_TICKS_NUM=1u -DESNN_CM_TICKS_DEN=1u
# No C start files, newlib-nano only for mem* helpers, no _sbrk: malloc cannot link.
PORT_LDFLAGS := $(PORT_ARCH) -nostartfiles --specs=nano.specs -Wl,--gc-sections \
	-L$(PORT_DIR)/common -T$(PORT_DIR)/nucleo-l4r5zi.ld
TARGET := firmware.elf

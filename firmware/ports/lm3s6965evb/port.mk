# edgesnn port: TI LM3S6965 (Cortex-M3) in QEMU lm3s6965evb. Included by a generated
# project's Makefile (and by cortexm_common/selftest, lm3s6965evb/bench). Defines the
# toolchain, the port sources (relative to this folder), compile and link flags.
# common/ is firmware/ports/cortexm_common (startup, vector table, cycle counter).
PORT_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
CROSS ?= arm-none-eabi-
CC := $(CROSS)gcc
SIZE := $(CROSS)size
OBJCOPY := $(CROSS)objcopy
PORT_SRCS := port_lm3s6965evb.c common/cm_startup.c common/cm_cycles.c
PORT_ARCH := -mcpu=cortex-m3 -mthumb
# SysTick on the processor clock (50 MHz after the PLL): 32 ticks per 5 instructions
# under -icount shift=7 (128 ns per instruction / 20 ns per tick = 6.4).
PORT_CFLAGS := $(PORT_ARCH) -ffreestanding -fno-tree-loop-distribute-patterns \
	-ffunction-sections -fdata-sections -I$(PORT_DIR)/common \
	-DESNN_CM_SYSTICK_CLKSOURCE=1 -DESNN_CM_TICKS_NUM=32u -DESNN_CM_TICKS_DEN=5u
# No C start files, newlib-nano only for mem* helpers, no _sbrk: malloc cannot link.
PORT_LDFLAGS := $(PORT_ARCH) -nostartfiles --specs=nano.specs -Wl,--gc-sections \
	-L$(PORT_DIR)/common -T$(PORT_DIR)/lm3s6965evb.ld
TARGET := firmware.elf

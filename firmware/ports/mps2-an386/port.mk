# edgesnn port: Arm MPS2 AN386 (Cortex-M4F) in QEMU mps2-an386. Included by a generated
# project's Makefile (and by cortexm_common/selftest). Defines the toolchain, the port
# sources (relative to this folder), compile and link flags.
# common/ is firmware/ports/cortexm_common (startup, vector table, cycle counter).
PORT_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
CROSS ?= arm-none-eabi-
CC := $(CROSS)gcc
SIZE := $(CROSS)size
OBJCOPY := $(CROSS)objcopy
PORT_SRCS := port_mps2_an386.c common/cm_startup.c common/cm_cycles.c
# Hard-float ABI; Reset_Handler enables the FPU (CPACR) before main.
PORT_ARCH := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
# SysTick on the processor clock (25 MHz); 8 ticks per 5 instructions under -icount shift=6.
PORT_CFLAGS := $(PORT_ARCH) -ffreestanding -fno-tree-loop-distribute-patterns \
	-ffunction-sections -fdata-sections -I$(PORT_DIR)/common \
	-DESNN_CM_SYSTICK_CLKSOURCE=1 -DESNN_CM_TICKS_NUM=8u -DESNN_CM_TICKS_DEN=5u
# No C start files, newlib-nano only for mem* helpers, no _sbrk: malloc cannot link.
PORT_LDFLAGS := $(PORT_ARCH) -nostartfiles --specs=nano.specs -Wl,--gc-sections \
	-L$(PORT_DIR)/common -T$(PORT_DIR)/mps2-an386.ld
TARGET := firmware.elf

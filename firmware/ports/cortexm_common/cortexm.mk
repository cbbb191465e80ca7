# The Cortex-M build shared by every Cortex-M port. A port's port.mk sets PORT_DIR, PORT_SRCS
# (its own C files, relative to PORT_DIR) and PORT_LD (its linker script) and includes this
# file from its common/ folder. The core flags (-mcpu, -mthumb, float ABI) are not here: they
# come from the device profile through the generated device.mk (DEVICE_CFLAGS), and the board
# constants (name, clock, baud, SysTick ratio) through the generated esnn_board.h.
ifeq ($(strip $(PORT_LD)),)
$(error $(PORT_DIR)/port.mk must set PORT_LD (the port's linker script) before including cortexm.mk)
endif
CROSS ?= arm-none-eabi-
CC := $(CROSS)gcc
SIZE := $(CROSS)size
OBJCOPY := $(CROSS)objcopy
PORT_SRCS += common/cm_startup.c common/cm_cycles.c
# Startup code runs before .data/.bss exist: no libc calls synthesised from its loops.
PORT_CFLAGS := -ffreestanding -fno-tree-loop-distribute-patterns -ffunction-sections \
	-fdata-sections -I$(PORT_DIR)/common
# No C start files, newlib-nano only for mem* helpers, no _sbrk: malloc cannot link.
PORT_LDFLAGS := -nostartfiles --specs=nano.specs -Wl,--gc-sections \
	-L$(PORT_DIR)/common -T$(PORT_DIR)/$(PORT_LD)
TARGET := firmware.elf

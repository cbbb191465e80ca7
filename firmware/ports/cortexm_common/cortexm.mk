# The Cortex-M build shared by every Cortex-M port. A port's port.mk sets PORT_DIR, PORT_SRCS
# (its own C files, relative to PORT_DIR), PORT_LD (its linker script), optionally PORT_DEFS
# (-D flags for shared drivers) and PORT_CYCLES (its cycle counter; default: SysTick/DWT in
# common/cm_cycles.c), and includes this file from its common/ folder. The core flags (-mcpu,
# -mthumb, float ABI) are not here: they come from the device profile through the generated
# device.mk (DEVICE_CFLAGS), with the stack size (DEVICE_STACK_BYTES); the board constants
# (name, clock, baud, SysTick ratio) through the generated esnn_board.h.
ifeq ($(strip $(PORT_LD)),)
$(error $(PORT_DIR)/port.mk must set PORT_LD (the port's linker script) before including cortexm.mk)
endif
ifeq ($(strip $(DEVICE_STACK_BYTES)),)
$(error DEVICE_STACK_BYTES is not set: include the device.mk generated from the profile first)
endif
CROSS ?= arm-none-eabi-
CC := $(CROSS)gcc
SIZE := $(CROSS)size
OBJCOPY := $(CROSS)objcopy
PORT_CYCLES ?= common/cm_cycles.c
PORT_SRCS += common/cm_startup.c $(PORT_CYCLES)
# cm_cycles.c says at run time whether it counts DWT cycles or SysTick instructions: it
# defines esnn_port_cycle_unit() instead of runtime/esnn_board.c
ifeq ($(strip $(PORT_CYCLES)),common/cm_cycles.c)
PORT_DEFS += -DESNN_PORT_OWN_CYCLE_UNIT
endif
# Startup code runs before .data/.bss exist: no libc calls synthesised from its loops.
PORT_CFLAGS := -ffreestanding -fno-tree-loop-distribute-patterns -ffunction-sections \
	-fdata-sections -I$(PORT_DIR)/common $(PORT_DEFS)
# No C start files, newlib-nano only for mem* helpers, no _sbrk: malloc cannot link. The
# stack reserved at the top of RAM is the profile's memory.stack_bytes.
PORT_LDFLAGS := -nostartfiles --specs=nano.specs -Wl,--gc-sections \
	-Wl,--defsym=ESNN_STACK_BYTES=$(DEVICE_STACK_BYTES) \
	-L$(PORT_DIR)/common -T$(PORT_DIR)/$(PORT_LD)
TARGET := firmware.elf

# edgesnn port: 8-bit AVR (the -mmcu comes from the profile's cflags), run in simavr.
# Included by a generated project's Makefile after its device.mk. Builds the firmware with
# avr-gcc and, for a profile that runs in simavr, the runner esnn_simavr (host gcc, libsimavr)
# next to it.
PORT_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
CROSS ?= avr-
CC := $(CROSS)gcc
SIZE := $(CROSS)size
OBJCOPY := $(CROSS)objcopy
PORT_SRCS := port_avr.c
# The model stays in flash, read through __memx pointers (esnn_rom.h): a GNU C named address
# space, hence gnu99 (esnn_rom.h also turns off the ivopts pass avr-gcc 5.4 crashes in).
PORT_CFLAGS := -std=gnu99 -DESNN_MODEL_IN_FLASH
PORT_LDFLAGS := -Wl,--gc-sections
TARGET := firmware.elf
HOSTCC ?= gcc
SIMAVR_FLAGS = $(shell pkg-config --cflags simavr 2>/dev/null)
SIMAVR_LIBS = $(shell pkg-config --libs simavr 2>/dev/null)
# the simulator runner, only for a profile that runs in it (device.mk: DEVICE_EMULATOR)
PORT_EXTRA := $(if $(filter esnn_simavr,$(DEVICE_EMULATOR)),$(ESNN_DIR)/esnn_simavr)
$(ESNN_DIR)/esnn_simavr: $(PORT_DIR)/sim/esnn_simavr.c
	@test -n "$(SIMAVR_LIBS)" || { echo "libsimavr not found (Debian: apt install libsimavr-dev libelf-dev pkg-config)" >&2; exit 1; }
	$(HOSTCC) -std=gnu99 -O2 -Wall -Wextra -Werror $(SIMAVR_FLAGS) $< -o $@ $(SIMAVR_LIBS) -lelf

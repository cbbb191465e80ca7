# int8 ANN baseline firmware for benchmarks/ann_baseline.py and tests/test_ann_qemu.py:
#   make -f ann.mk -C firmware/ports/lm3s6965evb/bench OUT=DIR
# DIR holds ann_model.h (ANN_BLOB, ANN_INPUT_SIZE, ANN_ARENA_BYTES) and the device.mk and
# esnn_board.h generated from the device profile (any Cortex-M port: DEVICE_PORT). Same port,
# startup and flags as the edgesnn firmware for that board; OPT overrides -Os.
OUT ?= build
OPT ?= -Os
EXTRA_CFLAGS ?=
FW := $(abspath ../../..)
include $(OUT)/device.mk
include $(FW)/ports/$(DEVICE_PORT)/port.mk
SRCS := ann_bench.c $(FW)/runtime/esnn_ann.c $(FW)/runtime/esnn_crc.c \
	$(FW)/runtime/esnn_board.c $(addprefix $(PORT_DIR)/,$(PORT_SRCS))
CFLAGS := -std=c99 -Wall -Wextra -Werror -pedantic $(filter-out -O%,$(DEVICE_CFLAGS)) $(OPT) \
	$(PORT_CFLAGS) -I$(FW)/runtime -I$(OUT) -DESNN_MAX_CLASSES=16 $(EXTRA_CFLAGS)

$(OUT)/ann_bench.elf: $(SRCS) $(OUT)/ann_model.h $(OUT)/esnn_board.h \
		$(wildcard $(PORT_DIR)/*.ld) $(FW)/runtime/esnn_ann.h
	$(CC) $(CFLAGS) $(SRCS) $(DEVICE_LDFLAGS) $(PORT_LDFLAGS) -o $@

# edgesnn port: TI LM3S6965 (Cortex-M3) in QEMU lm3s6965evb. Included by a generated
# project's Makefile after its device.mk (and by cortexm_common/selftest, lm3s6965evb/bench).
PORT_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
PORT_SRCS := port_lm3s6965evb.c
PORT_LD := lm3s6965evb.ld
include $(PORT_DIR)/common/cortexm.mk

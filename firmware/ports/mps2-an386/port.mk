# edgesnn port: Arm MPS2 AN386 (Cortex-M4F) in QEMU mps2-an386. Included by a generated
# project's Makefile after its device.mk (and by cortexm_common/selftest).
PORT_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
PORT_SRCS := port_mps2_an386.c
PORT_LD := mps2-an386.ld
include $(PORT_DIR)/common/cortexm.mk

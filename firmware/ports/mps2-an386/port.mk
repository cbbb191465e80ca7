# edgesnn port: Arm MPS2 AN386 (Cortex-M4F) in QEMU mps2-an386: CMSDK UART0 at 0x40004000
# (AN386 memory map). Included by a generated project's Makefile after its device.mk.
PORT_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
PORT_SRCS := common/cm_cmsdk_uart.c
PORT_DEFS := -DESNN_CMSDK_UART_BASE=0x40004000u
PORT_LD := mps2-an386.ld
include $(PORT_DIR)/common/cortexm.mk

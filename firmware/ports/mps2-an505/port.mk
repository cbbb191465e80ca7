# edgesnn port: Arm MPS2 AN505 (Cortex-M33) in QEMU mps2-an505, running Secure: CMSDK UART0
# at its Secure alias 0x50200000 (Non-secure 0x40200000; AN505 memory map). Included by a
# generated project's Makefile after its device.mk.
PORT_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
PORT_SRCS := common/cm_cmsdk_uart.c
PORT_DEFS := -DESNN_CMSDK_UART_BASE=0x50200000u
PORT_LD := mps2-an505.ld
include $(PORT_DIR)/common/cortexm.mk

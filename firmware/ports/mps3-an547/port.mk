# edgesnn port: Arm MPS3 AN547 (Cortex-M55) in QEMU mps3-an547, running Secure: CMSDK UART0
# at its Secure alias 0x59303000 (Non-secure 0x49303000; AN547 memory map). Included by a
# generated project's Makefile after its device.mk.
PORT_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
PORT_SRCS := common/cm_cmsdk_uart.c
PORT_DEFS := -DESNN_CMSDK_UART_BASE=0x59303000u
PORT_LD := mps3-an547.ld
include $(PORT_DIR)/common/cortexm.mk

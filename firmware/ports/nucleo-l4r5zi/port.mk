# edgesnn port: ST NUCLEO-L4R5ZI (STM32L4R5ZI, Cortex-M4F, 120 MHz), a physical board.
# Included by a generated project's Makefile after its device.mk (and by
# cortexm_common/selftest). Cycles come from the DWT cycle counter (unit 0).
PORT_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
PORT_SRCS := port_nucleo_l4r5zi.c
PORT_LD := nucleo-l4r5zi.ld
# esnn_port_clock_hz() is the clock the port reached, not the profile's (runtime/esnn_board.c)
PORT_DEFS := -DESNN_PORT_OWN_CLOCK_HZ
include $(PORT_DIR)/common/cortexm.mk

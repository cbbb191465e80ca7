# edgesnn port: BBC micro:bit v1 (nRF51822, Cortex-M0, ARMv6-M) in QEMU microbit. Its own
# cycle counter (TIMER0; the nRF51 has no SysTick). Included by a generated project's
# Makefile after its device.mk.
PORT_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
PORT_SRCS := port_microbit.c
PORT_CYCLES :=
PORT_LD := microbit.ld
include $(PORT_DIR)/common/cortexm.mk

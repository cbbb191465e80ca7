# edgesnn port: the host build (POSIX process; --pty / --stdio / --tcp PORT). Included by a
# generated project's Makefile. Defines the toolchain, the port sources (relative to this
# folder), compile and link flags, and the image name. Override CC on the make command line
# (e.g. `make CC=clang`); sanitizers via EXTRA_CFLAGS / EXTRA_LDFLAGS.
PORT_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
CROSS ?=
CC := $(CROSS)gcc
SIZE := $(CROSS)size
OBJCOPY :=
PORT_SRCS := esnn_port_host.c
# main.c passes argv to the port (esnn_port_host_args) when this is defined
PORT_CFLAGS := -DESNN_PORT_HOST_ARGS
PORT_LDFLAGS :=
TARGET := firmware

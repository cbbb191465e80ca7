/* The board port: the only way the runtime reaches hardware. One small C file per board
 * (firmware/ports/<name>/) implements these. */
#ifndef ESNN_PORT_H
#define ESNN_PORT_H

#include <stdint.h>

void esnn_port_init(void);
int esnn_port_getc(void); /* blocking; 0..255, or -1 when the link is closed -> esnn_app_run returns */
void esnn_port_putc(uint8_t c);
void esnn_port_flush(void);
void esnn_port_cycles_start(void);
uint32_t esnn_port_cycles_read(void);
/* These three return the generated esnn_board.h constants by default (runtime/esnn_board.c);
 * a port that measures one defines it and opts out (ESNN_PORT_OWN_CYCLE_UNIT/_CLOCK_HZ). */
uint8_t esnn_port_cycle_unit(void); /* 0 cycles, 1 instructions, 2 ns */
uint32_t esnn_port_clock_hz(void);
const char *esnn_port_board(void);

#endif /* ESNN_PORT_H */

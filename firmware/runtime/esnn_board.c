/* The port-interface functions (esnn_port.h) that return the board constants generated from
 * the device profile (esnn_board.h), once for every port. Linked next to the port by the
 * generated Makefile / CMake example and the in-tree selftest and bench builds. A port that
 * measures one itself defines it and opts out here through its port.mk flags:
 * ESNN_PORT_OWN_CYCLE_UNIT (cortexm.mk with cm_cycles.c: DWT or SysTick, known at run time),
 * ESNN_PORT_OWN_CLOCK_HZ (nucleo-l4r5zi: the clock it reached). */
#include <stdint.h>

#include "esnn_board.h"
#include "esnn_port.h"

#ifndef ESNN_PORT_OWN_CYCLE_UNIT
uint8_t esnn_port_cycle_unit(void)
{
    return (uint8_t)ESNN_BOARD_CYCLE_UNIT;
}
#endif

#ifndef ESNN_PORT_OWN_CLOCK_HZ
uint32_t esnn_port_clock_hz(void)
{
    return (uint32_t)ESNN_BOARD_CLOCK_HZ;
}
#endif

const char *esnn_port_board(void)
{
    return ESNN_BOARD_NAME;
}

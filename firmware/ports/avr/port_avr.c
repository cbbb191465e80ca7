/* edgesnn port for 8-bit AVR boards (ATmega2560: Arduino Mega 2560; the same code fits the
 * ATmega328P of the Uno), bare metal with avr-libc, as run by simavr (sim/esnn_simavr.c).
 *
 * Serial: USART0 (the pins wired to the board's USB-serial chip), 8N1, double speed
 * (U2X0: UBRR0 = clock / (8 baud) - 1, 16 at 16 MHz and 115200 baud, as the Arduino core
 * sets it), polled. Cycles: Timer1 on the CPU clock (prescaler 1), extended to 32 bits by
 * counting its overflows in TIMER1_OVF_vect: exact CPU cycles in simavr and on the chip
 * (ATmega640/1280/2560 and ATmega328P datasheets, "USART0" and "16-bit Timer/Counter1").
 * The board name, clock and baud rate come from esnn_board.h (generated from the profile).
 * The model stays in flash: the port.mk builds with ESNN_MODEL_IN_FLASH (esnn_rom.h). */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <stdint.h>

#include "esnn_board.h"
#include "esnn_port.h"

#define UBRR_VALUE ((ESNN_BOARD_CLOCK_HZ + 4ul * ESNN_BOARD_BAUD) / (8ul * ESNN_BOARD_BAUD) - 1ul)
#if UBRR_VALUE > 4095ul || UBRR_VALUE < 1ul
#error "serial.baudrate cannot be reached from core.clock_hz with USART0 in double speed"
#endif

static volatile uint16_t t1_overflows;

ISR(TIMER1_OVF_vect)
{
    t1_overflows++;
}

void esnn_port_init(void)
{
    UBRR0H = (uint8_t)(UBRR_VALUE >> 8);
    UBRR0L = (uint8_t)UBRR_VALUE;
    UCSR0A = (uint8_t)_BV(U2X0);
    UCSR0C = (uint8_t)(_BV(UCSZ01) | _BV(UCSZ00)); /* 8 data bits, no parity, 1 stop bit */
    UCSR0B = (uint8_t)(_BV(RXEN0) | _BV(TXEN0));
    TCCR1A = 0u;
    TCCR1B = (uint8_t)_BV(CS10); /* Timer1 on clk/1 */
    TIMSK1 = (uint8_t)_BV(TOIE1);
    sei();
}

int esnn_port_getc(void)
{
    while (!(UCSR0A & _BV(RXC0))) {
    }
    return (int)UDR0;
}

void esnn_port_putc(uint8_t c)
{
    while (!(UCSR0A & _BV(UDRE0))) {
    }
    UDR0 = c;
}

void esnn_port_flush(void)
{
    while (!(UCSR0A & _BV(UDRE0))) {
    }
}

void esnn_port_cycles_start(void)
{
    uint8_t sreg = SREG;
    cli();
    TCNT1 = 0u;
    TIFR1 = (uint8_t)_BV(TOV1); /* drop an overflow that is still pending */
    t1_overflows = 0u;
    SREG = sreg;
}

uint32_t esnn_port_cycles_read(void)
{
    uint8_t sreg = SREG;
    uint16_t lo, hi;
    cli();
    lo = TCNT1;
    hi = t1_overflows;
    if ((TIFR1 & _BV(TOV1)) && lo < 0x8000u) {
        hi++; /* wrapped after the interrupts were masked: not counted yet */
    }
    SREG = sreg;
    return ((uint32_t)hi << 16) | lo;
}

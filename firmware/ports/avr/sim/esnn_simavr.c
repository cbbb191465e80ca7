/* esnn_simavr: run an edgesnn AVR firmware in simavr with its USART0 on a pseudo-terminal.
 *
 *     esnn_simavr -m atmega2560 -f 16000000 firmware.elf
 *
 * Loads the ELF into a simulated ATmega (libsimavr), opens a pseudo-terminal, prints its path
 * and runs the core until it stops or crashes. Bytes the firmware transmits are written to the
 * terminal; bytes the host writes are handed to USART0 only while the UART signals XON (its
 * input FIFO has room), the flow control avr_uart.h describes, so a host may write whole
 * frames: the kernel's terminal buffer holds the rest. (simavr's uart_pty part drops input
 * beyond its 512-byte FIFO.) simavr counts CPU cycles; the firmware times inferences with
 * Timer1, which simavr models cycle by cycle. Built by the AVR port.mk with the host compiler
 * and libsimavr.
 *
 * Stack: with ESNN_SIMAVR_STACK=FILE in the environment it follows the stack pointer after
 * every instruction (interrupt entries included) and keeps in FILE one line
 * `ramend sp_min peak_bytes pc` (peak = RAMEND - lowest SP: the bytes the stack ever held; pc:
 * the byte address of the instruction that reached it), rewritten when the stack grows deeper.
 * A frame is set up with SPH and SPL written one after the other (avr-gcc's prologue: out SPH;
 * out SREG; out SPL), so for two instructions SP can read up to 255 bytes too low: a depth
 * counts once SP has held it for three instructions in a row. */
#define _DEFAULT_SOURCE /* cfmakeraw */
#define _XOPEN_SOURCE 600
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "avr_uart.h"
#include "sim_avr.h"
#include "sim_elf.h"
#include "sim_io.h"
#include "sim_irq.h"

#define STEPS_PER_POLL 2000 /* avr_run calls between two looks at the terminal */

static unsigned char in_buf[4096];
static size_t in_len, in_pos;
static unsigned char out_buf[4096];
static size_t out_len;
static int xon = 1;
static avr_irq_t *uart_in;
static const char *stack_file;

/* The stack's low-water mark, written to stack_file (see the top of this file). */
static void write_stack(const avr_t *avr, unsigned sp_min, unsigned long pc)
{
    FILE *f = fopen(stack_file, "w");
    if (f != NULL) {
        fprintf(f, "%u %u %u %lu\n", (unsigned)avr->ramend, sp_min, (unsigned)avr->ramend - sp_min,
                pc);
        fclose(f);
    }
}

static void on_output(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    if (out_len < sizeof out_buf) {
        out_buf[out_len++] = (unsigned char)value;
    }
}

static void feed(void)
{
    while (xon && in_pos < in_len) {
        avr_raise_irq(uart_in, in_buf[in_pos++]); /* may signal XOFF before returning */
    }
}

static void on_xon(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    (void)param;
    xon = 1;
    feed();
}

static void on_xoff(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    (void)param;
    xon = 0;
}

static int open_pty(char *name, size_t len)
{
    struct termios tio;
    int fd = posix_openpt(O_RDWR | O_NOCTTY);
    if (fd < 0 || grantpt(fd) != 0 || unlockpt(fd) != 0 || ptsname(fd) == NULL) {
        return -1;
    }
    snprintf(name, len, "%s", ptsname(fd));
    if (tcgetattr(fd, &tio) == 0) {
        cfmakeraw(&tio);
        tcsetattr(fd, TCSANOW, &tio);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void pump(int fd)
{
    ssize_t n;
    size_t done = 0;
    if (in_pos == in_len) {
        in_pos = in_len = 0;
        n = read(fd, in_buf, sizeof in_buf);
        if (n > 0) {
            in_len = (size_t)n;
        }
    }
    feed();
    while (done < out_len) {
        n = write(fd, out_buf + done, out_len - done);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN) {
                break;
            }
            usleep(100); /* the host has not read yet; its terminal buffer is full */
            continue;
        }
        done += (size_t)n;
    }
    out_len = 0;
}

int main(int argc, char **argv)
{
    const char *mcu = NULL, *elf = NULL;
    unsigned long hz = 0;
    char name[128];
    elf_firmware_t fw;
    avr_t *avr;
    uint32_t flags = 0;
    int i, fd, state = cpu_Running;
    unsigned sp, sp1 = 0u, sp2 = 0u, held, sp_min = 0xFFFFu, sp_written = 0xFFFFu;
    unsigned long pc_min = 0;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) {
            mcu = argv[++i];
        } else if (!strcmp(argv[i], "-f") && i + 1 < argc) {
            hz = strtoul(argv[++i], NULL, 10);
        } else if (argv[i][0] != '-' && elf == NULL) {
            elf = argv[i];
        } else {
            elf = NULL;
            break;
        }
    }
    if (mcu == NULL || elf == NULL || hz == 0) {
        fprintf(stderr, "usage: %s -m MCU -f HZ FIRMWARE.elf\n", argv[0]);
        return 2;
    }
    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(elf, &fw) != 0) {
        fprintf(stderr, "esnn_simavr: cannot read %s\n", elf);
        return 2;
    }
    snprintf(fw.mmcu, sizeof fw.mmcu, "%s", mcu);
    fw.frequency = (uint32_t)hz;
    avr = avr_make_mcu_by_name(mcu);
    if (avr == NULL) {
        fprintf(stderr, "esnn_simavr: simavr does not know the MCU %s\n", mcu);
        return 2;
    }
    avr_init(avr);
    avr_load_firmware(avr, &fw);
    /* no console echo of the binary protocol, no sleeping while the firmware polls */
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT),
                            on_output, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON),
                            on_xon, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF),
                            on_xoff, NULL);
    fd = open_pty(name, sizeof name);
    if (fd < 0) {
        fprintf(stderr, "esnn_simavr: cannot open a pseudo-terminal: %s\n", strerror(errno));
        return 2;
    }
    stack_file = getenv("ESNN_SIMAVR_STACK");
    printf("esnn_simavr: %s at %lu Hz, USART0 on %s\n", mcu, hz, name);
    fflush(stdout);
    while (state != cpu_Done && state != cpu_Crashed) {
        for (i = 0; i < STEPS_PER_POLL && state != cpu_Done && state != cpu_Crashed; i++) {
            state = avr_run(avr);
            sp = (unsigned)avr->data[R_SPL] | ((unsigned)avr->data[R_SPH] << 8);
            held = sp > sp1 ? sp : sp1; /* the depth of the last three instructions */
            held = held > sp2 ? held : sp2;
            sp2 = sp1;
            sp1 = sp;
            if (sp2 != 0u && held < sp_min) { /* 0: not set up yet */
                sp_min = held;
                pc_min = (unsigned long)avr->pc;
            }
        }
        if (stack_file != NULL && sp_min != sp_written) {
            write_stack(avr, sp_min, pc_min);
            sp_written = sp_min;
        }
        pump(fd);
    }
    fprintf(stderr, "esnn_simavr: core %s after %llu cycles\n",
            state == cpu_Crashed ? "crashed" : "stopped", (unsigned long long)avr->cycle);
    avr_terminate(avr);
    return state == cpu_Crashed ? 1 : 0;
}

/* esnn_simavr: run an edgesnn AVR firmware in simavr with its USART0 on a pseudo-terminal.
 *
 *     esnn_simavr -m atmega2560 -f 16000000 firmware.elf
 *
 * Loads the ELF into a simulated ATmega (libsimavr), bridges USART0 to a pseudo-terminal with
 * simavr's uart_pty part (which paces input with the UART's XON/XOFF signals, so a host can
 * write whole frames), prints the terminal's path and runs until the core stops or crashes.
 * simavr counts CPU cycles; the firmware times inferences with Timer1, which simavr models
 * cycle by cycle. Built by the AVR port.mk with the host compiler and libsimavr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_avr.h"
#include "sim_elf.h"
#include "uart_pty.h"

static void usage(const char *prog)
{
    fprintf(stderr, "usage: %s -m MCU -f HZ FIRMWARE.elf\n", prog);
}

int main(int argc, char **argv)
{
    const char *mcu = NULL, *elf = NULL;
    unsigned long hz = 0;
    elf_firmware_t fw;
    avr_t *avr;
    uart_pty_t pty;
    int i, state;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) {
            mcu = argv[++i];
        } else if (!strcmp(argv[i], "-f") && i + 1 < argc) {
            hz = strtoul(argv[++i], NULL, 10);
        } else if (argv[i][0] != '-' && elf == NULL) {
            elf = argv[i];
        } else {
            usage(argv[0]);
            return 2;
        }
    }
    if (mcu == NULL || elf == NULL || hz == 0) {
        usage(argv[0]);
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
    uart_pty_init(avr, &pty);
    uart_pty_connect(&pty, '0');
    printf("esnn_simavr: %s at %lu Hz, USART0 on %s\n", mcu, hz, pty.pty.slavename);
    fflush(stdout);
    do {
        state = avr_run(avr);
    } while (state != cpu_Done && state != cpu_Crashed);
    fprintf(stderr, "esnn_simavr: core %s after %llu cycles\n",
            state == cpu_Crashed ? "crashed" : "stopped", (unsigned long long)avr->cycle);
    uart_pty_stop(&pty);
    avr_terminate(avr);
    return state == cpu_Crashed ? 1 : 0;
}

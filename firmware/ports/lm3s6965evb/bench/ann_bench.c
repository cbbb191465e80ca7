/* int8 ANN baseline firmware for benchmarks/ann_baseline.py: the EANN blob (generated
 * ann_model.h: ANN_BLOB[], aligned to 8) run by firmware/runtime/esnn_ann.c, timed with the
 * port's esnn_port_cycles_* counter (instructions under QEMU -icount), same port, startup
 * and flags as the edgesnn firmware. Built for any Cortex-M port: ann.mk PORT=<board>.
 *
 * Link protocol (little-endian): the host sends input_size bytes; the device answers
 *   u32 cycles, u8 cycle unit, u8 status (esnn_status_t), u8 prediction, u8 n_layers,
 *   int32 logits[n_classes], u32 macs[n_layers], u32 active[n_layers]
 * A blob that fails esnn_ann_init answers every request with that status and no arrays
 * (prediction = n_layers = 0). */
#include <stdint.h>

#include "ann_model.h"
#include "esnn_ann.h"
#include "esnn_port.h"

int main(void);

static esnn_ann_model_t model;
static uint32_t x_words[(ANN_INPUT_SIZE + 3u) / 4u];
static uint32_t arena_words[(ANN_ARENA_BYTES + 3u) / 4u];
static esnn_ann_result_t res;

static void put32(uint32_t v)
{
    uint32_t i;
    for (i = 0u; i < 4u; ++i) {
        esnn_port_putc((uint8_t)(v >> (8u * i)));
    }
}

int main(void)
{
    uint8_t *x = (uint8_t *)x_words;
    esnn_status_t init;
    esnn_port_init();
    init = esnn_ann_init(&model, ANN_BLOB, (uint32_t)sizeof(ANN_BLOB));
    for (;;) {
        uint32_t i;
        uint32_t cycles;
        esnn_status_t st = init;
        for (i = 0u; i < ANN_INPUT_SIZE; ++i) {
            int c = esnn_port_getc();
            if (c < 0) {
                return 0;
            }
            x[i] = (uint8_t)c;
        }
        esnn_port_cycles_start();
        if (st == ESNN_OK) {
            st = esnn_ann_infer(&model, x, ANN_INPUT_SIZE, (uint8_t *)arena_words,
                                (uint32_t)sizeof(arena_words), &res);
        }
        cycles = esnn_port_cycles_read();
        put32(cycles);
        esnn_port_putc(esnn_port_cycle_unit());
        esnn_port_putc((uint8_t)st);
        if (st != ESNN_OK) {
            esnn_port_putc(0u);
            esnn_port_putc(0u);
            esnn_port_flush();
            continue;
        }
        esnn_port_putc(res.prediction);
        esnn_port_putc(res.n_layers);
        for (i = 0u; i < res.n_classes; ++i) {
            put32((uint32_t)res.logits[i]);
        }
        for (i = 0u; i < res.n_layers; ++i) {
            put32(res.macs[i]);
        }
        for (i = 0u; i < res.n_layers; ++i) {
            put32(res.active[i]);
        }
        esnn_port_flush();
    }
}

/* Device side of firmware/PROTOCOL.md: frames = COBS(type flags seq len payload crc32) 0x00.
 * Reaches the board only through esnn_port.h. Buffers are static (counted in .bss), sized by
 * ESNN_PROTO_MAX_PAYLOAD and the build's ESNN_MAX_LAYERS / ESNN_MAX_CLASSES. */
#include "esnn_proto.h"

#include "esnn_port.h"

#define BODY_MAX (ESNN_PROTO_OVERHEAD + ESNN_PROTO_MAX_PAYLOAD)
#define RX_MAX (BODY_MAX + BODY_MAX / 254 + 1) /* largest COBS-encoded body */
#define SEQ_UNKNOWN 0xFFFFu

static uint8_t rx[RX_MAX];
static uint8_t tx[ESNN_PROTO_TX_MAX];
static esnn_model_t model;
static esnn_result_t result;

static void wr16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, v);
    wr16(p + 2, v >> 16);
}

/* COBS-encode `n` bytes straight to the port (no second buffer), then the 0x00 delimiter. */
static void put_cobs(const uint8_t *p, uint32_t n)
{
    uint32_t i = 0, r, k;
    for (;;) {
        r = 0;
        while (i + r < n && p[i + r] != 0 && r < 254u) r++;
        esnn_port_putc((uint8_t)(r + 1u));
        for (k = 0; k < r; k++) esnn_port_putc(p[i + k]);
        i += r;
        if (i >= n) break;
        if (r == 254u) continue; /* a full block carries no zero */
        i++;                     /* the zero this block stands for */
        if (i == n) {            /* the body ended with a zero */
            esnn_port_putc(1);
            break;
        }
    }
    esnn_port_putc(0);
}

/* The payload must already be in tx[ESNN_PROTO_HEADER ...]. */
static void send_tx(uint8_t type, uint16_t seq, uint16_t len)
{
    tx[0] = type;
    tx[1] = 1; /* flags bit 0: sent by the device */
    wr16(tx + 2, seq);
    wr16(tx + 4, len);
    wr32(tx + ESNN_PROTO_HEADER + len, esnn_crc32(0, tx, ESNN_PROTO_HEADER + (uint32_t)len));
    put_cobs(tx, ESNN_PROTO_OVERHEAD + (uint32_t)len);
    esnn_port_flush();
}

void esnn_proto_send(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len)
{
    uint16_t i;
    if (len > ESNN_PROTO_TX_MAX - ESNN_PROTO_OVERHEAD) return;
    for (i = 0; i < len; i++) tx[ESNN_PROTO_HEADER + i] = payload[i];
    send_tx(type, seq, len);
}

static void send_error(uint16_t seq, esnn_status_t st, uint8_t req_type)
{
    uint8_t *p = tx + ESNN_PROTO_HEADER;
    wr16(p, (uint32_t)st);
    p[2] = req_type;
    p[3] = 0;
    send_tx(ESNN_MSG_ERROR, seq, 4);
}

static void send_hello(uint16_t seq, int valid)
{
    uint8_t *p = tx + ESNN_PROTO_HEADER;
    const char *name = esnn_port_board();
    uint32_t i, n = 0;
    for (i = 0; i < 37; i++) p[i] = 0;
    p[0] = ESNN_PROTO_VERSION;
    p[1] = ESNN_VERSION_MAJOR;
    p[2] = ESNN_VERSION_MINOR;
    p[3] = ESNN_VERSION_PATCH;
    wr32(p + 4, esnn_port_clock_hz());
    p[19] = esnn_port_cycle_unit();
    if (valid) {
        wr32(p + 8, model.arena_bytes);
        wr16(p + 12, model.input_size);
        wr16(p + 14, model.n_classes);
        wr16(p + 16, model.steps);
        p[18] = (uint8_t)model.n_layers;
        for (i = 0; i < 16; i++) p[20 + i] = model.hash[i];
    }
    while (name != 0 && n < 32u && name[n] != '\0') {
        p[37 + n] = (uint8_t)name[n];
        n++;
    }
    p[36] = (uint8_t)n;
    send_tx(ESNN_MSG_HELLO, seq, (uint16_t)(37u + n));
}

static void send_result(uint16_t seq, uint32_t cycles)
{
    uint8_t *p = tx + ESNN_PROTO_HEADER;
    uint32_t i, L = result.n_layers, C = result.n_classes, o = 12;
    p[0] = result.prediction;
    p[1] = (uint8_t)L;
    wr16(p + 2, C);
    wr32(p + 4, cycles);
    wr32(p + 8, result.input_spikes);
    for (i = 0; i < C; i++, o += 2) wr16(p + o, result.counts[i]);
    for (i = 0; i < L; i++, o += 4) wr32(p + o, result.ops[i]);
    for (i = 0; i < L; i++, o += 4) wr32(p + o, result.spikes[i]);
    send_tx(ESNN_MSG_RESULT, seq, (uint16_t)o);
}

static void handle_frame(uint32_t n, esnn_status_t model_st, uint8_t *arena, uint32_t arena_len)
{
    int32_t d;
    uint32_t plen, cycles;
    uint16_t seq;
    uint8_t type;
    esnn_status_t st;

    if (n > RX_MAX) {
        send_error(SEQ_UNKNOWN, ESNN_ERR_FRAME_CRC, 0);
        return;
    }
    d = esnn_cobs_decode(rx, n, rx);
    if (d < ESNN_PROTO_OVERHEAD) {
        send_error(d >= 4 ? (uint16_t)esnn_rd16(rx + 2) : SEQ_UNKNOWN, ESNN_ERR_FRAME_CRC,
                   d >= 1 ? rx[0] : 0);
        return;
    }
    type = rx[0];
    seq = (uint16_t)esnn_rd16(rx + 2);
    plen = esnn_rd16(rx + 4);
    if (plen != (uint32_t)d - ESNN_PROTO_OVERHEAD ||
        esnn_crc32(0, rx, ESNN_PROTO_HEADER + plen) != esnn_rd32(rx + ESNN_PROTO_HEADER + plen)) {
        send_error(seq, ESNN_ERR_FRAME_CRC, type);
        return;
    }
    if (rx[1] != 0) {
        send_error(seq, ESNN_ERR_FRAME, type);
        return;
    }
    if (type == ESNN_MSG_PING) {
        send_hello(seq, model_st == ESNN_OK);
    } else if (type == ESNN_MSG_INFER) {
        if (model_st != ESNN_OK) {
            send_error(seq, model_st, type);
            return;
        }
        esnn_port_cycles_start();
        st = esnn_infer(&model, rx + ESNN_PROTO_HEADER, plen, arena, arena_len, &result);
        cycles = esnn_port_cycles_read();
        if (st != ESNN_OK) send_error(seq, st, type);
        else send_result(seq, cycles);
    } else {
        send_error(seq, ESNN_ERR_UNKNOWN_TYPE, type);
    }
}

esnn_status_t esnn_app_run(const uint8_t *esg, uint32_t esg_len, uint8_t *arena, uint32_t arena_len)
{
    esnn_status_t st = esnn_model_init(&model, esg, esg_len);
    uint32_t n = 0;
    int c;
    if (st == ESNN_OK && (arena == 0 || arena_len < model.arena_bytes)) st = ESNN_ERR_ARENA_TOO_SMALL;
    send_hello(0, st == ESNN_OK);
    for (;;) {
        c = esnn_port_getc();
        if (c < 0) return st;
        if (c != 0) {
            if (n < RX_MAX) rx[n] = (uint8_t)c;
            if (n <= RX_MAX) n++; /* n == RX_MAX + 1 marks an overlong frame */
            continue;
        }
        if (n != 0) handle_frame(n, st, arena, arena_len);
        n = 0;
    }
}

/* Device side of firmware/PROTOCOL.md (version 2): frames = COBS(type flags seq len payload
 * crc32) 0x00, decoded as the bytes arrive (no whole-frame buffer). An INFER payload goes
 * straight into the input buffer, any other payload into a receive buffer of
 * ESNN_PROTO_CHUNK_MAX bytes; DATA chunks are decoded from there into the input buffer.
 * Reaches the board only through esnn_port.h. All buffers are static (counted in .bss). */
#include "esnn_proto.h"

#include "esnn_port.h"

#define SEQ_UNKNOWN 0xFFFFu
/* decoded bytes counted per frame: beyond any valid frame (10 + 65535), then it saturates */
#define RX_COUNT_MAX (ESNN_PROTO_OVERHEAD + 0x10000u)
#ifdef ESNN_INPUT_SIZE
#define INPUT_MAX ESNN_INPUT_SIZE
#else
#define INPUT_MAX ESNN_PROTO_MAX_PAYLOAD
#endif
#if INPUT_MAX > ESNN_PROTO_MAX_PAYLOAD
#error "the model's input_size exceeds ESNN_PROTO_MAX_PAYLOAD"
#endif
#define ENCODINGS ((1u << ESNN_ENC_RAW) | (1u << ESNN_ENC_ZRL))
#ifdef ESNN_ANN
#define REQ_FLAGS (ESNN_FLAG_ANSWER | ESNN_FLAG_ANN)
#else
#define REQ_FLAGS ESNN_FLAG_ANSWER
#endif

/* Frame receiver: COBS block state, the decoded header and CRC, where the payload goes. */
typedef struct {
    uint32_t n;   /* decoded bytes of this frame so far (saturating) */
    uint32_t len; /* payload length from the header */
    uint32_t crc; /* CRC-32 over the decoded header and payload so far */
    uint8_t *dst; /* payload destination: input[] for INFER, rxp[] otherwise */
    uint32_t cap; /* its size */
    uint8_t hdr[ESNN_PROTO_HEADER];
    uint8_t crc_rx[4];
    uint8_t code; /* code byte of the current COBS block (0: none yet) */
    uint8_t left; /* bytes left in the current COBS block */
} rx_t;

/* The request being assembled from DATA chunks (at most one: a new seq replaces it). */
typedef struct {
    uint32_t got_lo, got_hi; /* chunks received, bit i = chunk i */
    uint32_t filled;         /* pixels the received chunks cover */
    uint16_t seq;
    uint8_t total;
    uint8_t valid;
} asm_t;

#ifdef ESNN_ANN
/* esnn_ann_infer reads its input 4-byte aligned */
static union {
    uint32_t align;
    uint8_t b[INPUT_MAX];
} input_buf;
#define input input_buf.b
#else
static uint8_t input[INPUT_MAX];
#endif
static uint8_t rxp[ESNN_PROTO_CHUNK_MAX];
static uint8_t tx[ESNN_PROTO_TX_MAX];
static rx_t rx;
static asm_t as;
static esnn_model_t model;
static esnn_result_t result;
static uint32_t done_cycles; /* cycles of the inference whose RESULT can be sent again */
static uint16_t done_seq;
static uint8_t done_valid;
#ifdef ESNN_ANN
/* The .esg's ANN section (esnn_ann.h), validated at start; ann_st says why it cannot run. */
static esnn_ann_model_t ann;
static esnn_ann_result_t ann_result;
static esnn_status_t ann_st;
static uint8_t done_ann; /* the answered request ran the ANN */
#endif

uint32_t esnn_proto_ram_bytes(void)
{
    return (uint32_t)(sizeof input + sizeof rxp + sizeof tx + sizeof rx + sizeof as +
                      sizeof done_cycles + sizeof done_seq + sizeof done_valid);
}

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
    tx[1] = ESNN_FLAG_DEVICE;
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
    for (i = 0; i < 39; i++) p[i] = 0;
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
    p[36] = (uint8_t)ENCODINGS;
#ifdef ESNN_ANN
    if (valid && ann_st == ESNN_OK) p[36] = (uint8_t)(p[36] | ESNN_HELLO_ANN);
#endif
    p[37] = (uint8_t)ESNN_PROTO_CHUNK_MAX;
    while (name != 0 && n < 32u && name[n] != '\0') {
        p[39 + n] = (uint8_t)name[n];
        n++;
    }
    p[38] = (uint8_t)n;
    send_tx(ESNN_MSG_HELLO, seq, (uint16_t)(39u + n));
}

static void send_result(uint16_t seq)
{
    uint8_t *p = tx + ESNN_PROTO_HEADER;
    uint32_t i, L = result.n_layers, C = result.n_classes, o = 12;
#ifdef ESNN_ANN
    if (done_ann) { /* ANN_RESULT */
        L = ann_result.n_layers;
        C = ann_result.n_classes;
        o = 8;
        p[0] = ann_result.prediction;
        p[1] = (uint8_t)L;
        wr16(p + 2, C);
        wr32(p + 4, done_cycles);
        for (i = 0; i < C; i++, o += 4) wr32(p + o, (uint32_t)ann_result.logits[i]);
        for (i = 0; i < L; i++, o += 4) wr32(p + o, ann_result.macs[i]);
        for (i = 0; i < L; i++, o += 4) wr32(p + o, ann_result.active[i]);
        send_tx(ESNN_MSG_ANN_RESULT, seq, (uint16_t)o);
        return;
    }
#endif
    p[0] = result.prediction;
    p[1] = (uint8_t)L;
    wr16(p + 2, C);
    wr32(p + 4, done_cycles);
    wr32(p + 8, result.input_spikes);
    for (i = 0; i < C; i++, o += 2) wr16(p + o, result.counts[i]);
    for (i = 0; i < L; i++, o += 4) wr32(p + o, result.ops[i]);
    for (i = 0; i < L; i++, o += 4) wr32(p + o, result.spikes[i]);
    send_tx(ESNN_MSG_RESULT, seq, (uint16_t)o);
}

static void send_nak(uint16_t seq)
{
    uint8_t *p = tx + ESNN_PROTO_HEADER;
    uint32_t lo = 0, hi = 0, t = 0;
    if (as.valid && as.seq == seq) {
        t = as.total;
        lo = ~as.got_lo & (t >= 32u ? 0xFFFFFFFFu : ((uint32_t)1u << t) - 1u);
        hi = t <= 32u ? 0u : ~as.got_hi & (t >= 64u ? 0xFFFFFFFFu : ((uint32_t)1u << (t - 32u)) - 1u);
    }
    p[0] = (uint8_t)t;
    p[1] = 0;
    wr32(p + 2, lo);
    wr32(p + 6, hi);
    send_tx(ESNN_MSG_NAK, seq, 10);
}

/* Run the model (the ANN when `flags` has ESNN_FLAG_ANN) on input[]; RESULT or ANN_RESULT
 * (kept for a POLL) or ERROR goes out. */
static void run_infer(uint16_t seq, uint8_t type, uint8_t flags, uint8_t *arena,
                      uint32_t arena_len)
{
    esnn_status_t st;
    uint32_t cycles;
    done_valid = 0;
#ifdef ESNN_ANN
    done_ann = (uint8_t)((flags & ESNN_FLAG_ANN) != 0);
    if (done_ann && ann_st != ESNN_OK) {
        send_error(seq, ann_st, type);
        return;
    }
    esnn_port_cycles_start();
    if (done_ann) st = esnn_ann_infer(&ann, input, model.input_size, arena, arena_len, &ann_result);
    else st = esnn_infer(&model, input, model.input_size, arena, arena_len, &result);
#else
    (void)flags;
    esnn_port_cycles_start();
    st = esnn_infer(&model, input, model.input_size, arena, arena_len, &result);
#endif
    cycles = esnn_port_cycles_read();
    if (st != ESNN_OK) {
        send_error(seq, st, type);
        return;
    }
    done_cycles = cycles;
    done_seq = seq;
    done_valid = 1;
    send_result(seq);
}

/* Decode one chunk's data into input[]; returns the pixels it covers, or -1 if they do not
 * fit the input or a zero-run token is cut. */
static int32_t apply_chunk(uint32_t enc, uint32_t off, const uint8_t *d, uint32_t n)
{
    uint32_t i = 0, pos = off, z, c, k, size = model.input_size;
    if (enc == ESNN_ENC_RAW) {
        if (off > size || n > size - off) return -1;
        for (k = 0; k < n; k++) input[off + k] = d[k];
        return (int32_t)n;
    }
    while (i < n) { /* ESNN_ENC_ZRL: zeros:u8 count:u8 literal[count] */
        if (n - i < 2u) return -1;
        z = d[i];
        c = d[i + 1];
        i += 2;
        if (c > n - i || pos > size || z + c > size - pos) return -1;
        for (k = 0; k < z; k++) input[pos++] = 0;
        for (k = 0; k < c; k++) input[pos++] = d[i++];
    }
    return (int32_t)(pos - off);
}

static void handle_data(uint16_t seq, uint8_t flags, uint8_t *arena, uint32_t arena_len)
{
    uint32_t idx, total, enc, full_lo, full_hi;
    int32_t covered;
    if (rx.len > ESNN_PROTO_CHUNK_MAX || rx.len < ESNN_PROTO_CHUNK_HEADER) {
        send_error(seq, ESNN_ERR_CHUNK, ESNN_MSG_DATA);
        return;
    }
    idx = rxp[0];
    total = rxp[1];
    enc = rxp[2];
    if (total == 0 || total > ESNN_PROTO_MAX_CHUNKS || idx >= total || enc > 31u ||
        !((ENCODINGS >> enc) & 1u)) {
        send_error(seq, ESNN_ERR_CHUNK, ESNN_MSG_DATA);
        return;
    }
    if (done_valid && seq == done_seq) { /* a late or repeated chunk of an answered request */
        if (flags & ESNN_FLAG_ANSWER) send_result(seq);
        return;
    }
    if (!as.valid || as.seq != seq || as.total != total) { /* a new request replaces the old */
        as.valid = 1;
        as.seq = seq;
        as.total = (uint8_t)total;
        as.got_lo = as.got_hi = 0;
        as.filled = 0;
    }
    if (!(((idx < 32u ? as.got_lo : as.got_hi) >> (idx & 31u)) & 1u)) {
        covered = apply_chunk(enc, esnn_rd16(rxp + 3), rxp + ESNN_PROTO_CHUNK_HEADER,
                              rx.len - ESNN_PROTO_CHUNK_HEADER);
        if (covered < 0) {
            as.valid = 0;
            send_error(seq, ESNN_ERR_CHUNK, ESNN_MSG_DATA);
            return;
        }
        if (idx < 32u) as.got_lo |= (uint32_t)1u << idx;
        else as.got_hi |= (uint32_t)1u << (idx - 32u);
        as.filled += (uint32_t)covered;
    }
    full_lo = total >= 32u ? 0xFFFFFFFFu : ((uint32_t)1u << total) - 1u;
    full_hi = total <= 32u ? 0u : (total >= 64u ? 0xFFFFFFFFu : ((uint32_t)1u << (total - 32u)) - 1u);
    if (as.got_lo == full_lo && as.got_hi == full_hi) {
        as.valid = 0;
        if (as.filled != model.input_size) send_error(seq, ESNN_ERR_INPUT_SIZE, ESNN_MSG_DATA);
        else run_infer(seq, ESNN_MSG_DATA, flags, arena, arena_len);
    } else if (flags & ESNN_FLAG_ANSWER) {
        send_nak(seq);
    }
}

/* A whole frame has arrived (its 0x00 seen): check it and answer. */
static void end_frame(esnn_status_t model_st, uint8_t *arena, uint32_t arena_len)
{
    uint32_t n = rx.n;
    uint16_t seq = n >= 4u ? (uint16_t)esnn_rd16(rx.hdr + 2) : (uint16_t)SEQ_UNKNOWN;
    uint8_t type = n >= 1u ? rx.hdr[0] : 0;
    if (rx.left != 0) { /* a COBS block runs past the delimiter */
        send_error(SEQ_UNKNOWN, ESNN_ERR_FRAME_CRC, 0);
        return;
    }
    if (n < ESNN_PROTO_OVERHEAD || rx.len != n - ESNN_PROTO_OVERHEAD ||
        rx.crc != esnn_rd32(rx.crc_rx)) {
        send_error(seq, ESNN_ERR_FRAME_CRC, type);
        return;
    }
    if ((rx.hdr[1] & ~REQ_FLAGS) != 0) {
        send_error(seq, ESNN_ERR_FRAME, type);
        return;
    }
    if (type == ESNN_MSG_PING) {
        send_hello(seq, model_st == ESNN_OK);
    } else if (type != ESNN_MSG_INFER && type != ESNN_MSG_DATA && type != ESNN_MSG_POLL) {
        send_error(seq, ESNN_ERR_UNKNOWN_TYPE, type);
    } else if (model_st != ESNN_OK) {
        send_error(seq, model_st, type);
    } else if (type == ESNN_MSG_INFER) {
        if (rx.len != model.input_size) send_error(seq, ESNN_ERR_INPUT_SIZE, type);
        else run_infer(seq, type, rx.hdr[1], arena, arena_len);
    } else if (type == ESNN_MSG_DATA) {
        handle_data(seq, rx.hdr[1], arena, arena_len);
    } else if (done_valid && seq == done_seq) { /* POLL */
        send_result(seq);
    } else {
        send_nak(seq);
    }
}

/* One decoded byte of the current frame. */
static void put_decoded(uint8_t b)
{
    uint32_t n = rx.n, p;
    if (n >= RX_COUNT_MAX) return;
    rx.n = n + 1u;
    if (n < ESNN_PROTO_HEADER) {
        rx.hdr[n] = b;
        rx.crc = esnn_crc32(rx.crc, &b, 1);
        if (n + 1u == ESNN_PROTO_HEADER) {
            rx.len = esnn_rd16(rx.hdr + 4);
            if (rx.hdr[0] == ESNN_MSG_INFER) { /* its pixels overwrite any assembly */
                as.valid = 0;
                rx.dst = input;
                rx.cap = INPUT_MAX;
            } else {
                rx.dst = rxp;
                rx.cap = ESNN_PROTO_CHUNK_MAX;
            }
        }
        return;
    }
    p = n - ESNN_PROTO_HEADER;
    if (p < rx.len) {
        if (p < rx.cap) rx.dst[p] = b;
        rx.crc = esnn_crc32(rx.crc, &b, 1);
    } else if (p - rx.len < 4u) {
        rx.crc_rx[p - rx.len] = b;
    }
}

esnn_status_t esnn_app_run(const ESNN_ROM uint8_t *esg, uint32_t esg_len, uint8_t *arena, uint32_t arena_len)
{
    esnn_status_t st = esnn_model_init(&model, esg, esg_len);
    int c;
    if (st == ESNN_OK && (arena == 0 || arena_len < esnn_arena_bytes(&model))) st = ESNN_ERR_ARENA_TOO_SMALL;
    if (st == ESNN_OK && model.input_size > INPUT_MAX) st = ESNN_ERR_LIMIT;
#ifdef ESNN_ANN
    /* the blob lies in addressable memory here (ESNN_ANN is not built for AVR's __memx) */
    ann_st = model.ann == NULL ? ESNN_ERR_ENUM
                               : esnn_ann_init(&ann, (const uint8_t *)model.ann, model.ann_len);
    if (ann_st == ESNN_OK && ann.input_size != model.input_size) ann_st = ESNN_ERR_INPUT_SIZE;
    if (ann_st == ESNN_OK && arena_len < ann.arena_bytes) ann_st = ESNN_ERR_ARENA_TOO_SMALL;
    done_ann = 0;
#endif
    rx.n = rx.crc = rx.len = 0;
    rx.code = rx.left = 0;
    as.valid = 0;
    done_valid = 0;
    send_hello(0, st == ESNN_OK);
    for (;;) {
        c = esnn_port_getc();
        if (c < 0) return st;
        if (c == 0) { /* delimiter: a frame ends (two in a row: an empty frame, ignored) */
            if (rx.code != 0) end_frame(st, arena, arena_len);
            rx.n = rx.crc = rx.len = 0;
            rx.code = rx.left = 0;
        } else if (rx.left == 0) { /* a COBS code byte */
            if (rx.code != 0 && rx.code != 0xFFu) put_decoded(0);
            rx.code = (uint8_t)c;
            rx.left = (uint8_t)(c - 1);
        } else {
            put_decoded((uint8_t)c);
            rx.left--;
        }
    }
}

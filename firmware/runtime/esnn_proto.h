/* Device side of firmware/PROTOCOL.md (version 2). The numbers below are the protocol's one
 * home: edgesnn/host/protocol.py reads every `#define ESNN_PROTO_<NAME> <number>` line. */
#ifndef ESNN_PROTO_H
#define ESNN_PROTO_H

#include "esnn.h"

#define ESNN_PROTO_VERSION 2
/* Largest INFER payload (a model's input_size) and frame payload any build accepts. */
#define ESNN_PROTO_MAX_PAYLOAD 1024
/* Largest DATA payload (5-byte chunk header + data) this build buffers; announced in HELLO.
 * The receive buffer is this big: set it lower on a small-RAM board (8..255). */
#ifndef ESNN_PROTO_CHUNK_MAX
#define ESNN_PROTO_CHUNK_MAX 255
#endif
/* Chunks per request: the width of a NAK's bitmap. */
#define ESNN_PROTO_MAX_CHUNKS 64
#define ESNN_PROTO_HEADER 6 /* type, flags, seq:u16, len:u16 */
#define ESNN_PROTO_OVERHEAD 10 /* header + crc:u32 */
#define ESNN_PROTO_CHUNK_HEADER 5 /* idx:u8 total:u8 enc:u8 off:u16 */

#if ESNN_PROTO_CHUNK_MAX < 8 || ESNN_PROTO_CHUNK_MAX > 255
#error "ESNN_PROTO_CHUNK_MAX must be 8..255 (HELLO carries it in one byte)"
#endif

enum {
    ESNN_MSG_PING = 0x01,
    ESNN_MSG_INFER = 0x02,
    ESNN_MSG_DATA = 0x03,
    ESNN_MSG_POLL = 0x04,
    ESNN_MSG_HELLO = 0x81,
    ESNN_MSG_RESULT = 0x82,
    ESNN_MSG_ERROR = 0x83,
    ESNN_MSG_NAK = 0x84,
    ESNN_MSG_ANN_RESULT = 0x85
};

/* ESNN_FLAG_ANN on an INFER, DATA or POLL: run (or ask about) the .esg's int8 ANN baseline
 * instead of the SNN; offered by HELLO's ESNN_HELLO_ANN bit in builds with ESNN_ANN. */
enum { ESNN_FLAG_DEVICE = 0x01, ESNN_FLAG_ANSWER = 0x02, ESNN_FLAG_ANN = 0x04 };
enum { ESNN_ENC_RAW = 0, ESNN_ENC_ZRL = 1 };
#define ESNN_HELLO_ANN 0x80 /* HELLO byte 36 (offers): the device runs ANN-flagged requests */
/* Largest reply payload this build sends (RESULT at the build's maximums, HELLO or NAK). */
#define ESNN_PROTO_RESULT_MAX (12 + 2 * ESNN_MAX_CLASSES + 8 * ESNN_MAX_LAYERS)
#define ESNN_PROTO_HELLO_MAX (39 + 32)
#define ESNN_PROTO_REPLY_MAX \
    (ESNN_PROTO_RESULT_MAX > ESNN_PROTO_HELLO_MAX ? ESNN_PROTO_RESULT_MAX : ESNN_PROTO_HELLO_MAX)
#ifdef ESNN_ANN
#include "esnn_ann.h"
/* ANN_RESULT: prediction, n_layers, n_classes, cycles, int32 logits[C], u32 macs[L], active[L] */
#define ESNN_PROTO_ANN_RESULT_MAX (8 + 4 * ESNN_MAX_CLASSES + 8 * ESNN_ANN_MAX_LAYERS)
#define ESNN_PROTO_TX_MAX \
    (ESNN_PROTO_OVERHEAD + (ESNN_PROTO_ANN_RESULT_MAX > ESNN_PROTO_REPLY_MAX ? ESNN_PROTO_ANN_RESULT_MAX : ESNN_PROTO_REPLY_MAX))
#else
#define ESNN_PROTO_TX_MAX (ESNN_PROTO_OVERHEAD + ESNN_PROTO_REPLY_MAX)
#endif

/* Serve the protocol until esnn_port_getc() returns -1. The model is validated first; if that
 * fails, HELLO still goes out (zero model fields) and every INFER, DATA and POLL is answered
 * with ERROR carrying the validation status, which is also returned. */
esnn_status_t esnn_app_run(const ESNN_ROM uint8_t *esg, uint32_t esg_len, uint8_t *arena, uint32_t arena_len);

/* Frame one message (COBS + trailing 0x00) through esnn_port_putc; used by esnn_app_run. */
void esnn_proto_send(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len);

/* 1 if `status` is a link fault after which re-sending can succeed (esnn_status.def). */
int esnn_status_transient(int status);

/* Bytes of static RAM the protocol layer holds (receive, input and transmit buffers, state). */
uint32_t esnn_proto_ram_bytes(void);

#endif /* ESNN_PROTO_H */

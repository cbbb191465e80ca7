/* Device side of firmware/PROTOCOL.md (version 1). */
#ifndef ESNN_PROTO_H
#define ESNN_PROTO_H

#include "esnn.h"

#define ESNN_PROTO_VERSION 1
#define ESNN_PROTO_MAX_PAYLOAD 1024
#define ESNN_PROTO_HEADER 6 /* type, flags, seq:u16, len:u16 */
#define ESNN_PROTO_OVERHEAD 10 /* header + crc:u32 */

enum {
    ESNN_MSG_PING = 0x01,
    ESNN_MSG_INFER = 0x02,
    ESNN_MSG_HELLO = 0x81,
    ESNN_MSG_RESULT = 0x82,
    ESNN_MSG_ERROR = 0x83
};

/* Largest reply payload this build sends (RESULT at the build's maximums, or HELLO). */
#define ESNN_PROTO_RESULT_MAX (12 + 2 * ESNN_MAX_CLASSES + 8 * ESNN_MAX_LAYERS)
#define ESNN_PROTO_HELLO_MAX (37 + 32)
#define ESNN_PROTO_TX_MAX \
    (ESNN_PROTO_OVERHEAD + (ESNN_PROTO_RESULT_MAX > ESNN_PROTO_HELLO_MAX ? ESNN_PROTO_RESULT_MAX : ESNN_PROTO_HELLO_MAX))

/* Serve the protocol until esnn_port_getc() returns -1. The model is validated first; if that
 * fails, HELLO still goes out (zero model fields) and every INFER is answered with ERROR
 * carrying the validation status, which is also returned. */
esnn_status_t esnn_app_run(const uint8_t *esg, uint32_t esg_len, uint8_t *arena, uint32_t arena_len);

/* Frame one message (COBS + trailing 0x00) through esnn_port_putc; used by esnn_app_run. */
void esnn_proto_send(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len);

#endif /* ESNN_PROTO_H */

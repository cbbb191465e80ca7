/* Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999): no 0x00 in the encoded bytes. */
#include "esnn.h"

uint32_t esnn_cobs_encode(const uint8_t *in, uint32_t len, uint8_t *out)
{
    uint32_t i, o = 1, code_at = 0;
    uint8_t code = 1;
    for (i = 0; i < len; i++) {
        if (in[i] == 0) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
        } else {
            out[o++] = in[i];
            if (++code == 0xFF) {
                out[code_at] = code;
                code_at = o++;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    return o;
}

int32_t esnn_cobs_decode(const uint8_t *in, uint32_t len, uint8_t *out)
{
    uint32_t i = 0, o = 0, k;
    uint8_t code;
    while (i < len) {
        code = in[i++];
        if (code == 0 || (uint32_t)(code - 1u) > len - i) return -1;
        for (k = 1; k < code; k++) {
            if (in[i] == 0) return -1;
            out[o++] = in[i++];
        }
        if (code != 0xFF && i < len) out[o++] = 0;
    }
    return (int32_t)o;
}

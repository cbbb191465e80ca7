/* Status strings, expanded from the one list in esnn_status.def. */
#include "esnn_proto.h"

const char *esnn_status_str(int status)
{
    switch (status) {
#define ESNN_STATUS(name, num, text) \
    case num:                        \
        return text;
#include "esnn_status.def"
#undef ESNN_STATUS
    default:
        return "unknown status";
    }
}

const char *esnn_status_name(int status)
{
    switch (status) {
#define ESNN_STATUS(name, num, text) \
    case num:                        \
        return #name;
#include "esnn_status.def"
#undef ESNN_STATUS
    default:
        return "?";
    }
}

/* 1 if the status is a link fault after which re-sending can succeed (ESNN_TRANSIENT in
 * esnn_status.def), else 0. */
int esnn_status_transient(int status)
{
    switch (status) {
#define ESNN_STATUS(name, num, text)
#define ESNN_TRANSIENT(name) \
    case ESNN_##name:        \
        return 1;
#include "esnn_status.def"
#undef ESNN_TRANSIENT
#undef ESNN_STATUS
    default:
        return 0;
    }
}

/* Status strings, expanded from the one list in esnn_status.def. */
#include "esnn.h"

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

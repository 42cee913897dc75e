/*
 * admin_faults: /_fakes3/faults, the fault engine's run-time control (placeholder: answers 501
 * until the fault engine is wired in).
 */
#include "ops.h"

fs3_code fs3_begin_admin_faults(fs3_req *r)
{
    r->body_kind = FS3_BODY_DISCARD;
    return FS3_OK;
}

void fs3_apply_admin_faults(fs3_req *r)
{
    fs3_resp_error(r, FS3_NOT_IMPLEMENTED, "The fault engine is not wired in yet.", NULL, 0);
}

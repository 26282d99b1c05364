/* takumi — fine-tuning pretrained language models, in C.
 *
 * This is the one public header: it pulls in every module's public API from
 * include/takumi/. Conventions, stated once:
 *   - every fallible function returns tk_status (TK_OK == 0) and, on failure,
 *     leaves a human-readable message in tk_last_error() (thread-local);
 *   - the library never exits or aborts the host program;
 *   - objects are created by tk_<thing>_open/_init/_load and released by the
 *     matching tk_<thing>_close/_free, which accept NULL;
 *   - params structs are obtained from tk_<thing>_default_params().
 */
#ifndef TAKUMI_H
#define TAKUMI_H

#include "takumi/core.h"
#include "takumi/gguf.h"
#include "takumi/safetensors.h"
#include "takumi/tokenizer.h"
#include "takumi/chat.h"
#include "takumi/model.h"
#include "takumi/data.h"
#include "takumi/synth.h"
#include "takumi/train.h"
#include "takumi/adapter.h"
#include "takumi/export.h"
#include "takumi/eval.h"
#include "takumi/review.h"
#include "takumi/generate_batch.h"
#include "takumi/serve.h"

#endif

/* The adapter routes scripts written for other servers call (admin keys: they change what every caller gets):
 * vLLM's POST /v1/load_lora_adapter {"lora_name", "lora_path"} attaches an adapter folder or GGUF on the server's
 * disk to the first model as model id lora_name (answers vLLM's plain-text "Success: ..."); POST
 * /v1/unload_lora_adapter {"lora_name"} removes it from the models served; llama-server's POST /lora-adapters
 * [{"id", "scale"}] sets the global scales (every adapter not listed goes to 0, as llama-server does), applied to
 * requests for their base that name no adapter and carry no "lora" list. GET /lora-adapters lists them (route.c). */
#include "serve/server.h"
#include "core/core.h"
#include <stdio.h>
#include <time.h>

void srv_handle_lora_load(srv_req *q, srv_reply *r) {
    if (!srv_need_admin(q, r, "Loading an adapter")) return;
    srv_lora_load_req l;
    srv_error e;
    if (srv_parse_lora_load(q->body, q->body_len, true, &l, &e)) { srv_reply_error(r, &e); return; }
    int mi, ai;
    if (srv_registry_find(&q->s->reg, l.name, &mi, &ai))
        srv_reply_fail(r, 400, "invalid_value", "lora_name", "The lora adapter '%.100s' has already been loaded.", l.name);
    else if (srv_registry_add(&q->s->reg, 0, l.name, l.path, NULL, (int64_t)time(NULL)))
        srv_reply_fail(r, 400, "invalid_value", "lora_path", "Cannot load the adapter '%.100s': %.300s", l.name, tk_last_error());
    else {
        r->content_type = "text/plain; charset=utf-8";
        srv_reply_json(r, tk_buf_printf(&r->body, "Success: LoRA adapter '%s' added successfully.", l.name));
    }
    srv_lora_load_req_free(&l);
}

void srv_handle_lora_unload(srv_req *q, srv_reply *r) {
    if (!srv_need_admin(q, r, "Unloading an adapter")) return;
    srv_lora_load_req l;
    srv_error e;
    if (srv_parse_lora_load(q->body, q->body_len, false, &l, &e)) { srv_reply_error(r, &e); return; }
    if (!srv_registry_unload(&q->s->reg, l.name))
        srv_reply_fail(r, 404, "model_not_found", "lora_name", "The lora adapter '%.100s' cannot be found.", l.name);
    else {
        r->content_type = "text/plain; charset=utf-8";
        srv_reply_json(r, tk_buf_printf(&r->body, "Success: LoRA adapter '%s' removed successfully.", l.name));
    }
    srv_lora_load_req_free(&l);
}

void srv_handle_lora_set(srv_req *q, srv_reply *r) {
    if (!srv_need_admin(q, r, "Setting the adapters' scales")) return;
    srv_lora set[SRV_MAX_LORA_SET];
    int n = 0;
    srv_error e;
    if (srv_parse_lora_scales(q->body, q->body_len, set, &n, &e)) { srv_reply_error(r, &e); return; }
    srv_registry *g = &q->s->reg;
    int count = g->n_adapters;
    for (int i = 0; i < n; i++)
        if (set[i].id >= count || g->adapters[set[i].id].unloaded) {
            srv_reply_fail(r, 400, "invalid_value", "lora", "Invalid adapter id %d (GET /lora-adapters lists them).", set[i].id);
            return;
        }
    pthread_mutex_lock(&g->add_mu);   /* one setter at a time: the list is applied whole */
    for (int i = 0; i < count; i++) g->adapters[i].scale = 0;
    for (int i = 0; i < n; i++) g->adapters[set[i].id].scale = set[i].scale;
    pthread_mutex_unlock(&g->add_mu);
    srv_reply_json(r, tk_buf_printf(&r->body, "{\"success\":true}"));
}

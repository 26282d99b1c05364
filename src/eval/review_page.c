/* The blind A/B review page (one self-contained review.html: CSS, script and data inline, no network),
 * with items.jsonl (what the page shows) and key.json (which side is system A: never in the page). */
#include "eval/review_internal.h"
#include "data/data_internal.h"
#include <inttypes.h>

tk_review_page_params tk_review_page_default_params(void) {
    return (tk_review_page_params){.seed = 0, .name_a = "A", .name_b = "B", .title = "Blind A/B review"};
}

static const char k_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; img-src 'none'; connect-src 'none'\">\n"
    "<title>Blind A/B review</title>\n<style>\n"
    "body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f6f6f4;color:#222}\n"
    "header{display:flex;gap:1.5em;align-items:baseline;padding:.6em 1.2em;background:#2b3a4a;color:#fff}\n"
    "header h1{font-size:1.1em;margin:0;flex:1}\n"
    "main{max-width:1200px;margin:0 auto;padding:1em 1.2em}\n"
    ".msg{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5em .8em;margin:.4em 0}\n"
    ".role{font-size:.75em;text-transform:uppercase;color:#777}\n"
    ".text{white-space:pre-wrap;word-wrap:break-word}\n"
    ".answers{display:grid;grid-template-columns:1fr 1fr;gap:1em;margin:1em 0}\n"
    ".answers article{background:#fff;border:2px solid #ccd;border-radius:6px;padding:.6em .9em}\n"
    ".answers h2{font-size:.9em;margin:0 0 .4em;color:#556}\n"
    ".buttons,nav{display:flex;gap:.6em;flex-wrap:wrap;margin:.8em 0}\n"
    "button{font:inherit;padding:.45em 1em;border:1px solid #889;border-radius:5px;background:#fff;cursor:pointer}\n"
    "button.chosen{background:#2b6cb0;color:#fff;border-color:#2b6cb0}\n"
    "textarea{width:100%;box-sizing:border-box;min-height:6em;font:inherit}\n"
    "#status{color:#a33}\n.help{color:#666;font-size:.85em}\n"
    "</style>\n</head>\n<body>\n"
    "<header><h1 id=\"title\"></h1><span id=\"progress\"></span><span id=\"judged\"></span></header>\n"
    "<main>\n<div class=\"help\">Which answer is better? Keys: <b>1</b> or <b>&larr;</b> left, <b>2</b> or <b>&rarr;</b> right, "
    "<b>3</b> or <b>t</b> tie (each records the choice and moves on), <b>n</b>/<b>p</b> next/previous item, <b>c</b> "
    "corrected answer (Esc leaves it). Judgements stay in this browser until you download them.</div>\n"
    "<h2 id=\"item-id\" class=\"role\"></h2>\n<section id=\"prompt\"></section>\n"
    "<div class=\"answers\"><article id=\"left\"><h2>Left</h2><div id=\"left-text\" class=\"text\"></div></article>\n"
    "<article id=\"right\"><h2>Right</h2><div id=\"right-text\" class=\"text\"></div></article></div>\n"
    "<div class=\"buttons\"><button id=\"btn-left\" type=\"button\">Left better (1)</button>"
    "<button id=\"btn-tie\" type=\"button\">Tie (3)</button>"
    "<button id=\"btn-right\" type=\"button\">Right better (2)</button></div>\n"
    "<label for=\"correction\">Corrected answer (optional: the answer as it should be; it becomes training data)</label>\n"
    "<textarea id=\"correction\"></textarea>\n"
    "<nav><button id=\"prev\" type=\"button\">Previous (p)</button><button id=\"next\" type=\"button\">Next (n)</button>"
    "<button id=\"download\" type=\"button\">Download judgements</button><span id=\"status\"></span></nav>\n"
    "</main>\n<script type=\"application/json\" id=\"review-data\">";

static const char k_tail[] =
    "</script>\n<script>\n"
    "(function () {\n"
    "\"use strict\";\n"
    "var $ = function (id) { return document.getElementById(id); };\n"
    "var data = JSON.parse($(\"review-data\").textContent), items = data.items, n = items.length;\n"
    "var storeKey = \"takumi-review:\" + data.review, state = {pos: 0, j: {}};\n"
    "try { var saved = JSON.parse(localStorage.getItem(storeKey) || \"null\");\n"
    "      if (saved && typeof saved.j === \"object\" && saved.j) state = saved; } catch (e) {}\n"
    "if (!(state.pos >= 0 && state.pos < n)) state.pos = 0;\n"
    "function status(t) { $(\"status\").textContent = t; }\n"
    "function save() { try { localStorage.setItem(storeKey, JSON.stringify(state)); }\n"
    "                  catch (e) { status(\"cannot keep judgements in this browser: \" + e); } }\n"
    "function entry(id) { if (!Object.prototype.hasOwnProperty.call(state.j, id)) state.j[id] = {choice: null, correction: \"\", time: null};\n"
    "                     return state.j[id]; }\n"
    "function judged() { return items.filter(function (it) { var e = state.j[it.id]; return e && e.choice; }); }\n"
    "function render() {\n"
    "  var it = items[state.pos], p = $(\"prompt\");\n"
    "  p.textContent = \"\";\n"
    "  it.prompt.forEach(function (m) {\n"
    "    var d = document.createElement(\"div\"), r = document.createElement(\"div\"), t = document.createElement(\"div\");\n"
    "    d.className = \"msg\"; r.className = \"role\"; t.className = \"text\";\n"
    "    r.textContent = m.role; t.textContent = m.content;\n"
    "    d.appendChild(r); d.appendChild(t); p.appendChild(d);\n"
    "  });\n"
    "  $(\"left-text\").textContent = it.left;\n"
    "  $(\"right-text\").textContent = it.right;\n"
    "  var e = state.j[it.id];\n"
    "  $(\"correction\").value = e ? e.correction : \"\";\n"
    "  [\"left\", \"right\", \"tie\"].forEach(function (c) {\n"
    "    var b = $(\"btn-\" + c), on = !!(e && e.choice === c);\n"
    "    b.classList.toggle(\"chosen\", on); b.setAttribute(\"aria-pressed\", on ? \"true\" : \"false\");\n"
    "  });\n"
    "  $(\"item-id\").textContent = \"item \" + it.id;\n"
    "  $(\"progress\").textContent = (state.pos + 1) + \" of \" + n;\n"
    "  $(\"judged\").textContent = judged().length + \" judged\";\n"
    "}\n"
    "function go(d) { var k = state.pos + d; if (k < 0 || k >= n) return; state.pos = k; save(); render(); }\n"
    "function choose(c) {\n"
    "  var e = entry(items[state.pos].id);\n"
    "  e.choice = c; e.correction = $(\"correction\").value; e.time = new Date().toISOString();\n"
    "  if (state.pos < n - 1) state.pos++;\n"
    "  save(); render();\n"
    "}\n"
    "function download() {\n"
    "  var lines = judged().map(function (it) { var e = state.j[it.id];\n"
    "    return JSON.stringify({review: data.review, id: it.id, choice: e.choice, correction: e.correction || \"\", time: e.time}) + \"\\n\"; });\n"
    "  var a = document.createElement(\"a\");\n"
    "  a.href = URL.createObjectURL(new Blob(lines, {type: \"application/x-ndjson\"}));\n"
    "  a.download = \"judgements.jsonl\";\n"
    "  document.body.appendChild(a); a.click();\n"
    "  setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);\n"
    "  status(lines.length + \" of \" + n + \" judgements downloaded\");\n"
    "}\n"
    "$(\"correction\").addEventListener(\"input\", function () { entry(items[state.pos].id).correction = this.value; save(); });\n"
    "[\"left\", \"right\", \"tie\"].forEach(function (c) { $(\"btn-\" + c).addEventListener(\"click\", function () { choose(c); }); });\n"
    "$(\"prev\").addEventListener(\"click\", function () { go(-1); });\n"
    "$(\"next\").addEventListener(\"click\", function () { go(1); });\n"
    "$(\"download\").addEventListener(\"click\", download);\n"
    "var keys = {\"1\": \"left\", \"ArrowLeft\": \"left\", \"2\": \"right\", \"ArrowRight\": \"right\", \"3\": \"tie\", \"t\": \"tie\"};\n"
    "document.addEventListener(\"keydown\", function (ev) {\n"
    "  if (ev.target && ev.target.id === \"correction\") { if (ev.key === \"Escape\") ev.target.blur(); return; }\n"
    "  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;\n"
    "  if (Object.prototype.hasOwnProperty.call(keys, ev.key)) choose(keys[ev.key]);\n"
    "  else if (ev.key === \"n\") go(1);\n"
    "  else if (ev.key === \"p\") go(-1);\n"
    "  else if (ev.key === \"c\") $(\"correction\").focus();\n"
    "  else return;\n"
    "  ev.preventDefault();\n"
    "});\n"
    "document.title = data.title; $(\"title\").textContent = data.title;\n"
    "render();\n"
    "})();\n"
    "</script>\n</body>\n</html>\n";

/* Appends JSON text that is safe inside a <script> element: "<", ">", "&" and U+2028/9 (which occur only inside
 * strings) become \u escapes, so no text can close the element or start markup. */
static tk_status append_script_json(tk_buf *b, const char *s, size_t n) {
    tk_status st = TK_OK;
    size_t from = 0;
    for (size_t i = 0; !st && i < n; i++) {
        const unsigned char *u = (const unsigned char *)s + i;
        const char *esc = NULL;
        size_t skip = 1;
        if (*u == '<') esc = "\\u003c";
        else if (*u == '>') esc = "\\u003e";
        else if (*u == '&') esc = "\\u0026";
        else if (*u == 0xE2 && i + 2 < n && u[1] == 0x80 && (u[2] == 0xA8 || u[2] == 0xA9)) { esc = u[2] == 0xA8 ? "\\u2028" : "\\u2029"; skip = 3; }
        if (!esc) continue;
        st = tk_buf_append(b, s + from, i - from);
        if (!st) st = tk_buf_append(b, esc, strlen(esc));
        i += skip - 1;
        from = i + 1;
    }
    return st ? st : tk_buf_append(b, s + from, n - from);
}

/* {"id", "prompt", "left", "right"}: an item as the page shows it (the prompt always as messages when
 * as_messages, else as it was given). */
static tk_status append_shown(tk_buf *b, const tk_review_item *it, bool a_left, bool as_messages) {
    const char *left = a_left ? it->a : it->b, *right = a_left ? it->b : it->a;
    tk_status st = TK_REVIEW_LIT(b, "{\"id\":");
    if (!st) st = tk_json_append_str(b, it->id, strlen(it->id));
    if (!st) st = TK_REVIEW_LIT(b, ",\"prompt\":");
    if (!st) st = as_messages ? tk_review_append_messages(b, it, NULL) : tk_review_append_prompt(b, it);
    if (!st) st = TK_REVIEW_LIT(b, ",\"left\":");
    if (!st) st = tk_json_append_str(b, left, strlen(left));
    if (!st) st = TK_REVIEW_LIT(b, ",\"right\":");
    if (!st) st = tk_json_append_str(b, right, strlen(right));
    return st ? st : TK_REVIEW_LIT(b, "}");
}

/* items.jsonl (the items as shown: left/right), the page's data block and key.json, built side by side. */
static tk_status build(const tk_review_set *s, const tk_review_page_params *p, tk_buf *items, tk_buf *data, tk_buf *key) {
    tk_rng rng;
    tk_rng_seed(&rng, p->seed);
    bool *a_left = tk_calloc(s->n, sizeof *a_left);
    if (!a_left) return TK_ERR_NOMEM;
    tk_status st = TK_OK;
    for (size_t i = 0; !st && i < s->n; i++) {
        const tk_review_item *it = &s->items[i];
        if (!it->a || !it->b) { st = tk_fail(TK_ERR_ARG, "item %s has no answer of system %s", it->id, it->a ? "B" : "A"); break; }
        a_left[i] = tk_rng_u64(&rng) >> 63;
        st = append_shown(items, it, a_left[i], false);
        if (!st) st = TK_REVIEW_LIT(items, "\n");
    }
    char rid[17];
    if (!st) snprintf(rid, sizeof rid, "%016" PRIx64, tk_mix64(tk_hash_bytes(items->data, items->len) ^ p->seed));
    /* the page: {"review", "title", "items": [{"id", "prompt": [messages], "left", "right"}]} */
    tk_buf d = {0};
    if (!st) st = tk_buf_printf(&d, "{\"review\":\"%s\",\"title\":", rid);
    const char *title = p->title ? p->title : "Blind A/B review";
    if (!st) st = tk_json_append_str(&d, title, strlen(title));
    if (!st) st = TK_REVIEW_LIT(&d, ",\"items\":[");
    for (size_t i = 0; !st && i < s->n; i++) {
        const tk_review_item *it = &s->items[i];
        st = i ? TK_REVIEW_LIT(&d, ",") : TK_OK;
        if (!st) st = append_shown(&d, it, a_left[i], true);
    }
    if (!st) st = TK_REVIEW_LIT(&d, "]}");
    if (!st) st = append_script_json(data, d.data, d.len);
    tk_buf_free(&d);
    /* the key: {"review", "seed", "a", "b", "n_items", "items": [{"id", "a": "left"|"right"}]} */
    if (!st) st = tk_buf_printf(key, "{\n  \"review\": \"%s\",\n  \"seed\": %" PRIu64 ",\n  \"a\": ", rid, p->seed);
    if (!st) st = tk_json_append_str(key, p->name_a ? p->name_a : "A", strlen(p->name_a ? p->name_a : "A"));
    if (!st) st = TK_REVIEW_LIT(key, ",\n  \"b\": ");
    if (!st) st = tk_json_append_str(key, p->name_b ? p->name_b : "B", strlen(p->name_b ? p->name_b : "B"));
    if (!st) st = tk_buf_printf(key, ",\n  \"n_items\": %zu,\n  \"items\": [", s->n);
    for (size_t i = 0; !st && i < s->n; i++) {
        st = tk_buf_printf(key, "%s\n    {\"id\": ", i ? "," : "");
        if (!st) st = tk_json_append_str(key, s->items[i].id, strlen(s->items[i].id));
        if (!st) st = tk_buf_printf(key, ", \"a\": \"%s\"}", a_left[i] ? "left" : "right");
    }
    if (!st) st = TK_REVIEW_LIT(key, "\n  ]\n}\n");
    free(a_left);
    return st;
}

tk_status tk_review_write_page(const tk_review_set *s, const tk_review_page_params *p, const char *dir) {
    if (!s || !dir) return tk_fail(TK_ERR_ARG, "tk_review_write_page: NULL argument");
    if (s->n == 0) return tk_fail(TK_ERR_ARG, "tk_review_write_page: no items");
    tk_review_page_params def = tk_review_page_default_params();
    if (!p) p = &def;
    tk_buf items = {0}, page = {0}, key = {0};
    tk_status st = tk_buf_append(&page, k_head, sizeof k_head - 1);
    if (!st) st = build(s, p, &items, &page, &key);
    if (!st) st = tk_buf_append(&page, k_tail, sizeof k_tail - 1);
    if (!st) st = tk_mkdir_p(dir);
    if (!st) st = tk_review_write_in(dir, TK_REVIEW_ITEMS, &items);
    if (!st) st = tk_review_write_in(dir, TK_REVIEW_KEY, &key);
    if (!st) st = tk_review_write_in(dir, TK_REVIEW_PAGE, &page);
    tk_buf_free(&items);
    tk_buf_free(&page);
    tk_buf_free(&key);
    return st;
}

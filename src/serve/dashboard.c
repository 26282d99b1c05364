/* GET /dashboard: the web page of src/serve/dashboard.html (one file: HTML, CSS and script inline, nothing
 * fetched from elsewhere), compiled into the binary by the assembler's .incbin (the Makefile makes this
 * object depend on the .html). The page itself holds no data and needs no key: it asks for one, keeps it in
 * sessionStorage and calls the JSON API with it (jobs and their metrics events, models, deployments with
 * promote / rollback, usage, feedback). */
#include "serve/server.h"

__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        "srv_dashboard_html_start:\n"
        ".incbin \"src/serve/dashboard.html\"\n"
        "srv_dashboard_html_end:\n"
        ".balign 8\n"
        "srv_dashboard_html_size: .quad srv_dashboard_html_end - srv_dashboard_html_start\n"
        ".popsection\n");
extern const char srv_dashboard_html_start[] __asm__("srv_dashboard_html_start");
extern const unsigned long long srv_dashboard_html_size __asm__("srv_dashboard_html_size");

void srv_handle_dashboard(srv_req *q, srv_reply *r) {
    (void)q;
    r->content_type = "text/html; charset=utf-8";
    srv_reply_json(r, tk_buf_append(&r->body, srv_dashboard_html_start, (size_t)srv_dashboard_html_size));
}

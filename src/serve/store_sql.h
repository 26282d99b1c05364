/* The SQL helpers the store's files share (store.c, store_events.c): statements on the keys' connection,
 * always called with the keys' mutex held. */
#ifndef TK_SERVE_STORE_SQL_H
#define TK_SERVE_STORE_SQL_H
#include "serve/server.h"
#include <sqlite3.h>
#include <cjson/cJSON.h>
/* Prepares sql and binds the arguments: fmt has one letter per parameter: s text (NULL -> null), i int64, d double. NULL on error. */
sqlite3_stmt *srv_sql_prep(sqlite3 *db, const char *sql, const char *fmt, ...);
/* TK_ERR_IO naming what failed and SQLite's message. */
tk_status srv_sql_err(srv_keys *k, const char *what);
/* Runs (and finalizes) a statement that returns no rows; q may be NULL (a failed prepare). */
tk_status srv_sql_done(srv_keys *k, sqlite3_stmt *q, const char *what);
/* Column i as text into out (n bytes; "" for null). */
void srv_sql_text(sqlite3_stmt *q, int i, char *out, size_t n);
/* Appends root (consumed) as compact JSON. */
tk_status srv_sql_print(cJSON *root, tk_buf *out);
/* OpenAI's list object over q's rows (each made by row()), at most limit, with first_id, last_id and has_more; finalizes q. */
tk_status srv_sql_list(srv_keys *k, sqlite3_stmt *q, int limit, cJSON *(*row)(sqlite3_stmt *, void *), void *ud, tk_buf *out);
/* The row number of a list cursor "PREFIX<n>" (0: none or malformed: from the newest). */
int64_t srv_sql_cursor(const char *after, const char *prefix);
#endif

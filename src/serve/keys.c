/* API keys. A key is "tk-" + 48 hex digits from getrandom(); the database keeps only a lookup
 * prefix (its first 8 hex digits), a random 16-byte salt and SHA-256(salt || key), in
 * DATA_DIR/takumi.db (SQLite, WAL). Keys of --api-key-file are kept in memory as digests.
 * Comparisons are constant-time over the digests. */
#include "serve/server.h"
#include "core/core.h"
#include "core/sha256.h"
#include <sqlite3.h>
#include <sys/random.h>
#include <errno.h>
#include <time.h>

#define KEY_PREFIX "tk-"
#define KEY_HEX 48
#define SCHEMA_VERSION 3

tk_status srv_random_bytes(uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return tk_fail(TK_ERR_IO, "cannot read random bytes for a key: %s", strerror(errno));
        p += got, n -= (size_t)got;
    }
    return TK_OK;
}

void srv_hex(const uint8_t *p, size_t n, char *out) {
    static const char k[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) out[2 * i] = k[p[i] >> 4], out[2 * i + 1] = k[p[i] & 15];
    out[2 * n] = 0;
}

static bool same_digest(const uint8_t *a, const uint8_t *b) {
    uint8_t d = 0;
    for (int i = 0; i < 32; i++) d |= a[i] ^ b[i];
    return d == 0;
}

static tk_status db_fail(sqlite3 *db, const char *path, const char *what) {
    return tk_fail(TK_ERR_IO, "%s: %s: %s", path, what, db ? sqlite3_errmsg(db) : "cannot open");
}

/* Whether table has the column (a database of an older schema lacks it). */
static bool has_column(sqlite3 *db, const char *table, const char *column) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT %s FROM %s LIMIT 0", column, table);
    sqlite3_stmt *q = NULL;
    bool ok = sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK;
    sqlite3_finalize(q);
    return ok;
}

/* Opens data_dir/takumi.db, creating the folder, the file and the schema. */
static tk_status db_open(const char *data_dir, sqlite3 **out) {
    *out = NULL;
    tk_status st = tk_mkdir_p(data_dir);
    if (st) return tk_fail_ctx(st, "data dir %s: ", data_dir);
    char *path = tk_path_join(data_dir, "takumi.db");
    if (!path) return TK_ERR_NOMEM;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
        st = db_fail(db, path, "cannot open the database");
        goto fail;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *q = NULL;
    int version = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        version = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (version < 0) { st = db_fail(db, path, "not a takumi database (cannot read its version)"); goto fail; }
    if (version > SCHEMA_VERSION) {
        st = tk_fail(TK_ERR_UNSUPPORTED, "%s: schema version %d was written by a newer takumi (this one knows %d)", path, version, SCHEMA_VERSION);
        goto fail;
    }
    char *err = NULL;
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL;"
                         "CREATE TABLE IF NOT EXISTS api_keys(id INTEGER PRIMARY KEY, lookup TEXT NOT NULL, salt TEXT NOT NULL,"
                         " hash TEXT NOT NULL, admin INTEGER NOT NULL, created INTEGER NOT NULL);"
                         "CREATE INDEX IF NOT EXISTS api_keys_lookup ON api_keys(lookup);"
                         /* version 2: files and fine-tuning jobs (src/serve/store.c) */
                         "CREATE TABLE IF NOT EXISTS files(id TEXT PRIMARY KEY, owner TEXT NOT NULL, bytes INTEGER NOT NULL,"
                         " created_at INTEGER NOT NULL, filename TEXT NOT NULL, purpose TEXT NOT NULL);"
                         "CREATE TABLE IF NOT EXISTS jobs(id TEXT PRIMARY KEY, owner TEXT NOT NULL, model TEXT NOT NULL,"
                         " training_file TEXT NOT NULL, validation_file TEXT, suffix TEXT NOT NULL, seed INTEGER NOT NULL,"
                         " metadata TEXT NOT NULL, method TEXT NOT NULL, n_epochs INTEGER NOT NULL, batch_size INTEGER NOT NULL,"
                         " lr_mult REAL NOT NULL, beta REAL NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL,"
                         " finished_at INTEGER, fine_tuned_model TEXT, error_code TEXT, error_message TEXT,"
                         " trained_tokens INTEGER NOT NULL DEFAULT 0, hypers TEXT);"
                         "CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL,"
                         " created_at INTEGER NOT NULL, level TEXT NOT NULL, type TEXT NOT NULL, message TEXT NOT NULL, data TEXT);"
                         "CREATE INDEX IF NOT EXISTS events_job ON events(job_id, seq);"
                         "CREATE TABLE IF NOT EXISTS checkpoints(seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL,"
                         " step INTEGER NOT NULL, created_at INTEGER NOT NULL, metrics TEXT NOT NULL, path TEXT NOT NULL);"
                         "CREATE INDEX IF NOT EXISTS checkpoints_job ON checkpoints(job_id, seq);"
                         /* version 3: deployments (deploy.c), the request log and feedback (reqlog.c) */
                         "CREATE TABLE IF NOT EXISTS deployments(alias TEXT PRIMARY KEY, model TEXT NOT NULL, canary TEXT,"
                         " canary_percent INTEGER NOT NULL DEFAULT 0, previous TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
                         "CREATE TABLE IF NOT EXISTS requests(id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, owner TEXT NOT NULL,"
                         " deployment TEXT, model TEXT NOT NULL, status INTEGER NOT NULL, latency REAL NOT NULL, tokens_in INTEGER NOT NULL,"
                         " tokens_out INTEGER NOT NULL, request TEXT, response TEXT);"
                         "CREATE INDEX IF NOT EXISTS requests_time ON requests(created_at);"
                         "CREATE TABLE IF NOT EXISTS feedback(seq INTEGER PRIMARY KEY AUTOINCREMENT, response_id TEXT NOT NULL, owner TEXT NOT NULL,"
                         " created_at INTEGER NOT NULL, rating REAL, correction TEXT, comment TEXT);"
                         "CREATE TABLE IF NOT EXISTS usage(owner TEXT NOT NULL, model TEXT NOT NULL, requests INTEGER NOT NULL,"
                         " tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL, PRIMARY KEY(owner, model));",
                     NULL, NULL, &err) != SQLITE_OK ||
        /* version 3 also gives each key its limits (limits.c): requests per minute and a token budget, 0 = none */
        (!has_column(db, "api_keys", "rpm") && sqlite3_exec(db, "ALTER TABLE api_keys ADD COLUMN rpm INTEGER NOT NULL DEFAULT 0;"
                                         "ALTER TABLE api_keys ADD COLUMN token_budget INTEGER NOT NULL DEFAULT 0;", NULL, NULL, &err) != SQLITE_OK) ||
        /* and reinforcement jobs' graders and eval interval, CPU seconds of jobs and of requests (usage) */
        (!has_column(db, "jobs", "grader") && sqlite3_exec(db, "ALTER TABLE jobs ADD COLUMN grader TEXT;"
                                         "ALTER TABLE jobs ADD COLUMN eval_interval INTEGER NOT NULL DEFAULT 0;", NULL, NULL, &err) != SQLITE_OK) ||
        (!has_column(db, "jobs", "cpu_seconds") && sqlite3_exec(db, "ALTER TABLE jobs ADD COLUMN cpu_seconds REAL NOT NULL DEFAULT 0;", NULL, NULL, &err) != SQLITE_OK) ||
        (!has_column(db, "usage", "cpu_seconds") && sqlite3_exec(db, "ALTER TABLE usage ADD COLUMN cpu_seconds REAL NOT NULL DEFAULT 0;", NULL, NULL, &err) != SQLITE_OK) ||
        sqlite3_exec(db, "PRAGMA user_version=3;", NULL, NULL, &err) != SQLITE_OK) {
        st = tk_fail(TK_ERR_IO, "%s: cannot create the schema: %s", path, err ? err : "?");
        sqlite3_free(err);
        goto fail;
    }
    free(path);
    *out = db;
    return TK_OK;
fail:
    sqlite3_close(db);
    free(path);
    return st;
}

static tk_status read_key_file(srv_keys *k, const char *file) {
    char *text = NULL;
    size_t len = 0;
    tk_status st = tk_read_file(file, &text, &len);
    if (st) return tk_fail_ctx(st, "--api-key-file: ");
    int line_no = 0;
    for (char *line = text, *next; line && line < text + len; line = next) {
        line_no++;
        next = memchr(line, '\n', (size_t)(text + len - line));
        size_t n = next ? (size_t)(next - line) : (size_t)(text + len - line);
        if (next) next++;
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t')) n--;
        while (n > 0 && (*line == ' ' || *line == '\t')) line++, n--;
        if (n == 0 || *line == '#') continue;
        if (n < 16 || memchr(line, 0, n)) {
            free(text);
            return tk_fail(TK_ERR_FORMAT, "%s:%d: a key must be at least 16 characters (one key per line, # comments)", file, line_no);
        }
        void *grown = tk_realloc(k->file_hashes, sizeof *k->file_hashes * (size_t)(k->n_file + 1));
        if (!grown) { free(text); return TK_ERR_NOMEM; }
        k->file_hashes = grown;
        tk_sha256_bytes(line, n, k->file_hashes[k->n_file++]);
    }
    free(text);
    if (k->n_file == 0) return tk_fail(TK_ERR_FORMAT, "%s: no key in the file (one key per line)", file);
    return TK_OK;
}

tk_status srv_keys_open(srv_keys *k, const char *data_dir, const char *key_file) {
    memset(k, 0, sizeof *k);
    pthread_mutex_init(&k->mu, NULL);
    tk_status st = db_open(data_dir, &k->db);
    if (!st && key_file) st = read_key_file(k, key_file);
    if (st) srv_keys_close(k);
    return st;
}

void srv_keys_close(srv_keys *k) {
    if (k->db) sqlite3_close(k->db);
    free(k->file_hashes);
    pthread_mutex_destroy(&k->mu);
    memset(k, 0, sizeof *k);
}

bool srv_keys_required(srv_keys *k) {
    if (k->n_file > 0) return true;
    bool any = true; /* when the database cannot answer, refuse rather than serve without keys */
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(k->db, "SELECT EXISTS(SELECT 1 FROM api_keys)", -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        any = sqlite3_column_int(q, 0) != 0;
    sqlite3_finalize(q);
    pthread_mutex_unlock(&k->mu);
    return any;
}

static bool hex_decode(const char *s, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char c = s[2 * i + j];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) return false;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return s[2 * n] == 0;
}

bool srv_keys_check(srv_keys *k, const char *token, bool *admin, char owner[SRV_OWNER_LEN]) {
    *admin = false;
    owner[0] = 0;
    size_t n = strlen(token);
    uint8_t d[32];
    tk_sha256_bytes(token, n, d);
    bool ok = false;
    for (int i = 0; i < k->n_file; i++)
        if (same_digest(d, k->file_hashes[i])) { ok = true; snprintf(owner, SRV_OWNER_LEN, "keyfile%d", i + 1); }
    if (ok) return true;
    if (n != strlen(KEY_PREFIX) + KEY_HEX || strncmp(token, KEY_PREFIX, strlen(KEY_PREFIX))) return false;
    char lookup[9];
    memcpy(lookup, token + strlen(KEY_PREFIX), 8);
    lookup[8] = 0;
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(k->db, "SELECT salt, hash, admin, id FROM api_keys WHERE lookup = ?1", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_bind_text(q, 1, lookup, -1, SQLITE_TRANSIENT) == SQLITE_OK) {
        while (!ok && sqlite3_step(q) == SQLITE_ROW) {
            const char *salt_hex = (const char *)sqlite3_column_text(q, 0), *hash_hex = (const char *)sqlite3_column_text(q, 1);
            uint8_t salt[16], want[32], got[32];
            if (!salt_hex || !hash_hex || !hex_decode(salt_hex, salt, 16) || !hex_decode(hash_hex, want, 32)) continue;
            tk_sha256 c;
            tk_sha256_init(&c);
            tk_sha256_update(&c, salt, 16);
            tk_sha256_update(&c, token, n);
            tk_sha256_final(&c, got);
            if (same_digest(got, want)) {
                ok = true;
                *admin = sqlite3_column_int(q, 2) != 0;
                snprintf(owner, SRV_OWNER_LEN, "key%lld", (long long)sqlite3_column_int64(q, 3));
            }
        }
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&k->mu);
    return ok;
}

tk_status tk_serve_create_key(const char *data_dir, bool admin, char **key) { return tk_serve_create_key_limits(data_dir, admin, 0, 0, key); }

tk_status tk_serve_create_key_limits(const char *data_dir, bool admin, int64_t rpm, int64_t token_budget, char **key) {
    *key = NULL;
    if (rpm < 0 || token_budget < 0) return tk_fail(TK_ERR_ARG, "create key: --rpm and --token-budget must be >= 0");
    if (!data_dir || !*data_dir) return tk_fail(TK_ERR_ARG, "create key: no data dir");
    uint8_t raw[KEY_HEX / 2], salt[16], digest[32];
    tk_status st = srv_random_bytes(raw, sizeof raw);
    if (!st) st = srv_random_bytes(salt, sizeof salt);
    if (st) return st;
    char *k = tk_malloc(strlen(KEY_PREFIX) + KEY_HEX + 1), salt_hex[33], hash_hex[65], lookup[9];
    if (!k) return TK_ERR_NOMEM;
    strcpy(k, KEY_PREFIX);
    srv_hex(raw, sizeof raw, k + strlen(KEY_PREFIX));
    memcpy(lookup, k + strlen(KEY_PREFIX), 8);
    lookup[8] = 0;
    srv_hex(salt, sizeof salt, salt_hex);
    tk_sha256 c;
    tk_sha256_init(&c);
    tk_sha256_update(&c, salt, sizeof salt);
    tk_sha256_update(&c, k, strlen(k));
    tk_sha256_final(&c, digest);
    tk_sha256_hex(digest, hash_hex);
    sqlite3 *db = NULL;
    if ((st = db_open(data_dir, &db))) { free(k); return st; }
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO api_keys(lookup, salt, hash, admin, created, rpm, token_budget) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_bind_text(q, 1, lookup, -1, SQLITE_TRANSIENT) || sqlite3_bind_text(q, 2, salt_hex, -1, SQLITE_TRANSIENT) ||
        sqlite3_bind_text(q, 3, hash_hex, -1, SQLITE_TRANSIENT) || sqlite3_bind_int(q, 4, admin ? 1 : 0) ||
        sqlite3_bind_int64(q, 5, (sqlite3_int64)time(NULL)) || sqlite3_bind_int64(q, 6, rpm) || sqlite3_bind_int64(q, 7, token_budget) ||
        sqlite3_step(q) != SQLITE_DONE)
        st = tk_fail(TK_ERR_IO, "%s/takumi.db: cannot store the key: %s", data_dir, sqlite3_errmsg(db));
    sqlite3_finalize(q);
    sqlite3_close(db);
    if (st) { free(k); return st; }
    *key = k;
    return TK_OK;
}

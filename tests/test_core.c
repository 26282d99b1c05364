/* Core: dtype table, f16/bf16 conversion, buffers, RNG determinism, error messages, file mapping errors. */
#include "test.h"
#include "core/core.h"

int main(void) {
    CHECK(tk_dtype_block_elems(TK_Q4_1) == 32 && tk_dtype_block_bytes(TK_Q4_1) == 20, "q4_1 layout");
    CHECK(tk_dtype_block_bytes(TK_Q6_K) == 210, "q6_k layout");
    size_t nb;
    CHECK(tk_dtype_nbytes(TK_Q4_0, 33, &nb) == TK_ERR_FORMAT, "partial block must fail");
    CHECK_OK(tk_dtype_nbytes(TK_Q4_0, 64, &nb));
    CHECK(nb == 36, "2 blocks of q4_0 = 36 bytes, got %zu", nb);
    CHECK(tk_dtype_nbytes(TK_F32, INT64_MAX, &nb) != TK_OK, "overflow must fail");

    /* f16: exact values and round trip of every half */
    CHECK(tk_f16_to_f32(0x3c00) == 1.0f, "1.0");
    CHECK(tk_f16_to_f32(0xc000) == -2.0f, "-2.0");
    CHECK(tk_f16_to_f32(0x0001) == 5.9604644775390625e-08f, "smallest subnormal");
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = tk_f16_to_f32((uint16_t)h);
        if (f != f) continue; /* NaN */
        if (tk_f32_to_f16(f) != h) bad++;
    }
    CHECK(bad == 0, "%d halves do not round trip", bad);
    CHECK(tk_f32_to_f16(65520.0f) == 0x7c00, "overflow to inf");
    CHECK(tk_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00, "ties to even");
    CHECK(tk_bf16_to_f32(tk_f32_to_bf16(3.140625f)) == 3.140625f, "bf16 exact");
    CHECK(tk_f32_to_bf16(1.00390625f) == 0x3f80, "bf16 ties to even (down)");

    tk_buf b = {0};
    CHECK_OK(tk_buf_printf(&b, "%d-%s", 42, "x"));
    CHECK(b.len == 4 && !strcmp(b.data, "42-x"), "buf printf");
    tk_buf_free(&b);

    tk_rng r1, r2;
    tk_rng_seed(&r1, 7); tk_rng_seed(&r2, 7);
    int same = 1;
    for (int i = 0; i < 100; i++) same &= tk_rng_u64(&r1) == tk_rng_u64(&r2);
    CHECK(same, "rng determinism");
    double mean = 0;
    for (int i = 0; i < 100000; i++) mean += tk_rng_normal(&r1);
    CHECK(fabs(mean / 100000) < 0.02, "normal mean %g", mean / 100000);

    tk_mapped_file f;
    CHECK(tk_map_file("/nonexistent/x.gguf", &f) == TK_ERR_IO, "missing file");
    CHECK(strstr(tk_last_error(), "/nonexistent/x.gguf") != NULL, "message names the file: %s", tk_last_error());
    CHECK(tk_map_file("/tmp", &f) == TK_ERR_IO && strstr(tk_last_error(), "directory"), "directory: %s", tk_last_error());

    char path[] = "/tmp/tk_test_core_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK_OK(tk_write_file_atomic(path, "hello", 5));
    char *data; size_t len;
    CHECK_OK(tk_read_file(path, &data, &len));
    CHECK(len == 5 && !memcmp(data, "hello", 5), "atomic write round trip");
    free(data);
    unlink(path);
    return tk_test_done("test_core");
}

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

    /* the checksum in pieces and from a file (read through its buffer, not mapped) equals the
     * one-call checksum, at lengths around the 32-byte block and the 1 MiB read buffer; and
     * tk_drop_file_pages leaves a mapping's bytes readable */
    const size_t lens[] = {0, 1, 31, 32, 33, 1000, (1u << 20) - 1, 1u << 20, (1u << 20) + 33, 3u << 20};
    uint8_t *bytes = malloc(3u << 20);
    CHECK(bytes != NULL, "alloc");
    tk_rng r;
    tk_rng_seed(&r, 5);
    for (size_t i = 0; bytes && i < (3u << 20); i++) bytes[i] = (uint8_t)tk_rng_u64(&r);
    for (size_t k = 0; bytes && k < sizeof lens / sizeof lens[0]; k++) {
        const size_t n = lens[k];
        const uint64_t want = tk_hash_bytes(bytes, n);
        tk_hash_state hs;
        tk_hash_init(&hs);
        size_t done = 0, piece = 7 + 13 * k;
        while (n - done >= 32) { /* uneven pieces: update takes whole blocks and says how many bytes */
            size_t take = n - done < piece ? n - done : piece;
            done += tk_hash_update(&hs, bytes + done, take);
            piece = piece * 3 + 32;
        }
        CHECK(tk_hash_final(&hs, bytes + done, n - done) == want, "hash in pieces, %zu bytes", n);
        CHECK_OK(tk_write_file_atomic(path, bytes, n));
        uint64_t fh = 0;
        CHECK_OK(tk_hash_file(path, &fh));
        CHECK(fh == want, "tk_hash_file equals tk_hash_bytes, %zu bytes", n);
        if (n > 0 && n < (3u << 20)) /* the same length one byte further on (within the buffer) */
            CHECK(tk_hash_bytes(bytes, n) != tk_hash_bytes(bytes + 1, n), "hash depends on the bytes, %zu", n);
    }
    CHECK(tk_hash_file("/nonexistent/params.safetensors", &(uint64_t){0}) == TK_ERR_IO &&
          strstr(tk_last_error(), "/nonexistent/params.safetensors"), "missing file named: %s", tk_last_error());
    if (bytes) {
        CHECK_OK(tk_write_file_atomic(path, bytes, 3u << 20));
        CHECK_OK(tk_map_file(path, &f));
        const uint64_t before = tk_hash_bytes(f.data, f.size);
        tk_drop_file_pages(&f, f.data + 4097, 1u << 20);
        CHECK(f.size == (3u << 20) && tk_hash_bytes(f.data, f.size) == before && !memcmp(f.data, bytes, f.size),
              "a mapping reads the same after its pages are dropped");
        tk_unmap_file(&f);
    }
    free(bytes);
    unlink(path);
    return tk_test_done("test_core");
}

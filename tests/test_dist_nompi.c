/* A takumi built without MPI (`make MPI=0`) but started by mpirun must refuse, not train N
 * copies of the run. This binary compiles src/dist/dist.c as an MPI=0 build does (TK_HAVE_MPI
 * undefined), whatever the rest of the build found, so the refusal is tested on every build
 * without a second one; the library's own dist.o is not linked (this file defines its symbols). */
#undef TK_HAVE_MPI
#include "../src/dist/dist.c"
#include "test.h"

static void set_launcher(const char *var, const char *val) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
    if (var) setenv(var, val, 1);
}

int main(void) {
    int argc = 1;
    char *args[] = {"takumi", NULL}, **argv = args;
    CHECK(!tk_dist_built_with_mpi(), "this translation unit is the MPI=0 variant");

    /* not under a launcher: one rank, fine */
    set_launcher(NULL, NULL);
    CHECK_OK(tk_dist_init(&argc, &argv));
    CHECK(tk_dist_rank() == 0 && tk_dist_size() == 1, "rank %d of %d", tk_dist_rank(), tk_dist_size());
    tk_dist_finalize();

    /* every launcher's variable, 2 processes: a clear refusal naming the count and the fix */
    const char *launchers[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof launchers / sizeof launchers[0]; i++) {
        set_launcher(launchers[i], "2");
        tk_status st = tk_dist_init(&argc, &argv);
        CHECK(st == TK_ERR_ARG, "%s=2: status %s", launchers[i], tk_status_str(st));
        const char *msg = tk_last_error();
        CHECK(strstr(msg, "2 processes") && strstr(msg, "built without MPI") && strstr(msg, "libopenmpi-dev"),
              "%s=2: message: %s", launchers[i], msg);
        tk_dist_finalize();
    }
    /* one process under mpirun -np 1, and SLURM_NTASKS alone (not a launcher): one rank */
    set_launcher("OMPI_COMM_WORLD_SIZE", "1");
    CHECK_OK(tk_dist_init(&argc, &argv));
    tk_dist_finalize();
    set_launcher("SLURM_NTASKS", "4");
    CHECK_OK(tk_dist_init(&argc, &argv));
    CHECK(tk_dist_size() == 1, "SLURM_NTASKS alone: size %d", tk_dist_size());
    tk_dist_finalize();
    set_launcher(NULL, NULL);
    return tk_test_done("test_dist_nompi");
}

# Shared set-up of the `mpirun -np 2 takumi train` tests (train_mpi_cli.sh, train_mpi_more_cli.sh): the
# stories260K model (skip outside CI when ../shared is missing), mpirun and an MPI build of takumi (skip
# outside CI when missing), OpenMPI's settings for root and oversubscription, and MPIRUN (2 ranks). Sourced
# with NAME set to the test's name; defines BIN, S, MPIRUN, tmp (a temporary folder) and the ok/bad counters.
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ] || [ ! -f "$S/llama2c/tok512.bin" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
if ! command -v mpirun > /dev/null || ! "$BIN" train --help | grep -q "mpirun"; then
    if [ "${CI:-}" = true ]; then echo "FAIL: mpirun or an MPI build missing in CI (scripts/deps.sh installs OpenMPI)"; exit 1; fi
    echo "SKIP: mpirun or an MPI build of takumi missing"; exit 0
fi
if ! "$BIN" train --help | grep -q "MPI: built with"; then
    if [ "${CI:-}" = true ]; then echo "FAIL: takumi was built without MPI in CI"; exit 1; fi
    echo "SKIP: takumi built without MPI"; exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_WAIT_POLICY=passive
# ASan build: OpenMPI's plugins allocate memory they never free and are unloaded at MPI_Finalize, so
# LeakSanitizer sees leaks in "<unknown module>" that no suppression can name. The ranks run without
# leak detection (ASan's other checks stay on); the one-process runs and every other test keep it.
MPIRUN=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" mpirun -np 2 --oversubscribe)
tmp=$(mktemp -d "/tmp/takumi_${NAME}_XXXXXX")
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }

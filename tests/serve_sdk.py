"""What the openai-SDK clients of `takumi serve`'s tests share (serve_openai.py, serve_jobs.py, serve_deploy.py):
the official SDK (a SKIP line and exit 2 when it is missing) and the check counter."""
import sys

try:
    import openai  # noqa: F401  (re-exported)
except ImportError:
    print("SKIP: the openai package is missing (bash scripts/deps-client.sh installs it)")
    sys.exit(2)

checks = failures = 0


def check(ok, what):
    """Counts a check; prints "FAIL: what" when it did not hold."""
    global checks, failures
    checks += 1
    if not ok:
        failures += 1
        print("FAIL:", what)


def finish(label):
    """Prints "LABEL: N checks passed, N failed" and exits 1 on any failure, else 0."""
    print(f"{label}: {checks - failures} checks passed, {failures} failed")
    sys.exit(1 if failures else 0)

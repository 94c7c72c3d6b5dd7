"""Puts the reference scripts inside a virtual environment that has the official
Lyft SDK (tests/ref/requirements.txt), creating and filling it on first use.

The venv is $LIDAR3D_VENV, or .venv/ at the repository root (git-ignored).
`ensure()` returns at once when the packages import; otherwise it creates the
venv if needed, pip-installs the requirements into it, and re-executes the
calling script with the venv's python (same arguments).

Run directly, `python3 tests/ref/_venv.py` prints the venv's python path after
making sure the packages are there (the benchmark uses that).
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
REQUIREMENTS = os.path.join(HERE, "requirements.txt")
# Modules the reference code imports; lyft_dataset_sdk.lyftdataset pulls in the rest.
MODULES = ("numpy", "pyquaternion", "lyft_dataset_sdk.lyftdataset")
_GUARD = "LIDAR3D_REF_VENV_REEXEC"


def venv_dir():
    return os.path.abspath(os.environ.get("LIDAR3D_VENV") or os.path.join(REPO, ".venv"))


def venv_python():
    return os.path.join(venv_dir(), "bin", "python")


def _have_modules(python):
    code = "import importlib,sys\nfor m in sys.argv[1:]: importlib.import_module(m)"
    env = dict(os.environ, MPLBACKEND="Agg")
    r = subprocess.run([python, "-c", code, *MODULES], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


def prepare():
    """Creates/fills the venv if needed; returns its python."""
    py = venv_python()
    if not os.path.exists(py):
        print(f"ref: creating virtual environment {venv_dir()}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", venv_dir()], check=True)
    if not _have_modules(py):
        print(f"ref: installing {REQUIREMENTS} into {venv_dir()} (first run only; ~800 MB)",
              file=sys.stderr)
        subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "-r", REQUIREMENTS], check=True)
        if not _have_modules(py):
            sys.exit(f"ref: the packages of {REQUIREMENTS} still do not import in {py}")
    return py


def ensure():
    os.environ.setdefault("MPLBACKEND", "Agg")  # the SDK imports matplotlib.pyplot
    try:
        import importlib
        for m in MODULES:
            importlib.import_module(m)
        return
    except ImportError:
        pass
    if os.environ.get(_GUARD):
        sys.exit(f"ref: {sys.executable} still lacks one of {', '.join(MODULES)}")
    py = prepare()
    os.environ[_GUARD] = "1"
    script = os.path.abspath(sys.argv[0])
    os.execv(py, [py, script, *sys.argv[1:]])


if __name__ == "__main__":
    print(prepare())

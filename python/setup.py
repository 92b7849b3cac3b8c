# Builds the extension against the torch in this environment and the libweft
# of the project's build (WEFT_BUILD_DIR, default ../build), which is copied
# into the package so that the installed extension finds it next to itself.
import glob
import os
import shutil
from pathlib import Path

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

here = Path(__file__).resolve().parent
root = here.parent
build = Path(os.environ.get("WEFT_BUILD_DIR", root / "build")).resolve()
libs = sorted(glob.glob(str(build / "src" / "libweft.so*")))
if not libs:
    raise SystemExit(f"weft_torch: no libweft.so under {build}/src; build weft first (bash scripts/setup.sh)")
for lib in libs:
    target = here / "weft_torch" / os.path.basename(lib)
    if target.exists() or target.is_symlink():
        target.unlink()
    shutil.copy2(lib, target, follow_symlinks=True)

setup(
    ext_modules=[
        CppExtension(
            "weft_torch._C",
            ["weft_torch/csrc/backend.cpp"],
            include_dirs=[str(root / "include")],
            library_dirs=[str(build / "src")],
            libraries=["weft"],
            extra_compile_args=["-O2", "-std=c++20"],
            extra_link_args=["-Wl,-rpath,$ORIGIN"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
)

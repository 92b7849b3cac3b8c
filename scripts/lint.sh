#!/usr/bin/env bash
# The project's layout and bug checks: clang-format (.clang-format) over every
# C/C++ source, then clang-tidy (.clang-tidy) over the library's sources with
# the compile commands of a build (GCC's own warning flags ignored). Fails
# on any difference or finding.
#   scripts/lint.sh [BUILD_DIR]      (default build; configured if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
mapfile -t sources < <(git ls-files '*.cc' '*.cpp' '*.h' '*.hpp' '*.c' '*.cu' '*.inc')
unformatted=()
for f in "${sources[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
done
if [[ ${#unformatted[@]} -gt 0 ]]; then
  echo "lint: not formatted (clang-format -i ${unformatted[*]}):"
  clang-format --dry-run "${unformatted[0]}" 2>&1 | head -20
  exit 1
fi
echo "lint: ${#sources[@]} files formatted"
[[ -f $build/compile_commands.json ]] || cmake -S . -B "$build" -G Ninja -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
mapfile -t library < <(git ls-files 'src/*.cc' 'transports/*.cc' 'topology/*.cc' 'sim/*.cc' | grep -v '_absent.cc$')
# In parallel, one process a core; the output of any finding is printed.
printf '%s\n' "${library[@]}" | xargs -P "$(nproc)" -n 4 clang-tidy -p "$build" --quiet --extra-arg=-Wno-unknown-warning-option 2>/dev/null >"$build/clang-tidy.log" || {
  grep -E "error:|warning:" -A3 "$build/clang-tidy.log" | head -60
  echo "lint: clang-tidy found the above"
  exit 1
}
echo "lint: clang-tidy clean over ${#library[@]} library sources"

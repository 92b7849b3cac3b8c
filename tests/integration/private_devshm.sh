# Sourced by tests that need /dev/shm to themselves (what they find there is
# theirs alone, whatever runs beside them): `private_devshm SIZE "$0" "$@"`
# re-runs the script in a private mount namespace with a fresh tmpfs of SIZE
# on /dev/shm. Exits 77 (skipped) where no mount namespace can be made.
private_devshm() {
  local size=$1
  shift
  if [[ ${WEFT_PRIVATE_DEVSHM:-} != 1 ]]; then
    unshare -m --propagation private true 2>/dev/null || { echo "SKIP: cannot make a mount namespace"; exit 77; }
    exec env WEFT_PRIVATE_DEVSHM=1 unshare -m --propagation private "$@"
  fi
  mount -t tmpfs -o "size=$size" tmpfs /dev/shm || { echo "SKIP: cannot mount a tmpfs on /dev/shm"; exit 77; }
}

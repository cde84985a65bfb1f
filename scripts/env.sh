# Sourced by the scripts: installs (idempotently) what the project needs on a fresh Debian
# machine and points wgpu at Mesa's software Vulkan driver (lavapipe) when no GPU is present.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]} ..." >&2
        as_root apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >&2
    fi
}

need_apt mesa-vulkan-drivers libvulkan1

# Prefer a real GPU when one exists; otherwise use lavapipe.
if [ -z "${WGPU_BACKEND:-}" ]; then export WGPU_BACKEND=vulkan; fi
if [ -z "${VK_ICD_FILENAMES:-}" ] && ! ls /usr/share/vulkan/icd.d/ 2>/dev/null | grep -qv lvp; then
    for f in /usr/share/vulkan/icd.d/lvp_icd.*.json; do [ -e "$f" ] && export VK_ICD_FILENAMES="$f"; done
fi
export NODEVICE_SELECT=1

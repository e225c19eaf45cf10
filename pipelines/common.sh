# Shared by the pipeline scripts: finds gst-launch-1.0 and the spmkd plugin.
# The plugin is found through GST_PLUGIN_PATH (set it to the directory of libgstspmkd.so,
# e.g. target/release after `cargo build --release -p gst-plugin-spmkd`), or installed with
# `meson install`.
set -euo pipefail

if ! gst-inspect-1.0 spmkdpose >/dev/null 2>&1; then
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [ -f "$here/target/release/libgstspmkd.so" ]; then
    export GST_PLUGIN_PATH="$here/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  fi
  gst-inspect-1.0 spmkdpose >/dev/null 2>&1 || {
    echo "the spmkd plugin is not found: build it (cargo build --release -p gst-plugin-spmkd)" \
      "or set GST_PLUGIN_PATH to the directory of libgstspmkd.so" >&2
    exit 1
  }
fi

# Bytes per row of a GRAY16_LE frame as GStreamer lays it out (rows padded to 4 bytes).
gray16_stride() { echo $(( (2 * $1 + 3) / 4 * 4 )); }

# True when a display is there to show video on.
have_display() { [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -z "${SPMKD_HEADLESS:-}" ]; }

#!/usr/bin/env bash
# One frame as PNG, for documentation: the overlay of a recording's frame N, or frame N of a
# WebM file the pipelines wrote.
#
#   pipelines/snapshot.sh overlay RECORDING N OUT.png [SCALE]
#   pipelines/snapshot.sh webm FILE.webm N OUT.png
source "$(dirname "$0")/common.sh"
mode=${1:?usage: $0 overlay RECORDING N OUT.png [SCALE] | webm FILE N OUT.png}
input=${2:?input}
n=${3:?frame number (0-based)}
out=${4:?output PNG}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

case "$mode" in
overlay)
  gst-launch-1.0 -q pmatsrc location="$input" num-buffers=$(( n + 1 )) ! spmkdpose ! spmkdposture \
    ! spmkdoverlay scale="${5:-8}" ! videoconvert ! pngenc ! multifilesink location="$work/%06d.png" ;;
webm)
  gst-launch-1.0 -q filesrc location="$input" ! matroskademux ! vp8dec ! videoconvert \
    ! pngenc ! multifilesink location="$work/%06d.png" ;;
*) echo "unknown mode $mode" >&2; exit 1 ;;
esac
frame=$(printf '%s/%06d.png' "$work" "$n")
[ -f "$frame" ] || { echo "no frame $n in $input" >&2; exit 1; }
cp "$frame" "$out"
echo "$out"

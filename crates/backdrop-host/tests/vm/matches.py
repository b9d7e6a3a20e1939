"""matches.py FRAMES.rgb IMAGE W H RRGGBB: exit 0 when the last RGB24 frame shows IMAGE (scaled to
W x H) wherever it is not the key colour: the webcam's new content reached the virtual camera."""
import subprocess
import sys

from keyed import last_frame

path, image, w, h, key = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
key = bytes.fromhex(key)
frame = last_frame(path, w, h)
if frame is None:
    sys.exit(1)
ref = subprocess.run(
    ["ffmpeg", "-nostdin", "-v", "error", "-i", image, "-vf", f"scale={w}:{h}",
     "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
    check=True, capture_output=True).stdout
diff, n = 0, 0
for i in range(0, len(frame), 3):
    if abs(frame[i] - key[0]) + abs(frame[i + 1] - key[1]) + abs(frame[i + 2] - key[2]) < 90:
        continue
    diff += abs(frame[i] - ref[i]) + abs(frame[i + 1] - ref[i + 1]) + abs(frame[i + 2] - ref[i + 2])
    n += 1
ok = n >= 0.05 * w * h and diff / (3 * n) < 20
print(f"matches.py: {n} non-key pixels, mean abs diff {diff / max(1, 3 * n):.1f}", file=sys.stderr)
sys.exit(0 if ok else 1)

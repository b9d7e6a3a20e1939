"""keyed.py FRAMES.rgb W H RRGGBB: exit 0 when the last RGB24 frame in the file shows the key
colour over at least 20 % of its pixels (the Backdrop filter's masks have reached the output)."""
import sys


def key_fraction(frame, key, step=5):
    """Fraction of pixels (every `step`th, to stay cheap under emulation) near the key colour."""
    n = len(frame) // 3 // step
    hits = sum(
        1
        for i in range(0, len(frame), 3 * step)
        if abs(frame[i] - key[0]) + abs(frame[i + 1] - key[1]) + abs(frame[i + 2] - key[2]) < 90
    )
    return hits / n


def last_frame(path, w, h):
    data = open(path, "rb").read()
    size = w * h * 3
    if len(data) < size:
        return None
    return data[(len(data) // size - 1) * size :][:size]


if __name__ == "__main__":
    path, w, h, key = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    key = bytes.fromhex(key)
    frame = last_frame(path, w, h)
    sys.exit(0 if frame is not None and key_fraction(frame, key) >= 0.2 else 1)

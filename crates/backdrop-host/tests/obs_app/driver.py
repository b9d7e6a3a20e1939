"""Drives the real OBS application through obs-websocket with obsws-python, as a user's tool
would, for the test `e2e_obs_app`. One phase per OBS start; each writes $WORK/result-PHASE.json
(and PNGs) for the Rust test to judge. Every wait waits for an event with a generous bound.

Phases:
  first    the filter kinds OBS offers; a media source with the talking-head video; a Backdrop
           filter in colour mode; its settings read back; screenshots until the background is
           the key colour; the video paused and a stable screenshot with the media time; a
           recording of a few seconds.
  second   after a restart with the same scene collection: the filter and its settings are
           there and it works; then the filter and the source are removed while the video plays,
           and OBS still answers.

  hdr_setup  the profile for an HDR canvas at the next start (OBS reads its video settings when
           it starts): colour format P010, Rec. 2100 PQ, limited range, canvas and output the
           size of the HDR clip; recordings with SVT-AV1 (10-bit) in advanced output mode.
  hdr      on that canvas: the HDR clip (a still portrait, PQ) with a Backdrop filter in blur
           mode, recorded with the filter disabled and then enabled.

  picture  for the README (scripts/obs-window-picture.sh, not a test): the talking-head video with
           a Backdrop filter in blur mode, OBS's Filters dialog open on it, and a picture of the
           whole screen (xwd) once the dialog shows the filter's properties.

Environment: WORK, PORT, PASSWORD, VIDEO (first and picture phases), HDR_VIDEO and its WIDTH,
HEIGHT (hdr phases), PICTURE (picture phase: the .xwd file to write).
"""

import base64
import io
import json
import logging
import os
import subprocess
import sys
import time

import obsws_python as obs
from PIL import Image

# Connection attempts before OBS listens are expected; obsws-python would log each one.
logging.getLogger("obsws_python").setLevel(logging.CRITICAL)

WORK = os.environ["WORK"]
SOURCE = "Talking head"
FILTER = "Backdrop"
KEY = (0, 255, 0)
# OBS stores colours as 0xAABBGGRR.
KEY_OBS = 0xFF00FF00


def connect(limit=180.0):
    """Connects once OBS has started and its websocket server listens, and waits until OBS has
    loaded its scene collection: until then obs-websocket answers requests with code 207 (not
    ready), which a busy machine shows for seconds."""
    start = time.monotonic()
    last = None
    cl = None
    while time.monotonic() - start < limit:
        try:
            if cl is None:
                cl = obs.ReqClient(
                    host="127.0.0.1", port=int(os.environ["PORT"]), password=os.environ["PASSWORD"], timeout=30
                )
            cl.get_version()
            return cl
        except obs.error.OBSSDKRequestError as e:  # 207: OBS is not ready yet
            last = e
            time.sleep(0.5)
        except Exception as e:  # OBS not listening yet
            last = e
            cl = None
            time.sleep(0.5)
    raise SystemExit(f"OBS not ready on port {os.environ['PORT']} within {limit:.0f} s: {last!r}")


def wait_for(what, check, limit=120.0, every=0.25):
    """check() until it returns something truthy; raises after `limit` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"timed out after {limit:.0f} s waiting for {what}")


def screenshot(cl, name):
    """The source as OBS renders it with its filters (GetSourceScreenshot), PNG bytes, saved."""
    r = cl.get_source_screenshot(SOURCE, "png", None, None, -1)
    data = r.image_data.split(",", 1)[1]
    png = base64.b64decode(data)
    path = os.path.join(WORK, name)
    with open(path, "wb") as f:
        f.write(png)
    return path, png


def keyed_screenshot(cl, name):
    """The key colour's share in a screenshot once it exceeds 5 %, else None. Until a media
    source has decoded its first frame there is nothing to render (error 702): None too."""
    try:
        _, png = screenshot(cl, name)
    except obs.error.OBSSDKRequestError:
        return None
    share = key_share(png)
    return share if share > 0.05 else None


def key_share(png):
    """Share of pixels of a PNG screenshot that are the key colour (within 8 levels)."""
    img = Image.open(io.BytesIO(png)).convert("RGB")
    px = img.tobytes()
    key = sum(
        1
        for i in range(0, len(px), 3)
        if abs(px[i] - KEY[0]) <= 8 and abs(px[i + 1] - KEY[1]) <= 8 and abs(px[i + 2] - KEY[2]) <= 8
    )
    return key / (img.width * img.height)


def filter_kinds(cl, version):
    """What the Filters -> + menu offers: GetSourceFilterKindList where obs-websocket has it."""
    if "GetSourceFilterKindList" in version.available_requests:
        return {"method": "GetSourceFilterKindList", "kinds": cl.send("GetSourceFilterKindList").source_filter_kinds}
    return {"method": None, "kinds": None}


def unknown_kind_fails(cl):
    try:
        cl.create_source_filter(SOURCE, "No such filter", "backdrop_no_such_filter", {})
    except Exception as e:
        return str(e)
    return None


def add_media(cl, name, path):
    """A looping media source `name` playing `path` in the current scene; returns the scene."""
    scene = cl.get_current_program_scene().current_program_scene_name
    cl.create_input(
        scene,
        name,
        "ffmpeg_source",
        {"local_file": path, "is_local_file": True, "looping": True, "hw_decode": False},
        True,
    )
    return scene


def first(cl):
    out = {}
    v = cl.get_version()
    out["obs_version"] = v.obs_version
    out["websocket_version"] = v.obs_web_socket_version
    out["filter_kinds"] = filter_kinds(cl, v)
    add_media(cl, SOURCE, os.environ["VIDEO"])
    cl.create_source_filter(SOURCE, FILTER, "backdrop_filter", {"mode": "color", "color": KEY_OBS})
    out["unknown_kind_error"] = unknown_kind_fails(cl)
    f = cl.get_source_filter(SOURCE, FILTER)
    out["filter"] = {"kind": f.filter_kind, "enabled": f.filter_enabled, "settings": f.filter_settings}

    # The filter has a mask once the background turns into the key colour.
    out["key_share_running"] = wait_for(
        "the key colour in a screenshot", lambda: keyed_screenshot(cl, "first-wait.png"), limit=120, every=1.0
    )
    # Pause the video and take the picture once two screenshots agree (the mask has settled).
    cl.trigger_media_input_action(SOURCE, "OBS_WEBSOCKET_MEDIA_INPUT_ACTION_PAUSE")
    wait_for(
        "the video to pause",
        lambda: cl.get_media_input_status(SOURCE).media_state == "OBS_MEDIA_STATE_PAUSED",
    )
    previous = [None]

    def stable():
        path, png = screenshot(cl, "first-paused.png")
        same = previous[0] == png
        previous[0] = png
        return path if same else None

    out["paused_png"] = wait_for("two equal screenshots of the paused video", stable, limit=120, every=1.0)
    out["paused_cursor_ms"] = cl.get_media_input_status(SOURCE).media_cursor
    cl.trigger_media_input_action(SOURCE, "OBS_WEBSOCKET_MEDIA_INPUT_ACTION_PLAY")

    # A recording of a few seconds through the profile's own output settings.
    rec_dir = os.path.join(WORK, "recordings")
    os.makedirs(rec_dir, exist_ok=True)
    cl.set_profile_parameter("SimpleOutput", "FilePath", rec_dir)
    cl.set_profile_parameter("SimpleOutput", "RecFormat2", "mkv")
    cl.set_profile_parameter("SimpleOutput", "RecFormat", "mkv")
    out["record_path"] = record(cl, 3)
    out["recordings"] = sorted(os.path.join(rec_dir, n) for n in os.listdir(rec_dir))
    return out


def second(cl):
    out = {}
    v = cl.get_version()
    out["obs_version"] = v.obs_version
    filters = cl.get_source_filter_list(SOURCE).filters
    out["filters"] = filters

    out["key_share_after_restart"] = wait_for(
        "the key colour after the restart", lambda: keyed_screenshot(cl, "second-wait.png"), limit=120, every=1.0
    )
    # Removed while the video plays and inference runs.
    cl.remove_source_filter(SOURCE, FILTER)
    out["filters_after_removal"] = cl.get_source_filter_list(SOURCE).filters
    _, png = screenshot(cl, "second-unfiltered.png")
    out["key_share_unfiltered"] = key_share(png)
    cl.remove_input(SOURCE)
    out["still_answers"] = cl.get_version().obs_version
    return out


HDR_SOURCE = "HDR portrait"


def video_settings(cl):
    v = cl.get_video_settings()
    return {k: getattr(v, k) for k in v.attrs()}


def hdr_setup(cl):
    width, height = int(os.environ["WIDTH"]), int(os.environ["HEIGHT"])
    for key, value in (("ColorFormat", "P010"), ("ColorSpace", "2100PQ"), ("ColorRange", "Partial")):
        cl.set_profile_parameter("Video", key, value)
    cl.set_video_settings(None, None, width, height, width, height)
    rec_dir = os.path.join(WORK, "hdr-recordings")
    os.makedirs(rec_dir, exist_ok=True)
    for section, key, value in (
        ("Output", "Mode", "Advanced"),
        ("AdvOut", "RecType", "Standard"),
        ("AdvOut", "RecEncoder", "ffmpeg_svt_av1"),
        ("AdvOut", "RecFilePath", rec_dir),
        ("AdvOut", "RecFormat2", "mkv"),
        ("AdvOut", "RecFormat", "mkv"),
        ("AdvOut", "RecUseRescale", "false"),
    ):
        cl.set_profile_parameter(section, key, value)
    return {"video": video_settings(cl)}


def record(cl, seconds):
    """Records `seconds` of the program; returns the file's path once it is finished."""
    cl.start_record()
    wait_for(f"{seconds} s of recording", lambda: cl.get_record_status().output_duration >= seconds * 1000, limit=180)
    stopped = cl.stop_record()
    # Until the file is finished OBS counts the output as active, and closing OBS would ask
    # whether to stop it (a dialog nobody answers here).
    wait_for("the recording to finish", lambda: not cl.get_record_status().output_active, limit=180)
    return getattr(stopped, "output_path", None)


def mean_difference(a, b):
    """Mean absolute difference of two PNG screenshots' RGB bytes (same size), levels."""
    pa = Image.open(io.BytesIO(a)).convert("RGB").tobytes()
    pb = Image.open(io.BytesIO(b)).convert("RGB").tobytes()
    return sum(abs(x - y) for x, y in zip(pa, pb)) / max(len(pa), 1)


def changed(png, reference):
    """The mean difference of `png` from `reference` once it exceeds 1 level, else None."""
    if png is None:
        return None
    d = mean_difference(png, reference)
    return d if d > 1.0 else None


def hdr(cl):
    out = {"video": video_settings(cl)}
    add_media(cl, HDR_SOURCE, os.environ["HDR_VIDEO"])
    cl.create_source_filter(HDR_SOURCE, FILTER, "backdrop_filter", {"mode": "blur", "blur_strength": 60})
    cl.set_source_filter_enabled(HDR_SOURCE, FILTER, False)

    def shot(name):
        try:
            r = cl.get_source_screenshot(HDR_SOURCE, "png", None, None, -1)
        except obs.error.OBSSDKRequestError:
            return None  # no frame decoded yet
        png = base64.b64decode(r.image_data.split(",", 1)[1])
        with open(os.path.join(WORK, name), "wb") as f:
            f.write(png)
        return png

    off = wait_for("a frame of the HDR clip", lambda: shot("hdr-off.png"), limit=120, every=1.0)
    out["recording_off"] = record(cl, 2)
    cl.set_source_filter_enabled(HDR_SOURCE, FILTER, True)
    # The filter has a mask once the background is blurred.
    out["screenshot_change"] = wait_for(
        "the blurred background in a screenshot",
        lambda: changed(shot("hdr-on.png"), off),
        limit=120,
        every=1.0,
    )
    out["recording_on"] = record(cl, 2)
    return out


def picture(cl):
    scene = add_media(cl, SOURCE, os.environ["VIDEO"])
    # The video fills the canvas, as a webcam would.
    item = cl.get_scene_item_id(scene, SOURCE).scene_item_id
    canvas = cl.get_video_settings()
    cl.set_scene_item_transform(
        scene,
        item,
        {
            "boundsType": "OBS_BOUNDS_SCALE_INNER",
            "boundsWidth": canvas.base_width,
            "boundsHeight": canvas.base_height,
            "boundsAlignment": 0,
            "positionX": 0,
            "positionY": 0,
        },
    )
    # Colour mode first: the key colour in a screenshot says the filter has a mask.
    cl.create_source_filter(SOURCE, FILTER, "backdrop_filter", {"mode": "color", "color": KEY_OBS})
    wait_for("the key colour", lambda: keyed_screenshot(cl, "picture-wait.png"), limit=120, every=1.0)
    # A paused video makes a still screen; the filter keeps its last mask.
    cl.trigger_media_input_action(SOURCE, "OBS_WEBSOCKET_MEDIA_INPUT_ACTION_PAUSE")
    wait_for(
        "the video to pause",
        lambda: cl.get_media_input_status(SOURCE).media_state == "OBS_MEDIA_STATE_PAUSED",
    )
    cl.set_source_filter_settings(SOURCE, FILTER, {"mode": "blur", "blur_strength": 40}, True)
    wait_for(
        "the blurred background",
        lambda: (lambda png: png is not None and key_share(png) < 0.001)(screenshot_or_none(cl, "picture-blur.png")),
        limit=60,
    )
    cl.send("OpenInputFiltersDialog", {"inputName": SOURCE})
    out_path = os.environ["PICTURE"]
    previous = [None]
    # xvfb-run chose the display; expose-display.sh left it and its cookie in WORK.
    with open(os.path.join(WORK, "display")) as f:
        x_env = dict(os.environ, DISPLAY=f.read().strip(), XAUTHORITY=os.path.join(WORK, "xauthority"))

    # Under Xvfb without a window manager the dialog shows only its preview until it is
    # resized: Qt lays it out and paints it then.
    dialog = ["xdotool", "search", "--name", f"Filters for '{SOURCE}'"]
    wait_for(
        "the Filters dialog",
        lambda: subprocess.run(dialog, capture_output=True, env=x_env).returncode == 0,
        limit=60,
    )
    subprocess.run(dialog + ["windowsize", "%@", "1180", "840", "windowmove", "%@", "300", "30"], env=x_env, check=True)

    def still_screen():
        """The dialog has opened and painted once two pictures of the screen are equal."""
        subprocess.run(["xwd", "-root", "-silent", "-out", out_path], check=True, env=x_env)
        with open(out_path, "rb") as f:
            data = f.read()
        windows = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True, env=x_env).stdout
        same = previous[0] == data
        previous[0] = data
        return same and "Filters for" in windows

    wait_for("the Filters dialog, painted", still_screen, limit=120, every=1.0)
    return {"picture": out_path}


def screenshot_or_none(cl, name):
    try:
        return screenshot(cl, name)[1]
    except obs.error.OBSSDKRequestError:
        return None


def main():
    phase = sys.argv[1]
    cl = connect()
    try:
        result = {"first": first, "second": second, "hdr_setup": hdr_setup, "hdr": hdr, "picture": picture}[phase](cl)
        result["ok"] = True
    except SystemExit as e:
        result = {"ok": False, "error": str(e)}
    except Exception as e:
        result = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    with open(os.path.join(WORK, f"result-{phase}.json"), "w") as f:
        json.dump(result, f, indent=2, default=str)
    print(json.dumps(result, default=str)[:2000])
    sys.exit(0 if result.get("ok") else 1)


if __name__ == "__main__":
    main()

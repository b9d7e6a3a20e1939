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

Environment: WORK, PORT, PASSWORD, VIDEO (first phase).
"""

import base64
import io
import json
import logging
import os
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


def first(cl):
    out = {}
    v = cl.get_version()
    out["obs_version"] = v.obs_version
    out["websocket_version"] = v.obs_web_socket_version
    out["filter_kinds"] = filter_kinds(cl, v)
    scene = cl.get_current_program_scene().current_program_scene_name
    cl.create_input(
        scene,
        SOURCE,
        "ffmpeg_source",
        {"local_file": os.environ["VIDEO"], "is_local_file": True, "looping": True, "hw_decode": False},
        True,
    )
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
    cl.start_record()
    wait_for("3 s of recording", lambda: cl.get_record_status().output_duration >= 3000, limit=120)
    stopped = cl.stop_record()
    # Until the file is finished OBS counts the output as active, and closing OBS would ask
    # whether to stop it (a dialog nobody answers here).
    wait_for("the recording to finish", lambda: not cl.get_record_status().output_active, limit=120)
    out["record_path"] = getattr(stopped, "output_path", None)
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


def main():
    phase = sys.argv[1]
    cl = connect()
    try:
        result = {"first": first, "second": second}[phase](cl)
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

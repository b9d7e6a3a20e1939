//! Output capture: the raw video callback counts every output frame and copies the ones asked
//! for, and pairs them with the *original* (unfiltered) frame the tap filter grabbed during the
//! same render (see `tap.rs`).
//!
//! Pairing is by timestamp: the tap stamps its copy with `obs_get_video_frame_time()` while the
//! frame is rendered, and libobs hands that same `video_time` to raw callbacks as
//! `video_data.timestamp` when the frame leaves the (2-frame-deep) staging pipeline. A request
//! is fulfilled by the first output frame with `timestamp >= T`, so a duplicated or lagged frame
//! never leaves it hanging.

use backdrop_obs::sys;
use std::collections::{HashMap, VecDeque};
use std::os::raw::c_void;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One BGRA frame, rows tightly packed (`width * 4` bytes per row).
#[derive(Clone, Debug, Default)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    /// libobs video time of the render that produced it (ns).
    pub timestamp: u64,
    pub bgra: Vec<u8>,
}

impl Frame {
    /// Copies `height` rows of `width * 4` bytes from `data` with stride `linesize` (a mapped
    /// stage surface); a too short `data` gives a black frame.
    pub fn from_rows(
        data: &[u8],
        linesize: usize,
        width: u32,
        height: u32,
        timestamp: u64,
    ) -> Frame {
        let row = width as usize * 4;
        let needed = linesize * (height as usize).saturating_sub(1) + row;
        let mut bgra = Vec::with_capacity(row * height as usize);
        if linesize >= row && data.len() >= needed {
            for y in 0..height as usize {
                bgra.extend_from_slice(&data[y * linesize..y * linesize + row]);
            }
        } else {
            bgra.resize(row * height as usize, 0);
        }
        Frame {
            width,
            height,
            timestamp,
            bgra,
        }
    }

    /// Copies `height` rows of `width * 4` bytes from `data` with stride `linesize`; NULL gives
    /// a black frame.
    ///
    /// # Safety
    /// `data` must be NULL or point to `height` rows of at least `width * 4` bytes each,
    /// `linesize` apart.
    pub unsafe fn copy_from(
        data: *const u8,
        linesize: usize,
        width: u32,
        height: u32,
        timestamp: u64,
    ) -> Frame {
        let len = linesize * (height as usize).saturating_sub(1) + width as usize * 4;
        let rows: &[u8] = if data.is_null() || height == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(data, len)
        };
        Frame::from_rows(rows, linesize, width, height, timestamp)
    }
}

/// A finished request: the original (None if the tap never rendered) and the output frame.
pub struct Pair {
    pub original: Option<Frame>,
    pub result: Frame,
}

#[derive(Default)]
struct State {
    /// Output size given to the raw callback's conversion.
    width: u32,
    height: u32,
    /// Output frames counted since `start` (stops counting at `frame_limit`).
    frames: u64,
    frame_limit: Option<u64>,
    first_frame_at: Option<Instant>,
    last_frame_at: Option<Instant>,
    last_timestamp: u64,
    next_id: u64,
    /// Requests waiting for the tap to render an original.
    tap_queue: VecDeque<u64>,
    /// Requests waiting for an output frame with `timestamp >= .1`.
    result_wait: Vec<(u64, u64)>,
    originals: HashMap<u64, Frame>,
    results: HashMap<u64, Frame>,
}

/// State shared by the main thread, the tap filter (graphics thread) and the raw video
/// callback (video output thread). One per process.
pub struct Capture {
    state: Mutex<State>,
}

/// The process-wide capture state.
pub static CAPTURE: LazyLock<Capture> = LazyLock::new(|| Capture {
    state: Mutex::new(State::default()),
});

impl Capture {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connects the raw video callback for a `width` x `height` BGRA canvas and resets counters.
    pub fn start(&self, width: u32, height: u32) {
        {
            let mut st = self.lock();
            st.width = width;
            st.height = height;
            st.frames = 0;
            st.first_frame_at = None;
            st.last_frame_at = None;
        }
        let conversion = sys::video_scale_info {
            format: sys::video_format::VIDEO_FORMAT_BGRA,
            width,
            height,
            range: sys::video_range_type::VIDEO_RANGE_FULL,
            colorspace: sys::video_colorspace::VIDEO_CS_SRGB,
        };
        unsafe {
            sys::obs_add_raw_video_callback(&conversion, Some(raw_video), std::ptr::null_mut())
        };
    }

    /// Disconnects the raw video callback; once this returns it is not called again.
    pub fn stop(&self) {
        unsafe { sys::obs_remove_raw_video_callback(Some(raw_video), std::ptr::null_mut()) };
    }

    /// Output frames counted so far.
    pub fn frames(&self) -> u64 {
        self.lock().frames
    }

    /// Stops counting at `limit` frames (requests are still served).
    pub fn set_frame_limit(&self, limit: Option<u64>) {
        self.lock().frame_limit = limit;
    }

    /// Time since the last output frame (or None before the first).
    pub fn since_last_frame(&self) -> Option<Duration> {
        self.lock().last_frame_at.map(|t| t.elapsed())
    }

    /// Measured output rate: frames over the time between the first and the last frame.
    pub fn measured_fps(&self) -> Option<f64> {
        let st = self.lock();
        match (st.first_frame_at, st.last_frame_at) {
            (Some(a), Some(b)) if st.frames > 1 && b > a => {
                Some((st.frames - 1) as f64 / (b - a).as_secs_f64())
            }
            _ => None,
        }
    }

    /// Asks for an (original, result) pair from the next rendered frame; returns its id.
    pub fn request_pair(&self) -> u64 {
        let mut st = self.lock();
        st.next_id += 1;
        let id = st.next_id;
        st.tap_queue.push_back(id);
        id
    }

    /// Gives up on the original of request `id` (the tap did not render): the next output
    /// frame completes it.
    pub fn downgrade_to_result_only(&self, id: u64) {
        let mut st = self.lock();
        if let Some(pos) = st.tap_queue.iter().position(|&x| x == id) {
            st.tap_queue.remove(pos);
            let after = st.last_timestamp + 1;
            st.result_wait.push((id, after));
        }
    }

    /// Whether request `id` still waits for the tap.
    pub fn waiting_for_tap(&self, id: u64) -> bool {
        self.lock().tap_queue.contains(&id)
    }

    /// Takes the finished pair of request `id`, if its output frame has arrived.
    pub fn take_pair(&self, id: u64) -> Option<Pair> {
        let mut st = self.lock();
        let result = st.results.remove(&id)?;
        let original = st.originals.remove(&id);
        Some(Pair { original, result })
    }

    /// Forgets request `id` wherever it is.
    pub fn cancel(&self, id: u64) {
        let mut st = self.lock();
        st.tap_queue.retain(|&x| x != id);
        st.result_wait.retain(|&(x, _)| x != id);
        st.originals.remove(&id);
        st.results.remove(&id);
    }

    /// Tap side: whether any request waits for an original (cheap check every render).
    pub fn tap_wanted(&self) -> bool {
        !self.lock().tap_queue.is_empty()
    }

    /// Tap side: hands over the original rendered at video time `timestamp` to every waiting
    /// request; their output frames are the first with `timestamp >= ` that time.
    pub fn tap_fulfil(&self, original: Frame) {
        let mut st = self.lock();
        let ts = original.timestamp;
        let ids: Vec<u64> = st.tap_queue.drain(..).collect();
        for id in ids {
            st.originals.insert(id, original.clone());
            st.result_wait.push((id, ts));
        }
    }

    /// Raw callback side: counts the frame and serves the requests it completes.
    fn on_frame(&self, frame: &sys::video_data) {
        let now = Instant::now();
        let mut st = self.lock();
        let counting = match st.frame_limit {
            Some(limit) => st.frames < limit,
            None => true,
        };
        if counting {
            st.frames += 1;
        }
        st.first_frame_at.get_or_insert(now);
        st.last_frame_at = Some(now);
        st.last_timestamp = frame.timestamp;
        if !st.result_wait.iter().any(|&(_, t)| t <= frame.timestamp) {
            return;
        }
        let copy = unsafe {
            Frame::copy_from(
                frame.data[0],
                frame.linesize[0] as usize,
                st.width,
                st.height,
                frame.timestamp,
            )
        };
        let done: Vec<u64> = st
            .result_wait
            .iter()
            .filter(|&&(_, t)| t <= frame.timestamp)
            .map(|&(id, _)| id)
            .collect();
        st.result_wait.retain(|&(_, t)| t > frame.timestamp);
        for id in done {
            st.results.insert(id, copy.clone());
        }
    }
}

/// The raw video callback (video output thread).
unsafe extern "C" fn raw_video(_param: *mut c_void, frame: *mut sys::video_data) {
    let _ = std::panic::catch_unwind(|| {
        if let Some(frame) = frame.as_ref() {
            CAPTURE.on_frame(frame);
        }
    });
}

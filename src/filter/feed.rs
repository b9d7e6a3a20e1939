//! The background feed of modes `source` and `video`: another source's video drawn behind the
//! person. Either a source of the scene collection chosen by name, held weakly (the user owns it,
//! and removing it must not be blocked by us), or a private media source Backdrop makes for a
//! video file (looping, muted, hardware decoding off).
//!
//! While the filter's parent is shown (active) and the filter enabled, the feed holds one
//! "showing" ("active") reference on its source, as a view that draws it would: a media source
//! plays, a browser source renders. [`Feed::tick`] reconciles those references every frame, and
//! dropping the feed gives them back.

use backdrop_obs::data::OwnedData;
use backdrop_obs::source::{Source, SourceRef, WeakSource};
use std::path::Path;
use std::time::{Duration, Instant};

/// How often a chosen source that is not found (yet: a scene collection loads its sources one
/// after another) is looked up again.
const RETRY: Duration = Duration::from_secs(1);

/// Where the feed's video comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The public source (input or scene) of this name.
    Named(String),
    /// A video file.
    Video(String),
}

/// One background feed; see the module documentation.
pub(crate) struct Feed {
    origin: Origin,
    /// The named source while it is found.
    weak: Option<WeakSource>,
    /// The private media source of a video file.
    owned: Option<Source>,
    /// Whether the feed holds a showing / an active reference on its source.
    showing: bool,
    active: bool,
    /// Why nothing is shown, for the status line.
    error: Option<String>,
    /// Whether the named source was found and then removed.
    removed: bool,
    last_lookup: Option<Instant>,
}

impl Feed {
    /// A feed for `origin`. A video file's media source is made at once; a named source is
    /// looked up by the next [`Feed::tick`].
    pub fn new(origin: Origin) -> Self {
        let mut feed = Self {
            origin,
            weak: None,
            owned: None,
            showing: false,
            active: false,
            error: None,
            removed: false,
            last_lookup: None,
        };
        match &feed.origin {
            Origin::Named(name) if name.trim().is_empty() => {
                feed.error = Some("no source chosen".into());
            }
            Origin::Named(_) => {}
            Origin::Video(path) => match media_source(path) {
                Ok(s) => feed.owned = Some(s),
                Err(e) => {
                    if !path.trim().is_empty() {
                        log::warn!("background video: {e}");
                    }
                    feed.error = Some(e);
                }
            },
        }
        feed
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Why the feed shows nothing (the filter blurs meanwhile).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// A strong reference to the source to draw, held for one render.
    pub fn source(&self) -> Option<Source> {
        self.held().filter(|s| !s.get().removed())
    }

    /// The source the feed holds, removed or not.
    fn held(&self) -> Option<Source> {
        match (&self.owned, &self.weak) {
            (Some(s), _) => Source::from_ref(s.get()),
            (None, Some(w)) => w.upgrade(),
            (None, None) => None,
        }
    }

    /// Once per frame (`video_tick`): finds the named source, lets go of one that was removed,
    /// and holds showing/active references while `filter` is enabled and its parent shown /
    /// active. Returns the source's new name when the user renamed it: the caller stores it in
    /// the settings, so the scene collection finds it again after a restart.
    pub fn tick(&mut self, filter: SourceRef) -> Option<String> {
        let parent = filter.filter_parent()?;
        if let Origin::Named(name) = &self.origin {
            let name = name.clone();
            self.follow(&name, parent);
        }
        let source = self.source()?;
        let on = filter.enabled();
        self.hold(source.get(), on && parent.showing(), on && parent.active());
        match &mut self.origin {
            Origin::Named(name) if self.owned.is_none() => {
                let current = source.get().name();
                (current != *name && !current.is_empty()).then(|| {
                    log::info!("background source '{name}' was renamed to '{current}'");
                    *name = current.clone();
                    current
                })
            }
            _ => None,
        }
    }

    /// Looks the named source up when it is not held (at most every [`RETRY`]), and lets go of
    /// it once it is removed or destroyed.
    fn follow(&mut self, name: &str, parent: SourceRef) {
        if name.trim().is_empty() {
            return;
        }
        if let Some(weak) = &self.weak {
            match weak.upgrade() {
                Some(s) if !s.get().removed() => return,
                Some(s) => {
                    // Removed from the scene collection but not destroyed yet.
                    self.hold(s.get(), false, false);
                    log::warn!("background source '{name}' was removed; blurring instead");
                }
                None => {
                    // Destroyed: its references went with it.
                    (self.showing, self.active) = (false, false);
                    log::warn!("background source '{name}' is gone; blurring instead");
                }
            }
            self.weak = None;
            self.removed = true;
            self.error = Some(format!("'{name}' was removed"));
            self.last_lookup = Some(Instant::now());
            return;
        }
        if self.last_lookup.is_some_and(|t| t.elapsed() < RETRY) {
            return;
        }
        self.last_lookup = Some(Instant::now());
        let error = match Source::by_name(name) {
            // Until a source of that name comes back, it is the one that was removed.
            None if self.removed => format!("'{name}' was removed"),
            None => format!("no source named '{name}'"),
            Some(s) if !s.get().has_video() => format!("'{name}' has no video"),
            // Drawing a source that draws this filter's own source would draw it inside itself.
            Some(s) if s.get().draws(parent) => {
                format!("'{name}' shows this filter's own source")
            }
            Some(s) => {
                if self.error.is_some() {
                    log::info!("background source '{name}' found");
                }
                self.weak = Some(s.downgrade());
                self.error = None;
                self.removed = false;
                return;
            }
        };
        if self.error.as_deref() != Some(error.as_str()) {
            log::warn!("background source: {error}; blurring instead");
        }
        self.error = Some(error);
    }

    /// Adds or gives back the showing and active references on `source` to match the wish.
    fn hold(&mut self, source: SourceRef, showing: bool, active: bool) {
        if self.showing != showing {
            source.set_showing(showing);
            self.showing = showing;
        }
        if self.active != active {
            source.set_active(active);
            self.active = active;
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(s) = self.held() {
            self.hold(s.get(), false, false);
        }
    }
}

/// A private `ffmpeg_source` playing `path` in a loop, muted, decoded in software.
fn media_source(path: &str) -> Result<Source, String> {
    if path.trim().is_empty() {
        return Err("no video chosen".into());
    }
    if !Path::new(path).is_file() {
        return Err(format!("file not found: {path}"));
    }
    let settings = OwnedData::new();
    settings
        .set_string("local_file", path)
        .set_bool("is_local_file", true)
        .set_bool("looping", true)
        .set_bool("hw_decode", false)
        // Plays from now on, not from the next activation.
        .set_bool("restart_on_activate", false)
        .set_bool("close_when_inactive", false);
    let source = Source::create_private("ffmpeg_source", "Backdrop background video", &settings)
        .ok_or_else(|| "OBS's media source (ffmpeg_source) is not available".to_string())?;
    source.get().set_muted(true);
    Ok(source)
}

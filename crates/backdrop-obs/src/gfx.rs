//! Safe wrappers for libobs graphics: a [`Graphics`] token that every drawing call requires (it
//! proves the graphics context is entered on this thread), RAII guards for texrender begin/end
//! and blend state, effect parameters, and owners for textures, stage surfaces, effects and
//! images. Destructors enter the graphics context themselves (`obs_enter_graphics` is
//! re-entrant), so owners may be dropped on any thread.

use crate::{cstring, from_cstr, sys};
use std::ffi::CStr;
use std::marker::PhantomData;
use std::path::Path;
use std::ptr::NonNull;

/// Proof that the libobs graphics context is entered on this thread, for as long as it lives.
/// Not `Send`: the context belongs to one thread.
pub struct Graphics<'a> {
    _not_send: PhantomData<*mut &'a ()>,
}

impl Graphics<'_> {
    /// The token inside a libobs callback that runs in the graphics context (`video_render`,
    /// draw callbacks).
    ///
    /// # Safety
    /// The graphics context must be entered on this thread for the token's whole life.
    pub unsafe fn assume_entered() -> Self {
        Graphics {
            _not_send: PhantomData,
        }
    }
}

/// Runs `f` inside `obs_enter_graphics` / `obs_leave_graphics` (left again even if `f` panics).
pub fn with_graphics<R>(f: impl FnOnce(&Graphics) -> R) -> R {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            // SAFETY: paired with the obs_enter_graphics below.
            unsafe { sys::obs_leave_graphics() };
        }
    }
    // SAFETY: libobs is initialised whenever plugin code runs; entering is re-entrant.
    unsafe { sys::obs_enter_graphics() };
    let _leave = Leave;
    // SAFETY: entered above, left when `_leave` drops after `f`.
    let g = unsafe { Graphics::assume_entered() };
    f(&g)
}

/// Blend factors (`gs_blend_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blend {
    One,
    Zero,
    InvSrcAlpha,
}

impl Blend {
    fn raw(self) -> sys::gs_blend_type {
        match self {
            Blend::One => sys::gs_blend_type::GS_BLEND_ONE,
            Blend::Zero => sys::gs_blend_type::GS_BLEND_ZERO,
            Blend::InvSrcAlpha => sys::gs_blend_type::GS_BLEND_INVSRCALPHA,
        }
    }
}

/// A colour space of libobs' renderer (`gs_color_space`, OBS 28 and later). What the values in
/// a render target mean: [`ColorSpace::Srgb`] is 8-bit sRGB-encoded, the others hold linear
/// light in half floats (`GS_RGBA16F`), 1.0 being SDR white for `Srgb16F` and `Extended709` (HDR
/// canvases let values go above it) and 80 nits for `ScRgb709`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorSpace {
    /// `GS_CS_SRGB`: SDR, 8 bits per channel, sRGB transfer.
    Srgb,
    /// `GS_CS_SRGB_16F`: SDR, linear, half float.
    Srgb16F,
    /// `GS_CS_709_EXTENDED`: Rec. 709 primaries, linear, values above 1.0 kept (HDR).
    Extended709,
    /// `GS_CS_709_SCRGB`: scRGB, linear, 1.0 = 80 nits.
    ScRgb709,
}

impl ColorSpace {
    /// The libobs value.
    pub fn raw(self) -> sys::gs_color_space {
        use sys::gs_color_space as C;
        match self {
            ColorSpace::Srgb => C::GS_CS_SRGB,
            ColorSpace::Srgb16F => C::GS_CS_SRGB_16F,
            ColorSpace::Extended709 => C::GS_CS_709_EXTENDED,
            ColorSpace::ScRgb709 => C::GS_CS_709_SCRGB,
        }
    }

    /// From the libobs value.
    pub fn from_raw(raw: sys::gs_color_space) -> Self {
        use sys::gs_color_space as C;
        match raw {
            C::GS_CS_SRGB => ColorSpace::Srgb,
            C::GS_CS_SRGB_16F => ColorSpace::Srgb16F,
            C::GS_CS_709_EXTENDED => ColorSpace::Extended709,
            C::GS_CS_709_SCRGB => ColorSpace::ScRgb709,
        }
    }

    /// Whether render targets in this space hold linear light (every space but `Srgb`).
    pub fn is_linear(self) -> bool {
        self != ColorSpace::Srgb
    }
}

/// Framebuffer sRGB encoding set for a while (`gs_enable_framebuffer_srgb`); the previous state
/// comes back on drop.
pub struct FramebufferSrgbGuard<'g> {
    previous: bool,
    _g: PhantomData<&'g ()>,
}

impl Drop for FramebufferSrgbGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: set in Graphics::framebuffer_srgb on this thread, context entered.
        unsafe { sys::gs_enable_framebuffer_srgb(self.previous) };
    }
}

/// A pushed blend state with a blend function; popped on drop.
pub struct BlendGuard<'g> {
    _g: PhantomData<&'g ()>,
}

impl Graphics<'_> {
    /// Pushes the blend state and sets `src`/`dst` factors until the guard drops. `One, Zero`
    /// replaces the target; `One, InvSrcAlpha` draws premultiplied alpha over it.
    pub fn blend(&self, src: Blend, dst: Blend) -> BlendGuard<'_> {
        // SAFETY: graphics context entered (self); popped in BlendGuard::drop.
        unsafe {
            sys::gs_blend_state_push();
            sys::gs_blend_function(src.raw(), dst.raw());
        }
        BlendGuard { _g: PhantomData }
    }

    /// The colour space of the current render target (`gs_get_color_space`).
    pub fn color_space(&self) -> ColorSpace {
        // SAFETY: graphics context entered (self).
        ColorSpace::from_raw(unsafe { sys::gs_get_color_space() })
    }

    /// Turns the framebuffer's sRGB encoding on or off until the guard drops. Off, an 8-bit
    /// target stores what the shader writes; on, it encodes linear light to sRGB.
    pub fn framebuffer_srgb(&self, enabled: bool) -> FramebufferSrgbGuard<'_> {
        // SAFETY: graphics context entered (self).
        let previous = unsafe { sys::gs_framebuffer_srgb_enabled() };
        // SAFETY: as above; restored in the guard's drop.
        unsafe { sys::gs_enable_framebuffer_srgb(enabled) };
        FramebufferSrgbGuard {
            previous,
            _g: PhantomData,
        }
    }
}

impl Drop for BlendGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: pushed in Graphics::blend, on this thread, in the graphics context.
        unsafe { sys::gs_blend_state_pop() };
    }
}

/// A texture borrowed from its owner for `'a`.
#[derive(Clone, Copy)]
pub struct Texture<'a> {
    ptr: NonNull<sys::gs_texture_t>,
    _owner: PhantomData<&'a ()>,
}

impl Texture<'_> {
    fn new(ptr: *mut sys::gs_texture_t) -> Option<Self> {
        NonNull::new(ptr).map(|ptr| Texture {
            ptr,
            _owner: PhantomData,
        })
    }
    fn raw(self) -> *mut sys::gs_texture_t {
        self.ptr.as_ptr()
    }
}

/// A `gs_texrender_t`: an offscreen render target in one [`ColorSpace`] (8-bit BGRA for
/// [`ColorSpace::Srgb`], half-float RGBA otherwise), (re)allocated at the size it is begun with.
/// Live graphics objects made through these wrappers, process-wide (every filter): made minus
/// destroyed, per kind. A leak shows as a count that grows while the filter runs (the soak).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuObjects {
    pub texrenders: i64,
    pub stage_surfaces: i64,
    pub textures: i64,
    pub effects: i64,
    pub images: i64,
}

impl GpuObjects {
    /// All kinds together.
    pub fn total(&self) -> i64 {
        self.texrenders + self.stage_surfaces + self.textures + self.effects + self.images
    }
}

use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
static LIVE_TEXRENDERS: AtomicI64 = AtomicI64::new(0);
static LIVE_STAGE_SURFACES: AtomicI64 = AtomicI64::new(0);
static LIVE_TEXTURES: AtomicI64 = AtomicI64::new(0);
static LIVE_EFFECTS: AtomicI64 = AtomicI64::new(0);
static LIVE_IMAGES: AtomicI64 = AtomicI64::new(0);

fn made(counter: &AtomicI64) {
    counter.fetch_add(1, AtomicOrdering::Relaxed);
}

fn destroyed(counter: &AtomicI64) {
    counter.fetch_sub(1, AtomicOrdering::Relaxed);
}

/// The graphics objects alive now (see [`GpuObjects`]).
pub fn live_objects() -> GpuObjects {
    let get = |c: &AtomicI64| c.load(AtomicOrdering::Relaxed);
    GpuObjects {
        texrenders: get(&LIVE_TEXRENDERS),
        stage_surfaces: get(&LIVE_STAGE_SURFACES),
        textures: get(&LIVE_TEXTURES),
        effects: get(&LIVE_EFFECTS),
        images: get(&LIVE_IMAGES),
    }
}

pub struct TexRender {
    ptr: NonNull<sys::gs_texrender_t>,
    space: ColorSpace,
}

// SAFETY: the texrender is only touched through a Graphics token (or in drop, which enters the
// context), so libobs' graphics mutex serialises every use.
unsafe impl Send for TexRender {}

/// Rendering into a [`TexRender`]; ends the render on drop.
pub struct Rendering<'t> {
    target: &'t mut TexRender,
}

impl Drop for Rendering<'_> {
    fn drop(&mut self) {
        // SAFETY: begun in TexRender::begin on this thread with the context entered.
        unsafe { sys::gs_texrender_end(self.target.ptr.as_ptr()) }
    }
}

impl TexRender {
    /// A BGRA texrender without depth buffer, in [`ColorSpace::Srgb`].
    pub fn new(g: &Graphics) -> Option<Self> {
        Self::with_space(g, ColorSpace::Srgb)
    }

    /// A texrender without depth buffer for `space`: `GS_BGRA` for `Srgb` (as [`TexRender::new`]),
    /// `GS_RGBA16F` for the linear spaces (`gs_get_format_from_space`).
    pub fn with_space(_g: &Graphics, space: ColorSpace) -> Option<Self> {
        let format = if space.is_linear() {
            sys::gs_color_format::GS_RGBA16F
        } else {
            sys::gs_color_format::GS_BGRA
        };
        // SAFETY: graphics context entered (_g).
        NonNull::new(unsafe {
            sys::gs_texrender_create(format, sys::gs_zstencil_format::GS_ZS_NONE)
        })
        .map(|ptr| {
            made(&LIVE_TEXRENDERS);
            Self { ptr, space }
        })
    }

    /// The colour space this target was made for.
    pub fn space(&self) -> ColorSpace {
        self.space
    }

    /// Resets, begins rendering at `width` x `height` px in the target's colour space
    /// (`gs_texrender_begin_with_color_space`), clears to transparent black and sets an
    /// orthographic projection of the same size; the render ends when the returned guard drops.
    /// `None` when the target cannot be made (size 0, out of GPU memory).
    pub fn begin<'t>(
        &'t mut self,
        _g: &Graphics,
        width: u32,
        height: u32,
    ) -> Option<Rendering<'t>> {
        // SAFETY: graphics context entered (_g); the texrender is live.
        unsafe {
            sys::gs_texrender_reset(self.ptr.as_ptr());
            if !sys::gs_texrender_begin_with_color_space(
                self.ptr.as_ptr(),
                width,
                height,
                self.space.raw(),
            ) {
                return None;
            }
            let clear = sys::vec4::default();
            sys::gs_clear(sys::GS_CLEAR_COLOR, &clear, 0.0, 0);
            sys::gs_ortho(0.0, width as f32, 0.0, height as f32, -100.0, 100.0);
        }
        Some(Rendering { target: self })
    }

    /// The rendered texture (`None` before the first successful render).
    pub fn texture(&self) -> Option<Texture<'_>> {
        // SAFETY: reads the texrender's current texture pointer; no GPU work.
        Texture::new(unsafe { sys::gs_texrender_get_texture(self.ptr.as_ptr()) })
    }
}

impl Drop for TexRender {
    fn drop(&mut self) {
        // SAFETY: created by gs_texrender_create, destroyed once, context entered.
        with_graphics(|_| unsafe { sys::gs_texrender_destroy(self.ptr.as_ptr()) });
        destroyed(&LIVE_TEXRENDERS);
    }
}

/// A `gs_stagesurf_t`: CPU-readable copy of a BGRA texture of fixed size.
pub struct StageSurface {
    ptr: NonNull<sys::gs_stagesurf_t>,
    /// Width in px.
    pub width: u32,
    /// Height in px.
    pub height: u32,
}

// SAFETY: as TexRender: used only through a Graphics token or in drop (which enters it).
unsafe impl Send for StageSurface {}

impl StageSurface {
    /// A BGRA stage surface of `width` x `height` px.
    pub fn new(_g: &Graphics, width: u32, height: u32) -> Option<Self> {
        // SAFETY: graphics context entered (_g).
        NonNull::new(unsafe {
            sys::gs_stagesurface_create(width, height, sys::gs_color_format::GS_BGRA)
        })
        .map(|ptr| {
            made(&LIVE_STAGE_SURFACES);
            Self { ptr, width, height }
        })
    }

    /// Queues a GPU copy of `texture` (this surface's size, BGRA) into the surface.
    pub fn stage(&mut self, _g: &Graphics, texture: Texture) {
        // SAFETY: context entered; both objects are live; libobs checks size and format.
        unsafe { sys::gs_stage_texture(self.ptr.as_ptr(), texture.raw()) }
    }

    /// Maps the surface and passes its rows (`data`, `linesize` in bytes) to `f`; unmaps after.
    /// Returns `None` when the map fails.
    pub fn read<R>(&mut self, _g: &Graphics, f: impl FnOnce(&[u8], usize) -> R) -> Option<R> {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut linesize: u32 = 0;
        // SAFETY: context entered; on success libobs maps `linesize * (height - 1) + width * 4`
        // readable bytes at `data` until the unmap below.
        unsafe {
            if !sys::gs_stagesurface_map(self.ptr.as_ptr(), &mut data, &mut linesize)
                || data.is_null()
            {
                return None;
            }
            let len = linesize as usize * (self.height as usize - 1) + self.width as usize * 4;
            let result = f(std::slice::from_raw_parts(data, len), linesize as usize);
            sys::gs_stagesurface_unmap(self.ptr.as_ptr());
            Some(result)
        }
    }
}

impl Drop for StageSurface {
    fn drop(&mut self) {
        // SAFETY: created by gs_stagesurface_create, destroyed once, context entered.
        with_graphics(|_| unsafe { sys::gs_stagesurface_destroy(self.ptr.as_ptr()) });
        destroyed(&LIVE_STAGE_SURFACES);
    }
}

/// A dynamic two-channel float texture (`GS_RG32F`) holding the mask's `(a, b)` coefficients,
/// updated in place with `gs_texture_set_image`: no per-frame create/destroy.
pub struct CoefficientTexture {
    ptr: NonNull<sys::gs_texture_t>,
    /// Width in px.
    pub width: u32,
    /// Height in px.
    pub height: u32,
}

// SAFETY: as TexRender.
unsafe impl Send for CoefficientTexture {}

impl CoefficientTexture {
    /// A dynamic `GS_RG32F` texture of `width` x `height` px.
    pub fn new(_g: &Graphics, width: u32, height: u32) -> Option<Self> {
        // SAFETY: graphics context entered (_g); no initial data.
        NonNull::new(unsafe {
            sys::gs_texture_create(
                width,
                height,
                sys::gs_color_format::GS_RG32F,
                1,
                std::ptr::null_mut(),
                sys::GS_DYNAMIC,
            )
        })
        .map(|ptr| {
            made(&LIVE_TEXTURES);
            Self { ptr, width, height }
        })
    }

    /// Uploads interleaved `(a, b)` pairs, row-major.
    ///
    /// # Panics
    /// When `pairs` does not hold `2 * width * height` values.
    pub fn upload(&mut self, _g: &Graphics, pairs: &[f32]) {
        assert_eq!(pairs.len(), 2 * (self.width * self.height) as usize);
        let linesize = self.width * 8;
        // SAFETY: context entered; `pairs` holds `height` rows of `linesize` bytes (checked).
        unsafe {
            sys::gs_texture_set_image(
                self.ptr.as_ptr(),
                pairs.as_ptr() as *const u8,
                linesize,
                false,
            )
        }
    }

    /// The texture.
    pub fn texture(&self) -> Texture<'_> {
        Texture {
            ptr: self.ptr,
            _owner: PhantomData,
        }
    }
}

impl Drop for CoefficientTexture {
    fn drop(&mut self) {
        // SAFETY: created by gs_texture_create, destroyed once, context entered.
        with_graphics(|_| unsafe { sys::gs_texture_destroy(self.ptr.as_ptr()) });
        destroyed(&LIVE_TEXTURES);
    }
}

/// A compiled effect (`.effect` file).
pub struct Effect(NonNull<sys::gs_effect_t>);

// SAFETY: effects are only used through a Graphics token or in drop, which serialises access.
unsafe impl Send for Effect {}

/// A parameter of an [`Effect`]; setting it needs the graphics context. Parameters the effect
/// does not declare are `None` in [`Effect::param`].
#[derive(Clone, Copy)]
pub struct Param(NonNull<sys::gs_eparam_t>);

// SAFETY: a parameter pointer is stable for its effect's life and only used through a Graphics
// token.
unsafe impl Send for Param {}

impl Param {
    /// Sets a texture parameter.
    pub fn set_texture(self, _g: &Graphics, texture: Texture) {
        // SAFETY: context entered; both live.
        unsafe { sys::gs_effect_set_texture(self.0.as_ptr(), texture.raw()) }
    }
    /// Sets a texture parameter sampled as linear light (`gs_effect_set_texture_srgb`): an 8-bit
    /// sRGB texture is decoded by the sampler; a float texture reads as it is.
    pub fn set_texture_srgb(self, _g: &Graphics, texture: Texture) {
        // SAFETY: context entered; both live.
        unsafe { sys::gs_effect_set_texture_srgb(self.0.as_ptr(), texture.raw()) }
    }
    /// Sets a float parameter.
    pub fn set_float(self, _g: &Graphics, v: f32) {
        // SAFETY: context entered; the parameter is live.
        unsafe { sys::gs_effect_set_float(self.0.as_ptr(), v) }
    }
    /// Sets a `float2` parameter.
    pub fn set_vec2(self, _g: &Graphics, [x, y]: [f32; 2]) {
        let v = sys::vec2 {
            __bindgen_anon_1: sys::vec2__bindgen_ty_1 { ptr: [x, y] },
        };
        // SAFETY: context entered; `v` outlives the call (libobs copies it).
        unsafe { sys::gs_effect_set_vec2(self.0.as_ptr(), &v) }
    }
    /// Sets a `float4` parameter.
    pub fn set_vec4(self, _g: &Graphics, v: [f32; 4]) {
        let v = sys::vec4 {
            __bindgen_anon_1: sys::vec4__bindgen_ty_1 { ptr: v },
        };
        // SAFETY: context entered; `v` outlives the call (libobs copies it).
        unsafe { sys::gs_effect_set_vec4(self.0.as_ptr(), &v) }
    }
}

impl Effect {
    /// Compiles the effect file at `path`. Errors carry the compiler's message.
    ///
    /// # Errors
    /// The file is missing or does not compile.
    pub fn from_file(_g: &Graphics, path: &Path) -> Result<Self, String> {
        let p = cstring(&path.to_string_lossy());
        let mut errors: *mut std::os::raw::c_char = std::ptr::null_mut();
        // SAFETY: context entered; `errors` receives a bmalloc'd string or stays NULL.
        let effect = unsafe { sys::gs_effect_create_from_file(p.as_ptr(), &mut errors) };
        // SAFETY: NULL or a NUL-terminated string from libobs, freed once below.
        let message = unsafe { from_cstr(errors) };
        if !errors.is_null() {
            // SAFETY: allocated by libobs with bmalloc.
            unsafe { sys::bfree(errors as *mut _) };
        }
        NonNull::new(effect)
            .map(|e| {
                made(&LIVE_EFFECTS);
                Self(e)
            })
            .ok_or_else(|| {
                if message.is_empty() {
                    format!("cannot compile {}", path.display())
                } else {
                    message
                }
            })
    }

    /// The parameter named `name`, `None` when the effect has none.
    pub fn param(&self, name: &CStr) -> Option<Param> {
        // SAFETY: looks up a name in the live effect; no GPU work.
        NonNull::new(unsafe { sys::gs_effect_get_param_by_name(self.0.as_ptr(), name.as_ptr()) })
            .map(Param)
    }

    /// Draws `texture` as a `width` x `height` sprite with every pass of `technique` into the
    /// current render target. False when the effect has no such technique.
    pub fn draw(
        &self,
        _g: &Graphics,
        technique: &CStr,
        texture: Texture,
        width: u32,
        height: u32,
    ) -> bool {
        let mut drawn = false;
        // SAFETY: context entered; gs_effect_loop begins and ends each pass itself.
        unsafe {
            while sys::gs_effect_loop(self.0.as_ptr(), technique.as_ptr()) {
                sys::gs_draw_sprite(texture.raw(), 0, width, height);
                drawn = true;
            }
        }
        drawn
    }
}

impl Drop for Effect {
    fn drop(&mut self) {
        // SAFETY: created by gs_effect_create_from_file, destroyed once, context entered.
        with_graphics(|_| unsafe { sys::gs_effect_destroy(self.0.as_ptr()) });
        destroyed(&LIVE_EFFECTS);
    }
}

/// An image file decoded by OBS's own loader (`gs_image_file_t`) with its texture.
pub struct ImageFile(Box<sys::gs_image_file_t>);

// SAFETY: the texture is only used through a Graphics token; freed with the context entered.
unsafe impl Send for ImageFile {}

impl ImageFile {
    /// Decodes `path` and uploads it as a texture (enters the graphics context for the upload).
    ///
    /// # Errors
    /// The file is missing, not an image, or its texture cannot be created.
    pub fn load(path: &Path) -> Result<Self, String> {
        if !path.is_file() {
            return Err(format!("file not found: {}", path.display()));
        }
        let p = cstring(&path.to_string_lossy());
        let mut image: Box<sys::gs_image_file_t> = Box::default();
        // SAFETY: initialises the zeroed struct from a file; needs no graphics context.
        unsafe { sys::gs_image_file_init(image.as_mut(), p.as_ptr()) };
        if !image.loaded {
            // SAFETY: frees what init allocated.
            unsafe { sys::gs_image_file_free(image.as_mut()) };
            return Err(format!("not a readable image: {}", path.display()));
        }
        // SAFETY: the context is entered by with_graphics.
        with_graphics(|_| unsafe { sys::gs_image_file_init_texture(image.as_mut()) });
        if image.texture.is_null() {
            // SAFETY: as in Drop.
            with_graphics(|_| unsafe { sys::gs_image_file_free(image.as_mut()) });
            return Err(format!("cannot create a texture for {}", path.display()));
        }
        made(&LIVE_IMAGES);
        Ok(Self(image))
    }

    /// The image's texture.
    pub fn texture(&self) -> Texture<'_> {
        Texture::new(self.0.texture).expect("checked in load")
    }

    /// (width, height) in px.
    pub fn size(&self) -> (u32, u32) {
        (self.0.cx, self.0.cy)
    }
}

impl Drop for ImageFile {
    fn drop(&mut self) {
        // SAFETY: initialised in load, freed once, context entered.
        with_graphics(|_| unsafe { sys::gs_image_file_free(self.0.as_mut()) });
        destroyed(&LIVE_IMAGES);
    }
}

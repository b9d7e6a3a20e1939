//! RAII wrappers for libobs graphics objects. Each destructor enters the graphics context itself
//! (`obs_enter_graphics` is re-entrant), so they may be dropped on any thread.

use super::{cstring, from_cstr, sys};
use std::path::Path;
use std::ptr::NonNull;

/// Runs `f` inside `obs_enter_graphics` / `obs_leave_graphics`.
pub fn with_graphics<R>(f: impl FnOnce() -> R) -> R {
    unsafe { sys::obs_enter_graphics() };
    let result = f();
    unsafe { sys::obs_leave_graphics() };
    result
}

/// A `gs_texrender_t`: an offscreen render target that is (re)allocated at the size it is begun with.
pub struct TexRender(NonNull<sys::gs_texrender_t>);

impl TexRender {
    /// A BGRA texrender without depth buffer. Call with the graphics context entered.
    pub fn new() -> Option<Self> {
        NonNull::new(unsafe {
            sys::gs_texrender_create(
                sys::gs_color_format::GS_BGRA,
                sys::gs_zstencil_format::GS_ZS_NONE,
            )
        })
        .map(Self)
    }
    /// Resets, begins rendering at `width` x `height` px, clears to transparent black and sets an
    /// orthographic projection of the same size. Returns false when the target cannot be made.
    pub fn begin(&mut self, width: u32, height: u32) -> bool {
        unsafe {
            sys::gs_texrender_reset(self.0.as_ptr());
            if !sys::gs_texrender_begin(self.0.as_ptr(), width, height) {
                return false;
            }
            let clear = sys::vec4::default();
            sys::gs_clear(sys::GS_CLEAR_COLOR, &clear, 0.0, 0);
            sys::gs_ortho(0.0, width as f32, 0.0, height as f32, -100.0, 100.0);
        }
        true
    }
    /// Ends rendering started with [`TexRender::begin`].
    pub fn end(&mut self) {
        unsafe { sys::gs_texrender_end(self.0.as_ptr()) }
    }
    /// The rendered texture (NULL before the first successful render).
    pub fn texture(&self) -> *mut sys::gs_texture_t {
        unsafe { sys::gs_texrender_get_texture(self.0.as_ptr()) }
    }
}

impl Drop for TexRender {
    fn drop(&mut self) {
        with_graphics(|| unsafe { sys::gs_texrender_destroy(self.0.as_ptr()) });
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

impl StageSurface {
    /// A BGRA stage surface of `width` x `height` px. Call with the graphics context entered.
    pub fn new(width: u32, height: u32) -> Option<Self> {
        NonNull::new(unsafe {
            sys::gs_stagesurface_create(width, height, sys::gs_color_format::GS_BGRA)
        })
        .map(|ptr| Self { ptr, width, height })
    }
    /// Queues a GPU copy of `texture` (same size and format) into this surface.
    ///
    /// # Safety
    /// `texture` must be a live texture; call with the graphics context entered.
    pub unsafe fn stage(&mut self, texture: *mut sys::gs_texture_t) {
        unsafe { sys::gs_stage_texture(self.ptr.as_ptr(), texture) }
    }
    /// Maps the surface and passes its rows (`data`, `linesize` in bytes) to `f`; unmaps after.
    /// Returns `None` when the map fails.
    pub fn read<R>(&mut self, f: impl FnOnce(&[u8], usize) -> R) -> Option<R> {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut linesize: u32 = 0;
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
        with_graphics(|| unsafe { sys::gs_stagesurface_destroy(self.ptr.as_ptr()) });
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

impl CoefficientTexture {
    /// A dynamic `GS_RG32F` texture of `width` x `height` px. Call with the graphics context entered.
    pub fn new(width: u32, height: u32) -> Option<Self> {
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
        .map(|ptr| Self { ptr, width, height })
    }
    /// Uploads interleaved `(a, b)` pairs, row-major (`2 * width * height` values).
    pub fn upload(&mut self, pairs: &[f32]) {
        assert_eq!(pairs.len(), 2 * (self.width * self.height) as usize);
        let linesize = self.width * 8;
        unsafe {
            sys::gs_texture_set_image(
                self.ptr.as_ptr(),
                pairs.as_ptr() as *const u8,
                linesize,
                false,
            )
        }
    }
    /// The raw texture.
    pub fn raw(&self) -> *mut sys::gs_texture_t {
        self.ptr.as_ptr()
    }
}

impl Drop for CoefficientTexture {
    fn drop(&mut self) {
        with_graphics(|| unsafe { sys::gs_texture_destroy(self.ptr.as_ptr()) });
    }
}

/// A compiled effect (`.effect` file).
pub struct Effect(NonNull<sys::gs_effect_t>);

// SAFETY: effects are only used with the graphics context entered, which serialises access.
unsafe impl Send for Effect {}

impl Effect {
    /// Compiles the effect file at `path`. Call with the graphics context entered.
    /// Errors carry the compiler's message.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let p = cstring(&path.to_string_lossy());
        let mut errors: *mut std::os::raw::c_char = std::ptr::null_mut();
        let effect = unsafe { sys::gs_effect_create_from_file(p.as_ptr(), &mut errors) };
        let message = unsafe { from_cstr(errors) };
        if !errors.is_null() {
            unsafe { sys::bfree(errors as *mut _) };
        }
        NonNull::new(effect).map(Self).ok_or_else(|| {
            if message.is_empty() {
                format!("cannot compile {}", path.display())
            } else {
                message
            }
        })
    }
    /// The raw effect.
    pub fn raw(&self) -> *mut sys::gs_effect_t {
        self.0.as_ptr()
    }
    /// The parameter named `name` (NULL when absent).
    pub fn param(&self, name: &std::ffi::CStr) -> *mut sys::gs_eparam_t {
        unsafe { sys::gs_effect_get_param_by_name(self.0.as_ptr(), name.as_ptr()) }
    }
}

impl Drop for Effect {
    fn drop(&mut self) {
        with_graphics(|| unsafe { sys::gs_effect_destroy(self.0.as_ptr()) });
    }
}

/// An image file decoded by OBS's own loader (`gs_image_file_t`) with its texture.
pub struct ImageFile(Box<sys::gs_image_file_t>);

// SAFETY: the texture is only used with the graphics context entered.
unsafe impl Send for ImageFile {}

impl ImageFile {
    /// Decodes `path` and uploads it as a texture. Errors when the file is missing or not an image.
    pub fn load(path: &Path) -> Result<Self, String> {
        if !path.is_file() {
            return Err(format!("file not found: {}", path.display()));
        }
        let p = cstring(&path.to_string_lossy());
        let mut image: Box<sys::gs_image_file_t> = Box::default();
        unsafe { sys::gs_image_file_init(image.as_mut(), p.as_ptr()) };
        if !image.loaded {
            unsafe { sys::gs_image_file_free(image.as_mut()) };
            return Err(format!("not a readable image: {}", path.display()));
        }
        with_graphics(|| unsafe { sys::gs_image_file_init_texture(image.as_mut()) });
        if image.texture.is_null() {
            with_graphics(|| unsafe { sys::gs_image_file_free(image.as_mut()) });
            return Err(format!("cannot create a texture for {}", path.display()));
        }
        Ok(Self(image))
    }
    /// The image's texture.
    pub fn texture(&self) -> *mut sys::gs_texture_t {
        self.0.texture
    }
    /// (width, height) in px.
    pub fn size(&self) -> (u32, u32) {
        (self.0.cx, self.0.cy)
    }
}

impl Drop for ImageFile {
    fn drop(&mut self) {
        with_graphics(|| unsafe { sys::gs_image_file_free(self.0.as_mut()) });
    }
}

//! Reading and writing pictures: JPEG and video frames through the `ffmpeg` CLI (decoded to a
//! PPM stream on a pipe, so one process per file and no extra Rust decoder), masks and output
//! PNGs with the `png` crate.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

/// A tightly packed 8-bit RGB image.
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    /// `width * height * 3` bytes, row-major.
    pub data: Vec<u8>,
}

/// `ffmpeg` arguments that decode `path` into a stream of binary PPM (P6) frames on stdout.
/// Chroma is interpolated fully and rounded accurately in the YUV -> RGB conversion.
fn ffmpeg_ppm_args(path: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = ["-v", "error", "-nostdin", "-i"]
        .iter()
        .map(Into::into)
        .collect();
    args.push(path.into());
    for a in [
        "-sws_flags",
        "bicubic+accurate_rnd+full_chroma_int",
        "-f",
        "image2pipe",
        "-c:v",
        "ppm",
        "-pix_fmt",
        "rgb24",
        "-",
    ] {
        args.push(a.into());
    }
    args
}

/// Reads one whitespace-separated header token of a PPM (skipping `#` comments).
fn ppm_token(r: &mut impl BufRead) -> Result<Option<String>> {
    let mut token = String::new();
    let mut byte = [0u8; 1];
    loop {
        if r.read(&mut byte)? == 0 {
            return Ok((!token.is_empty()).then_some(token));
        }
        let c = byte[0];
        if c == b'#' && token.is_empty() {
            let mut line = Vec::new();
            r.read_until(b'\n', &mut line)?;
            continue;
        }
        if c.is_ascii_whitespace() {
            if token.is_empty() {
                continue;
            }
            return Ok(Some(token));
        }
        token.push(c as char);
    }
}

/// Reads one binary PPM (P6, maxval 255) from `r`; `None` at a clean end of stream.
pub fn read_ppm(r: &mut impl BufRead) -> Result<Option<RgbImage>> {
    let Some(magic) = ppm_token(r)? else {
        return Ok(None);
    };
    if magic != "P6" {
        bail!("not a binary PPM frame (magic {magic:?})");
    }
    let mut next = |what: &str| -> Result<usize> {
        ppm_token(r)?
            .with_context(|| format!("PPM header ends before {what}"))?
            .parse::<usize>()
            .with_context(|| format!("PPM {what} is not a number"))
    };
    let (width, height, maxval) = (next("width")?, next("height")?, next("maxval")?);
    if maxval != 255 || width == 0 || height == 0 {
        bail!("unsupported PPM {width}x{height} maxval {maxval}");
    }
    let mut data = vec![0u8; width * height * 3];
    r.read_exact(&mut data).context("truncated PPM frame")?;
    Ok(Some(RgbImage {
        width,
        height,
        data,
    }))
}

/// Decodes a still image (any format `ffmpeg` reads) to RGB.
pub fn decode_image(path: &Path) -> Result<RgbImage> {
    let out = Command::new("ffmpeg")
        .args(ffmpeg_ppm_args(path))
        .stdin(Stdio::null())
        .output()
        .context("cannot run ffmpeg (install it: it decodes the test images and videos)")?;
    if !out.status.success() {
        bail!(
            "ffmpeg cannot decode {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    read_ppm(&mut &out.stdout[..])?
        .with_context(|| format!("ffmpeg gave no frame for {}", path.display()))
}

/// The frames of a video, decoded by an `ffmpeg` child process as they are read.
pub struct VideoFrames {
    child: Child,
    reader: BufReader<ChildStdout>,
}

impl VideoFrames {
    pub fn open(path: &Path) -> Result<Self> {
        let mut child = Command::new("ffmpeg")
            .args(ffmpeg_ppm_args(path))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot run ffmpeg (install it: it decodes the test images and videos)")?;
        let stdout = child.stdout.take().context("ffmpeg stdout")?;
        Ok(Self {
            child,
            reader: BufReader::with_capacity(1 << 20, stdout),
        })
    }

    /// The next frame, `None` at the end.
    pub fn next_frame(&mut self) -> Result<Option<RgbImage>> {
        read_ppm(&mut self.reader)
    }
}

impl Drop for VideoFrames {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resizes a binary mask with nearest neighbour (sample at the destination pixel's centre).
pub fn resize_nearest(
    mask: &[bool],
    (sw, sh): (usize, usize),
    (dw, dh): (usize, usize),
) -> Vec<bool> {
    if (sw, sh) == (dw, dh) {
        return mask.to_vec();
    }
    let map = |d: usize, s: usize, n: usize| {
        (((d as f64 + 0.5) * s as f64 / n as f64) as usize).min(s - 1)
    };
    let xs: Vec<usize> = (0..dw).map(|x| map(x, sw, dw)).collect();
    let mut out = Vec::with_capacity(dw * dh);
    for y in 0..dh {
        let sy = map(y, sh, dh);
        out.extend(xs.iter().map(|&sx| mask[sy * sw + sx]));
    }
    out
}

/// Reads a mask PNG (any colour type; the first channel > 127 is "person") at its own size.
pub fn load_mask_png(path: &Path) -> Result<(Vec<bool>, usize, usize)> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .with_context(|| format!("read {}", path.display()))?;
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .with_context(|| format!("decode {}", path.display()))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let mut mask = Vec::with_capacity(w * h);
    for y in 0..h {
        let row = &buf[y * info.line_size..y * info.line_size + w * channels];
        mask.extend(row.chunks_exact(channels).map(|p| p[0] > 127));
    }
    Ok((mask, w, h))
}

/// Reads a mask PNG and resizes it (nearest) to `width` x `height`.
pub fn load_mask(path: &Path, width: usize, height: usize) -> Result<Vec<bool>> {
    let (mask, w, h) = load_mask_png(path)?;
    let (mask_aspect, image_aspect) = (w as f64 / h as f64, width as f64 / height as f64);
    if (mask_aspect / image_aspect - 1.0).abs() > 0.01 {
        eprintln!(
            "warning: mask {} is {w}x{h}, image {width}x{height}: aspect ratios differ",
            path.display()
        );
    }
    Ok(resize_nearest(&mask, (w, h), (width, height)))
}

fn write_png(path: &Path, w: usize, h: usize, color: png::ColorType, data: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    writer.write_image_data(data)?;
    writer.finish()?;
    Ok(())
}

/// Writes an alpha plane (0..1) as an 8-bit grey PNG.
pub fn write_alpha_png(path: &Path, w: usize, h: usize, alpha: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = alpha
        .iter()
        .map(|a| (a.clamp(0.0, 1.0) * 255.0 + 0.5) as u8)
        .collect();
    write_png(path, w, h, png::ColorType::Grayscale, &bytes)
}

/// Writes a binary mask as a black/white PNG.
pub fn write_mask_png(path: &Path, w: usize, h: usize, mask: &[bool]) -> Result<()> {
    let bytes: Vec<u8> = mask.iter().map(|m| if *m { 255 } else { 0 }).collect();
    write_png(path, w, h, png::ColorType::Grayscale, &bytes)
}

/// Writes an RGB image as a PNG.
pub fn write_rgb_png(path: &Path, image: &RgbImage) -> Result<()> {
    write_png(
        path,
        image.width,
        image.height,
        png::ColorType::Rgb,
        &image.data,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_consecutive_ppm_frames() {
        let mut stream = b"P6\n2 1\n255\n".to_vec();
        stream.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        stream.extend_from_slice(b"P6 1 1 255 ");
        stream.extend_from_slice(&[7, 8, 9]);
        let mut r = &stream[..];
        let a = read_ppm(&mut r).unwrap().unwrap();
        assert_eq!(
            (a.width, a.height, a.data.as_slice()),
            (2, 1, &[1, 2, 3, 4, 5, 6][..])
        );
        let b = read_ppm(&mut r).unwrap().unwrap();
        assert_eq!(b.data, vec![7, 8, 9]);
        assert!(read_ppm(&mut r).unwrap().is_none());
        assert!(read_ppm(&mut &b"P6\n2 1\n255\n\x01"[..]).is_err());
    }

    #[test]
    fn nearest_resize_samples_pixel_centres() {
        // 2x1 -> 4x1: each source pixel covers two destination pixels
        let m = resize_nearest(&[true, false], (2, 1), (4, 1));
        assert_eq!(m, vec![true, true, false, false]);
        // 3x1 -> 2x1: centres at 0.75 and 2.25 source px
        let m = resize_nearest(&[true, false, true], (3, 1), (2, 1));
        assert_eq!(m, vec![true, true]);
    }

    #[test]
    fn mask_png_round_trip() {
        let dir = std::env::temp_dir().join(format!("backdrop-bench-test-{}", std::process::id()));
        let path = dir.join("m.png");
        let mask = vec![true, false, false, true, true, false];
        write_mask_png(&path, 3, 2, &mask).unwrap();
        let (back, w, h) = load_mask_png(&path).unwrap();
        assert_eq!((back, w, h), (mask.clone(), 3, 2));
        assert_eq!(load_mask(&path, 6, 4).unwrap().len(), 24);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

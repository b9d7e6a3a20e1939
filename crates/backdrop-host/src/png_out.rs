//! PNG output: BGRA frames to 8-bit RGBA PNGs, alone or side by side.

use crate::capture::Frame;
use anyhow::{Context, Result};
use std::io::BufWriter;
use std::path::Path;

/// Writes `rgba` (`width * height * 4` bytes) as an 8-bit RGBA PNG.
fn write_rgba(path: &Path, width: u32, height: u32, rgba: &[u8]) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut enc = png::Encoder::new(BufWriter::new(file), width.max(1), height.max(1));
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut w = enc.write_header()?;
    if width == 0 || height == 0 {
        // PNG cannot be empty: a 1x1 transparent pixel stands for a 0x0 frame.
        w.write_image_data(&[0, 0, 0, 0])?;
    } else {
        w.write_image_data(rgba)?;
    }
    w.finish()?;
    Ok(())
}

/// Copies a BGRA frame into an RGBA canvas of `canvas_w` px per row at column `x0`.
fn blit_bgra(dst: &mut [u8], canvas_w: u32, x0: u32, f: &Frame) {
    let (w, h) = (f.width as usize, f.height as usize);
    for y in 0..h {
        let src = &f.bgra[y * w * 4..(y + 1) * w * 4];
        let start = (y * canvas_w as usize + x0 as usize) * 4;
        let dst_row = &mut dst[start..start + w * 4];
        for (d, s) in dst_row.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
            d[0] = s[2];
            d[1] = s[1];
            d[2] = s[0];
            d[3] = s[3];
        }
    }
}

/// Writes one frame alone, full resolution, RGBA.
pub fn write_frame(path: &Path, f: &Frame) -> Result<()> {
    let mut rgba = vec![0u8; f.bgra.len()];
    blit_bgra(&mut rgba, f.width, 0, f);
    write_rgba(path, f.width, f.height, &rgba)
}

/// Writes `original | result` side by side (RGBA; a missing original is left transparent black
/// at the result's size).
pub fn write_side_by_side(path: &Path, original: Option<&Frame>, result: &Frame) -> Result<()> {
    let (ow, oh) = original.map_or((result.width, result.height), |o| (o.width, o.height));
    let width = ow + result.width;
    let height = oh.max(result.height);
    let mut rgba = vec![0u8; width as usize * height as usize * 4];
    if let Some(o) = original {
        blit_bgra(&mut rgba, width, 0, o);
    }
    blit_bgra(&mut rgba, width, ow, result);
    write_rgba(path, width, height, &rgba)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_by_side_swizzles_and_places() {
        let o = Frame {
            width: 1,
            height: 1,
            timestamp: 0,
            bgra: vec![1, 2, 3, 255],
        };
        let r = Frame {
            width: 1,
            height: 2,
            timestamp: 0,
            bgra: vec![4, 5, 6, 255, 7, 8, 9, 128],
        };
        let dir = std::env::temp_dir().join(format!("bdr-png-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s.png");
        write_side_by_side(&p, Some(&o), &r).unwrap();
        let dec = png::Decoder::new(std::fs::File::open(&p).unwrap());
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (2, 2));
        assert_eq!(&buf[..8], &[3, 2, 1, 255, 6, 5, 4, 255]);
        assert_eq!(&buf[8..16], &[0, 0, 0, 0, 9, 8, 7, 128]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! Images in a request body, counted as the providers count them: from the image's width and
//! height (read from the header of its inline base64 data), never from the characters of that
//! data.
//!
//! The rules, as the providers document them (2026-11):
//!
//! - **OpenAI**, tile models (GPT-4o, GPT-4.1, GPT-4.5, GPT-5, o1, o3 and any model not listed
//!   below), <https://platform.openai.com/docs/guides/images-vision#calculating-costs>:
//!   `detail: "low"` costs the base tokens; `high` (and `auto`, counted as `high`, the larger)
//!   scales the image to fit in 2048×2048, then its shortest side down to 768 px, and costs
//!   `base + tile × (512 px tiles)`. Base and tile are 85 and 170, except gpt-4o-mini: 2,833 and
//!   5,667 (its image tokens are priced like gpt-4o's).
//! - **OpenAI**, patch models (gpt-4.1-mini, gpt-4.1-nano, o4-mini, gpt-5-mini, gpt-5-nano),
//!   same page: `ceil(w / 32) × ceil(h / 32)` patches, the image scaled down to fit 1,536 when
//!   it has more, times the model's documented multiplier (1.62, 2.46, 1.72, 1.62, 2.46;
//!   measurements report 1.2 and 1.5 for gpt-5-mini and nano: the documented factor errs high).
//!   `detail` has no effect on them.
//! - **Anthropic**, <https://docs.anthropic.com/en/docs/build-with-claude/vision#calculate-image-costs>:
//!   `width × height / 750`, after scaling the long edge down to 1,568 px; an image over about
//!   1,600 tokens is scaled down to that, so 1,600 is the most one costs.
//! - **Gemini** (2.x), <https://ai.google.dev/gemini-api/docs/tokens#multimodal-tokens>: 258
//!   tokens when both sides are at most 384 px, else 258 per 768×768 tile.
//!
//! When the size is unknown (an image given by URL, or a header that is not PNG, JPEG, GIF or
//! WebP) the image costs the most its rule allows: OpenAI `high` its 8 tiles (a 768×2048
//! image: 1,445 tokens, 48,169 on gpt-4o-mini) or 1,536 patches; Anthropic 1,600; Gemini four
//! tiles (1,032, an image up to 1536×1536).

/// Bytes decoded from the start of an image to find its size; PNG, GIF and WebP need fewer than
/// 30, JPEG reads on to its frame header, which follows the metadata segments.
const HEADER_FIRST_READ: usize = 1024;
/// How far into a JPEG the frame header is looked for (its EXIF thumbnail and colour profile
/// come first and can be tens of KiB).
const HEADER_MAX_READ: usize = 64 * 1024;

/// Whose rule an image is counted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ImageRule {
    /// OpenAI's 512 px tiles: `base + tile × tiles` (`base` alone at `detail: low`).
    OpenAiTiles { base: u64, tile: u64 },
    /// OpenAI's 32 px patches, capped at 1,536, times `multiplier_percent / 100`.
    OpenAiPatches { multiplier_percent: u64 },
    /// Anthropic: `width × height / 750`, at most 1,600.
    Anthropic,
    /// Gemini: 258 per 768 px tile, 258 for a small image.
    Gemini,
}

/// OpenAI's `detail` of an image part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Detail {
    /// `"low"`: one low-resolution pass at the base cost.
    Low,
    /// `"high"`, `"auto"` or absent: tiles (or patches) by size.
    High,
}

impl Detail {
    pub(super) fn parse(detail: Option<&str>) -> Detail {
        match detail {
            Some(d) if d.eq_ignore_ascii_case("low") => Detail::Low,
            _ => Detail::High,
        }
    }
}

impl ImageRule {
    /// The rule for an image part in an OpenAI-format body sent to `model` (the body's `model`,
    /// if it has one). A Claude or Gemini model behind an OpenAI-compatible endpoint gets its
    /// provider's rule.
    pub(super) fn for_openai_model(model: Option<&str>) -> ImageRule {
        const DEFAULT: ImageRule = ImageRule::OpenAiTiles {
            base: 85,
            tile: 170,
        };
        const PATCHES: &[(&str, u64)] = &[
            ("gpt-4.1-mini", 162),
            ("gpt-4.1-nano", 246),
            ("o4-mini", 172),
            ("gpt-5-mini", 162),
            ("gpt-5-nano", 246),
        ];
        let Some(model) = model else {
            return DEFAULT;
        };
        let lower = model.trim().to_ascii_lowercase();
        let id = lower.strip_prefix("ft:").unwrap_or(&lower);
        let id = id.rsplit_once('/').map_or(id, |(_, last)| last);
        if id.contains("claude") {
            return ImageRule::Anthropic;
        }
        if id.starts_with("gemini") {
            return ImageRule::Gemini;
        }
        if id.starts_with("gpt-4o-mini") {
            return ImageRule::OpenAiTiles {
                base: 2_833,
                tile: 5_667,
            };
        }
        PATCHES
            .iter()
            .find(|(prefix, _)| id.starts_with(prefix))
            .map_or(DEFAULT, |&(_, multiplier_percent)| {
                ImageRule::OpenAiPatches { multiplier_percent }
            })
    }

    /// The tokens of an image of `size` (`None`: unknown) at `detail`.
    pub(super) fn tokens(self, size: Option<(u32, u32)>, detail: Detail) -> u64 {
        match self {
            ImageRule::OpenAiTiles { base, .. } if detail == Detail::Low => base,
            ImageRule::OpenAiTiles { base, tile } => {
                let tiles = size.map_or(MOST_OPENAI_TILES, |(w, h)| openai_tiles(w, h));
                base.saturating_add(tile.saturating_mul(tiles))
            }
            ImageRule::OpenAiPatches { multiplier_percent } => {
                let patches = size.map_or(MOST_OPENAI_PATCHES, |(w, h)| openai_patches(w, h));
                (patches * multiplier_percent).div_ceil(100)
            }
            ImageRule::Anthropic => {
                size.map_or(MOST_ANTHROPIC_TOKENS, |(w, h)| anthropic_tokens(w, h))
            }
            ImageRule::Gemini => size.map_or(GEMINI_TILE_TOKENS * 4, |(w, h)| gemini_tokens(w, h)),
        }
    }
}

/// The most 512 px tiles an image can take at OpenAI's `high` detail: 768×2048 after scaling.
const MOST_OPENAI_TILES: u64 = 8;
/// OpenAI's cap on 32 px patches.
const MOST_OPENAI_PATCHES: u64 = 1_536;
/// Anthropic scales an image down to about 1.15 megapixels, ~1,600 tokens.
const MOST_ANTHROPIC_TOKENS: u64 = 1_600;
/// Gemini's tokens per image tile (and per small image).
const GEMINI_TILE_TOKENS: u64 = 258;

/// 512 px tiles after OpenAI's two scalings (fit in 2048×2048, shortest side down to 768; a
/// smaller image is not scaled up).
fn openai_tiles(width: u32, height: u32) -> u64 {
    let (mut w, mut h) = (u64::from(width.max(1)), u64::from(height.max(1)));
    let long = w.max(h);
    if long > 2048 {
        w = (w * 2048 / long).max(1);
        h = (h * 2048 / long).max(1);
    }
    let short = w.min(h);
    if short > 768 {
        w = (w * 768 / short).max(1);
        h = (h * 768 / short).max(1);
    }
    w.div_ceil(512) * h.div_ceil(512)
}

/// 32 px patches, the image scaled down to fit 1,536 of them when it needs more (OpenAI's
/// steps A-C: shrink by `sqrt(32² × 1536 / (w × h))`, then again so a whole number of patches
/// covers the width or height).
fn openai_patches(width: u32, height: u32) -> u64 {
    let (w, h) = (u64::from(width.max(1)), u64::from(height.max(1)));
    let patches = w.div_ceil(32) * h.div_ceil(32);
    if patches <= MOST_OPENAI_PATCHES {
        return patches;
    }
    let (w, h) = (w as f64, h as f64);
    let shrink = (32.0 * 32.0 * MOST_OPENAI_PATCHES as f64 / (w * h)).sqrt();
    let fit = ((w * shrink / 32.0).floor() / (w * shrink / 32.0))
        .min((h * shrink / 32.0).floor() / (h * shrink / 32.0));
    let shrink = shrink * fit;
    // The second shrink makes one side a whole number of patches; keep float noise
    // (33.000000001) from adding one.
    let cover = |side: f64| (side * shrink / 32.0 - 1e-6).ceil();
    let scaled = cover(w) * cover(h);
    (scaled as u64).min(MOST_OPENAI_PATCHES)
}

/// `width × height / 750` after the long edge is scaled down to 1,568 px, at most 1,600.
fn anthropic_tokens(width: u32, height: u32) -> u64 {
    let (mut w, mut h) = (u64::from(width), u64::from(height));
    let long = w.max(h);
    if long > 1568 {
        w = w * 1568 / long;
        h = h * 1568 / long;
    }
    (w * h).div_ceil(750).min(MOST_ANTHROPIC_TOKENS)
}

/// 258 for an image within 384×384, else 258 per 768×768 tile.
fn gemini_tokens(width: u32, height: u32) -> u64 {
    if width <= 384 && height <= 384 {
        return GEMINI_TILE_TOKENS;
    }
    u64::from(width.div_ceil(768)) * u64::from(height.div_ceil(768)) * GEMINI_TILE_TOKENS
}

/// The width and height of a base64-encoded image, read from its header; `None` if it is not a
/// PNG, JPEG, GIF or WebP, or is cut short. Only the first KiB is decoded, up to 64 KiB for a
/// JPEG whose frame header comes later.
pub(super) fn base64_image_size(base64: &str) -> Option<(u32, u32)> {
    let head = decode_base64_prefix(base64, HEADER_FIRST_READ);
    match image_size(&head) {
        Some(size) => Some(size),
        None if head.starts_with(&[0xFF, 0xD8]) && head.len() == HEADER_FIRST_READ => {
            image_size(&decode_base64_prefix(base64, HEADER_MAX_READ))
        }
        None => None,
    }
}

/// The size of the image inside a `data:` URL (`data:image/png;base64,...`); `None` if the URL
/// is not base64 or its header is not one this reads.
pub(super) fn data_url_image_size(url: &str) -> Option<(u32, u32)> {
    let (meta, payload) = url.strip_prefix("data:")?.split_once(',')?;
    if !meta
        .rsplit(';')
        .next()
        .is_some_and(|last| last.eq_ignore_ascii_case("base64"))
    {
        return None;
    }
    base64_image_size(payload)
}

/// The first `max_bytes` bytes that `text` decodes to, in the standard or the URL-safe base64
/// alphabet; whitespace is skipped, and decoding stops at padding or any other character.
fn decode_base64_prefix(text: &str, max_bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(max_bytes.min(text.len() * 3 / 4 + 3));
    let (mut bits, mut held) = (0u32, 0u32);
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => break,
        };
        bits = (bits << 6) | u32::from(value);
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
            if out.len() >= max_bytes {
                break;
            }
        }
    }
    out
}

/// The width and height in an image file's header: PNG (IHDR), GIF (logical screen), WebP
/// (VP8, VP8L, VP8X) or JPEG (the first SOFn frame header).
pub(super) fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let le16 = |at: usize| {
        Some(u32::from(u16::from_le_bytes([
            *bytes.get(at)?,
            *bytes.get(at + 1)?,
        ])))
    };
    let le24 = |at: usize| {
        Some(u32::from_le_bytes([
            *bytes.get(at)?,
            *bytes.get(at + 1)?,
            *bytes.get(at + 2)?,
            0,
        ]))
    };
    let be32 = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));

    let size = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.get(12..16) == Some(b"IHDR") {
        (be32(16)?, be32(20)?)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        (le16(6)?, le16(8)?)
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        match bytes.get(12..16)? {
            // Lossy: a key frame's start code, then 14-bit width and height.
            b"VP8 " if bytes.get(23..26) == Some(&[0x9D, 0x01, 0x2A]) => {
                (le16(26)? & 0x3FFF, le16(28)? & 0x3FFF)
            }
            // Lossless: signature 0x2F, then width - 1 and height - 1 in 14 bits each.
            b"VP8L" if bytes.get(20) == Some(&0x2F) => {
                let packed = u32::from_le_bytes(bytes.get(21..25)?.try_into().ok()?);
                ((packed & 0x3FFF) + 1, ((packed >> 14) & 0x3FFF) + 1)
            }
            // Extended: canvas width - 1 and height - 1 in 24 bits each.
            b"VP8X" => (le24(24)? + 1, le24(27)? + 1),
            _ => return None,
        }
    } else if bytes.starts_with(&[0xFF, 0xD8]) {
        jpeg_size(bytes)?
    } else {
        return None;
    };
    (size.0 > 0 && size.1 > 0).then_some(size)
}

/// Walks a JPEG's marker segments to the first frame header (SOF0-SOF15 but DHT, JPG and DAC).
fn jpeg_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while *bytes.get(at)? == 0xFF && *bytes.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        at += 2;
        match marker {
            // Standalone markers: no length.
            0x01 | 0xD0..=0xD7 => continue,
            // End of image or start of scan before any frame header.
            0xD9 | 0xDA => return None,
            _ => {}
        }
        let length = usize::from(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            // Length (2), precision (1), height (2), width (2).
            let height = u16::from_be_bytes([*bytes.get(at + 3)?, *bytes.get(at + 4)?]);
            let width = u16::from_be_bytes([*bytes.get(at + 5)?, *bytes.get(at + 6)?]);
            return Some((u32::from(width), u32::from(height)));
        }
        if length < 2 {
            return None;
        }
        at += length;
    }
}

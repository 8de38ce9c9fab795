//! Images counted by their providers' formulas: headers read from hand-built files of known
//! sizes, and the formulas checked against the numbers the providers' docs give.

use serde_json::json;

use super::image::{base64_image_size, data_url_image_size, image_size, Detail, ImageRule};
use super::*;
use crate::EstimateTokens;

/// A real 1×1 PNG (the one in `tests.rs`).
const ONE_PIXEL_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

const GPT_4O: ImageRule = ImageRule::OpenAiTiles {
    base: 85,
    tile: 170,
};

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut file = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    file.extend(width.to_be_bytes());
    file.extend(height.to_be_bytes());
    file.extend([8, 6, 0, 0, 0, 0, 0, 0, 0]);
    file
}

fn gif(width: u16, height: u16) -> Vec<u8> {
    let mut file = b"GIF89a".to_vec();
    file.extend(width.to_le_bytes());
    file.extend(height.to_le_bytes());
    file.extend([0xF7, 0, 0]);
    file
}

fn webp(chunk: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut file = b"RIFF\0\0\0\0WEBP".to_vec();
    file.extend(chunk);
    file.extend((body.len() as u32).to_le_bytes());
    file.extend(body);
    file
}

fn webp_lossy(width: u16, height: u16) -> Vec<u8> {
    let mut body = vec![0x30, 0x01, 0x00, 0x9D, 0x01, 0x2A];
    body.extend(width.to_le_bytes());
    body.extend(height.to_le_bytes());
    webp(b"VP8 ", &body)
}

fn webp_lossless(width: u32, height: u32) -> Vec<u8> {
    let packed = (width - 1) | (height - 1) << 14;
    let mut body = vec![0x2F];
    body.extend(packed.to_le_bytes());
    webp(b"VP8L", &body)
}

fn webp_extended(width: u32, height: u32) -> Vec<u8> {
    let mut body = vec![0; 4];
    body.extend(&(width - 1).to_le_bytes()[..3]);
    body.extend(&(height - 1).to_le_bytes()[..3]);
    webp(b"VP8X", &body)
}

/// A JPEG whose frame header follows an APP1 segment of `metadata` bytes (EXIF, say).
fn jpeg(width: u16, height: u16, metadata: usize) -> Vec<u8> {
    let mut file = vec![0xFF, 0xD8];
    // APP0 (JFIF), 16 bytes.
    file.extend([0xFF, 0xE0, 0x00, 0x10]);
    file.extend(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    // APP1 segments of up to 65,533 bytes each, then a DQT and a padding fill byte.
    let mut left = metadata;
    while left > 0 {
        let len = left.min(65_533);
        file.extend([0xFF, 0xE1]);
        file.extend(((len + 2) as u16).to_be_bytes());
        file.extend(std::iter::repeat_n(0x45, len));
        left -= len;
    }
    file.extend([0xFF, 0xDB, 0x00, 0x03, 0x00, 0xFF]);
    // SOF2 (progressive): length, precision, height, width, components.
    file.extend([0xFF, 0xC2, 0x00, 0x11, 0x08]);
    file.extend(height.to_be_bytes());
    file.extend(width.to_be_bytes());
    file.extend([3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    file.extend([0xFF, 0xDA]);
    file
}

#[test]
fn sizes_are_read_from_each_format_header() {
    assert_eq!(image_size(&png(4000, 3000)), Some((4000, 3000)));
    assert_eq!(image_size(&gif(640, 480)), Some((640, 480)));
    assert_eq!(image_size(&webp_lossy(1024, 768)), Some((1024, 768)));
    assert_eq!(image_size(&webp_lossless(16_383, 2)), Some((16_383, 2)));
    assert_eq!(image_size(&webp_extended(5000, 7000)), Some((5000, 7000)));
    assert_eq!(image_size(&jpeg(3264, 2448, 0)), Some((3264, 2448)));
    assert_eq!(
        image_size(b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
        None
    );
    // Cut short, or a zero size: unknown.
    assert_eq!(image_size(&png(10, 10)[..20]), None);
    assert_eq!(image_size(&png(0, 10)), None);
}

#[test]
fn base64_headers_are_decoded_only_as_far_as_needed() {
    assert_eq!(base64_image_size(ONE_PIXEL_PNG), Some((1, 1)));
    let data_url = format!("data:image/png;base64,{ONE_PIXEL_PNG}");
    assert_eq!(data_url_image_size(&data_url), Some((1, 1)));
    // URL-safe alphabet and line breaks (MIME base64) decode too.
    let wrapped = base64(&gif(300, 200))
        .replace('+', "-")
        .replace('/', "_")
        .chars()
        .flat_map(|c| [c, '\n'])
        .collect::<String>();
    assert_eq!(base64_image_size(&wrapped), Some((300, 200)));
    // A JPEG whose frame header is 40 KB in, past the first read; and one past the 64 KiB bound.
    let with_exif = base64(&jpeg(4032, 3024, 40_000));
    assert_eq!(base64_image_size(&with_exif), Some((4032, 3024)));
    assert_eq!(base64_image_size(&base64(&jpeg(4032, 3024, 70_000))), None);
    // Not base64, or not an image.
    assert_eq!(data_url_image_size("data:image/svg+xml,%3Csvg%2F%3E"), None);
    assert_eq!(data_url_image_size("https://example.com/cat.png"), None);
}

#[test]
fn openai_tiles_follow_the_documented_examples() {
    // OpenAI's examples: 1024×1024 high is 765; 2048×4096 high is 1105; low is 85.
    assert_eq!(GPT_4O.tokens(Some((1024, 1024)), Detail::High), 765);
    assert_eq!(GPT_4O.tokens(Some((2048, 4096)), Detail::High), 1105);
    assert_eq!(GPT_4O.tokens(Some((4096, 8192)), Detail::Low), 85);
    // Not scaled up: a small image is one tile.
    assert_eq!(GPT_4O.tokens(Some((128, 64)), Detail::High), 255);
    // 4000×3000 → 2048×1536 → 1024×768: 2×2 tiles.
    assert_eq!(GPT_4O.tokens(Some((4000, 3000)), Detail::High), 765);
    // 800×600 stays: 2×2 tiles. 600×513 too (513 needs a second row).
    assert_eq!(GPT_4O.tokens(Some((800, 600)), Detail::High), 765);
    assert_eq!(GPT_4O.tokens(Some((600, 512)), Detail::High), 425);
    // Unknown size: the most tiles a high-detail image can take (768×2048, 2×4).
    assert_eq!(GPT_4O.tokens(None, Detail::High), 85 + 8 * 170);
    assert_eq!(GPT_4O.tokens(None, Detail::Low), 85);

    let mini = ImageRule::for_openai_model(Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(
        mini.tokens(Some((1024, 1024)), Detail::High),
        2833 + 4 * 5667
    );
    assert_eq!(mini.tokens(Some((1024, 1024)), Detail::Low), 2833);
    for model in [None, Some("gpt-4o"), Some("openai/gpt-4.1"), Some("gpt-5")] {
        assert_eq!(ImageRule::for_openai_model(model), GPT_4O, "{model:?}");
    }
}

#[test]
fn openai_patches_follow_the_documented_examples() {
    let per_patch = ImageRule::OpenAiPatches {
        multiplier_percent: 100,
    };
    // OpenAI's examples: 1024×1024 is 1024 patches; 1800×2400 is scaled to 1452.
    assert_eq!(per_patch.tokens(Some((1024, 1024)), Detail::High), 1024);
    assert_eq!(per_patch.tokens(Some((1800, 2400)), Detail::High), 1452);
    assert_eq!(per_patch.tokens(Some((4000, 3000)), Detail::High), 1452);
    assert_eq!(per_patch.tokens(Some((20_000, 20_000)), Detail::High), 1521);
    assert_eq!(per_patch.tokens(None, Detail::High), 1536);
    // Detail does not change a patch model's count.
    assert_eq!(per_patch.tokens(Some((1024, 1024)), Detail::Low), 1024);

    let mini = ImageRule::for_openai_model(Some("gpt-4.1-mini"));
    assert_eq!(mini.tokens(Some((1024, 1024)), Detail::High), 1659); // 1024 × 1.62
    let nano = ImageRule::for_openai_model(Some("gpt-4.1-nano-2025-04-14"));
    assert_eq!(nano.tokens(Some((1024, 1024)), Detail::High), 2520); // 1024 × 2.46
    let o4 = ImageRule::for_openai_model(Some("o4-mini"));
    assert_eq!(o4.tokens(Some((1024, 1024)), Detail::High), 1762); // 1024 × 1.72
}

#[test]
fn anthropic_and_gemini_follow_their_documented_tables() {
    let claude = ImageRule::Anthropic;
    // Anthropic's table: 200×200 ≈ 54, 1000×1000 ≈ 1334, 1092×1092 ≈ 1590.
    assert_eq!(claude.tokens(Some((200, 200)), Detail::High), 54);
    assert_eq!(claude.tokens(Some((1000, 1000)), Detail::High), 1334);
    assert_eq!(claude.tokens(Some((1092, 1092)), Detail::High), 1590);
    // Long edge to 1568 and at most ~1.15 MP: a large photo costs the cap.
    assert_eq!(claude.tokens(Some((4000, 3000)), Detail::High), 1600);
    assert_eq!(claude.tokens(Some((3136, 200)), Detail::High), 210); // 1568×100
    assert_eq!(claude.tokens(None, Detail::High), 1600);
    assert_eq!(
        ImageRule::for_openai_model(Some("anthropic/claude-sonnet-4-5")),
        claude
    );

    let gemini = ImageRule::Gemini;
    assert_eq!(gemini.tokens(Some((384, 384)), Detail::High), 258);
    assert_eq!(gemini.tokens(Some((1000, 800)), Detail::High), 4 * 258);
    assert_eq!(gemini.tokens(Some((4000, 3000)), Detail::High), 6 * 4 * 258);
    assert_eq!(gemini.tokens(None, Detail::High), 4 * 258);
}

#[test]
fn json_images_count_by_formula_and_not_as_text() {
    let enc = Encoding::O200kBase;
    // A 4000×3000 PNG with 300 KB of image data: 400 KB of base64.
    let mut file = png(4000, 3000);
    file.extend((0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    let large = base64(&file);
    assert!(large.len() > 400_000);

    let body = |model: &str, data: &str, detail: &str| {
        json!({
            "model": model,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {
                    "url": format!("data:image/png;base64,{data}"), "detail": detail}}
            ]}]
        })
    };
    let text = json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"}
        ]}]
    });
    let text_tokens = text.estimate_tokens(enc);
    let cases = [
        ("gpt-4o", ONE_PIXEL_PNG, "auto", 255),
        ("gpt-4o", large.as_str(), "high", 765),
        ("gpt-4o", large.as_str(), "low", 85),
        ("gpt-4o-mini", ONE_PIXEL_PNG, "high", 8500),
        ("gpt-4o-mini", large.as_str(), "auto", 25_501),
        // 4000×3000 is 125×94 patches, scaled to 44×33 = 1452; × 1.62.
        ("gpt-4.1-mini", large.as_str(), "high", 2353),
    ];
    for (model, data, detail, image) in cases {
        let request = body(model, data, detail);
        assert_eq!(request.image_tokens(), image, "{model} {detail}");
        assert_eq!(request.estimate_tokens(enc), text_tokens + image, "{model}");
        // The character count sees the text only.
        assert_eq!(request.text_len(), text.text_len(), "{model}");
    }

    // An approximation scales the text, not the provider's image count.
    let claude = json!({
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": large}},
            {"type": "text", "text": "What is in this picture?"}
        ]}]
    });
    let claude_text = json!({
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"}
        ]}]
    });
    assert_eq!(claude.image_tokens(), 1600);
    assert_eq!(
        claude.estimate_tokens(Encoding::ANTHROPIC),
        claude_text.estimate_tokens(Encoding::ANTHROPIC) + 1600
    );
    assert_eq!(claude.text_len(), claude_text.text_len());

    // Gemini inline data; a PDF is not an image and counts nothing.
    let gemini = json!({"contents": [{"parts": [
        {"inline_data": {"mime_type": "image/gif", "data": base64(&gif(1000, 800))}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0xLjQ="}}
    ]}]});
    assert_eq!(gemini.image_tokens(), 4 * 258);
    assert_eq!(
        gemini.estimate_tokens(enc),
        4 * 258 + count_tokens(enc, "application/pdf")
    );

    // An image by URL: its size is unknown, so the most its formula allows.
    let by_url = json!({"model": "gpt-4o", "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "high"}
    ]}]});
    assert_eq!(by_url.image_tokens(), 1445);
    assert_eq!(by_url.text_len(), "user".len());
}

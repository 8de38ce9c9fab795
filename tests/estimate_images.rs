//! Images in a JSON body reserve what their provider's formula gives, whatever the size of
//! their base64 text: a real 1×1 PNG and a 4000×3000 one carrying 400 KB of base64, through
//! `#[rate_limited]` as a user sends them. Observed through what the call leaves reserved (the
//! result reports no usage, so the estimate stays), in paused time so nothing refills.
//!
//! Before images were counted by formula, the OpenAI character-based estimate counted the
//! base64 at four characters a token: the 400 KB image reserved about 100,000 tokens.

use ratelimited::limiter::Dimension;
use ratelimited::rate_limited;
use ratelimited::testing::fresh_registry_with_env;
use serde_json::{json, Value};

mod common;
use common::{reserved_tokens, ApiError};

/// A real 1×1 PNG.
const ONE_PIXEL_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

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

/// A PNG header for `width × height` followed by `payload` bytes of image data.
fn large_png(width: u32, height: u32, payload: usize) -> String {
    let mut file = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    file.extend(width.to_be_bytes());
    file.extend(height.to_be_bytes());
    file.extend([8, 6, 0, 0, 0, 0, 0, 0, 0]);
    file.extend((0..payload as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    base64(&file)
}

/// A JPEG of `width × height` whose frame header follows 40 KB of EXIF data.
fn photo_jpeg(width: u16, height: u16) -> String {
    let mut file = vec![0xFF, 0xD8, 0xFF, 0xE1];
    file.extend(40_002u16.to_be_bytes());
    file.extend(std::iter::repeat_n(0x45, 40_000));
    file.extend([0xFF, 0xC0, 0x00, 0x11, 0x08]);
    file.extend(height.to_be_bytes());
    file.extend(width.to_be_bytes());
    file.extend([3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xDA]);
    file.extend(std::iter::repeat_n(0x5A, 200_000));
    base64(&file)
}

fn openai_body(model: &str, media_type: &str, data: &str) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": format!("data:{media_type};base64,{data}")}}
        ]}]
    })
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn ask_gpt_4o_mini(body: &Value) -> Result<(), ApiError> {
    let _ = body;
    Ok(())
}

#[rate_limited(model = "claude-haiku-4-5", max_tokens = 0)]
async fn ask_claude(body: &Value) -> Result<(), ApiError> {
    let _ = body;
    Ok(())
}

/// Asserts `reserved` is within 10% of what the formula gives for the image.
fn assert_within_10_percent(reserved: u64, formula: u64, what: &str) {
    let off = (reserved as f64 - formula as f64) / formula as f64;
    println!(
        "{what}: reserved {reserved}, formula {formula} ({:+.1}%)",
        off * 100.0
    );
    assert!(
        off.abs() <= 0.10,
        "{what}: reserved {reserved}, the formula gives {formula}"
    );
}

#[tokio::test(start_paused = true)]
async fn openai_images_reserve_the_tile_formula_not_their_base64() {
    let large = large_png(4000, 3000, 300_000);
    assert!(large.len() > 400_000, "{} characters", large.len());
    // (model in the body, image, media type, tokens by the formula)
    let cases = [
        // One 512 px tile: 85 + 170; gpt-4o-mini: 2,833 + 5,667.
        ("gpt-4o", ONE_PIXEL_PNG, "image/png", 255),
        ("gpt-4o-mini", ONE_PIXEL_PNG, "image/png", 8_500),
        // 4000×3000 → 2048×1536 → 1024×768: four tiles.
        ("gpt-4o", large.as_str(), "image/png", 765),
        (
            "gpt-4o-mini",
            large.as_str(),
            "image/png",
            2_833 + 4 * 5_667,
        ),
    ];
    for (model, data, media_type, formula) in cases {
        let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
        ask_gpt_4o_mini(&openai_body(model, media_type, data))
            .await
            .unwrap();
        let what = format!("{model}, {} base64 characters", data.len());
        assert_within_10_percent(reserved_tokens(), formula, &what);
    }

    // A phone photo whose size is 40 KB into the file, past its EXIF data.
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    let photo = photo_jpeg(4032, 3024);
    ask_gpt_4o_mini(&openai_body("gpt-4o", "image/jpeg", &photo))
        .await
        .unwrap();
    assert_within_10_percent(reserved_tokens(), 765, "gpt-4o, 4032×3024 JPEG");
}

#[tokio::test(start_paused = true)]
async fn anthropic_images_reserve_width_times_height_over_750() {
    let in_use = || {
        ratelimited::Registry::current()
            .limiter("claude-haiku-4-5")
            .expect("claude-haiku-4-5 has built-in limits")
            .limiter
            .in_use(Dimension::InputTokensPerMinute)
            .expect("Anthropic has an input-tokens-per-minute limit")
    };
    let body = |data: &str| {
        json!({
            "model": "claude-haiku-4-5",
            "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
                {"type": "text", "text": "What is in this picture?"}
            ]}]
        })
    };
    let cases = [
        // 1000×1000 / 750; 4000×3000 is scaled down to Anthropic's ~1,600 tokens.
        (large_png(1000, 1000, 100_000), 1_334),
        (large_png(4000, 3000, 300_000), 1_600),
    ];
    for (data, formula) in cases {
        let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
        ask_claude(&body(&data)).await.unwrap();
        let what = format!("claude, {} base64 characters", data.len());
        assert_within_10_percent(in_use(), formula, &what);
    }
}

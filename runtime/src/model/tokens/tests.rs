//! Token counts against tiktoken, the approximation fixture, and the estimate impls.

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

use super::*;
use crate::EstimateTokens;
use serde_json::json;

/// The approximation fixture: eight texts of different kinds, 4,088 characters in all.
const FIXTURES: &[(&str, &str)] = &[
    (
        "english prose",
        "The harbour master kept a ledger of every ship that came in after dark. Most nights the \
         entries were short: a fishing boat late with its catch, a ferry that had waited for a \
         doctor, once a yacht whose owner insisted on paying the mooring fee in foreign coins. \
         But in the winter of that year the ledger grew long. Cargo vessels arrived in twos and \
         threes, their crews tired and unwilling to talk, and the warehouses along the quay filled \
         with crates that nobody seemed to collect. The master wrote it all down in the same \
         careful hand, noting tonnage, flags and the hour of arrival, because he believed that a \
         record kept honestly would one day explain itself. When the inspectors finally came, in \
         March, they read the ledger from the first page to the last without a word, and then \
         asked him why he had never reported any of it. He told them the truth: nobody had ever \
         asked, and it had not occurred to him that a list of facts could be a warning.",
    ),
    (
        "technical english",
        "Rate limits are enforced per organization and per project. Each limit is a bucket that \
         refills continuously: a 30,000 tokens-per-minute limit regains 500 tokens every second. \
         Before a request is sent, the client reserves its estimated prompt tokens plus \
         max_tokens times n; after the response arrives, it settles the reservation against the \
         usage the server reported (prompt_tokens, completion_tokens). A 429 response carries \
         retry-after-ms or retry-after, and the x-ratelimit-reset-tokens header uses Go duration \
         syntax such as 6m0s or 46.001s.",
    ),
    (
        "rust code",
        "use std::collections::HashMap;\n\n/// Counts words, case-insensitively.\npub fn word_counts(text: &str) -> HashMap<String, usize> {\n    let mut counts = HashMap::new();\n    for word in text.split_whitespace() {\n        let word = word\n            .trim_matches(|c: char| !c.is_alphanumeric())\n            .to_lowercase();\n        if word.is_empty() {\n            continue;\n        }\n        *counts.entry(word).or_insert(0) += 1;\n    }\n    counts\n}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn counts_repeated_words() {\n        let counts = word_counts(\"a b, A! c\");\n        assert_eq!(counts[\"a\"], 2);\n        assert_eq!(counts.get(\"d\"), None);\n    }\n}\n",
    ),
    (
        "python code",
        "import asyncio\nimport json\n\n\nasync def fetch_all(client, prompts, limit=8):\n    sem = asyncio.Semaphore(limit)\n    results = [None] * len(prompts)\n\n    async def one(i, prompt):\n        async with sem:\n            resp = await client.post(\"/v1/chat/completions\", json={\n                \"model\": \"gpt-4o-mini\",\n                \"messages\": [{\"role\": \"user\", \"content\": prompt}],\n                \"max_tokens\": 256,\n            })\n            results[i] = resp.json()[\"choices\"][0][\"message\"][\"content\"]\n\n    await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))\n    return results\n",
    ),
    (
        "json request",
        "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,\"system\":\"You are a terse assistant that answers in one sentence.\",\"messages\":[{\"role\":\"user\",\"content\":\"Summarise the attached incident report for the on-call channel.\"},{\"role\":\"assistant\",\"content\":\"Sure, please paste the report.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"2026-03-14T02:17:09Z api-gw-3 upstream timeout after 30000 ms; 412 requests failed; error budget burn 2.4x; rollback of build 8f3c2a1 completed at 02:41Z.\"}]}],\"temperature\":0.2}",
    ),
    (
        "german prose",
        "Am Morgen nach dem Sturm lag der Strand voller Treibholz, und die Kinder aus dem Dorf \
         suchten zwischen den Ästen nach Muscheln und verlorenen Schätzen. Die Fischer dagegen \
         zählten schweigend ihre beschädigten Netze und rechneten aus, wie viele Wochen die \
         Reparatur dauern würde. Nur die alte Bäckerin öffnete ihren Laden pünktlich um sechs \
         Uhr, als wäre nichts geschehen.",
    ),
    (
        "chinese prose",
        "清晨的集市总是最热闹的。卖菜的老人把新鲜的青菜摆得整整齐齐，旁边的小摊上飘来豆浆和油条的香味。\
         孩子们背着书包匆匆走过，偶尔停下来看一眼笼子里的小鸟。到了中午，人群渐渐散去，只剩下几位摊主在阴凉处聊天，\
         讨论着明天的天气和最近上涨的菜价。",
    ),
    (
        "log lines",
        "2026-03-14T02:17:09.331Z WARN  upstream=api-gw-3 status=504 latency_ms=30001 req_id=7c9e6679-7425-40de-944b-e07fc1f90ae7\n2026-03-14T02:17:09.874Z ERROR upstream=api-gw-3 status=502 latency_ms=12 req_id=16fd2706-8baf-433b-82eb-8c7fada847da\n2026-03-14T02:17:10.002Z INFO  retry attempt=2 delay_ms=840 bucket=tokens remaining=1843 reset=6m0s\n",
    ),
];

/// `o200k_base` counts of [`FIXTURES`] (tiktoken-rs 0.12.1); the test re-checks them so an
/// edited fixture cannot silently void the measurement below.
const FIXTURE_O200K: [u64; 8] = [202, 118, 176, 143, 149, 87, 111, 154];
/// `cl100k_base` counts of [`FIXTURES`] (tiktoken-rs 0.12.1).
const FIXTURE_CL100K: [u64; 8] = [203, 118, 172, 144, 148, 107, 168, 154];
/// Counts of [`FIXTURES`] by Anthropic's legacy Claude tokenizer (65k-vocabulary BPE,
/// `claude-tokenizer` 0.3.0 on `tokenizers` 0.20), measured in a scratch crate outside this
/// workspace: the only Claude tokenizer that can be run offline.
const FIXTURE_LEGACY_CLAUDE: [u64; 8] = [208, 124, 206, 158, 146, 120, 153, 161];

#[test]
fn counts_equal_tiktoken_encode_ordinary() {
    let texts = [
        "",
        "Hello, world!",
        "  leading and trailing spaces  ",
        "naïve café, 東京, 🦀 emoji",
        "<|endoftext|> is ordinary text here",
        "fn main() { println!(\"{}\", 1 + 2); }\n",
    ];
    for (encoding, bpe) in [
        (Encoding::O200kBase, tiktoken_rs::o200k_base_singleton()),
        (Encoding::Cl100kBase, tiktoken_rs::cl100k_base_singleton()),
    ] {
        for text in texts
            .iter()
            .copied()
            .chain(FIXTURES.iter().map(|(_, t)| *t))
        {
            assert_eq!(
                count_tokens(encoding, text),
                bpe.encode_ordinary(text).len() as u64,
                "{encoding}: {text:?}"
            );
        }
    }
    assert_eq!(count_tokens(Encoding::O200kBase, "Hello, world!"), 4);
}

#[test]
fn fixture_counts_are_the_measured_ones() {
    for (i, (name, text)) in FIXTURES.iter().enumerate() {
        assert_eq!(
            count_tokens(Encoding::O200kBase, text),
            FIXTURE_O200K[i],
            "{name}"
        );
        assert_eq!(
            count_tokens(Encoding::Cl100kBase, text),
            FIXTURE_CL100K[i],
            "{name}"
        );
    }
}

/// The measurement documented on [`Encoding::Approximate`]: run with `--nocapture` to see
/// the table.
#[test]
fn anthropic_approximation_error_on_fixture() {
    let mut approx_total = 0;
    let mut reference_total = 0;
    eprintln!(
        "{:<18} {:>6} {:>6} {:>7} {:>6}",
        "fixture", "o200k", "claude", "approx", "ratio"
    );
    for (i, (name, text)) in FIXTURES.iter().enumerate() {
        let approx = count_tokens(Encoding::ANTHROPIC, text);
        let reference = FIXTURE_LEGACY_CLAUDE[i];
        let ratio = approx as f64 / reference as f64;
        eprintln!(
            "{name:<18} {:>6} {reference:>6} {approx:>7} {ratio:>6.3}",
            FIXTURE_O200K[i]
        );
        // Documented bound: 1.02-1.43x the legacy Claude count on every text.
        assert!((1.0..=1.45).contains(&ratio), "{name}: {ratio:.3}");
        approx_total += approx;
        reference_total += reference;
    }
    let overall = approx_total as f64 / reference_total as f64;
    eprintln!("overall {approx_total} / {reference_total} = {overall:.3}");
    assert!((1.2..=1.3).contains(&overall), "overall {overall:.3}");
}

#[test]
fn gemini_approximation_against_four_chars_per_token() {
    for (name, text) in FIXTURES {
        let approx = count_tokens(Encoding::GEMINI, text) as f64;
        let rule = text.chars().count() as f64 / 4.0;
        let ratio = approx / rule;
        eprintln!("{name:<18} gemini approx / (chars/4) = {ratio:.3}");
        assert!(ratio >= 1.05, "{name}: {ratio:.3}");
        if *name != "chinese prose" {
            assert!(ratio <= 2.3, "{name}: {ratio:.3}");
        }
    }
}

#[test]
fn approximation_scales_and_rounds_up() {
    let text = FIXTURES[0].1;
    assert_eq!(
        count_tokens(Encoding::ANTHROPIC, text),
        (202 * 140_u64).div_ceil(100)
    );
    assert_eq!(count_tokens(Encoding::ANTHROPIC, text), 283);
    assert_eq!(count_tokens(Encoding::ANTHROPIC_OPUS_4_7, text), 364);
    assert_eq!(count_tokens(Encoding::GEMINI, text), 253);
    assert_eq!(count_tokens(Encoding::ANTHROPIC, ""), 0);
    assert_eq!(
        count_tokens(Encoding::Approximate { o200k_percent: 100 }, text),
        202
    );
}

#[test]
fn model_encodings() {
    let cases = [
        ("gpt-4o", Encoding::O200kBase),
        ("gpt-4o-mini-2024-07-18", Encoding::O200kBase),
        ("GPT-4o", Encoding::O200kBase),
        ("chatgpt-4o-latest", Encoding::O200kBase),
        ("gpt-4.1-nano", Encoding::O200kBase),
        ("gpt-5", Encoding::O200kBase),
        ("gpt-5-mini", Encoding::O200kBase),
        ("o1", Encoding::O200kBase),
        ("o3-mini", Encoding::O200kBase),
        ("o4-mini-deep-research", Encoding::O200kBase),
        ("ft:gpt-4o-mini-2024-07-18:acme::9abc", Encoding::O200kBase),
        ("openai/gpt-4o", Encoding::O200kBase),
        ("gpt-4", Encoding::Cl100kBase),
        ("gpt-4-0613", Encoding::Cl100kBase),
        ("gpt-4-turbo-2024-04-09", Encoding::Cl100kBase),
        ("gpt-3.5-turbo", Encoding::Cl100kBase),
        ("gpt-35-turbo", Encoding::Cl100kBase),
        ("ft:gpt-3.5-turbo-0125:acme::xyz", Encoding::Cl100kBase),
        ("text-embedding-3-small", Encoding::Cl100kBase),
        ("text-embedding-ada-002", Encoding::Cl100kBase),
        ("claude-sonnet-4-5", Encoding::ANTHROPIC),
        ("claude-3-5-haiku-20241022", Encoding::ANTHROPIC),
        ("anthropic/claude-opus-4-1", Encoding::ANTHROPIC),
        (
            "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            Encoding::ANTHROPIC,
        ),
        ("claude-opus-4-7", Encoding::ANTHROPIC_OPUS_4_7),
        ("gemini-2.5-flash", Encoding::GEMINI),
        ("models/gemini-2.0-flash", Encoding::GEMINI),
        ("llama-3.1-70b", Encoding::O200kBase),
        ("", Encoding::O200kBase),
    ];
    for (model, expected) in cases {
        assert_eq!(encoding_for_model(model), expected, "{model}");
    }
}

fn vector() -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("You are a helpful assistant that answers tersely."),
        ChatMessage::user("What is the capital of France?").with_name("alice"),
        ChatMessage::assistant("Paris."),
        ChatMessage::user("And of Germany? Answer in one word."),
    ]
}

#[test]
fn chat_overhead_matches_formula() {
    for encoding in [Encoding::O200kBase, Encoding::Cl100kBase] {
        let c = |s: &str| count_tokens(encoding, s);
        let by_hand = (3 + c("system") + c("You are a helpful assistant that answers tersely."))
            + (3 + c("user") + c("What is the capital of France?") + 1 + c("alice"))
            + (3 + c("assistant") + c("Paris."))
            + (3 + c("user") + c("And of Germany? Answer in one word."))
            + 3;
        assert_eq!(count_chat(encoding, &vector()), by_hand, "{encoding}");
    }
    // Pinned for o200k, so a change in the formula or the tokenizer shows up.
    assert_eq!(count_chat(Encoding::O200kBase, &vector()), 49);
    // And cross-checked against tiktoken-rs's own port of the cookbook function.
    let theirs: Vec<_> = vector()
        .into_iter()
        .map(|m| tiktoken_rs::ChatCompletionRequestMessage {
            role: m.role,
            content: Some(m.content),
            name: m.name,
            ..Default::default()
        })
        .collect();
    for (model, encoding) in [
        ("gpt-4o", Encoding::O200kBase),
        ("gpt-4", Encoding::Cl100kBase),
    ] {
        let expected = tiktoken_rs::num_tokens_from_messages(model, &theirs).unwrap() as u64;
        assert_eq!(count_chat(encoding, &vector()), expected, "{model}");
    }
    assert_eq!(count_chat(Encoding::O200kBase, &[]), 3);
    let raw = count_chat(Encoding::O200kBase, &vector());
    assert_eq!(
        count_chat(Encoding::ANTHROPIC, &vector()),
        (raw * 140).div_ceil(100)
    );
}

#[test]
fn estimate_tokens_impls() {
    let enc = Encoding::O200kBase;
    let text = "The quick brown fox jumps over the lazy dog.";
    let n = count_tokens(enc, text);
    assert_eq!(text.estimate_tokens(enc), n);
    assert_eq!(String::from(text).estimate_tokens(enc), n);
    assert_eq!(Cow::Borrowed(text).estimate_tokens(enc), n);
    assert_eq!((&text).estimate_tokens(enc), n);
    let mut owned = String::from(text);
    assert_eq!(EstimateTokens::estimate_tokens(&&mut owned, enc), n);
    assert_eq!(Box::<str>::from(text).estimate_tokens(enc), n);
    assert_eq!(Arc::<str>::from(text).estimate_tokens(enc), n);
    assert_eq!(Rc::new(text.to_owned()).estimate_tokens(enc), n);
    assert_eq!(Some(text).estimate_tokens(enc), n);
    assert_eq!(None::<&str>.estimate_tokens(enc), 0);
    assert_eq!(vec![text, text].estimate_tokens(enc), 2 * n);
    assert_eq!([text; 3].estimate_tokens(enc), 3 * n);
    assert_eq!((text, Some(text), [text]).estimate_tokens(enc), 3 * n);

    // Messages: a conversation gets the reply priming once; one message is a conversation.
    let messages = vector();
    assert_eq!(messages.estimate_tokens(enc), count_chat(enc, &messages));
    assert_eq!(
        messages[..].estimate_tokens(enc),
        count_chat(enc, &messages)
    );
    assert_eq!(
        messages[2].estimate_tokens(enc),
        count_chat(enc, &messages[2..3])
    );
}

#[test]
fn json_chat_request_matches_count_chat() {
    let enc = Encoding::O200kBase;
    let request = json!({
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "max_tokens": 256,
        "stream": false,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant that answers tersely."},
            {"role": "user", "name": "alice", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": [
                {"type": "text", "text": "And of Germany? Answer in one word."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="}}
            ]}
        ]
    });
    // The parts array adds the text part's `type` string; the 1×1 PNG counts as gpt-4o-mini
    // counts an image (one tile, 2,833 + 5,667), not by its data URL.
    let parts_overhead = count_tokens(enc, "text");
    assert_eq!(
        request.estimate_tokens(enc),
        count_chat(enc, &vector()) + parts_overhead + 8_500
    );

    // Anthropic: system prompt outside the messages; the image (a PNG signature alone, so of
    // unknown size) counts Anthropic's most, 1,600.
    let anthropic = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "text", "text": "Describe it."}
        ]}]
    });
    let c = |s: &str| count_tokens(enc, s);
    let expected = c("Be brief.") + (3 + c("user") + c("text") + c("Describe it.")) + 3 + 1_600;
    assert_eq!(anthropic.estimate_tokens(enc), expected);

    // Scalars and keys are free; plain strings and arrays are counted.
    assert_eq!(
        json!({"temperature": 1, "stream": true, "stop": null}).estimate_tokens(enc),
        0
    );
    assert_eq!(json!("Hello, world!").estimate_tokens(enc), 4);
    assert_eq!(
        json!(["Hello, world!", 5, "Hello, world!"]).estimate_tokens(enc),
        8
    );
    // An approximation scales the text; the image is the provider's own count.
    let text = request.estimate_tokens(enc) - 8_500;
    assert_eq!(
        request.estimate_tokens(Encoding::ANTHROPIC),
        (text * 140).div_ceil(100) + 8_500
    );
}

#[test]
fn warm_builds_the_tokenizer() {
    Encoding::Cl100kBase
        .warm_in_background()
        .expect("a thread")
        .join()
        .unwrap();
    assert!(Encoding::Cl100kBase.is_warm());
    Encoding::GEMINI.warm();
    assert!(Encoding::O200kBase.is_warm(), "approximations share o200k");
}

fn big_prompt() -> String {
    let mut prompt = String::new();
    let mut i = 0;
    while prompt.len() < 200 * 1024 {
        prompt.push_str(FIXTURES[i % FIXTURES.len()].1);
        prompt.push_str("\n\n");
        i += 1;
    }
    prompt
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_prompt_counts_on_blocking_pool_same_as_sync() {
    let prompt = big_prompt();
    assert!(prompt.len() >= 200 * 1024);
    for encoding in [
        Encoding::O200kBase,
        Encoding::Cl100kBase,
        Encoding::ANTHROPIC,
    ] {
        let sync = count_tokens(encoding, &prompt);
        assert_eq!(
            count_tokens_async(encoding, &prompt).await,
            sync,
            "{encoding}"
        );
    }
}

#[tokio::test]
async fn async_count_on_a_current_thread_runtime() {
    let small = FIXTURES[1].1;
    let expected = count_tokens(Encoding::O200kBase, small);
    assert_eq!(
        count_tokens_async(Encoding::O200kBase, small).await,
        expected
    );
    let big = big_prompt();
    assert_eq!(
        count_tokens_async(Encoding::O200kBase, &big).await,
        count_tokens(Encoding::O200kBase, &big)
    );
}

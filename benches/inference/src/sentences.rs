//! The fixed inputs: 32 everyday sentences of 12 to 18 MiniLM tokens each ([CLS] and [SEP]
//! included), so that batch 1 and batch 32 run the same work per text and runs compare, and
//! texts of exactly [`LONG_TEXT_TOKENS`] tokens built from them.

use tora_inference_gateway::SentenceTokenizer;

pub(crate) const SENTENCES: [&str; 32] = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "A smart wallet pays for gas in tokens instead of the native coin.",
    "Rain is expected in the afternoon, so bring an umbrella to work.",
    "The library opens at nine and closes early on public holidays.",
    "She planted tomatoes, basil and peppers in the small back garden.",
    "Our train was delayed by twenty minutes because of a signal fault.",
    "The new phone has a brighter screen and a much longer battery life.",
    "He learned to play the guitar by watching videos every evening.",
    "Fresh bread from the corner bakery sells out before eight o'clock.",
    "The museum added a wing for modern art and photography exhibits.",
    "Please send the signed contract back before the end of the week.",
    "A cold wind blew across the harbour as the fishing boats returned.",
    "The children built a sandcastle with towers, walls and a deep moat.",
    "Electric buses now run on every route through the city centre.",
    "The recipe needs two eggs, a cup of flour and a pinch of salt.",
    "Our team fixed the bug that made the dashboard load so slowly.",
    "The mountain trail is steep, but the view from the top is worth it.",
    "He forgot his keys at the office and had to call a locksmith.",
    "The concert was cancelled after the singer lost her voice on tour.",
    "Solar panels on the roof cover most of the house's power needs.",
    "The cat slept in a patch of sunlight on the kitchen floor all day.",
    "Students must hand in their essays through the online portal.",
    "The bank raised interest rates for the third time this year.",
    "A good night's sleep improves memory, mood and concentration.",
    "The bridge will be closed for repairs during the whole of May.",
    "Volunteers cleaned the beach and collected forty bags of plastic.",
    "The chef tasted the soup and added a little more black pepper.",
    "Her flight to Lisbon leaves early tomorrow morning from gate twelve.",
    "The old lighthouse still guides ships past the rocky coastline.",
    "Doctors recommend thirty minutes of gentle exercise every day.",
    "The startup hired ten engineers to build its payment platform.",
    "Snow covered the village overnight and the schools stayed closed.",
];

/// Tokens per text of the long case ([CLS] and [SEP] included): a typical passage for
/// retrieval, and the length the reference measurements on the GPU machine used.
pub(crate) const LONG_TEXT_TOKENS: usize = 128;

/// `count` distinct texts of exactly `tokens` tokens each: the sentences from the `i`-th on,
/// word by word, as long as they fit, then single-token filler words ("a") up to the length.
/// Every text is checked by encoding it once more.
pub(crate) fn texts_of_exactly(
    tokenizer: &SentenceTokenizer,
    tokens: usize,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let len = |text: &str| tokenizer.encode(text).map(|ids| ids.len());
    (0..count)
        .map(|i| {
            let words = (0..).flat_map(|k| SENTENCES[(i + k) % SENTENCES.len()].split_whitespace());
            let mut text = String::new();
            for word in words {
                let longer = if text.is_empty() { word.to_string() } else { format!("{text} {word}") };
                if len(&longer)? > tokens {
                    break;
                }
                text = longer;
            }
            while len(&text)? < tokens {
                text.push_str(" a");
            }
            let got = len(&text)?;
            anyhow::ensure!(got == tokens, "text {i} is {got} tokens, not {tokens}: {text:?}");
            Ok(text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tora_inference_gateway::model_dir::MINILM_L6_V2;

    use super::*;

    fn tokenizer() -> SentenceTokenizer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(MINILM_L6_V2);
        SentenceTokenizer::load(&dir).unwrap_or_else(|e| {
            panic!("{e}: run scripts/fetch-models.sh (this test needs MiniLM's tokenizer)")
        })
    }

    #[test]
    fn long_texts_are_exactly_128_tokens_and_distinct() {
        let tokenizer = tokenizer();
        let texts = texts_of_exactly(&tokenizer, LONG_TEXT_TOKENS, 32).unwrap();
        assert_eq!(texts.len(), 32);
        for t in &texts {
            assert_eq!(tokenizer.encode(t).unwrap().len(), LONG_TEXT_TOKENS, "{t}");
        }
        let distinct: std::collections::HashSet<_> = texts.iter().collect();
        assert_eq!(distinct.len(), 32);
    }

    #[test]
    fn the_short_sentences_are_12_to_18_tokens() {
        let tokenizer = tokenizer();
        for s in SENTENCES {
            let n = tokenizer.encode(s).unwrap().len();
            assert!((12..=18).contains(&n), "{n} tokens: {s}");
        }
    }
}

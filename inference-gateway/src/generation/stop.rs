//! Turning generated tokens into text as they come: stop at a control token or a stop
//! sequence (which is not part of the answer), and for streaming, release only text that no
//! later token can retract (an unfinished UTF-8 character, or the start of a stop sequence).

use crate::models::llama::tokenizer::GgufTokenizer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    Stop,
    Length,
}

impl Finish {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

pub(crate) struct TextAssembler {
    tokens: Vec<u32>,
    stops: Vec<String>,
    text: String,
    /// Bytes of `text` already released.
    released: usize,
    pub finish: Option<Finish>,
}

impl TextAssembler {
    pub(crate) fn new(stops: Vec<String>) -> Self {
        Self { tokens: Vec::new(), stops, text: String::new(), released: 0, finish: None }
    }

    /// Tokens the model generated, the one that ended the reply included: what is metered.
    pub(crate) fn generated(&self) -> usize {
        self.tokens.len()
    }

    /// Adds a token; returns the text that became final with it (possibly empty).
    pub(crate) fn push(&mut self, tokenizer: &GgufTokenizer, token: u32) -> crate::error::Result<String> {
        if self.finish.is_some() {
            return Ok(String::new());
        }
        self.tokens.push(token);
        if token == tokenizer.eos || tokenizer.is_control(token) {
            self.finish = Some(Finish::Stop);
            return Ok(self.release(self.text.len()));
        }
        self.text = tokenizer.decode(&self.tokens)?;
        if let Some(at) = self.stops.iter().filter_map(|s| self.text.find(s.as_str())).min() {
            self.text.truncate(at);
            self.finish = Some(Finish::Stop);
            return Ok(self.release(at));
        }
        // Hold back an unfinished character and any tail that could begin a stop sequence.
        let end = self.text.trim_end_matches('\u{fffd}').len();
        let mut safe = end;
        for s in &self.stops {
            for (i, _) in s.char_indices().skip(1) {
                if self.text[..end].ends_with(&s[..i]) {
                    safe = safe.min(end - i);
                }
            }
        }
        Ok(self.release(safe))
    }

    /// Ends without a stop: the token budget ran out. Returns the text still held back.
    pub(crate) fn finish_length(&mut self) -> String {
        if self.finish.is_none() {
            self.finish = Some(Finish::Length);
        }
        self.release(self.text.len())
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    fn release(&mut self, upto: usize) -> String {
        let upto = upto.max(self.released);
        let out = self.text.get(self.released..upto).unwrap_or_default().to_string();
        self.released = upto;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::gguf::Gguf;
    use crate::models::llama::SMOLLM2_135M_GGUF;

    fn tokenizer() -> GgufTokenizer {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(SMOLLM2_135M_GGUF);
        let file = Gguf::load(&path).expect("SmolLM2: run scripts/fetch-models.sh");
        GgufTokenizer::from_gguf(&file).unwrap()
    }

    fn feed(tok: &GgufTokenizer, text: &mut TextAssembler, s: &str) -> Vec<String> {
        tok.encode(s).unwrap().into_iter().map(|t| text.push(tok, t).unwrap()).collect()
    }

    #[test]
    fn stop_sequences_end_the_text_and_are_never_released() {
        let tok = tokenizer();
        let mut text = TextAssembler::new(vec![" Paris".into()]);
        let deltas = feed(&tok, &mut text, "The capital is Paris, of course.");
        assert_eq!(deltas.concat(), "The capital is");
        assert_eq!(text.text(), "The capital is");
        assert_eq!(text.finish, Some(Finish::Stop));
        // Tokens up to and including the one completing the stop were generated.
        assert_eq!(text.generated(), tok.encode("The capital is Paris").unwrap().len());
    }

    #[test]
    fn a_possible_stop_prefix_is_held_back_until_it_is_decided() {
        let tok = tokenizer();
        let mut text = TextAssembler::new(vec!["ab!".into()]);
        let deltas = feed(&tok, &mut text, "x ab");
        assert_eq!(deltas.concat(), "x ", "\"ab\" could begin the stop");
        assert_eq!(text.finish_length(), "ab");
        assert_eq!(text.finish, Some(Finish::Length));
    }

    #[test]
    fn the_end_of_turn_token_stops_without_text() {
        let tok = tokenizer();
        let mut text = TextAssembler::new(Vec::new());
        let mut deltas = feed(&tok, &mut text, "Hi there");
        deltas.push(text.push(&tok, tok.eos).unwrap());
        assert_eq!(deltas.concat(), "Hi there");
        assert_eq!((text.finish, text.generated()), (Some(Finish::Stop), 3));
    }
}

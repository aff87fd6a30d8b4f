//! The ChatML prompt format, read from the GGUF's `tokenizer.chat_template`: each message is
//! `<|im_start|>{role}\n{content}<|im_end|>\n`, a default system turn comes first when the
//! conversation has none, and `<|im_start|>assistant\n` asks for the reply.
//!
//! The Jinja template itself is not interpreted: the gateway checks that it is ChatML and
//! takes the default system message from it, and renders token ids directly so that
//! control tokens can only come from the template, never from message text.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::formats::gguf::Gguf;
use crate::models::llama::tokenizer::GgufTokenizer;

/// One turn of a chat request, as in OpenAI's `messages`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChatMessage {
    /// Who speaks: `system`, `user` or `assistant`.
    pub role: String,
    /// What they say, as plain text.
    pub content: String,
}

/// The model's ChatML template: its control token ids and default system message.
pub struct ChatTemplate {
    /// Token id of `<|im_start|>`, which opens a turn.
    pub im_start: u32,
    /// Token id of `<|im_end|>`, which closes a turn.
    pub im_end: u32,
    /// The system message inserted when the conversation starts with another role.
    pub default_system: Option<String>,
}

const SYSTEM_MARKER: &str = "<|im_start|>system\n";

impl ChatTemplate {
    /// Reads the template from `tokenizer.chat_template`; refuses any that is not ChatML.
    pub fn from_gguf(file: &Gguf, tokenizer: &GgufTokenizer) -> Result<Self> {
        // Newlines in the template's quoted literals may be real or written as `\n`.
        let template = file.require_str("tokenizer.chat_template")?.replace("\\n", "\n");
        let (Some(im_start), Some(im_end)) =
            (tokenizer.token_id("<|im_start|>"), tokenizer.token_id("<|im_end|>"))
        else {
            return Err(Error::UnsupportedModel("the vocabulary has no ChatML tokens".into()));
        };
        if !template.contains("'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>'") {
            return Err(Error::UnsupportedModel("the chat template is not ChatML".into()));
        }
        // In the template the default turn is a quoted literal: '<|im_start|>system\n...<|im_end|>\n'
        // with the newline written as the two characters backslash and n.
        let default_system = template
            .split_once(SYSTEM_MARKER)
            .and_then(|(_, rest)| rest.split_once("<|im_end|>").map(|(text, _)| text.to_string()));
        Ok(Self { im_start, im_end, default_system })
    }

    /// The prompt's token ids for `messages`, ending with the assistant's turn opened.
    pub fn render(&self, tokenizer: &GgufTokenizer, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        let mut turn = |role: &str, content: &str| -> Result<()> {
            ids.push(self.im_start);
            ids.extend(tokenizer.encode(&format!("{role}\n{content}"))?);
            ids.push(self.im_end);
            ids.extend(tokenizer.encode("\n")?);
            Ok(())
        };
        if let Some(system) = &self.default_system
            && messages.first().is_none_or(|m| m.role != "system")
        {
            turn("system", system)?;
        }
        for m in messages {
            turn(&m.role, &m.content)?;
        }
        ids.push(self.im_start);
        ids.extend(tokenizer.encode("assistant\n")?);
        Ok(ids)
    }
}

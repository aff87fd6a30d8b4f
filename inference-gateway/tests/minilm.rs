//! The whole all-MiniLM-L6-v2 pipeline against embeddings computed independently of this
//! crate (tests/reference/minilm_reference.py: float64 numpy BERT + the `tokenizers` PyPI
//! package). Needs scripts/fetch-models.sh to have run; fails, never skips, when it has not.

mod common;

use std::time::Instant;

use common::{cosine, minilm_dir};
use tora_inference_gateway::{
    CpuEmbedder, Embedder, Error, MAX_BATCH, MAX_SEQ_LEN, MatmulVariant, Measured, SentenceTokenizer,
};

const MIN_COSINE: f64 = 0.9999;

struct Case {
    text: String,
    ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn parse_case(c: &serde_json::Value) -> Case {
    Case {
        text: c["text"].as_str().expect("text").to_owned(),
        ids: c["ids"].as_array().expect("ids").iter().map(|v| v.as_u64().expect("id") as u32).collect(),
        embedding: c["embedding"]
            .as_array()
            .expect("embedding")
            .iter()
            .map(|v| v.as_f64().expect("f") as f32)
            .collect(),
    }
}

fn json() -> serde_json::Value {
    serde_json::from_str(include_str!("reference/minilm_reference.json")).expect("reference JSON")
}

/// Three short sentences of different lengths.
fn reference() -> Vec<Case> {
    let cases: Vec<Case> = json()["cases"].as_array().expect("cases").iter().map(parse_case).collect();
    assert_eq!(cases.len(), 3);
    assert!(cases.iter().all(|c| c.embedding.len() == 384));
    cases
}

/// A text of more than 256 tokens, embedded by the reference after truncation to 256.
fn truncated_reference() -> Case {
    let case = parse_case(&json()["truncated"]);
    assert_eq!((case.ids.len(), case.embedding.len()), (MAX_SEQ_LEN, 384));
    case
}

fn assert_matches_reference(what: &str, vectors: &[Vec<f32>], cases: &[&Case]) {
    assert_eq!(vectors.len(), cases.len());
    for (v, c) in vectors.iter().zip(cases) {
        let cos = cosine(v, &c.embedding);
        let text: String = c.text.chars().take(48).collect();
        eprintln!("{what}: cosine {cos:.9} (1 - cos = {:.1e}) for {text:?}", 1.0 - cos);
        assert!(cos >= MIN_COSINE, "{what}: cosine {cos} < {MIN_COSINE} for {text:?}");
    }
}

#[test]
fn tokenizer_matches_python_tokenizers_without_padding() {
    let tok = SentenceTokenizer::load(&minilm_dir()).expect("tokenizer");
    for c in reference() {
        assert_eq!(tok.encode(&c.text).unwrap(), c.ids, "{:?}", c.text);
    }
    // Checked by hand against vocab.txt (id = line number - 1): [CLS] hello , world ! [SEP].
    assert_eq!(tok.encode("Hello, world!").unwrap(), vec![101, 7592, 1010, 2088, 999, 102]);
}

#[test]
fn a_batch_is_tokenized_as_each_text_alone() {
    let tok = SentenceTokenizer::load(&minilm_dir()).expect("tokenizer");
    let mut texts: Vec<String> = reference().into_iter().map(|c| c.text).collect();
    texts.extend([truncated_reference().text, String::new(), "inference ".repeat(1000)]);
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let alone: Vec<Vec<u32>> = texts.iter().map(|t| tok.encode(t).unwrap()).collect();
    assert_eq!(tok.encode_batch(&texts).unwrap(), alone, "same ids, same order");
}

#[test]
fn tokenizer_truncates_long_texts_to_256_tokens() {
    let tok = SentenceTokenizer::load(&minilm_dir()).expect("tokenizer");
    let long = truncated_reference();
    assert_eq!(tok.encode(&long.text).unwrap(), long.ids, "truncated like the Python tokenizer");
    let ids = tok.encode(&"inference ".repeat(1000)).unwrap();
    assert_eq!(ids.len(), MAX_SEQ_LEN);
    assert_eq!((ids[0], ids[MAX_SEQ_LEN - 1]), (101, 102), "[CLS] ... [SEP] kept");
    assert_eq!(tok.encode("").unwrap(), vec![101, 102]);
}

#[test]
fn measure_flags_only_texts_cut_to_the_limit() {
    let tok = SentenceTokenizer::load(&minilm_dir()).expect("tokenizer");
    assert_eq!(tok.measure("Hello, world!").unwrap(), Measured { tokens: 6, truncated: false });
    // "hello" is one word piece: 254 of them plus [CLS] and [SEP] fill the 256 exactly.
    let fits = "hello ".repeat(MAX_SEQ_LEN - 2);
    assert_eq!(tok.measure(&fits).unwrap(), Measured { tokens: MAX_SEQ_LEN, truncated: false });
    let over = "hello ".repeat(MAX_SEQ_LEN - 1);
    assert_eq!(tok.measure(&over).unwrap(), Measured { tokens: MAX_SEQ_LEN, truncated: true });
    assert_eq!(tok.measure(&over).unwrap().tokens, tok.encode(&over).unwrap().len(), "as the model counts");
}

#[test]
fn gpu_embeddings_match_numpy_reference_in_batch_and_alone() {
    let cases = reference();
    let embedder = Embedder::load(&minilm_dir()).expect("load embedder");
    eprintln!(
        "adapter {:?} ({:?}), matmul {:?}",
        embedder.adapter().name,
        embedder.adapter().device_type,
        embedder.matmul_variant()
    );
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();

    // The first call pays for pipeline compilation; time the second.
    let first = embedder.embed(&texts).expect("warm-up");
    let created = embedder.bind_groups_created();
    // One bind group per dispatch: the embeddings, 7 per layer (four linears, attention, two
    // layer norms) in 6 layers, the pooling.
    assert_eq!(created, 1 + 7 * 6 + 1);
    let t = Instant::now();
    let out = embedder.embed(&texts).expect("embed");
    // The same batch shape again: its buffers and bind groups are reused, the answer the same.
    assert_eq!(embedder.bind_groups_created(), created);
    assert_eq!(out, first);
    eprintln!(
        "gpu forward, batch 3 (padded to {} tokens): {:?}",
        cases.iter().map(|c| c.ids.len()).max().unwrap(),
        t.elapsed()
    );
    assert_matches_reference("gpu batch", &out.vectors, &cases.iter().collect::<Vec<_>>());
    assert_eq!(out.tokens, cases.iter().map(|c| c.ids.len()).collect::<Vec<_>>());
    assert_eq!(out.total_tokens(), cases.iter().map(|c| c.ids.len() as u64).sum::<u64>());

    // Alone, no padding: agreeing with the batched run checks the masking from the other side.
    for c in &cases {
        let t = Instant::now();
        let single = embedder.embed(&[&c.text]).expect("embed one");
        eprintln!("gpu forward, batch 1 ({} tokens): {:?}", c.ids.len(), t.elapsed());
        assert_matches_reference("gpu alone", &single.vectors, &[c]);
    }
}

#[test]
fn gpu_embeddings_match_numpy_reference_with_the_tiled_matmul() {
    let cases = reference();
    let embedder = Embedder::load_with(&minilm_dir(), Some(MatmulVariant::Tiled)).expect("load embedder");
    assert_eq!(embedder.matmul_variant(), MatmulVariant::Tiled);
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let out = embedder.embed(&texts).expect("embed");
    assert_matches_reference("gpu tiled", &out.vectors, &cases.iter().collect::<Vec<_>>());
}

#[test]
fn cpu_reference_embeddings_match_numpy_reference() {
    let cases = reference();
    let embedder = CpuEmbedder::load(&minilm_dir()).expect("load cpu embedder");
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let t = Instant::now();
    let out = embedder.embed(&texts).expect("embed");
    eprintln!("cpu reference forward, batch 3: {:?}", t.elapsed());
    assert_matches_reference("cpu", &out.vectors, &cases.iter().collect::<Vec<_>>());
    assert_eq!(out.tokens, cases.iter().map(|c| c.ids.len()).collect::<Vec<_>>());
}

#[test]
fn overlong_text_is_truncated_to_256_tokens_and_matches_reference() {
    let long = truncated_reference();
    let embedder = Embedder::load(&minilm_dir()).expect("load embedder");
    let t = Instant::now();
    let out = embedder.embed(&[&long.text]).expect("embed");
    eprintln!("gpu forward, batch 1 ({MAX_SEQ_LEN} tokens): {:?}", t.elapsed());
    assert_eq!(out.tokens, vec![MAX_SEQ_LEN]);
    assert_matches_reference("gpu truncated", &out.vectors, &[&long]);
}

#[test]
fn bad_batches_are_errors_not_panics() {
    let embedder = CpuEmbedder::load(&minilm_dir()).expect("load cpu embedder");
    assert!(matches!(embedder.embed(&[]), Err(Error::EmptyBatch)));
    let many = vec!["x"; MAX_BATCH + 1];
    assert!(
        matches!(embedder.embed(&many), Err(Error::BatchTooLarge { got, max: MAX_BATCH }) if got == MAX_BATCH + 1)
    );
    // An empty string is a valid text: [CLS] [SEP], a unit vector.
    let out = embedder.embed(&[""]).expect("empty text");
    assert_eq!(out.tokens, vec![2]);
    let norm = out.vectors[0].iter().map(|a| a * a).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
}

#[test]
fn missing_model_names_the_fetch_script() {
    let dir = std::env::temp_dir().join("tora-no-model-here");
    for err in [
        Embedder::load(&dir).err().expect("gpu load must fail"),
        CpuEmbedder::load(&dir).err().expect("cpu load must fail"),
    ] {
        assert!(matches!(err, Error::ModelMissing { .. }), "{err}");
        assert!(err.to_string().contains("scripts/fetch-models.sh"), "{err}");
    }
}

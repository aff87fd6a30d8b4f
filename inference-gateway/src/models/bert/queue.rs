//! One worker owns the model and runs queued requests in batches: the GPU does one forward
//! pass at a time anyway, and a batch of several requests costs little more than one. The
//! queue is bounded so overload is refused at once (429) instead of growing without limit.

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::Result;
use crate::models::QueueError;
use crate::models::bert::embedder::{CpuEmbedder, Embedder, Embeddings, MAX_BATCH};

/// A sentence-embedding model the worker can drive: the wgpu [`Embedder`] in service, the
/// CPU reference where no GPU is wanted.
pub trait EmbedModel: Send + 'static {
    /// Embeddings of `texts` (at most [`MAX_BATCH`]), in order, with tokens per text.
    fn embed(&self, texts: &[&str]) -> Result<Embeddings>;
}

impl EmbedModel for Embedder {
    fn embed(&self, texts: &[&str]) -> Result<Embeddings> {
        Embedder::embed(self, texts)
    }
}

impl EmbedModel for CpuEmbedder {
    fn embed(&self, texts: &[&str]) -> Result<Embeddings> {
        CpuEmbedder::embed(self, texts)
    }
}

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Embeddings>>,
}

/// The sending side of the worker's queue; cheap to clone.
#[derive(Clone)]
pub struct EmbedQueue {
    sender: mpsc::Sender<Job>,
    capacity: usize,
}

/// A place in the queue, held while the request is paid for; dropping it frees the place.
pub struct Slot(mpsc::OwnedPermit<Job>);

impl EmbedQueue {
    /// Starts the worker on a blocking thread (the model's calls block) with room for
    /// `capacity` waiting requests. The worker stops once every queue handle is dropped.
    pub fn start<M: EmbedModel>(model: M, capacity: usize) -> (Self, JoinHandle<()>) {
        let capacity = capacity.max(1);
        let (sender, receiver) = mpsc::channel(capacity);
        let worker = tokio::task::spawn_blocking(move || run(&model, receiver));
        (Self { sender, capacity }, worker)
    }

    /// Takes a place in the queue, or refuses at once when it is full.
    pub fn reserve(&self) -> Result<Slot, QueueError> {
        match self.sender.clone().try_reserve_owned() {
            Ok(permit) => Ok(Slot(permit)),
            Err(mpsc::error::TrySendError::Full(_)) => Err(QueueError::Full(self.capacity)),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(QueueError::Stopped),
        }
    }

    /// Requests waiting for the worker (places reserved included).
    pub fn waiting(&self) -> usize {
        self.capacity - self.sender.capacity()
    }

    /// The worker is still running.
    pub fn is_running(&self) -> bool {
        !self.sender.is_closed()
    }
}

impl Slot {
    /// Queues `texts` (at most [`MAX_BATCH`]) now, and returns the wait for their embeddings.
    pub fn embed(
        self,
        texts: Vec<String>,
    ) -> impl Future<Output = Result<Embeddings, QueueError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        self.0.send(Job { texts, reply });
        async move { Ok(answer.await.map_err(|_| QueueError::Stopped)??) }
    }
}

/// Takes the next job and every job already waiting behind it, up to [`MAX_BATCH`] texts,
/// and runs them as one forward pass.
fn run(model: &dyn EmbedModel, mut receiver: mpsc::Receiver<Job>) {
    let mut held_over: Option<Job> = None;
    loop {
        let Some(first) = held_over.take().or_else(|| receiver.blocking_recv()) else {
            return;
        };
        let mut texts = first.texts.len();
        let mut batch = vec![first];
        while let Ok(job) = receiver.try_recv() {
            if texts + job.texts.len() > MAX_BATCH {
                held_over = Some(job);
                break;
            }
            texts += job.texts.len();
            batch.push(job);
        }
        run_batch(model, batch);
    }
}

fn run_batch(model: &dyn EmbedModel, batch: Vec<Job>) {
    // A client that gave up (timeout, disconnect) is not worth a forward pass.
    let batch: Vec<Job> = batch.into_iter().filter(|job| !job.reply.is_closed()).collect();
    if batch.is_empty() {
        return;
    }
    let texts: Vec<&str> = batch.iter().flat_map(|job| job.texts.iter().map(String::as_str)).collect();
    match model.embed(&texts) {
        Ok(all) => {
            let (mut vectors, mut tokens) = (all.vectors.into_iter(), all.tokens.into_iter());
            for job in batch {
                let n = job.texts.len();
                let part = Embeddings {
                    vectors: vectors.by_ref().take(n).collect(),
                    tokens: tokens.by_ref().take(n).collect(),
                };
                let _ = job.reply.send(Ok(part));
            }
        }
        Err(err) => {
            // One message for every request in the batch: the error is the pass's, not theirs.
            let message = err.to_string();
            for job in batch {
                let _ = job.reply.send(Err(crate::error::Error::Gpu(message.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc as std_mpsc;
    use std::sync::{Arc, Mutex};

    /// Embeds a text as its length and reports each batch it ran; waits for a go-ahead before
    /// each batch so the test decides what is queued when.
    struct Lengths {
        batches: Arc<Mutex<Vec<usize>>>,
        go: Mutex<std_mpsc::Receiver<()>>,
        /// Passes begun: a pass has taken its batch off the queue once this counts it.
        begun: Arc<AtomicUsize>,
    }

    impl EmbedModel for Lengths {
        fn embed(&self, texts: &[&str]) -> Result<Embeddings> {
            self.begun.fetch_add(1, Ordering::SeqCst);
            self.go.lock().unwrap().recv().map_err(|_| crate::error::Error::Gpu("test ended".into()))?;
            self.batches.lock().unwrap().push(texts.len());
            Ok(Embeddings {
                vectors: texts.iter().map(|t| vec![t.len() as f32]).collect(),
                tokens: texts.iter().map(|t| t.len()).collect(),
            })
        }
    }

    fn texts(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    #[tokio::test]
    async fn waiting_requests_run_as_one_batch_and_each_gets_its_own_results() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let (go, wait) = std_mpsc::channel();
        let begun = Arc::new(AtomicUsize::new(0));
        let model = Lengths { batches: batches.clone(), go: Mutex::new(wait), begun: begun.clone() };
        let (queue, _worker) = EmbedQueue::start(model, 4);

        // The first request occupies the worker (its pass has begun, so its batch is closed);
        // two more wait behind it.
        let first = tokio::spawn(queue.reserve().unwrap().embed(texts(&["a"])));
        while begun.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let second = tokio::spawn(queue.reserve().unwrap().embed(texts(&["bb", "ccc"])));
        let third = tokio::spawn(queue.reserve().unwrap().embed(texts(&["dddd"])));
        go.send(()).unwrap();
        go.send(()).unwrap();

        assert_eq!(first.await.unwrap().unwrap().tokens, vec![1]);
        let second = second.await.unwrap().unwrap();
        assert_eq!((second.vectors, second.tokens), (vec![vec![2.0], vec![3.0]], vec![2, 3]));
        assert_eq!(third.await.unwrap().unwrap().tokens, vec![4]);
        assert_eq!(*batches.lock().unwrap(), vec![1, 3], "the two waiting requests shared a pass");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let (go, wait) = std_mpsc::channel();
        let model = Lengths { batches: Arc::default(), go: Mutex::new(wait), begun: Arc::default() };
        let (queue, _worker) = EmbedQueue::start(model, 1);
        let held = queue.reserve().unwrap();
        assert!(matches!(queue.reserve(), Err(QueueError::Full(1))));
        drop(held);
        let answer = tokio::spawn(queue.reserve().unwrap().embed(texts(&["x"])));
        go.send(()).unwrap();
        assert_eq!(answer.await.unwrap().unwrap().tokens, vec![1]);
    }
}

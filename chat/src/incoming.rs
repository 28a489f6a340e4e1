//! An upload as it arrives: streamed to a temporary file beside the stored attachments,
//! its size limit enforced chunk by chunk, and — for an attachment — its type sniffed from
//! its first bytes, so an executable or an unknown type is refused before the rest is read.
//! What the first bytes leave open (an OLE root entry, a zip directory, text to the end) is
//! settled from the file, never by holding the whole upload in memory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::attachment::{
    AttachmentError, Candidate, HEAD_LEN, Sniffed, TextCheck, blob_path, declared_extension,
    detect_head, named, resolve,
};

/// What is checked while an upload streams in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// An attachment: its type is sniffed as it arrives.
    Attachment,
    /// Any other upload (a FAQ import, a recording): only its size is bounded.
    SizeOnly,
}

/// An upload being received.
pub struct Incoming {
    file: tokio::fs::File,
    /// Removed on drop unless handed on as [`Staged`].
    path: Option<PathBuf>,
    file_name: String,
    check: Check,
    declared: Option<String>,
    limit: usize,
    size: usize,
    hasher: Sha256,
    head: Vec<u8>,
    candidate: Option<Candidate>,
    text: TextCheck,
}

/// Where uploads are received before they are stored (same file system: a rename stores).
fn incoming_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("attachments").join(".incoming")
}

impl Incoming {
    /// Starts receiving `file_name` (as the client named it). An attachment whose name is
    /// a program's is refused before a byte is read.
    pub async fn begin(
        data_dir: &Path,
        file_name: &str,
        limit: usize,
        check: Check,
    ) -> Result<Incoming, AttachmentError> {
        let declared = match check {
            Check::Attachment => declared_extension(file_name)?,
            Check::SizeOnly => None,
        };
        let dir = incoming_dir(data_dir);
        tokio::fs::create_dir_all(&dir).await?;
        let path = dir.join(format!("{}.part", uuid::Uuid::new_v4().simple()));
        let file = tokio::fs::File::create(&path).await?;
        Ok(Incoming {
            file,
            path: Some(path),
            file_name: file_name.to_string(),
            check,
            declared,
            limit,
            size: 0,
            hasher: Sha256::new(),
            head: Vec::new(),
            candidate: None,
            text: TextCheck::default(),
        })
    }

    /// Appends the next chunk: refused once the upload passes its limit, or (an attachment)
    /// as soon as its first bytes show a type that is not accepted.
    pub async fn push(&mut self, chunk: &[u8]) -> Result<(), AttachmentError> {
        self.size = self.size.saturating_add(chunk.len());
        if self.size > self.limit {
            return Err(AttachmentError::TooLarge {
                size: self.size,
                limit: self.limit,
            });
        }
        if self.check == Check::Attachment {
            self.text.push(chunk);
            if self.candidate.is_none() {
                let wanted = HEAD_LEN - self.head.len();
                self.head
                    .extend_from_slice(&chunk[..wanted.min(chunk.len())]);
                if self.head.len() == HEAD_LEN {
                    self.candidate = Some(detect_head(&self.head, false)?);
                }
            }
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).await?;
        Ok(())
    }

    /// The whole upload has arrived: its type is settled and it is ready to be stored.
    pub async fn finish(mut self) -> Result<Staged, AttachmentError> {
        if self.size == 0 {
            return Err(AttachmentError::Empty);
        }
        self.file.flush().await?;
        self.file.sync_all().await?;
        let sniffed = match self.check {
            Check::SizeOnly => None,
            Check::Attachment => Some(self.settle().await?),
        };
        let path = self.path.take().ok_or_else(|| {
            AttachmentError::Io(std::io::Error::other("upload already handed on"))
        })?;
        Ok(Staged {
            path: Some(path),
            sha256: format!("{:x}", self.hasher.clone().finalize()),
            size: self.size,
            file_name: std::mem::take(&mut self.file_name),
            sniffed,
        })
    }

    /// The attachment's type, from its first bytes and what they leave to the file.
    async fn settle(&mut self) -> Result<Sniffed, AttachmentError> {
        let candidate = match self.candidate {
            Some(c) => c,
            // Shorter than the head: all of it is known.
            None => detect_head(&self.head, true)?,
        };
        let head = std::mem::take(&mut self.head);
        let text = self.text.is_text();
        let declared = self.declared.take();
        let path = self.path.clone().unwrap_or_default();
        // Reading an OLE root entry or a zip directory is blocking file I/O.
        let (ty, declared) = tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::open(&path)?;
            resolve(candidate, &mut file, &head, text, declared.as_deref()).map(|ty| (ty, declared))
        })
        .await
        .map_err(|e| AttachmentError::Io(std::io::Error::other(e)))??;
        named(ty, declared)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A received upload in its temporary file (removed on drop unless stored).
#[derive(Debug)]
pub struct Staged {
    path: Option<PathBuf>,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    pub size: usize,
    /// The name the client gave.
    pub file_name: String,
    /// The sniffed type of an attachment; `None` for other uploads.
    pub sniffed: Option<Sniffed>,
}

impl Staged {
    /// The content, for consumers that need it whole (bounded by the upload limit).
    pub async fn read(&self) -> std::io::Result<Vec<u8>> {
        match &self.path {
            Some(p) => tokio::fs::read(p).await,
            None => Err(std::io::Error::other("upload already stored")),
        }
    }

    /// Moves the content under its content address (or drops it when those bytes are
    /// already stored); returns the address.
    pub(crate) async fn store(mut self, data_dir: &Path) -> std::io::Result<String> {
        let Some(from) = self.path.take() else {
            return Err(std::io::Error::other("upload already stored"));
        };
        let to = blob_path(data_dir, &self.sha256);
        if let Ok(meta) = tokio::fs::metadata(&to).await
            && meta.is_file()
            && meta.len() == self.size as u64
        {
            let _ = tokio::fs::remove_file(&from).await;
            return Ok(self.sha256.clone());
        }
        let dir = to.parent().unwrap_or(data_dir);
        tokio::fs::create_dir_all(dir).await?;
        if let Err(e) = tokio::fs::rename(&from, &to).await {
            let _ = tokio::fs::remove_file(&from).await;
            return Err(e);
        }
        Ok(self.sha256.clone())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The uploads of one request, by their index among the request's uploads (`Upload.0`),
/// for the resolver that stores them; each is taken once.
#[derive(Default)]
pub struct StagedUploads(Mutex<HashMap<usize, Staged>>);

impl StagedUploads {
    pub fn insert(&self, index: usize, staged: Staged) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(index, staged);
        }
    }

    pub fn take(&self, index: usize) -> Option<Staged> {
        self.0.lock().ok().and_then(|mut m| m.remove(&index))
    }
}
